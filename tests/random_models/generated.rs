// Written by tests/random_models/generate.py 40 3: 40 valid models of 58 drawn.
// Do not edit; rerun the script.

cnn_macros::cnn! {
    model R0 {
        input 2x8x5 normalize mean 0.1 0.1 std 0.5 0.5
        conv 6 kernel 1 pad right 0 silu
        flatten
        dense 3 bias off
        batchnorm sigmoid
        dense 3
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 3 }
    }
    model R1 {
        input 2x7x7
        sigmoid
        avgpool 3 stride 2 pad 1 round ceil
        flatten
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer adamw lr 0.001 batch 5 }
    }
    model R2 {
        input 2x7x7 normalize mean 0.1 0.1 std 0.5 0.5
        upsample 1x2 bilinear
        n3: conv 2 kernel 1 silu
        n4: conv 2 kernel 1 silu
        from n3
        conv 3 kernel 3 pad 1 silu
        concat n4 n3
        avgpool 2 stride 1
        flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 6 }
    }
    model R3 {
        input 1x7x6
        conv 4 kernel 2 stride 2 round floor pad 1x0 bias off
        avgpool global flatten
        dense 5 tanh
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 3 }
    }
    model R4 {
        input 2x5x5
        conv 6 kernel 3 stride 2 round floor pad same groups 2 gelu
        flatten
        dense 6 bias off
        batchnorm tanh
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 6 }
    }
    model R5 {
        input 3x7x8
        batchnorm
        conv 3 kernel 1 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 6 }
    }
    model R6 {
        input 3x8x6
        conv 3 kernel 1 stride 1 round floor tanh
        gelu
        conv 6 kernel 2 pad 2 dilation 2 silu
        conv 2 kernel 1 softmax
        train { loss cross_entropy ignore 0 optimizer sgd lr 0.05 batch 3 }
    }
    model R7 {
        input 1x2x3
        conv 4 kernel 5 pad 2 tanh
        batchnorm gelu
        avgpool global flatten
        dense 4 gelu
        batchnorm
        dense 2
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 6 }
    }
    model R8 {
        input 1x3x2
        conv 4 kernel 3 pad 3 dilation 3 silu
        avgpool global flatten
        dense 5
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 batch 5 }
    }
    model R9 {
        input 3x6x6
        conv 6 kernel 5 pad 2 sigmoid
        flatten
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer adamw lr 0.001 weight_decay 0.001 batch 3 }
    }
    model R10 {
        input 2x1x1
        conv 4 kernel 1x3 pad right 2 bias off
        batchnorm silu
        avgpool global flatten
        dense 3 tanh
        batchnorm
        dense 4 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 4 }
    }
    model R11 {
        input 3x6x8
        avgpool 2
        flatten
        dense 4 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 5 }
    }
    model R12 {
        input 2x7x5
        n6: conv 2 kernel 1
        avgpool global
        conv 1 kernel 1 tanh
        conv 2 kernel 1 sigmoid
        mul n6
        avgpool 3 stride 2 pad 1 round ceil
        avgpool global flatten
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 batch 3 }
    }
    model R13 {
        input 1x6x8
        convtranspose 3 kernel 2 stride 2
        avgpool 3 stride 2 pad 1 round ceil
        silu
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer adam lr 0.001 batch 3 }
    }
    model R14 {
        input 2x5x7
        conv 2 kernel 3 stride 1 round floor sigmoid
        flatten
        dense 2
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 6 }
    }
    model R15 {
        input 2x8x5
        conv 6 kernel 3 pad 2 dilation 2 groups 2
        conv 6 kernel 1 stride 2 round floor pad 0 sigmoid
        flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 batch 3 }
    }
    model R16 {
        input 3x6x8 normalize mean 0.1 0.1 0.1 std 0.5 0.5 0.5
        convtranspose 3 kernel 2 stride 2 tanh
        n9: conv 3 kernel 1 tanh
        n10: conv 2 kernel 1 gelu
        from n9
        conv 3 kernel 3 pad 1 tanh
        concat n10 n9
        flatten
        dense 6 sigmoid
        batchnorm tanh
        dense 2
        train { loss mse optimizer sgd lr 0.05 weight_decay 0.001 batch 5 }
    }
    model R17 {
        input 2x7x8 normalize mean 0.1 0.1 std 0.5 0.5
        gelu
        conv 6 kernel 5 stride 1 round floor pad right 4 bias off tanh
        conv 4 kernel 3 pad left 2 top 1 bias off silu
        avgpool global flatten
        dense 5 bias off gelu
        batchnorm gelu
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 6 }
    }
    model R18 {
        input 1x5x5 normalize mean 0.1 std 0.5
        n11: conv 1 kernel 3 pad 1 silu
        conv 1 kernel 3 pad 1 tanh
        add n11 gelu
        flatten
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 6 }
    }
    model R19 {
        input 1x7x8 normalize mean 0.1 std 0.5
        n12: conv 1 kernel 1 tanh
        avgpool global
        conv 1 kernel 1 tanh
        conv 1 kernel 1 sigmoid
        mul n12
        conv 1 kernel 3 pad 1 gelu
        concat input
        conv 4 kernel 1 softmax
        train { loss cross_entropy ignore 0 optimizer adam lr 0.001 batch 6 }
    }
    model R20 {
        input 3x5x6
        batchnorm tanh
        avgpool global flatten
        dense 4
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 4 }
    }
    model R21 {
        input 3x8x8
        gelu
        tanh
        n14: conv 3 kernel 3 pad 1 tanh
        conv 3 kernel 3 pad 1 sigmoid
        add n14 silu
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 6 }
    }
    model R22 {
        input 2x5x7 normalize mean 0.1 0.1 std 0.5 0.5
        conv 4 kernel 3 pad 1 dilation 2 groups 2 silu
        avgpool global flatten
        dense 6 bias off
        batchnorm silu
        dense 2
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }
    model R23 {
        input 2x3x3 normalize mean 0.1 0.1 std 0.5 0.5
        conv 1 kernel 1x3 pad right 2 tanh
        batchnorm gelu
        avgpool global flatten
        dense 4
        train { loss mse optimizer sgd lr 0.05 weight_decay 0.001 batch 4 }
    }
    model R24 {
        input 1x3x3
        conv 17 kernel 1x3 pad right 2 silu
        avgpool global flatten
        dense 8 bias off tanh
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }
    model R25 {
        input 3x1x1
        conv 2 kernel 3x5 pad left 4 top 1 bottom 1 sigmoid
        flatten
        dense 4 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 6 }
    }
    model R26 {
        input 1x8x8 normalize mean 0.1 std 0.5
        n15: conv 1 kernel 1 sigmoid
        n16: conv 2 kernel 1 silu
        from n15
        conv 3 kernel 3 pad 1
        concat n16 n15
        conv 2 kernel 1 softmax
        train { loss cross_entropy optimizer adam lr 0.001 batch 4 }
    }
    model R27 {
        input 2x3x3
        conv 2 kernel 1x3 pad right 2 silu
        batchnorm
        avgpool global flatten
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }
    model R28 {
        input 2x3x1
        conv 4 kernel 1x3 pad right 2 silu
        batchnorm silu
        avgpool global flatten
        dense 5 sigmoid
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 3 }
    }
    model R29 {
        input 2x2x2 normalize mean 0.1 0.1 std 0.5 0.5
        conv 1 kernel 3x5 pad left 4 top 1 bottom 1 bias off
        batchnorm
        avgpool global flatten
        dense 4
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 3 }
    }
    model R30 {
        input 2x7x5
        batchnorm silu
        conv 2 kernel 1 softmax
        train { loss cross_entropy ignore 255 optimizer sgd lr 0.05 batch 6 }
    }
    model R31 {
        input 2x5x7
        n18: conv 2 kernel 3 pad 1 gelu
        conv 2 kernel 3 pad 1 tanh
        add n18
        upsample 2 bilinear
        flatten
        dense 6 bias off
        batchnorm silu
        dense 4
        train { loss mse optimizer sgd lr 0.05 batch 5 }
    }
    model R32 {
        input 2x6x7
        silu
        batchnorm gelu
        silu
        flatten
        dense 3 tanh
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 4 }
    }
    model R33 {
        input 1x8x8
        n20: conv 1 kernel 1 gelu
        avgpool global
        conv 1 kernel 1 tanh
        conv 1 kernel 1 sigmoid
        mul n20
        flatten
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 6 }
    }
    model R34 {
        input 2x6x7
        silu
        conv 2 kernel 3 pad 1 silu
        concat input
        avgpool global flatten
        dense 4 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 4 }
    }
    model R35 {
        input 2x7x5
        batchnorm
        convtranspose 3 kernel 3 pad 1 gelu
        avgpool 3 stride 2 pad 1 round ceil
        avgpool global flatten
        dense 7 bias off gelu
        batchnorm tanh
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 4 }
    }
    model R36 {
        input 3x6x7
        n25: conv 3 kernel 1 sigmoid
        conv 2 kernel 3 pad 1 gelu
        concat n25
        batchnorm silu
        conv 4 kernel 1 softmax
        train { loss cross_entropy ignore 255 optimizer sgd lr 0.05 batch 4 }
    }
    model R37 {
        input 1x7x6
        conv 2 kernel 5 bias off gelu
        batchnorm tanh
        upsample 2 nearest
        avgpool global flatten
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 3 }
    }
    model R38 {
        input 1x8x5 normalize mean 0.1 std 0.5
        conv 1 kernel 3 stride 2 round floor bias off silu
        conv 6 kernel 3 pad left 2 top 1 gelu
        flatten
        dense 8 bias off tanh
        batchnorm gelu
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 batch 3 }
    }
    model R39 {
        input 3x7x5
        batchnorm silu
        avgpool global flatten
        dense 5 tanh
        batchnorm gelu
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
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
        input 2x8x5 normalize mean 0.1 0.1 std 0.5 0.5
        conv 6 kernel 1 pad right 0 silu
        flatten
        dense 3 bias off
        batchnorm sigmoid
        dense 3
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 3 }
    }",
            || Box::new(R0::new(0)),
        ),
        (
            "R1",
            "model R1 {
        input 2x7x7
        sigmoid
        avgpool 3 stride 2 pad 1 round ceil
        flatten
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer adamw lr 0.001 batch 5 }
    }",
            || Box::new(R1::new(1)),
        ),
        (
            "R2",
            "model R2 {
        input 2x7x7 normalize mean 0.1 0.1 std 0.5 0.5
        upsample 1x2 bilinear
        n3: conv 2 kernel 1 silu
        n4: conv 2 kernel 1 silu
        from n3
        conv 3 kernel 3 pad 1 silu
        concat n4 n3
        avgpool 2 stride 1
        flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 6 }
    }",
            || Box::new(R2::new(2)),
        ),
        (
            "R3",
            "model R3 {
        input 1x7x6
        conv 4 kernel 2 stride 2 round floor pad 1x0 bias off
        avgpool global flatten
        dense 5 tanh
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 3 }
    }",
            || Box::new(R3::new(3)),
        ),
        (
            "R4",
            "model R4 {
        input 2x5x5
        conv 6 kernel 3 stride 2 round floor pad same groups 2 gelu
        flatten
        dense 6 bias off
        batchnorm tanh
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 6 }
    }",
            || Box::new(R4::new(4)),
        ),
        (
            "R5",
            "model R5 {
        input 3x7x8
        batchnorm
        conv 3 kernel 1 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 6 }
    }",
            || Box::new(R5::new(5)),
        ),
        (
            "R6",
            "model R6 {
        input 3x8x6
        conv 3 kernel 1 stride 1 round floor tanh
        gelu
        conv 6 kernel 2 pad 2 dilation 2 silu
        conv 2 kernel 1 softmax
        train { loss cross_entropy ignore 0 optimizer sgd lr 0.05 batch 3 }
    }",
            || Box::new(R6::new(6)),
        ),
        (
            "R7",
            "model R7 {
        input 1x2x3
        conv 4 kernel 5 pad 2 tanh
        batchnorm gelu
        avgpool global flatten
        dense 4 gelu
        batchnorm
        dense 2
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 6 }
    }",
            || Box::new(R7::new(7)),
        ),
        (
            "R8",
            "model R8 {
        input 1x3x2
        conv 4 kernel 3 pad 3 dilation 3 silu
        avgpool global flatten
        dense 5
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 batch 5 }
    }",
            || Box::new(R8::new(8)),
        ),
        (
            "R9",
            "model R9 {
        input 3x6x6
        conv 6 kernel 5 pad 2 sigmoid
        flatten
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer adamw lr 0.001 weight_decay 0.001 batch 3 }
    }",
            || Box::new(R9::new(9)),
        ),
        (
            "R10",
            "model R10 {
        input 2x1x1
        conv 4 kernel 1x3 pad right 2 bias off
        batchnorm silu
        avgpool global flatten
        dense 3 tanh
        batchnorm
        dense 4 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 4 }
    }",
            || Box::new(R10::new(10)),
        ),
        (
            "R11",
            "model R11 {
        input 3x6x8
        avgpool 2
        flatten
        dense 4 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 5 }
    }",
            || Box::new(R11::new(11)),
        ),
        (
            "R12",
            "model R12 {
        input 2x7x5
        n6: conv 2 kernel 1
        avgpool global
        conv 1 kernel 1 tanh
        conv 2 kernel 1 sigmoid
        mul n6
        avgpool 3 stride 2 pad 1 round ceil
        avgpool global flatten
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 batch 3 }
    }",
            || Box::new(R12::new(12)),
        ),
        (
            "R13",
            "model R13 {
        input 1x6x8
        convtranspose 3 kernel 2 stride 2
        avgpool 3 stride 2 pad 1 round ceil
        silu
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer adam lr 0.001 batch 3 }
    }",
            || Box::new(R13::new(13)),
        ),
        (
            "R14",
            "model R14 {
        input 2x5x7
        conv 2 kernel 3 stride 1 round floor sigmoid
        flatten
        dense 2
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov batch 6 }
    }",
            || Box::new(R14::new(14)),
        ),
        (
            "R15",
            "model R15 {
        input 2x8x5
        conv 6 kernel 3 pad 2 dilation 2 groups 2
        conv 6 kernel 1 stride 2 round floor pad 0 sigmoid
        flatten
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 batch 3 }
    }",
            || Box::new(R15::new(15)),
        ),
        (
            "R16",
            "model R16 {
        input 3x6x8 normalize mean 0.1 0.1 0.1 std 0.5 0.5 0.5
        convtranspose 3 kernel 2 stride 2 tanh
        n9: conv 3 kernel 1 tanh
        n10: conv 2 kernel 1 gelu
        from n9
        conv 3 kernel 3 pad 1 tanh
        concat n10 n9
        flatten
        dense 6 sigmoid
        batchnorm tanh
        dense 2
        train { loss mse optimizer sgd lr 0.05 weight_decay 0.001 batch 5 }
    }",
            || Box::new(R16::new(16)),
        ),
        (
            "R17",
            "model R17 {
        input 2x7x8 normalize mean 0.1 0.1 std 0.5 0.5
        gelu
        conv 6 kernel 5 stride 1 round floor pad right 4 bias off tanh
        conv 4 kernel 3 pad left 2 top 1 bias off silu
        avgpool global flatten
        dense 5 bias off gelu
        batchnorm gelu
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 6 }
    }",
            || Box::new(R17::new(17)),
        ),
        (
            "R18",
            "model R18 {
        input 1x5x5 normalize mean 0.1 std 0.5
        n11: conv 1 kernel 3 pad 1 silu
        conv 1 kernel 3 pad 1 tanh
        add n11 gelu
        flatten
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.001 weight_decay 0.001 batch 6 }
    }",
            || Box::new(R18::new(18)),
        ),
        (
            "R19",
            "model R19 {
        input 1x7x8 normalize mean 0.1 std 0.5
        n12: conv 1 kernel 1 tanh
        avgpool global
        conv 1 kernel 1 tanh
        conv 1 kernel 1 sigmoid
        mul n12
        conv 1 kernel 3 pad 1 gelu
        concat input
        conv 4 kernel 1 softmax
        train { loss cross_entropy ignore 0 optimizer adam lr 0.001 batch 6 }
    }",
            || Box::new(R19::new(19)),
        ),
        (
            "R20",
            "model R20 {
        input 3x5x6
        batchnorm tanh
        avgpool global flatten
        dense 4
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 4 }
    }",
            || Box::new(R20::new(20)),
        ),
        (
            "R21",
            "model R21 {
        input 3x8x8
        gelu
        tanh
        n14: conv 3 kernel 3 pad 1 tanh
        conv 3 kernel 3 pad 1 sigmoid
        add n14 silu
        flatten
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 6 }
    }",
            || Box::new(R21::new(21)),
        ),
        (
            "R22",
            "model R22 {
        input 2x5x7 normalize mean 0.1 0.1 std 0.5 0.5
        conv 4 kernel 3 pad 1 dilation 2 groups 2 silu
        avgpool global flatten
        dense 6 bias off
        batchnorm silu
        dense 2
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }",
            || Box::new(R22::new(22)),
        ),
        (
            "R23",
            "model R23 {
        input 2x3x3 normalize mean 0.1 0.1 std 0.5 0.5
        conv 1 kernel 1x3 pad right 2 tanh
        batchnorm gelu
        avgpool global flatten
        dense 4
        train { loss mse optimizer sgd lr 0.05 weight_decay 0.001 batch 4 }
    }",
            || Box::new(R23::new(23)),
        ),
        (
            "R24",
            "model R24 {
        input 1x3x3
        conv 17 kernel 1x3 pad right 2 silu
        avgpool global flatten
        dense 8 bias off tanh
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }",
            || Box::new(R24::new(24)),
        ),
        (
            "R25",
            "model R25 {
        input 3x1x1
        conv 2 kernel 3x5 pad left 4 top 1 bottom 1 sigmoid
        flatten
        dense 4 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 6 }
    }",
            || Box::new(R25::new(25)),
        ),
        (
            "R26",
            "model R26 {
        input 1x8x8 normalize mean 0.1 std 0.5
        n15: conv 1 kernel 1 sigmoid
        n16: conv 2 kernel 1 silu
        from n15
        conv 3 kernel 3 pad 1
        concat n16 n15
        conv 2 kernel 1 softmax
        train { loss cross_entropy optimizer adam lr 0.001 batch 4 }
    }",
            || Box::new(R26::new(26)),
        ),
        (
            "R27",
            "model R27 {
        input 2x3x3
        conv 2 kernel 1x3 pad right 2 silu
        batchnorm
        avgpool global flatten
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }",
            || Box::new(R27::new(27)),
        ),
        (
            "R28",
            "model R28 {
        input 2x3x1
        conv 4 kernel 1x3 pad right 2 silu
        batchnorm silu
        avgpool global flatten
        dense 5 sigmoid
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 3 }
    }",
            || Box::new(R28::new(28)),
        ),
        (
            "R29",
            "model R29 {
        input 2x2x2 normalize mean 0.1 0.1 std 0.5 0.5
        conv 1 kernel 3x5 pad left 4 top 1 bottom 1 bias off
        batchnorm
        avgpool global flatten
        dense 4
        train { loss mse optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 3 }
    }",
            || Box::new(R29::new(29)),
        ),
        (
            "R30",
            "model R30 {
        input 2x7x5
        batchnorm silu
        conv 2 kernel 1 softmax
        train { loss cross_entropy ignore 255 optimizer sgd lr 0.05 batch 6 }
    }",
            || Box::new(R30::new(30)),
        ),
        (
            "R31",
            "model R31 {
        input 2x5x7
        n18: conv 2 kernel 3 pad 1 gelu
        conv 2 kernel 3 pad 1 tanh
        add n18
        upsample 2 bilinear
        flatten
        dense 6 bias off
        batchnorm silu
        dense 4
        train { loss mse optimizer sgd lr 0.05 batch 5 }
    }",
            || Box::new(R31::new(31)),
        ),
        (
            "R32",
            "model R32 {
        input 2x6x7
        silu
        batchnorm gelu
        silu
        flatten
        dense 3 tanh
        dense 3 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 weight_decay 0.001 batch 4 }
    }",
            || Box::new(R32::new(32)),
        ),
        (
            "R33",
            "model R33 {
        input 1x8x8
        n20: conv 1 kernel 1 gelu
        avgpool global
        conv 1 kernel 1 tanh
        conv 1 kernel 1 sigmoid
        mul n20
        flatten
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 6 }
    }",
            || Box::new(R33::new(33)),
        ),
        (
            "R34",
            "model R34 {
        input 2x6x7
        silu
        conv 2 kernel 3 pad 1 silu
        concat input
        avgpool global flatten
        dense 4 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov batch 4 }
    }",
            || Box::new(R34::new(34)),
        ),
        (
            "R35",
            "model R35 {
        input 2x7x5
        batchnorm
        convtranspose 3 kernel 3 pad 1 gelu
        avgpool 3 stride 2 pad 1 round ceil
        avgpool global flatten
        dense 7 bias off gelu
        batchnorm tanh
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 batch 4 }
    }",
            || Box::new(R35::new(35)),
        ),
        (
            "R36",
            "model R36 {
        input 3x6x7
        n25: conv 3 kernel 1 sigmoid
        conv 2 kernel 3 pad 1 gelu
        concat n25
        batchnorm silu
        conv 4 kernel 1 softmax
        train { loss cross_entropy ignore 255 optimizer sgd lr 0.05 batch 4 }
    }",
            || Box::new(R36::new(36)),
        ),
        (
            "R37",
            "model R37 {
        input 1x7x6
        conv 2 kernel 5 bias off gelu
        batchnorm tanh
        upsample 2 nearest
        avgpool global flatten
        dense 2 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 3 }
    }",
            || Box::new(R37::new(37)),
        ),
        (
            "R38",
            "model R38 {
        input 1x8x5 normalize mean 0.1 std 0.5
        conv 1 kernel 3 stride 2 round floor bias off silu
        conv 6 kernel 3 pad left 2 top 1 gelu
        flatten
        dense 8 bias off tanh
        batchnorm gelu
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 batch 3 }
    }",
            || Box::new(R38::new(38)),
        ),
        (
            "R39",
            "model R39 {
        input 3x7x5
        batchnorm silu
        avgpool global flatten
        dense 5 tanh
        batchnorm gelu
        dense 4 sigmoid
        train { loss binary_cross_entropy optimizer sgd lr 0.05 momentum 0.9 nesterov weight_decay 0.001 batch 5 }
    }",
            || Box::new(R39::new(39)),
        ),
    ]
}
