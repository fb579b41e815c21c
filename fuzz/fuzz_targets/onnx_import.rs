//! ONNX import: `cnnc::onnx::import` on arbitrary bytes (seeds: the PyTorch exports
//! in ../tests/onnx/pytorch). Every input is an error or a model whose text checks;
//! a panic, a run over 5 s or over the memory limit is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(imported) = cnnc::onnx::import(data, "fuzz.onnx", None, "Fuzz", false) {
        assert!(cnnc::compile(&imported.source).is_ok(), "an imported model checks");
    }
});
