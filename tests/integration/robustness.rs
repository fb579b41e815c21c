//! Generated models never panic on bad input: every wrong shape, label, target or
//! value is an `Err` that names what was expected and what was given; extreme
//! logits stay finite; a diverging run stops before writing NaN weights.

use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::rt::data::{idx_dataset, mnist, Split};
use cnnc::{Model, Target, Train};

cnn_macros::cnn! {
    model Classifier {
        input 1x6x6
        conv 2 kernel 3 relu
        flatten
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.1 batch 4 }
    }
    model Binary {
        input 4
        dense 2 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.1 batch 4 }
    }
    model Wild {
        input 2
        dense 3 softmax
        train { loss cross_entropy optimizer sgd lr 0.1 batch 2 }
    }
    model Diverging {
        input 2
        dense 1
        train { loss mse optimizer sgd lr 10 batch 2 }
    }
}

fn zeros(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::zeros(IxDyn(shape))
}

fn err(r: Result<impl std::fmt::Debug, cnnc::Error>) -> String {
    r.expect_err("an error was expected").to_string()
}

#[test]
fn wrong_input_shapes_name_expected_and_given() {
    let mut m = Classifier::new(0);
    let e = err(m.predict(zeros(&[2, 6, 6]).view()));
    assert!(e.contains("[N, 1, 6, 6]") && e.contains("[2, 6, 6]"), "{e}");
    let e = err(m.predict(zeros(&[2, 1, 6, 5]).view()));
    assert!(e.contains("[2, 1, 6, 5]"), "{e}");
    let e = err(m.predict(zeros(&[0, 1, 6, 6]).view()));
    assert!(e.contains("N >= 1"), "{e}");
    let labels = Array1::from_vec(vec![0usize; 3]);
    let e = err(m.train_step(zeros(&[3, 1, 6]).view(), Target::Labels(labels.view())));
    assert!(e.contains("[3, 1, 6]"), "{e}");
}

#[test]
fn bad_labels_and_targets_are_errors() {
    let mut m = Classifier::new(0);
    let x = zeros(&[3, 1, 6, 6]);
    let labels = Array1::from_vec(vec![0usize, 3, 1]);
    let e = err(m.train_step(x.view(), Target::Labels(labels.view())));
    assert!(e.contains("label 3 of sample 1") && e.contains("3 classes"), "{e}");
    let two = Array1::from_vec(vec![0usize, 1]);
    let e = err(m.gradients(x.view(), Target::Labels(two.view())));
    assert!(e.contains("2 labels for a batch of 3"), "{e}");
    let e = err(m.train_step(x.view(), Target::Values(zeros(&[3, 3]).view())));
    assert!(e.contains("Target::Labels"), "{e}");

    let mut b = Binary::new(0);
    let x = zeros(&[2, 4]);
    let e = err(b.train_step(x.view(), Target::Values(zeros(&[2, 3]).view())));
    assert!(
        e.contains("target") && e.contains("[2, 2]") && e.contains("[2, 3]"),
        "{e}"
    );
    let mut t = zeros(&[2, 2]);
    t[[1, 0]] = 1.5;
    let e = err(b.train_step(x.view(), Target::Values(t.view())));
    assert!(e.contains("[0, 1]") && e.contains("1.5"), "{e}");
    let labels = Array1::from_vec(vec![0usize, 1]);
    let e = err(b.train_step(x.view(), Target::Labels(labels.view())));
    assert!(e.contains("Target::Values"), "{e}");
}

#[test]
fn non_finite_inputs_are_refused_with_their_index() {
    let mut m = Classifier::new(0);
    let mut x = zeros(&[2, 1, 6, 6]);
    x[[1, 0, 2, 3]] = f32::NAN;
    let e = err(m.predict(x.view()));
    assert!(e.contains("input") && e.contains("[1, 0, 2, 3]"), "{e}");
    let mut b = Binary::new(0);
    let mut t = zeros(&[1, 2]);
    t[[0, 1]] = f32::INFINITY;
    let e = err(b.train_step(zeros(&[1, 4]).view(), Target::Values(t.view())));
    assert!(e.contains("target"), "{e}");
}

#[test]
fn unknown_and_misshaped_parameters_are_errors() {
    let mut m = Classifier::new(0);
    let e = err(m.set_param("conv9.weight", zeros(&[1]).view()));
    assert!(e.contains("conv9.weight") && e.contains("conv1.weight"), "{e}");
    let e = err(m.set_param("dense1.weight", zeros(&[3, 31]).view()));
    assert!(e.contains("[3, 32]") && e.contains("[3, 31]"), "{e}");
    assert!(m.param("nope").is_none());
}

#[test]
fn softmax_cross_entropy_stays_finite_for_huge_logits() {
    let mut m = Wild::new(0);
    m.set_param(
        "dense1.weight",
        ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![1e4, 0.0, -1e4, 0.0, 0.0, 1e4])
            .unwrap()
            .view(),
    )
    .unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0, 1.0, -1.0, -1.0]).unwrap();
    let labels = Array1::from_vec(vec![1usize, 0]);
    let g = m.gradients(x.view(), Target::Labels(labels.view())).unwrap();
    assert!(g.loss.is_finite() && g.loss > 1e3, "loss {}", g.loss);
    assert!(g.params.iter().all(|(_, a)| a.iter().all(|v| v.is_finite())));
    let p = m.predict(x.view()).unwrap();
    assert!(p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
}

#[test]
fn a_diverging_run_stops_before_nan_weights() {
    // Least squares with lr 10: every step multiplies the error by about -50.
    // Generated code and the interpreter both stop before a non-finite update.
    let source = "model Diverging { input 2 dense 1 train { loss mse optimizer sgd lr 10 batch 2 } }";
    let mut generated = Diverging::new(0);
    let mut interpreted = cnnc::interp::Interpreter::from_source(source, "Diverging", 0).unwrap();
    for m in [&mut generated as &mut dyn Train, &mut interpreted] {
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0, 2.0, -1.0, 0.5]).unwrap();
        let t = ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![1.0, -1.0]).unwrap();
        let mut stopped = None;
        for step in 0..200 {
            match m.train_step(x.view(), Target::Values(t.view())) {
                Ok(_) => {}
                Err(e) => {
                    stopped = Some((step, e.to_string()));
                    break;
                }
            }
        }
        let (step, message) = stopped.expect("training should stop");
        assert!(message.contains("lower the learning rate"), "{message}");
        assert!(message.contains(&format!("batch {}", step + 1)), "{message}");
        for name in m.param_names() {
            assert!(
                m.param(&name).unwrap().iter().all(|v| v.is_finite()),
                "{name} is not finite"
            );
        }
    }
}

#[test]
fn bad_data_files_are_errors_that_say_why() {
    let dir = std::env::temp_dir().join(format!("cnnc-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let images = dir.join("images");
    let labels = dir.join("labels");
    let idx = |dims: &[u32], data: &[u8]| {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    };
    std::fs::write(&images, idx(&[3, 2, 2], &[0; 12])).unwrap();
    std::fs::write(&labels, idx(&[2], &[0, 1])).unwrap();
    let e = err(idx_dataset(&images, &labels, 10));
    assert!(e.contains("holds 2 labels") && e.contains("3 images"), "{e}");
    std::fs::write(&labels, idx(&[3], &[0, 1, 12])).unwrap();
    let e = err(idx_dataset(&images, &labels, 10));
    assert!(e.contains("label 12 of sample 2"), "{e}");
    std::fs::write(&images, idx(&[3, 2, 2], &[0; 7])).unwrap();
    let e = err(idx_dataset(&images, &labels, 10));
    assert!(e.contains("truncated"), "{e}");
    std::fs::write(&images, b"\x1f\x8b not really gzip").unwrap();
    let e = err(idx_dataset(&images, &labels, 10));
    assert!(e.contains("gzip"), "{e}");
    std::fs::write(&images, [7, 7, 8, 3]).unwrap();
    let e = err(idx_dataset(&images, &labels, 10));
    assert!(e.contains("bad magic"), "{e}");
    let e = err(mnist(dir.join("nowhere"), Split::Train));
    assert!(e.contains("train-images-idx3-ubyte"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_bundled_mnist_reads_as_documented() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let (train, test) = (mnist(dir, Split::Train).unwrap(), mnist(dir, Split::Test).unwrap());
    assert_eq!((train.len(), test.len()), (8000, 2000));
    assert_eq!(train.inputs.shape(), &[8000, 1, 28, 28]);
    assert!(train.inputs.iter().all(|v| (0.0..=1.0).contains(v)));
    let cnnc::rt::data::Targets::Labels(l) = &test.targets else {
        panic!("labels")
    };
    let zeros = l.iter().filter(|&&v| v == 0).count();
    assert_eq!(
        zeros, 209,
        "the README of data/mnist-10k counts 209 zeros in the test set"
    );
}
