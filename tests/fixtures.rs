//! The reference interpreter against every PyTorch fixture in tests/fixtures/.
//! Each test prints its row of docs/interpreter-fixtures.md (`--nocapture`).

mod common;

use cnnc::interp::Interpreter;
use cnnc::Train;

/// The interpreter for the (single) model of a fixture's `model.cnn`.
fn build(text: &str) -> Box<dyn Train> {
    let models = cnnc::compile(text).unwrap_or_else(|d| panic!("{}", d.render("model.cnn", text)));
    let model = models.into_iter().next().expect("the fixture defines a model");
    Box::new(Interpreter::new(model, 0))
}

fn run(name: &str) -> common::Report {
    let report = common::check_case(&common::fixtures_dir().join(name), &build);
    println!("{}", report.table_row());
    assert!(
        report.failures.is_empty(),
        "fixture {name} fails:\n{}",
        report.failures.join("\n")
    );
    report
}

macro_rules! fixtures {
    ($($name:ident: [$($group:literal),*],)*) => {
        $(
            #[test]
            fn $name() {
                let report = run(stringify!($name));
                // Every group the case holds was compared.
                $( assert!(report.groups.get($group).is_some_and(|g| g.1 > 0), "no {} tensors compared", $group); )*
            }
        )*
        const ALL: &[&str] = &[$(stringify!($name)),*];
    };
}

fixtures! {
    activations: ["fwd", "grad", "step"],
    adamw_small: ["fwd", "grad", "step"],
    avgpool_2: ["fwd", "grad", "step"],
    avgpool_3_s2_pad1: ["fwd", "grad", "step"],
    avgpool_global: ["fwd", "grad", "step"],
    bce_binary: ["fwd", "grad", "step"],
    cifar_block_adam: ["fwd", "grad", "step"],
    conv_asym_pad: ["fwd", "grad", "step"],
    conv_basic: ["fwd", "grad", "step"],
    conv_pad_same_s2: ["fwd", "grad", "step"],
    conv_round_floor: ["fwd", "grad", "step"],
    conv_stride2_pad1: ["fwd", "grad", "step"],
    dense_stack: ["fwd", "grad", "step"],
    lenet_sgd_momentum: ["fwd", "grad", "step"],
    maxpool_2: ["fwd", "grad", "step"],
    maxpool_3_s2_pad1: ["fwd", "grad", "step"],
    mse_regression: ["fwd", "grad", "step"],
    schedule_cosine: ["lr"],
    schedule_exponential: ["lr"],
    schedule_step: ["lr"],
    seed_example: ["fwd"],
    sgd_nesterov_small: ["fwd", "grad", "step"],
    softmax_ce: ["fwd", "grad", "step"],
}

#[test]
fn every_fixture_directory_has_a_test() {
    assert_eq!(common::case_names(), ALL);
}

#[test]
fn seed_example_gives_the_worked_example() {
    // The seed: input 0..9 as 3x3, kernel [[0, 1], [2, 3]], bias 0.
    let case = common::Case::load(&common::fixtures_dir().join("seed_example"));
    let want = case.f32("expected/output").expect("expected/output");
    assert_eq!(want.iter().copied().collect::<Vec<_>>(), [19.0, 25.0, 37.0, 43.0]);
    let report = common::check_forward_case(&common::fixtures_dir().join("seed_example"), &|text| build(text));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.ratio("fwd"), Some(0.0));
}
