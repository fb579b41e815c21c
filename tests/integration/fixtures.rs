//! The reference interpreter against every fixture case: the PyTorch cases in
//! tests/fixtures/ and the interpreter's own (f64, finite-difference checked) cases in
//! tests/fixtures_own/. Each test prints its row of docs/interpreter-fixtures.md
//! (`--nocapture`).

use crate::fixture_harness;

use cnnc::interp::Interpreter;
use cnnc::Train;
use fixture_harness as harness;
use std::path::Path;

/// The interpreter for the (single) model of a fixture's `model.cnn`.
fn build(text: &str) -> Box<dyn Train> {
    let models = cnnc::compile(text).unwrap_or_else(|d| panic!("{}", d.render("model.cnn", text)));
    let model = models.into_iter().next().expect("the fixture defines a model");
    Box::new(Interpreter::new(model, 0))
}

fn run(dir: &Path, name: &str, groups: &[&str]) {
    let report = harness::check_case(&dir.join(name), &build);
    println!("{}", report.table_row());
    assert!(
        report.failures.is_empty(),
        "fixture {name} fails:\n{}",
        report.failures.join("\n")
    );
    // Every group the case holds was compared.
    for group in groups {
        assert!(report.compared(group) > 0, "{name}: no {group} tensors compared");
    }
}

macro_rules! fixtures {
    ($dir:expr, $all:ident, $($name:ident: [$($group:literal),*],)*) => {
        $(
            #[test]
            fn $name() {
                run(&$dir, stringify!($name), &[$($group),*]);
            }
        )*
        const $all: &[&str] = &[$(stringify!($name)),*];
    };
}

mod pytorch {
    use super::*;

    fixtures! {
        harness::fixtures_dir(), ALL,
        activations: ["fwd", "grad", "step"],
        adamw_small: ["fwd", "grad", "step"],
        avgpool_2: ["fwd", "grad", "step"],
        avgpool_3_s2_pad1: ["fwd", "grad", "step"],
        avgpool_global: ["fwd", "grad", "step"],
        bce_binary: ["fwd", "grad", "step"],
        bias_off: ["fwd", "grad", "step"],
        bn1d_dense: ["fwd", "grad", "step"],
        bn2d_basic: ["fwd", "grad", "step"],
        cifar_block_adam: ["fwd", "grad", "step"],
        conv_asym_pad: ["fwd", "grad", "step"],
        conv_basic: ["fwd", "grad", "step"],
        conv_dilation: ["fwd", "grad", "step"],
        conv_groups_depthwise: ["fwd", "grad", "step"],
        conv_pad_same_s2: ["fwd", "grad", "step"],
        conv_round_floor: ["fwd", "grad", "step"],
        conv_stride2_pad1: ["fwd", "grad", "step"],
        dense_stack: ["fwd", "grad", "step"],
        lenet_sgd_momentum: ["fwd", "grad", "step"],
        maxpool_2: ["fwd", "grad", "step"],
        maxpool_3_s2_pad1: ["fwd", "grad", "step"],
        mse_regression: ["fwd", "grad", "step"],
        residual_identity: ["fwd", "grad", "step"],
        residual_projection: ["fwd", "grad", "step"],
        schedule_cosine: ["lr"],
        schedule_exponential: ["lr"],
        schedule_step: ["lr"],
        seed_example: ["fwd"],
        sgd_nesterov_small: ["fwd", "grad", "step"],
        softmax_ce: ["fwd", "grad", "step"],
        v3_add_long_skip: ["fwd", "grad", "step"],
        v3_clip_freeze: ["fwd", "grad", "step"],
        v3_concat_dense_block: ["fwd", "grad", "step"],
        v3_convtranspose_stride_pad_outpad: ["fwd", "grad", "step"],
        v3_from_branches: ["fwd", "grad", "step"],
        v3_label_smoothing: ["fwd", "grad", "step"],
        v3_relu6_hardswish: ["fwd", "grad", "step"],
        v3_se_block: ["fwd", "grad", "step"],
        v3_unet_tiny: ["fwd", "grad", "step"],
        v3_upsample_bilinear: ["fwd", "grad", "step"],
    }

    #[test]
    fn every_fixture_directory_has_a_test() {
        assert_eq!(harness::case_names(&harness::fixtures_dir()), ALL);
    }
}

mod own {
    use super::*;

    fixtures! {
        harness::own_fixtures_dir(), ALL,
        gelu: ["fwd", "grad", "step"],
        silu: ["fwd", "grad", "step"],
    }

    #[test]
    fn every_fixture_directory_has_a_test() {
        assert_eq!(harness::case_names(&harness::own_fixtures_dir()), ALL);
    }
}

#[test]
fn seed_example_gives_the_worked_example() {
    // The seed: input 0..9 as 3x3, kernel [[0, 1], [2, 3]], bias 0.
    let dir = harness::fixtures_dir().join("seed_example");
    let case = harness::Case::load(&dir);
    let want = case.f32("expected/output").expect("expected/output");
    assert_eq!(want.iter().copied().collect::<Vec<_>>(), [19.0, 25.0, 37.0, 43.0]);
    let report = harness::check_forward_case(&dir, &|text| build(text));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.ratio("fwd"), Some(0.0));
}

#[test]
fn the_harness_catches_a_wrong_running_update() {
    // A batchnorm momentum of 0.2 instead of 0.1: the parameters after a step still
    // agree (the batch statistics drive training), the running statistics do not.
    let dir = harness::fixtures_dir().join("bn2d_basic");
    let report = harness::check_case(&dir, &|text| {
        build(&text.replace("batchnorm relu", "batchnorm momentum 0.2 relu"))
    });
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.starts_with("step1/batchnorm1.running_mean")),
        "{:?}",
        report.failures
    );
    assert!(
        report.failures.iter().all(|f| f.contains("running_")),
        "{:?}",
        report.failures
    );
}
