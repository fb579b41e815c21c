//! examples/folder.rs on a folder of PNGs this test draws: three classes told
//! apart by colour and shape, learned to >= 95% test accuracy by a tiny model
//! given as a file (the interpreter's path) and by the default model (generated
//! code), with stray files in the folder skipped.

#[path = "../../examples/folder.rs"]
#[allow(dead_code)]
mod folder_example;

use image::{Rgb, RgbImage};
use std::path::Path;

const TINY: &str = "
model Tiny {
    input 3x16x16
    conv 4 kernel 3 relu
    maxpool 2
    flatten
    dense 3 softmax
    train {
        loss cross_entropy
        optimizer adam lr 0.01
        batch 16
        epochs 8
        seed 3
        validation 0.2
    }
}
";

/// A small generator for the pictures' noise.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `red`: a red square; `green`: a green horizontal bar; `blue`: a vertical blue
/// bar; each at a random place on a noisy gray background, `16 * scale` pixels wide.
fn picture(class: &str, scale: u32, rng: &mut Xorshift) -> RgbImage {
    let size = 16 * scale;
    let mut img = RgbImage::from_fn(size, size, |_, _| {
        let g = 60 + rng.below(60) as u8;
        Rgb([g, g, g])
    });
    let (x0, y0) = (rng.below(8 * scale as u64) as u32, rng.below(8 * scale as u64) as u32);
    let (w, h, color) = match class {
        "red" => (6 * scale, 6 * scale, [230u8, 30, 30]),
        "green" => (8 * scale, 3 * scale, [30, 210, 40]),
        _ => (3 * scale, 8 * scale, [40, 60, 230]),
    };
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let jitter = rng.below(30) as u8;
            img.put_pixel(x, y, Rgb(color.map(|c| c.saturating_sub(jitter))));
        }
    }
    img
}

fn write_split(dir: &Path, per_class: usize, scale: u32, rng: &mut Xorshift) {
    for class in ["red", "green", "blue"] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..per_class {
            picture(class, scale, rng)
                .save(dir.join(class).join(format!("{i:03}.png")))
                .unwrap();
        }
    }
}

#[test]
fn folder_example_trains_to_high_accuracy() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shapes");
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    write_split(&data.join("train"), 40, 1, &mut rng);
    write_split(&data.join("test"), 12, 1, &mut rng);
    let model = tmp.path().join("tiny.cnn");
    std::fs::write(&model, TINY).unwrap();
    // Kept after the test, to look at the curves.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("data_folder_example");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();

    let accuracy = folder_example::run(&data, Some(&model), &out).unwrap();
    assert!(accuracy >= 0.95, "test accuracy {accuracy}");
    assert_eq!(
        std::fs::read_to_string(out.join("classes.txt")).unwrap(),
        "blue\ngreen\nred\n"
    );
    assert!(out.join("tiny.safetensors").is_file());
    let svg = std::fs::read_to_string(out.join("tiny-training.svg")).unwrap();
    assert!(svg.contains("Accuracy"));

    // Without a test folder, a fifth of train is held out.
    std::fs::remove_dir_all(data.join("test")).unwrap();
    let accuracy = folder_example::run(&data, Some(&model), &out).unwrap();
    assert!(accuracy >= 0.95, "held-out accuracy {accuracy}");
}

#[test]
fn folder_example_refuses_a_model_of_another_class_count() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shapes");
    let mut rng = Xorshift(7);
    write_split(&data.join("train"), 2, 1, &mut rng);
    let model = tmp.path().join("four.cnn");
    std::fs::write(&model, TINY.replace("dense 3", "dense 4")).unwrap();
    let e = folder_example::run(&data, Some(&model), tmp.path()).unwrap_err();
    assert!(
        e.to_string().contains("4 outputs") && e.to_string().contains("3 classes"),
        "{e}"
    );
    let e = folder_example::run(tmp.path(), Some(&model), tmp.path()).unwrap_err();
    assert!(e.to_string().contains("`train`"), "{e}");
}

/// Without a model file, the default model (a residual network with batchnorm,
/// compiled by `cnn!`) trains as generated code on 32x32 pictures, with its train
/// block's flips and crops; a text file and a broken PNG among the images are
/// skipped instead of stopping the run.
#[test]
fn the_default_model_learns_the_shapes_and_skips_stray_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shapes");
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    write_split(&data.join("train"), 40, 2, &mut rng);
    write_split(&data.join("test"), 12, 2, &mut rng);
    std::fs::write(data.join("train/red/notes.txt"), "not an image").unwrap();
    std::fs::write(data.join("train/blue/broken.png"), "not a PNG either").unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("data_folder_example_default");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();

    let accuracy = folder_example::run(&data, None, &out).unwrap_or_else(|e| panic!("{e}"));
    assert!(accuracy >= 0.95, "test accuracy {accuracy}");
    assert!(out.join("foldernet.safetensors").is_file());
    assert_eq!(
        std::fs::read_to_string(out.join("classes.txt")).unwrap(),
        "blue\ngreen\nred\n"
    );
}
