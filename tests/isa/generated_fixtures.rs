//! Every fixture through the code generator: each case's `model.cnn` compiled by
//! `cnn!(file = ...)` and checked with the same harness as the interpreter
//! (`tests/common/fixture_harness.rs`): the PyTorch cases of tests/fixtures/ and
//! the interpreter's own cases of tests/fixtures_own/. Prints each case's row of
//! largest error ratios (`--nocapture`), on every instruction set the CPU has. This file is written by a script from the
//! case folders (see the end of docs/interpreter-fixtures.md); one module per case.

use crate::fixture_harness;

use cnnc::{Model, Train};
use std::path::Path;

/// Runs `check` on every instruction set this CPU has.
fn on_every_isa(name: &str, check: impl Fn() -> fixture_harness::Report) {
    crate::on_every_isa(|isa| {
        let report = check();
        println!("{} [{}]", report.table_row(), isa.name());
        assert!(
            report.failures.is_empty(),
            "fixture {name} fails on {}:\n{}",
            isa.name(),
            report.failures.join("\n")
        );
        assert!(!report.groups.is_empty(), "fixture {name}: nothing was compared");
    });
}

fn run(dir: &Path, name: &str, build: &dyn Fn(&str) -> Box<dyn Train>) {
    on_every_isa(name, || fixture_harness::check_case(&dir.join(name), build));
}

fn run_forward(dir: &Path, name: &str, build: &dyn Fn(&str) -> Box<dyn Model>) {
    on_every_isa(name, || fixture_harness::check_forward_case(&dir.join(name), build));
}

mod activations {
    cnn_macros::cnn!(file = "tests/fixtures/activations/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "activations", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(Activations::new(0))
        });
    }
}

mod adamw_small {
    cnn_macros::cnn!(file = "tests/fixtures/adamw_small/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "adamw_small", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(AdamwSmall::new(0))
        });
    }
}

mod avgpool_2 {
    cnn_macros::cnn!(file = "tests/fixtures/avgpool_2/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "avgpool_2", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(Avgpool2::new(0))
        });
    }
}

mod avgpool_3_s2_pad1 {
    cnn_macros::cnn!(file = "tests/fixtures/avgpool_3_s2_pad1/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "avgpool_3_s2_pad1",
            &|_| -> Box<dyn super::Train> { Box::new(Avgpool3S2Pad1::new(0)) },
        );
    }
}

mod avgpool_global {
    cnn_macros::cnn!(file = "tests/fixtures/avgpool_global/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "avgpool_global", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(AvgpoolGlobal::new(0))
        });
    }
}

mod bce_binary {
    cnn_macros::cnn!(file = "tests/fixtures/bce_binary/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "bce_binary", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(BceBinary::new(0))
        });
    }
}

mod bias_off {
    cnn_macros::cnn!(file = "tests/fixtures/bias_off/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "bias_off", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(BiasOff::new(0))
        });
    }
}

mod bn1d_dense {
    cnn_macros::cnn!(file = "tests/fixtures/bn1d_dense/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "bn1d_dense", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(Bn1dDense::new(0))
        });
    }
}

mod bn2d_basic {
    cnn_macros::cnn!(file = "tests/fixtures/bn2d_basic/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "bn2d_basic", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(Bn2dBasic::new(0))
        });
    }
}

mod cifar_block_adam {
    cnn_macros::cnn!(file = "tests/fixtures/cifar_block_adam/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "cifar_block_adam",
            &|_| -> Box<dyn super::Train> { Box::new(CifarBlockAdam::new(0)) },
        );
    }
}

mod conv_asym_pad {
    cnn_macros::cnn!(file = "tests/fixtures/conv_asym_pad/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "conv_asym_pad", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(ConvAsymPad::new(0))
        });
    }
}

mod conv_basic {
    cnn_macros::cnn!(file = "tests/fixtures/conv_basic/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "conv_basic", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(ConvBasic::new(0))
        });
    }
}

mod conv_dilation {
    cnn_macros::cnn!(file = "tests/fixtures/conv_dilation/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "conv_dilation", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(ConvDilation::new(0))
        });
    }
}

mod conv_groups_depthwise {
    cnn_macros::cnn!(file = "tests/fixtures/conv_groups_depthwise/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "conv_groups_depthwise",
            &|_| -> Box<dyn super::Train> { Box::new(ConvGroupsDepthwise::new(0)) },
        );
    }
}

mod conv_pad_same_s2 {
    cnn_macros::cnn!(file = "tests/fixtures/conv_pad_same_s2/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "conv_pad_same_s2",
            &|_| -> Box<dyn super::Train> { Box::new(ConvPadSameS2::new(0)) },
        );
    }
}

mod conv_round_floor {
    cnn_macros::cnn!(file = "tests/fixtures/conv_round_floor/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "conv_round_floor",
            &|_| -> Box<dyn super::Train> { Box::new(ConvRoundFloor::new(0)) },
        );
    }
}

mod conv_stride2_pad1 {
    cnn_macros::cnn!(file = "tests/fixtures/conv_stride2_pad1/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "conv_stride2_pad1",
            &|_| -> Box<dyn super::Train> { Box::new(ConvStride2Pad1::new(0)) },
        );
    }
}

mod dense_stack {
    cnn_macros::cnn!(file = "tests/fixtures/dense_stack/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "dense_stack", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(DenseStack::new(0))
        });
    }
}

mod lenet_sgd_momentum {
    cnn_macros::cnn!(file = "tests/fixtures/lenet_sgd_momentum/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "lenet_sgd_momentum",
            &|_| -> Box<dyn super::Train> { Box::new(LenetSgdMomentum::new(0)) },
        );
    }
}

mod maxpool_2 {
    cnn_macros::cnn!(file = "tests/fixtures/maxpool_2/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "maxpool_2", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(Maxpool2::new(0))
        });
    }
}

mod maxpool_3_s2_pad1 {
    cnn_macros::cnn!(file = "tests/fixtures/maxpool_3_s2_pad1/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "maxpool_3_s2_pad1",
            &|_| -> Box<dyn super::Train> { Box::new(Maxpool3S2Pad1::new(0)) },
        );
    }
}

mod mse_regression {
    cnn_macros::cnn!(file = "tests/fixtures/mse_regression/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "mse_regression", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(MseRegression::new(0))
        });
    }
}

mod residual_identity {
    cnn_macros::cnn!(file = "tests/fixtures/residual_identity/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "residual_identity",
            &|_| -> Box<dyn super::Train> { Box::new(ResidualIdentity::new(0)) },
        );
    }
}

mod residual_projection {
    cnn_macros::cnn!(file = "tests/fixtures/residual_projection/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "residual_projection",
            &|_| -> Box<dyn super::Train> { Box::new(ResidualProjection::new(0)) },
        );
    }
}

mod schedule_cosine {
    cnn_macros::cnn!(file = "tests/fixtures/schedule_cosine/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "schedule_cosine", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(ScheduleCosine::new(0))
        });
    }
}

mod schedule_exponential {
    cnn_macros::cnn!(file = "tests/fixtures/schedule_exponential/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "schedule_exponential",
            &|_| -> Box<dyn super::Train> { Box::new(ScheduleExponential::new(0)) },
        );
    }
}

mod schedule_step {
    cnn_macros::cnn!(file = "tests/fixtures/schedule_step/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "schedule_step", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(ScheduleStep::new(0))
        });
    }
}

mod seed_example {
    cnn_macros::cnn!(file = "tests/fixtures/seed_example/model.cnn");

    #[test]
    fn matches_reference() {
        super::run_forward(&super::fixture_harness::fixtures_dir(), "seed_example", &|_| -> Box<
            dyn super::Model,
        > {
            Box::new(SeedExample::new(0))
        });
    }
}

mod sgd_nesterov_small {
    cnn_macros::cnn!(file = "tests/fixtures/sgd_nesterov_small/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "sgd_nesterov_small",
            &|_| -> Box<dyn super::Train> { Box::new(SgdNesterovSmall::new(0)) },
        );
    }
}

mod softmax_ce {
    cnn_macros::cnn!(file = "tests/fixtures/softmax_ce/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "softmax_ce", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(SoftmaxCe::new(0))
        });
    }
}

mod v3_clip_freeze {
    cnn_macros::cnn!(file = "tests/fixtures/v3_clip_freeze/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "v3_clip_freeze", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(V3ClipFreeze::new(0))
        });
    }
}

mod v3_label_smoothing {
    cnn_macros::cnn!(file = "tests/fixtures/v3_label_smoothing/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "v3_label_smoothing",
            &|_| -> Box<dyn super::Train> { Box::new(V3LabelSmoothing::new(0)) },
        );
    }
}

mod v3_relu6_hardswish {
    cnn_macros::cnn!(file = "tests/fixtures/v3_relu6_hardswish/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "v3_relu6_hardswish",
            &|_| -> Box<dyn super::Train> { Box::new(V3Relu6Hardswish::new(0)) },
        );
    }
}

mod v3_add_long_skip {
    cnn_macros::cnn!(file = "tests/fixtures/v3_add_long_skip/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "v3_add_long_skip",
            &|_| -> Box<dyn super::Train> { Box::new(V3AddLongSkip::new(0)) },
        );
    }
}

mod v3_concat_dense_block {
    cnn_macros::cnn!(file = "tests/fixtures/v3_concat_dense_block/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "v3_concat_dense_block",
            &|_| -> Box<dyn super::Train> { Box::new(V3ConcatDenseBlock::new(0)) },
        );
    }
}

mod v3_convtranspose_stride_pad_outpad {
    cnn_macros::cnn!(file = "tests/fixtures/v3_convtranspose_stride_pad_outpad/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "v3_convtranspose_stride_pad_outpad",
            &|_| -> Box<dyn super::Train> { Box::new(V3ConvtransposeStridePadOutpad::new(0)) },
        );
    }
}

mod v3_from_branches {
    cnn_macros::cnn!(file = "tests/fixtures/v3_from_branches/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "v3_from_branches",
            &|_| -> Box<dyn super::Train> { Box::new(V3FromBranches::new(0)) },
        );
    }
}

mod v3_se_block {
    cnn_macros::cnn!(file = "tests/fixtures/v3_se_block/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "v3_se_block", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(V3SeBlock::new(0))
        });
    }
}

mod v3_upsample_bilinear {
    cnn_macros::cnn!(file = "tests/fixtures/v3_upsample_bilinear/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(
            &super::fixture_harness::fixtures_dir(),
            "v3_upsample_bilinear",
            &|_| -> Box<dyn super::Train> { Box::new(V3UpsampleBilinear::new(0)) },
        );
    }
}

mod v3_unet_tiny {
    cnn_macros::cnn!(file = "tests/fixtures/v3_unet_tiny/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::fixtures_dir(), "v3_unet_tiny", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(V3UnetTiny::new(0))
        });
    }
}

mod gelu {
    cnn_macros::cnn!(file = "tests/fixtures_own/gelu/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::own_fixtures_dir(), "gelu", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(GeluCase::new(0))
        });
    }
}

mod silu {
    cnn_macros::cnn!(file = "tests/fixtures_own/silu/model.cnn");

    #[test]
    fn matches_reference() {
        super::run(&super::fixture_harness::own_fixtures_dir(), "silu", &|_| -> Box<
            dyn super::Train,
        > {
            Box::new(SiluCase::new(0))
        });
    }
}
