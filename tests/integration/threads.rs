//! Results do not depend on the number of threads (up to float summation order):
//! dropout masks come from (seed, step, layer, sample), and batch statistics are
//! combined over the whole minibatch, whatever the split over workers.

use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::{Model, Target, Train};

cnn_macros::cnn! {
    model Dropped {
        input 2x8x8
        conv 6 kernel 3 relu
        dropout 0.3
        flatten
        dense 16 relu
        dropout 0.5
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.05 momentum 0.9 batch 12 seed 7 }
    }
    model Normed {
        input 2x6x6
        conv 4 kernel 3 bias off
        batchnorm relu
        residual { conv 4 kernel 3 pad 1 bias off batchnorm relu conv 4 kernel 3 pad 1 bias off batchnorm } relu
        flatten
        dense 5 bias off
        batchnorm
        dense 3 softmax
        // No bias before a batchnorm: its gradient is rounding noise, which Adam amplifies.
        train { loss cross_entropy optimizer adam lr 0.01 batch 10 }
    }
    // Over 32K floats of activations a sample: inference runs 8 samples at a time.
    model Wide {
        input 4x64x64
        conv 8 kernel 3 pad 1 relu
        conv 8 kernel 3 pad 1 relu
        batchnorm
        avgpool global
        flatten
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.1 batch 32 }
    }
}

fn data(n: usize, dims: &[usize]) -> (ArrayD<f32>, Array1<usize>) {
    let mut shape = vec![n];
    shape.extend_from_slice(dims);
    let len: usize = shape.iter().product();
    let x: Vec<f32> = (0..len).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect();
    let labels = Array1::from_iter((0..n).map(|i| (i * 5 + 1) % 3));
    (ArrayD::from_shape_vec(IxDyn(&shape), x).unwrap(), labels)
}

/// Builds a model with `threads` rayon threads (so that many workers) and takes
/// `steps` training steps; returns every parameter and buffer and the losses.
fn train<M: Train>(threads: usize, steps: usize, dims: &[usize], batch: usize, new: fn() -> M) -> (Vec<f32>, Vec<f32>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let mut model = new();
        let (x, labels) = data(batch, dims);
        let losses: Vec<f32> = (0..steps)
            .map(|_| model.train_step(x.view(), Target::Labels(labels.view())).unwrap())
            .collect();
        let mut values = Vec::new();
        for name in model.param_names() {
            values.extend(model.param(&name).unwrap().iter().copied());
        }
        for name in model.buffer_names() {
            values.extend(model.buffer(&name).unwrap().iter().copied());
        }
        (values, losses)
    })
}

fn assert_close(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-4 + 1e-4 * y.abs(), "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn dropout_training_is_the_same_on_one_two_and_three_threads() {
    let one = train(1, 6, &[2, 8, 8], 12, || Dropped::new(7));
    for threads in [2, 3] {
        let other = train(threads, 6, &[2, 8, 8], 12, || Dropped::new(7));
        assert_close(&format!("{threads} threads: loss"), &other.1, &one.1);
        assert_close(&format!("{threads} threads: parameter"), &other.0, &one.0);
    }
}

#[test]
fn batchnorm_training_is_the_same_on_one_and_two_threads() {
    let one = train(1, 4, &[2, 6, 6], 10, || Normed::new(3));
    let two = train(2, 4, &[2, 6, 6], 10, || Normed::new(3));
    assert_close("loss", &two.1, &one.1);
    assert_close("parameter or buffer", &two.0, &one.0);
    // The same step on 3 threads too (workers of 4, 4 and 2 samples).
    let three = train(3, 4, &[2, 6, 6], 10, || Normed::new(3));
    assert_close("3 threads", &three.0, &one.0);
}

/// Inference runs a worker's samples in sub-chunks sized to stay in cache
/// (`rt::driver::inference_chunk`): 19 samples of `Wide` on 1, 2 and 3 threads
/// (sub-chunks of 8: 8+8+3; 8+2 and 8+1; 7, 7 and 5) give each sample what it
/// gives alone.
#[test]
fn inference_in_sub_chunks_gives_each_sample_its_own_output() {
    // `__cnnc_Wide` is the generated module behind `Wide` (private, but in this file).
    use cnnc::rt::driver::{inference_chunk, Network};
    let chunk = inference_chunk(Network::spec(&__cnnc_Wide::Net).sample_floats);
    assert_eq!(chunk, 8, "the test is written for sub-chunks of 8");
    let (x, _) = data(19, &[4, 64, 64]);
    let mut model = Wide::new(5);
    model
        .train_step(x.view(), Target::Labels(Array1::from_elem(19, 1).view()))
        .unwrap();
    let alone: Vec<f32> = (0..19)
        .flat_map(|i| {
            model
                .predict(x.slice_axis(cnnc::ndarray::Axis(0), (i..i + 1).into()))
                .unwrap()
        })
        .collect();
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let all = pool.install(|| model.predict(x.view()).unwrap());
        assert_close(&format!("{threads} threads"), all.as_slice().unwrap(), &alone);
    }
}
