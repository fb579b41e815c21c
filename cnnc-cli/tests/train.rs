//! `cnnc train` and `cnnc bench` end to end, as a user runs them: LeNet on the
//! bundled digits, the default model on a folder of pictures this test draws
//! (three classes of shapes in random colours, with stray files), and the mistakes a user
//! makes (a model that does not fit the data, a folder that is no data set), each
//! an error naming what is wrong.

mod common;

use common::path_str as s;
use common::{cnnc, stderr, stdout};
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};

/// A fresh folder for one test, kept after it to look at.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// The percentage on the last line, `test accuracy: XX.XX%`.
fn test_accuracy(out: &str) -> f64 {
    let last = out.lines().last().unwrap_or_default();
    let value = last
        .strip_prefix("test accuracy: ")
        .and_then(|v| v.strip_suffix('%'))
        .unwrap_or_else(|| panic!("the last line is not the test accuracy: {last:?}\n{out}"));
    value.parse().expect("a percentage")
}

#[test]
fn lenet_trains_on_the_bundled_digits() {
    let out = scratch("lenet");
    let o = cnnc(&[
        "train",
        "examples/models/lenet.cnn",
        "--data",
        "data/mnist-10k",
        "--epochs",
        "2",
        "--out",
        s(&out),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}\n{text}", stderr(&o));
    assert!(text.contains("8000 training and 2000 test samples"), "{text}");
    assert!(text.contains("epoch 1/2") && text.contains("epoch 2/2"), "{text}");
    assert!(text.contains("trained in "), "{text}");
    assert!(text.contains("overall accuracy"), "the confusion matrix: {text}");
    assert!(test_accuracy(&text) > 90.0, "{text}");
    for file in ["LeNet.safetensors", "LeNet.ckpt", "training.svg"] {
        assert!(out.join(file).is_file(), "{file} written");
    }
    // The digits have no class names, and the model was given.
    assert!(!out.join("classes.txt").exists() && !out.join("model.cnn").exists());
}

/// A small generator for the pictures' noise.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `square`, `bar` (horizontal) or `pillar` (vertical) in a random colour, at a
/// random place on a noisy gray background, `size` pixels wide.
fn picture(class: &str, size: u32, rng: &mut Xorshift) -> RgbImage {
    let mut img = RgbImage::from_fn(size, size, |_, _| {
        let g = 60 + rng.below(60) as u8;
        Rgb([g, g, g])
    });
    let unit = size / 8;
    // A random bright colour: the classes differ by shape alone.
    let color = [
        120 + rng.below(136) as u8,
        120 + rng.below(136) as u8,
        120 + rng.below(136) as u8,
    ];
    let (w, h) = match class {
        "square" => (3 * unit, 3 * unit),
        "bar" => (4 * unit, unit + 1),
        _ => (unit + 1, 4 * unit),
    };
    let (x0, y0) = (rng.below((size - w) as u64) as u32, rng.below((size - h) as u64) as u32);
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let jitter = rng.below(30) as u8;
            img.put_pixel(x, y, Rgb(color.map(|c| c.saturating_sub(jitter))));
        }
    }
    img
}

fn write_split(dir: &Path, per_class: usize, size: u32, rng: &mut Xorshift) {
    for class in ["square", "bar", "pillar"] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..per_class {
            picture(class, size, rng)
                .save(dir.join(class).join(format!("{i:03}.png")))
                .unwrap();
        }
    }
}

/// The case: three classes of shapes in random colours, 24x24 PNGs, 120 a class
/// in one folder (a fifth held out), a text file and a broken PNG among them.
/// No model: the default is chosen, written out, and learns them.
#[test]
fn the_default_model_learns_a_folder_of_shapes_and_skips_stray_files() {
    let dir = scratch("default");
    let data = dir.join("shapes");
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    write_split(&data, 120, 24, &mut rng);
    std::fs::write(data.join("square/notes.txt"), "not an image").unwrap();
    std::fs::write(data.join("pillar/broken.png"), "not a PNG either").unwrap();
    let out = dir.join("out");
    let o = cnnc(&["train", "--data", s(&data), "--out", s(&out)]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}\n{text}", stderr(&o));
    assert!(text.contains("skipped 2 files"), "{text}");
    assert!(text.contains("(a fifth held out)"), "{text}");
    assert!(test_accuracy(&text) >= 95.0, "{text}");
    assert_eq!(
        std::fs::read_to_string(out.join("classes.txt")).unwrap(),
        "bar\npillar\nsquare\n"
    );
    // The model it chose checks, and names the data it was made for.
    let model = out.join("model.cnn");
    let o = cnnc(&["check", s(&model)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(&model).unwrap();
    assert!(
        written.contains("residual") && written.contains("augment flip horizontal crop"),
        "{written}"
    );
    assert!(out.join("Classifier.safetensors").is_file());

    // Retrained from its model.cnn with a test folder, images kept at their size
    // refused when they differ: the mixed one is skipped and counted.
    let tiny = dir.join("tiny.cnn");
    std::fs::write(
        &tiny,
        "model Tiny { input 3x24x24 conv 4 kernel 3 relu maxpool 2 flatten dense 3 softmax \
         train { loss cross_entropy optimizer adam lr 0.01 batch 16 epochs 2 } }",
    )
    .unwrap();
    picture("square", 30, &mut rng)
        .save(data.join("square/large.png"))
        .unwrap();
    let o = cnnc(&["train", s(&tiny), "--data", s(&data), "--out", s(&out), "--no-resize"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("skipped 3 files"), "{}", stdout(&o));
}

#[test]
fn a_model_that_does_not_fit_the_data_is_refused_with_both_shapes() {
    let dir = scratch("misfit");
    let o = cnnc(&[
        "train",
        "examples/models/resnet8.cnn",
        "--data",
        "data/mnist-10k",
        "--out",
        s(&dir),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("3x32x32") && e.contains("1x28x28"), "{e}");

    let five = dir.join("five.cnn");
    std::fs::write(
        &five,
        "model Five { input 1x28x28 flatten dense 5 softmax train { loss cross_entropy optimizer sgd lr 0.1 } }",
    )
    .unwrap();
    let o = cnnc(&["train", s(&five), "--data", "data/mnist-10k", "--out", s(&dir)]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("5 outputs") && e.contains("10 classes") && e.contains("dense 10"),
        "{e}"
    );

    let untrained = dir.join("untrained.cnn");
    std::fs::write(&untrained, "model Plain { input 1x28x28 flatten dense 10 softmax }").unwrap();
    let o = cnnc(&["train", s(&untrained), "--data", "data/mnist-10k", "--out", s(&dir)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("train block"), "{}", stderr(&o));
}

#[test]
fn data_that_is_no_data_set_is_named() {
    let dir = scratch("nodata");
    std::fs::write(dir.join("readme.md"), "hello").unwrap();
    let o = cnnc(&["train", "--data", s(&dir), "--out", s(&dir)]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("no data set recognised") && e.contains("train-images-idx3-ubyte"),
        "{e}"
    );

    let o = cnnc(&["train", "--data", s(&dir.join("readme.md")), "--out", s(&dir)]);
    assert!(stderr(&o).contains("not a .csv file"), "{}", stderr(&o));

    let o = cnnc(&["train", "--data", s(&dir.join("missing")), "--out", s(&dir)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));

    let o = cnnc(&[
        "train",
        "examples/models/lenet.cnn",
        "--data",
        "data/mnist-10k",
        "--epochs",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "clap refuses 0 epochs");

    let o = cnnc(&[
        "train",
        "examples/models/lenet.cnn",
        "--data",
        "data/mnist-10k",
        "--out",
        s(&dir),
        "--resume",
        s(&dir.join("readme.md")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("readme.md"),
        "the bad checkpoint is named: {}",
        stderr(&o)
    );
}

#[test]
fn bench_prints_speeds_and_a_profile_per_step() {
    let o = cnnc(&[
        "bench",
        "examples/models/lenet.cnn",
        "--threads",
        "1",
        "--seconds",
        "0.02",
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    for want in [
        "train   batch   64",
        "infer   batch   64",
        "latency one image",
        "% peak",
        "conv1+relu1",
        "blocked",
        "gemm",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let o = cnnc(&["bench", "examples/models/lenet.cnn", "--seconds", "-1"]);
    assert_eq!(o.status.code(), Some(2));
}

/// An IDX file of `dims` (u8 data).
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

#[test]
fn an_idx_label_file_that_disagrees_with_its_images_is_named() {
    let dir = scratch("idx_mismatch");
    let data = dir.join("digits");
    std::fs::create_dir_all(&data).unwrap();
    for prefix in ["train", "t10k"] {
        std::fs::write(
            data.join(format!("{prefix}-images-idx3-ubyte")),
            idx(&[4, 28, 28], &[7; 4 * 784]),
        )
        .unwrap();
        std::fs::write(data.join(format!("{prefix}-labels-idx1-ubyte")), idx(&[3], &[1, 2, 3])).unwrap();
    }
    let o = cnnc(&[
        "train",
        "examples/models/lenet.cnn",
        "--data",
        s(&data),
        "--out",
        s(&dir),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("3 labels") && e.contains("4 images"),
        "{e}"
    );
}

/// A CSV file of two features (which side of a line a point is on): the default
/// model for vectors learns it, from a fifth held out.
#[test]
fn a_csv_file_trains_the_default_model_for_vectors() {
    let dir = scratch("csv");
    let mut rng = Xorshift(0x1234_5678_9abc_def1);
    let mut text = String::from("x,y,class\n");
    for _ in 0..400 {
        let (x, y) = (
            rng.below(1000) as f32 / 500.0 - 1.0,
            rng.below(1000) as f32 / 500.0 - 1.0,
        );
        text += &format!("{x},{y},{}\n", usize::from(x + 0.5 * y > 0.1));
    }
    let csv = dir.join("points.csv");
    std::fs::write(&csv, text).unwrap();
    let out = dir.join("out");
    let o = cnnc(&["train", "--data", s(&csv), "--out", s(&out), "--epochs", "30"]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}\n{text}", stderr(&o));
    assert!(test_accuracy(&text) >= 90.0, "{text}");
    let model = std::fs::read_to_string(out.join("model.cnn")).unwrap();
    assert!(
        model.contains("input 2") && model.contains("dense 2 softmax"),
        "{model}"
    );
}

/// A CIFAR-10 binary folder (a few records per file): recognised, read with its
/// class names, trained by a model given with --threads 1.
#[test]
fn a_cifar_binary_folder_is_recognised_and_named() {
    let dir = scratch("cifar");
    let data = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&data).unwrap();
    let mut rng = Xorshift(99);
    let mut batch = |records: usize| {
        let mut b = Vec::new();
        for i in 0..records {
            b.push((i % 10) as u8);
            b.extend((0..3072).map(|_| rng.below(256) as u8));
        }
        b
    };
    for f in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ] {
        std::fs::write(data.join(f), batch(8)).unwrap();
    }
    std::fs::write(data.join("test_batch.bin"), batch(10)).unwrap();
    let out = dir.join("out");
    let o = cnnc(&[
        "train",
        "examples/models/resnet8.cnn",
        "--data",
        s(&dir),
        "--out",
        s(&out),
        "--epochs",
        "1",
        "--batch",
        "8",
        "--threads",
        "1",
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}\n{text}", stderr(&o));
    assert!(text.contains("40 training and 10 test samples"), "{text}");
    assert!(
        text.contains("airplane") && text.contains("truck"),
        "the confusion matrix names the classes: {text}"
    );
    assert!(std::fs::read_to_string(out.join("classes.txt"))
        .unwrap()
        .starts_with("airplane\n"));
    test_accuracy(&text);
}

/// v3: a segmentation folder (`images/` with `masks/`): squares of a random
/// colour on noise, the square's pixels class 1, the rest 0, its border void
/// (255). Without a model `cnnc train` writes a U-Net, trains it, and ends with
/// the pixel accuracy and the mean IoU.
#[test]
fn the_default_unet_segments_a_folder_of_masks() {
    let dir = scratch("segmentation");
    let data = dir.join("data");
    let mut rng = Xorshift(99);
    for i in 0..96 {
        let mut img = RgbImage::from_fn(16, 16, |_, _| {
            let g = 40 + rng.below(80) as u8;
            Rgb([g, g, g])
        });
        let mut mask = image::GrayImage::new(16, 16);
        let (side, x0, y0) = (5 + rng.below(4) as u32, rng.below(7) as u32, rng.below(7) as u32);
        let color = Rgb([
            150 + rng.below(100) as u8,
            150 + rng.below(100) as u8,
            rng.below(256) as u8,
        ]);
        for y in y0..y0 + side {
            for x in x0..x0 + side {
                img.put_pixel(x, y, color);
                let border = x == x0 || y == y0 || x == x0 + side - 1 || y == y0 + side - 1;
                mask.put_pixel(x, y, image::Luma([if border { 255 } else { 1 }]));
            }
        }
        for (sub, picture) in [("images", image::DynamicImage::from(img)), ("masks", mask.into())] {
            let path = data.join(sub).join(format!("{i:03}.png"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            picture.save(&path).unwrap();
        }
    }
    let out = dir.join("out");
    let o = cnnc(&["train", "--data", s(&data), "--epochs", "12", "--out", s(&out)]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}\n{text}", stderr(&o));
    assert!(text.contains("a segmentation folder"), "{text}");
    let model = std::fs::read_to_string(out.join("model.cnn")).unwrap();
    assert!(
        model.contains("input 3x16x16") && model.contains("ignore 255"),
        "{model}"
    );
    let iou: f64 = text
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("mean IoU: "))
        .unwrap_or_else(|| panic!("the last line is not the mean IoU:\n{text}"))
        .parse()
        .unwrap();
    assert!(iou > 0.8, "{text}");
}

/// Issue 25's fine-tuning path: PyTorch's ResNet-18-shaped network, exported with
/// `torch.onnx.export` (tests/onnx/pytorch/resnet18.onnx), imported with a default
/// train block, then trained from its imported weights with `cnnc train --weights`
/// on 32x32 pictures of three shapes.
#[test]
fn an_imported_pytorch_resnet_fine_tunes_from_its_weights() {
    let dir = scratch("finetune");
    let onnx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/onnx/pytorch/resnet18.onnx");
    let (model, weights) = (dir.join("resnet.cnn"), dir.join("resnet.safetensors"));
    let o = cnnc(&["import", s(&onnx), "-o", s(&model), "--weights", s(&weights), "--train"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let data = dir.join("shapes");
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    write_split(&data.join("train"), 40, 32, &mut rng);
    write_split(&data.join("test"), 10, 32, &mut rng);
    let out = dir.join("out");
    let o = cnnc(&[
        "train",
        s(&model),
        "--data",
        s(&data),
        "--weights",
        s(&weights),
        "--epochs",
        "2",
        "--out",
        s(&out),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}\n{text}", stderr(&o));
    assert!(text.contains(&format!("started from {}", weights.display())), "{text}");
    assert!(text.contains("tensors loaded"), "{text}");
    assert!(text.contains("epoch 2/2"), "{text}");
    test_accuracy(&text);
    // Weights of another model are refused, naming the file.
    let stray = dir.join("stray.safetensors");
    std::fs::write(&stray, b"not a weight file").unwrap();
    let o = cnnc(&[
        "train",
        s(&model),
        "--data",
        s(&data),
        "--weights",
        s(&stray),
        "--out",
        s(&out),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("stray.safetensors"), "{}", stderr(&o));
}
