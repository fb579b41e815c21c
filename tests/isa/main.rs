//! Tests that run on every instruction set the CPU has (portable, AVX2, AVX-512):
//! the convolution plans against their definition, every fixture through generated
//! code, and generated code against the interpreter. The instruction set is
//! process-wide (`set_isa`), so these share a process with nothing else, and each
//! walks the sets inside [`on_every_isa`], which holds one lock.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/fixture_harness.rs"]
mod fixture_harness;

mod compute_conv;
mod exec_vs_generated;
mod fused_inference;
mod generated_fixtures;
mod interp_vs_generated;

use cnnc::compute::gemm::{set_isa, Isa};
use std::sync::Mutex;

static ISA: Mutex<()> = Mutex::new(());

/// Runs `f` on every instruction set this CPU has, holding the lock so that no
/// other test switches it meanwhile, then goes back to the best one.
pub fn on_every_isa(mut f: impl FnMut(Isa)) {
    let _guard = ISA.lock().unwrap_or_else(|e| e.into_inner());
    for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
        set_isa(isa).expect("available");
        f(isa);
    }
    set_isa(Isa::best()).expect("available");
}
