//! The integration tests, one module per subject, linked into one binary: a test
//! binary per file would be linked (at opt-level 3) about thirty times over, which
//! was most of CI's time. Three kinds of test live elsewhere because they need a
//! process of their own:
//! - `tests/isa/`: tests that switch the process-wide instruction set;
//! - `tests/no_alloc.rs`: a global allocator counting every thread's allocations;
//! - `tests/mpi_distributed.rs`: `mpirun`, behind the `mpi` feature.
//!
//! A new test file here is a new `mod` line below; run one subject with
//! `cargo test --test integration fixtures::`.

// Support shared with tests/isa and the fuzz targets.
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/fixture_harness.rs"]
mod fixture_harness;
#[path = "../io_model/mod.rs"]
mod io_model;
#[path = "../interp_support/ir_builder.rs"]
mod ir_builder;

mod activations;
mod codegen;
mod compile_fail;
mod conv_dilated_padding;
mod conv_padding;
mod data_augment;
mod data_pictures;
mod data_readers;
mod errors_api;
mod errors_data;
mod errors_fit;
mod example_models;
mod example_resnet;
mod example_v3;
mod fit_features;
mod fit_resume;
mod fit_run_config;
mod fixtures;
mod fuzz_regressions;
mod gemm;
mod interp;
mod interp_gradcheck;
mod interp_v2;
mod io_atomic;
mod io_checkpoint;
mod io_fuzz_regressions;
mod no_panic;
mod onnx;
mod onnx_v3;
mod random_models;
mod random_stacks;
mod robustness;
mod threads;
mod ui;
mod weights;
mod weights_partial;
