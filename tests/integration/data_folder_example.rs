//! examples/folder.rs on a folder of PNGs this test draws: three classes told
//! apart by colour and shape, learned by a tiny model to >= 95% test accuracy.

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

/// `red`: a red square; `green`: a green horizontal bar; `blue`: a blue vertical
/// bar; each at a random place on a noisy gray background.
fn picture(class: &str, rng: &mut Xorshift) -> RgbImage {
    let mut img = RgbImage::from_fn(16, 16, |_, _| {
        let g = 60 + rng.below(60) as u8;
        Rgb([g, g, g])
    });
    let (x0, y0) = (rng.below(8) as u32, rng.below(8) as u32);
    let (w, h, color) = match class {
        "red" => (6, 6, [230u8, 30, 30]),
        "green" => (8, 3, [30, 210, 40]),
        _ => (3, 8, [40, 60, 230]),
    };
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let jitter = rng.below(30) as u8;
            img.put_pixel(x, y, Rgb(color.map(|c| c.saturating_sub(jitter))));
        }
    }
    img
}

fn write_split(dir: &Path, per_class: usize, rng: &mut Xorshift) {
    for class in ["red", "green", "blue"] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..per_class {
            picture(class, rng)
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
    write_split(&data.join("train"), 40, &mut rng);
    write_split(&data.join("test"), 12, &mut rng);
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
    write_split(&data.join("train"), 2, &mut rng);
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
