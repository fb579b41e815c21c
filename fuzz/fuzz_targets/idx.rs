//! IDX data files, plain or gzipped: `cnnc::rt::data::parse_idx` (the decoder `read_idx` uses).
//! See ../io_checks.rs for what is checked on each input; a panic, a run over
//! 5 s or over the memory limit is a finding.

#![no_main]

#[path = "../../tests/io_model/mod.rs"]
mod io_model;
#[path = "../io_checks.rs"]
mod io_checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = io_checks::idx(data);
});
