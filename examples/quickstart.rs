//! Paste a model into `cnn! {}`, get a struct, train it.
//!
//!     cargo run --release --example quickstart

use cnnc::ndarray::{Array1, Array4};
use cnnc::{Model, Target, Train};

cnn_macros::cnn! {
    model LeNet {
        input 1x28x28
        conv 6 kernel 5 pad 2 relu
        maxpool 2
        conv 16 kernel 5 relu
        maxpool 2
        flatten
        dense 120 relu
        dense 84 relu
        dense 10 softmax
        train {
            loss cross_entropy
            optimizer sgd lr 0.01 momentum 0.9
            batch 64
            epochs 10
        }
    }
}

fn main() -> Result<(), cnnc::Error> {
    let mut model = LeNet::new(0);
    println!(
        "LeNet: {} parameters, input {:?}, output {:?}",
        LeNet::PARAM_COUNT,
        model.input_shape(),
        model.output_shape()
    );
    // A toy task: the label is which quarter of the image holds a bright square.
    let n = 64;
    let mut x = Array4::<f32>::zeros((n, 1, 28, 28));
    let mut labels = Array1::<usize>::zeros(n);
    for i in 0..n {
        let q = i % 4;
        let (r, c) = ((q / 2) * 14 + 3, (q % 2) * 14 + 3);
        for dr in 0..8 {
            for dc in 0..8 {
                x[[i, 0, r + dr, c + dc]] = 1.0;
            }
        }
        labels[i] = q;
    }
    for step in 0..30 {
        let loss = model.train_step(x.view().into_dyn(), Target::Labels(labels.view()))?;
        if step % 5 == 0 {
            println!("step {step:2}: loss {loss:.4}");
        }
    }
    let p = model.predict(x.view().into_dyn())?;
    let correct = (0..n)
        .filter(|&i| {
            let row = p.index_axis(cnnc::ndarray::Axis(0), i);
            let best = row
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (j, &v)| if v > b.1 { (j, v) } else { b });
            best.0 == labels[i]
        })
        .count();
    println!("accuracy on the toy task: {correct}/{n}");
    Ok(())
}
