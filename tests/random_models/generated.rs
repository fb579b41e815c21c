// Written by tests/random_models/generate.py 40 1: 40 valid models of 70 drawn.
// Do not edit; rerun the script.

cnn_macros::cnn! {
    model R0 {
        input 1x5x7 normalize mean 0.1 std 0.5
        batchnorm gelu
        residual { batchnorm gelu shortcut { conv 1 kernel 1 bias off } } tanh
        avgpool global flatten
        dense 4 tanh
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 6 }
    }
    model R1 {
        input 3x6x8
        conv 6 kernel 3 stride 1 round floor tanh
        batchnorm
        tanh
        flatten
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 6 }
    }
    model R2 {
        input 2x7x5
        batchnorm sigmoid
        batchnorm
        conv 2 kernel 2 pad 1x0 groups 2 gelu
        avgpool global flatten
        dense 7 bias off
        batchnorm
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 3 }
    }
    model R3 {
        input 3x7x5
        conv 3 kernel 1 pad same dilation 2 silu
        conv 6 kernel 2 pad same bias off silu
        batchnorm tanh
        flatten
        dense 5 sigmoid
        batchnorm silu
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 3 }
    }
    model R4 {
        input 1x5x5
        sigmoid
        flatten
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 4 }
    }
    model R5 {
        input 2x5x6
        avgpool 2 stride 1
        conv 6 kernel 3 pad same bias off sigmoid
        avgpool global flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 4 }
    }
    model R6 {
        input 2x7x5
        conv 2 kernel 1 pad same dilation 2 tanh
        conv 6 kernel 1 dilation 2 gelu
        avgpool global flatten
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 5 }
    }
    model R7 {
        input 3x7x5
        conv 6 kernel 2 sigmoid
        silu
        batchnorm tanh
        avgpool global flatten
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 batch 5 }
    }
    model R8 {
        input 1x7x6
        conv 4 kernel 3 tanh
        avgpool global flatten
        dense 5
        dense 3 softmax
        train { loss cross_entropy optimizer adamw lr 0.001 weight_decay 0.001 batch 6 }
    }
    model R9 {
        input 2x8x7
        avgpool 3 stride 2 pad 1 round ceil
        conv 2 kernel 3 groups 2 tanh
        avgpool global flatten
        dense 4 softmax
        train { loss cross_entropy optimizer adam lr 0.001 batch 6 }
    }
    model R10 {
        input 2x6x8
        batchnorm silu
        avgpool global flatten
        dense 4
        train { loss mse optimizer sgd lr 0.05 batch 6 }
    }
    model R11 {
        input 2x8x6
        conv 4 kernel 2 dilation 2 groups 2 gelu
        flatten
        dense 4 gelu
        batchnorm gelu
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 3 }
    }
    model R12 {
        input 1x6x8
        tanh
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 6 }
    }
    model R13 {
        input 2x7x5
        conv 6 kernel 2 bias off silu
        avgpool global flatten
        dense 2
        train { loss mse optimizer adamw lr 0.001 weight_decay 0.001 batch 5 }
    }
    model R14 {
        input 2x5x6
        conv 2 kernel 2 groups 2 bias off sigmoid
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer adamw lr 0.001 batch 3 }
    }
    model R15 {
        input 3x8x7 normalize mean 0.1 0.1 0.1 std 0.5 0.5 0.5
        residual { tanh batchnorm } tanh
        tanh
        avgpool global flatten
        dense 3 sigmoid
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }
    model R16 {
        input 3x7x7
        conv 6 kernel 2 bias off silu
        avgpool global flatten
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer adamw lr 0.001 batch 5 }
    }
    model R17 {
        input 3x5x7 normalize mean 0.1 0.1 0.1 std 0.5 0.5 0.5
        conv 6 kernel 1 stride 1 round floor tanh
        avgpool global flatten
        dense 7 bias off sigmoid
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 3 }
    }
    model R18 {
        input 2x7x7
        batchnorm tanh
        batchnorm sigmoid
        conv 4 kernel 3 stride 2 round floor gelu
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 5 }
    }
    model R19 {
        input 3x7x8
        conv 6 kernel 2 groups 3
        silu
        avgpool global flatten
        dense 3
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 6 }
    }
    model R20 {
        input 1x8x7
        avgpool 2 stride 1
        residual { batchnorm tanh batchnorm sigmoid shortcut { conv 1 kernel 1 bias off } } tanh
        flatten
        dense 2
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }
    model R21 {
        input 3x7x8
        conv 6 kernel 3 tanh
        conv 12 kernel 3 stride 2 round floor pad 1 tanh
        flatten
        dense 3
        dense 4 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 3 }
    }
    model R22 {
        input 1x5x7
        conv 6 kernel 2 dilation 2 bias off sigmoid
        batchnorm sigmoid
        conv 6 kernel 3 groups 6 sigmoid
        avgpool global flatten
        dense 6 silu
        dense 3
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 5 }
    }
    model R23 {
        input 1x6x8
        batchnorm
        flatten
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }
    model R24 {
        input 1x6x6
        conv 1 kernel 3 stride 1 round floor pad 1 silu
        avgpool global flatten
        dense 3 bias off
        batchnorm sigmoid
        dense 4
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 6 }
    }
    model R25 {
        input 1x5x7
        conv 2 kernel 3 pad 1 bias off silu
        flatten
        dense 3 tanh
        batchnorm gelu
        dense 4
        train { loss mse optimizer sgd lr 0.05 batch 5 }
    }
    model R26 {
        input 2x5x7
        conv 4 kernel 2 groups 2
        avgpool global flatten
        dense 3
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 4 }
    }
    model R27 {
        input 2x5x8 normalize mean 0.1 0.1 std 0.5 0.5
        avgpool 2 stride 1
        conv 4 kernel 2 pad same groups 2 tanh
        flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 5 }
    }
    model R28 {
        input 2x6x8
        conv 4 kernel 3 sigmoid
        avgpool global flatten
        dense 7 bias off gelu
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 6 }
    }
    model R29 {
        input 1x5x5
        residual { batchnorm silu silu tanh } tanh
        batchnorm sigmoid
        avgpool global flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 4 }
    }
    model R30 {
        input 2x6x5
        conv 2 kernel 3 dilation 2
        flatten
        dense 2
        train { loss mse optimizer adam lr 0.001 batch 6 }
    }
    model R31 {
        input 2x6x6 normalize mean 0.1 0.1 std 0.5 0.5
        conv 4 kernel 3 pad same dilation 2
        flatten
        dense 3
        train { loss mse optimizer sgd lr 0.05 batch 5 }
    }
    model R32 {
        input 2x7x7
        avgpool 2 stride 1
        flatten
        dense 7 sigmoid
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 6 }
    }
    model R33 {
        input 2x5x8 normalize mean 0.1 0.1 std 0.5 0.5
        gelu
        avgpool global flatten
        dense 4 bias off
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 3 }
    }
    model R34 {
        input 2x8x8
        conv 4 kernel 3 stride 1 round floor pad 1x0 bias off tanh
        residual { conv 4 kernel 2 pad same dilation 2 gelu silu } tanh
        flatten
        dense 3 sigmoid
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 5 }
    }
    model R35 {
        input 3x5x6
        silu
        flatten
        dense 5 gelu
        batchnorm tanh
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 3 }
    }
    model R36 {
        input 2x8x5 normalize mean 0.1 0.1 std 0.5 0.5
        avgpool 2 stride 1
        conv 4 kernel 1 gelu
        batchnorm tanh
        avgpool global flatten
        dense 5 bias off gelu
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 6 }
    }
    model R37 {
        input 2x8x6
        conv 4 kernel 2 stride 2 round floor sigmoid
        conv 6 kernel 2 dilation 2 tanh
        flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer adamw lr 0.001 batch 4 }
    }
    model R38 {
        input 2x8x5
        gelu
        flatten
        dense 8 silu
        batchnorm gelu
        dense 3
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 5 }
    }
    model R39 {
        input 3x6x7
        conv 4 kernel 2 gelu
        batchnorm
        batchnorm sigmoid
        flatten
        dense 3 bias off gelu
        batchnorm gelu
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 4 }
    }
}

/// A model's name, its text and a constructor.
pub type Case = (&'static str, &'static str, fn() -> Box<dyn cnnc::Train>);

/// Every model.
pub fn all() -> Vec<Case> {
    vec![
        (
            "R0",
            "model R0 {
        input 1x5x7 normalize mean 0.1 std 0.5
        batchnorm gelu
        residual { batchnorm gelu shortcut { conv 1 kernel 1 bias off } } tanh
        avgpool global flatten
        dense 4 tanh
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 6 }
    }",
            || Box::new(R0::new(0)),
        ),
        (
            "R1",
            "model R1 {
        input 3x6x8
        conv 6 kernel 3 stride 1 round floor tanh
        batchnorm
        tanh
        flatten
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 6 }
    }",
            || Box::new(R1::new(1)),
        ),
        (
            "R2",
            "model R2 {
        input 2x7x5
        batchnorm sigmoid
        batchnorm
        conv 2 kernel 2 pad 1x0 groups 2 gelu
        avgpool global flatten
        dense 7 bias off
        batchnorm
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 3 }
    }",
            || Box::new(R2::new(2)),
        ),
        (
            "R3",
            "model R3 {
        input 3x7x5
        conv 3 kernel 1 pad same dilation 2 silu
        conv 6 kernel 2 pad same bias off silu
        batchnorm tanh
        flatten
        dense 5 sigmoid
        batchnorm silu
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 3 }
    }",
            || Box::new(R3::new(3)),
        ),
        (
            "R4",
            "model R4 {
        input 1x5x5
        sigmoid
        flatten
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 4 }
    }",
            || Box::new(R4::new(4)),
        ),
        (
            "R5",
            "model R5 {
        input 2x5x6
        avgpool 2 stride 1
        conv 6 kernel 3 pad same bias off sigmoid
        avgpool global flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 4 }
    }",
            || Box::new(R5::new(5)),
        ),
        (
            "R6",
            "model R6 {
        input 2x7x5
        conv 2 kernel 1 pad same dilation 2 tanh
        conv 6 kernel 1 dilation 2 gelu
        avgpool global flatten
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 5 }
    }",
            || Box::new(R6::new(6)),
        ),
        (
            "R7",
            "model R7 {
        input 3x7x5
        conv 6 kernel 2 sigmoid
        silu
        batchnorm tanh
        avgpool global flatten
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 batch 5 }
    }",
            || Box::new(R7::new(7)),
        ),
        (
            "R8",
            "model R8 {
        input 1x7x6
        conv 4 kernel 3 tanh
        avgpool global flatten
        dense 5
        dense 3 softmax
        train { loss cross_entropy optimizer adamw lr 0.001 weight_decay 0.001 batch 6 }
    }",
            || Box::new(R8::new(8)),
        ),
        (
            "R9",
            "model R9 {
        input 2x8x7
        avgpool 3 stride 2 pad 1 round ceil
        conv 2 kernel 3 groups 2 tanh
        avgpool global flatten
        dense 4 softmax
        train { loss cross_entropy optimizer adam lr 0.001 batch 6 }
    }",
            || Box::new(R9::new(9)),
        ),
        (
            "R10",
            "model R10 {
        input 2x6x8
        batchnorm silu
        avgpool global flatten
        dense 4
        train { loss mse optimizer sgd lr 0.05 batch 6 }
    }",
            || Box::new(R10::new(10)),
        ),
        (
            "R11",
            "model R11 {
        input 2x8x6
        conv 4 kernel 2 dilation 2 groups 2 gelu
        flatten
        dense 4 gelu
        batchnorm gelu
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 3 }
    }",
            || Box::new(R11::new(11)),
        ),
        (
            "R12",
            "model R12 {
        input 1x6x8
        tanh
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 6 }
    }",
            || Box::new(R12::new(12)),
        ),
        (
            "R13",
            "model R13 {
        input 2x7x5
        conv 6 kernel 2 bias off silu
        avgpool global flatten
        dense 2
        train { loss mse optimizer adamw lr 0.001 weight_decay 0.001 batch 5 }
    }",
            || Box::new(R13::new(13)),
        ),
        (
            "R14",
            "model R14 {
        input 2x5x6
        conv 2 kernel 2 groups 2 bias off sigmoid
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer adamw lr 0.001 batch 3 }
    }",
            || Box::new(R14::new(14)),
        ),
        (
            "R15",
            "model R15 {
        input 3x8x7 normalize mean 0.1 0.1 0.1 std 0.5 0.5 0.5
        residual { tanh batchnorm } tanh
        tanh
        avgpool global flatten
        dense 3 sigmoid
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }",
            || Box::new(R15::new(15)),
        ),
        (
            "R16",
            "model R16 {
        input 3x7x7
        conv 6 kernel 2 bias off silu
        avgpool global flatten
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer adamw lr 0.001 batch 5 }
    }",
            || Box::new(R16::new(16)),
        ),
        (
            "R17",
            "model R17 {
        input 3x5x7 normalize mean 0.1 0.1 0.1 std 0.5 0.5 0.5
        conv 6 kernel 1 stride 1 round floor tanh
        avgpool global flatten
        dense 7 bias off sigmoid
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 3 }
    }",
            || Box::new(R17::new(17)),
        ),
        (
            "R18",
            "model R18 {
        input 2x7x7
        batchnorm tanh
        batchnorm sigmoid
        conv 4 kernel 3 stride 2 round floor gelu
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 5 }
    }",
            || Box::new(R18::new(18)),
        ),
        (
            "R19",
            "model R19 {
        input 3x7x8
        conv 6 kernel 2 groups 3
        silu
        avgpool global flatten
        dense 3
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 6 }
    }",
            || Box::new(R19::new(19)),
        ),
        (
            "R20",
            "model R20 {
        input 1x8x7
        avgpool 2 stride 1
        residual { batchnorm tanh batchnorm sigmoid shortcut { conv 1 kernel 1 bias off } } tanh
        flatten
        dense 2
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }",
            || Box::new(R20::new(20)),
        ),
        (
            "R21",
            "model R21 {
        input 3x7x8
        conv 6 kernel 3 tanh
        conv 12 kernel 3 stride 2 round floor pad 1 tanh
        flatten
        dense 3
        dense 4 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 3 }
    }",
            || Box::new(R21::new(21)),
        ),
        (
            "R22",
            "model R22 {
        input 1x5x7
        conv 6 kernel 2 dilation 2 bias off sigmoid
        batchnorm sigmoid
        conv 6 kernel 3 groups 6 sigmoid
        avgpool global flatten
        dense 6 silu
        dense 3
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 5 }
    }",
            || Box::new(R22::new(22)),
        ),
        (
            "R23",
            "model R23 {
        input 1x6x8
        batchnorm
        flatten
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }",
            || Box::new(R23::new(23)),
        ),
        (
            "R24",
            "model R24 {
        input 1x6x6
        conv 1 kernel 3 stride 1 round floor pad 1 silu
        avgpool global flatten
        dense 3 bias off
        batchnorm sigmoid
        dense 4
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 6 }
    }",
            || Box::new(R24::new(24)),
        ),
        (
            "R25",
            "model R25 {
        input 1x5x7
        conv 2 kernel 3 pad 1 bias off silu
        flatten
        dense 3 tanh
        batchnorm gelu
        dense 4
        train { loss mse optimizer sgd lr 0.05 batch 5 }
    }",
            || Box::new(R25::new(25)),
        ),
        (
            "R26",
            "model R26 {
        input 2x5x7
        conv 4 kernel 2 groups 2
        avgpool global flatten
        dense 3
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 4 }
    }",
            || Box::new(R26::new(26)),
        ),
        (
            "R27",
            "model R27 {
        input 2x5x8 normalize mean 0.1 0.1 std 0.5 0.5
        avgpool 2 stride 1
        conv 4 kernel 2 pad same groups 2 tanh
        flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 5 }
    }",
            || Box::new(R27::new(27)),
        ),
        (
            "R28",
            "model R28 {
        input 2x6x8
        conv 4 kernel 3 sigmoid
        avgpool global flatten
        dense 7 bias off gelu
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 6 }
    }",
            || Box::new(R28::new(28)),
        ),
        (
            "R29",
            "model R29 {
        input 1x5x5
        residual { batchnorm silu silu tanh } tanh
        batchnorm sigmoid
        avgpool global flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 4 }
    }",
            || Box::new(R29::new(29)),
        ),
        (
            "R30",
            "model R30 {
        input 2x6x5
        conv 2 kernel 3 dilation 2
        flatten
        dense 2
        train { loss mse optimizer adam lr 0.001 batch 6 }
    }",
            || Box::new(R30::new(30)),
        ),
        (
            "R31",
            "model R31 {
        input 2x6x6 normalize mean 0.1 0.1 std 0.5 0.5
        conv 4 kernel 3 pad same dilation 2
        flatten
        dense 3
        train { loss mse optimizer sgd lr 0.05 batch 5 }
    }",
            || Box::new(R31::new(31)),
        ),
        (
            "R32",
            "model R32 {
        input 2x7x7
        avgpool 2 stride 1
        flatten
        dense 7 sigmoid
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 6 }
    }",
            || Box::new(R32::new(32)),
        ),
        (
            "R33",
            "model R33 {
        input 2x5x8 normalize mean 0.1 0.1 std 0.5 0.5
        gelu
        avgpool global flatten
        dense 4 bias off
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 3 }
    }",
            || Box::new(R33::new(33)),
        ),
        (
            "R34",
            "model R34 {
        input 2x8x8
        conv 4 kernel 3 stride 1 round floor pad 1x0 bias off tanh
        residual { conv 4 kernel 2 pad same dilation 2 gelu silu } tanh
        flatten
        dense 3 sigmoid
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 5 }
    }",
            || Box::new(R34::new(34)),
        ),
        (
            "R35",
            "model R35 {
        input 3x5x6
        silu
        flatten
        dense 5 gelu
        batchnorm tanh
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 3 }
    }",
            || Box::new(R35::new(35)),
        ),
        (
            "R36",
            "model R36 {
        input 2x8x5 normalize mean 0.1 0.1 std 0.5 0.5
        avgpool 2 stride 1
        conv 4 kernel 1 gelu
        batchnorm tanh
        avgpool global flatten
        dense 5 bias off gelu
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 6 }
    }",
            || Box::new(R36::new(36)),
        ),
        (
            "R37",
            "model R37 {
        input 2x8x6
        conv 4 kernel 2 stride 2 round floor sigmoid
        conv 6 kernel 2 dilation 2 tanh
        flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer adamw lr 0.001 batch 4 }
    }",
            || Box::new(R37::new(37)),
        ),
        (
            "R38",
            "model R38 {
        input 2x8x5
        gelu
        flatten
        dense 8 silu
        batchnorm gelu
        dense 3
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 5 }
    }",
            || Box::new(R38::new(38)),
        ),
        (
            "R39",
            "model R39 {
        input 3x6x7
        conv 4 kernel 2 gelu
        batchnorm
        batchnorm sigmoid
        flatten
        dense 3 bias off gelu
        batchnorm gelu
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 4 }
    }",
            || Box::new(R39::new(39)),
        ),
    ]
}
