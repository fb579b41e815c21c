//! Every PyTorch fixture through the code generator: each case's `model.cnn`
//! compiled by `cnn!(file = ...)` and checked with the same `check_case` as the
//! interpreter. Prints each case's row of largest error ratios (`--nocapture`).

mod common;

use cnnc::{Model, Train};

fn run(name: &str, build: &dyn Fn(&str) -> Box<dyn Train>) {
    let report = common::check_case(&common::fixtures_dir().join(name), build);
    println!("{}", report.table_row());
    assert!(
        report.failures.is_empty(),
        "fixture {name} fails:\n{}",
        report.failures.join("\n")
    );
    assert!(!report.groups.is_empty(), "fixture {name}: nothing was compared");
}

mod activations {
    cnn_macros::cnn!(file = "tests/fixtures/activations/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("activations", &|_| -> Box<dyn super::Train> {
            Box::new(Activations::new(0))
        });
    }
}

mod adamw_small {
    cnn_macros::cnn!(file = "tests/fixtures/adamw_small/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("adamw_small", &|_| -> Box<dyn super::Train> {
            Box::new(AdamwSmall::new(0))
        });
    }
}

mod avgpool_2 {
    cnn_macros::cnn!(file = "tests/fixtures/avgpool_2/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("avgpool_2", &|_| -> Box<dyn super::Train> {
            Box::new(Avgpool2::new(0))
        });
    }
}

mod avgpool_3_s2_pad1 {
    cnn_macros::cnn!(file = "tests/fixtures/avgpool_3_s2_pad1/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("avgpool_3_s2_pad1", &|_| -> Box<dyn super::Train> {
            Box::new(Avgpool3S2Pad1::new(0))
        });
    }
}

mod avgpool_global {
    cnn_macros::cnn!(file = "tests/fixtures/avgpool_global/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("avgpool_global", &|_| -> Box<dyn super::Train> {
            Box::new(AvgpoolGlobal::new(0))
        });
    }
}

mod bce_binary {
    cnn_macros::cnn!(file = "tests/fixtures/bce_binary/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("bce_binary", &|_| -> Box<dyn super::Train> {
            Box::new(BceBinary::new(0))
        });
    }
}

mod cifar_block_adam {
    cnn_macros::cnn!(file = "tests/fixtures/cifar_block_adam/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("cifar_block_adam", &|_| -> Box<dyn super::Train> {
            Box::new(CifarBlockAdam::new(0))
        });
    }
}

mod conv_asym_pad {
    cnn_macros::cnn!(file = "tests/fixtures/conv_asym_pad/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("conv_asym_pad", &|_| -> Box<dyn super::Train> {
            Box::new(ConvAsymPad::new(0))
        });
    }
}

mod conv_basic {
    cnn_macros::cnn!(file = "tests/fixtures/conv_basic/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("conv_basic", &|_| -> Box<dyn super::Train> {
            Box::new(ConvBasic::new(0))
        });
    }
}

mod conv_pad_same_s2 {
    cnn_macros::cnn!(file = "tests/fixtures/conv_pad_same_s2/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("conv_pad_same_s2", &|_| -> Box<dyn super::Train> {
            Box::new(ConvPadSameS2::new(0))
        });
    }
}

mod conv_round_floor {
    cnn_macros::cnn!(file = "tests/fixtures/conv_round_floor/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("conv_round_floor", &|_| -> Box<dyn super::Train> {
            Box::new(ConvRoundFloor::new(0))
        });
    }
}

mod conv_stride2_pad1 {
    cnn_macros::cnn!(file = "tests/fixtures/conv_stride2_pad1/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("conv_stride2_pad1", &|_| -> Box<dyn super::Train> {
            Box::new(ConvStride2Pad1::new(0))
        });
    }
}

mod dense_stack {
    cnn_macros::cnn!(file = "tests/fixtures/dense_stack/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("dense_stack", &|_| -> Box<dyn super::Train> {
            Box::new(DenseStack::new(0))
        });
    }
}

mod lenet_sgd_momentum {
    cnn_macros::cnn!(file = "tests/fixtures/lenet_sgd_momentum/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("lenet_sgd_momentum", &|_| -> Box<dyn super::Train> {
            Box::new(LenetSgdMomentum::new(0))
        });
    }
}

mod maxpool_2 {
    cnn_macros::cnn!(file = "tests/fixtures/maxpool_2/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("maxpool_2", &|_| -> Box<dyn super::Train> {
            Box::new(Maxpool2::new(0))
        });
    }
}

mod maxpool_3_s2_pad1 {
    cnn_macros::cnn!(file = "tests/fixtures/maxpool_3_s2_pad1/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("maxpool_3_s2_pad1", &|_| -> Box<dyn super::Train> {
            Box::new(Maxpool3S2Pad1::new(0))
        });
    }
}

mod mse_regression {
    cnn_macros::cnn!(file = "tests/fixtures/mse_regression/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("mse_regression", &|_| -> Box<dyn super::Train> {
            Box::new(MseRegression::new(0))
        });
    }
}

mod schedule_cosine {
    cnn_macros::cnn!(file = "tests/fixtures/schedule_cosine/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("schedule_cosine", &|_| -> Box<dyn super::Train> {
            Box::new(ScheduleCosine::new(0))
        });
    }
}

mod schedule_exponential {
    cnn_macros::cnn!(file = "tests/fixtures/schedule_exponential/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("schedule_exponential", &|_| -> Box<dyn super::Train> {
            Box::new(ScheduleExponential::new(0))
        });
    }
}

mod schedule_step {
    cnn_macros::cnn!(file = "tests/fixtures/schedule_step/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("schedule_step", &|_| -> Box<dyn super::Train> {
            Box::new(ScheduleStep::new(0))
        });
    }
}

mod seed_example {
    cnn_macros::cnn!(file = "tests/fixtures/seed_example/model.cnn");

    #[test]
    fn matches_pytorch() {
        let build = |_: &str| -> Box<dyn super::Model> { Box::new(SeedExample::new(0)) };
        let report = super::common::check_forward_case(&super::common::fixtures_dir().join("seed_example"), &build);
        println!("{}", report.table_row());
        assert!(report.failures.is_empty(), "{}", report.failures.join("\n"));
        assert!(!report.groups.is_empty(), "nothing was compared");
    }
}

mod sgd_nesterov_small {
    cnn_macros::cnn!(file = "tests/fixtures/sgd_nesterov_small/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("sgd_nesterov_small", &|_| -> Box<dyn super::Train> {
            Box::new(SgdNesterovSmall::new(0))
        });
    }
}

mod softmax_ce {
    cnn_macros::cnn!(file = "tests/fixtures/softmax_ce/model.cnn");

    #[test]
    fn matches_pytorch() {
        super::run("softmax_ce", &|_| -> Box<dyn super::Train> {
            Box::new(SoftmaxCe::new(0))
        });
    }
}
