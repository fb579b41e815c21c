//! Segmentation: the U-Net of examples/models/unet.cnn trained on a set of
//! shapes it generates, a class per pixel.
//!
//!     cargo run --release --example unet
//!
//! The data (written once to `data/unet-shapes/{train,test}/{images,masks}/`, so
//! that `cnnc train data/unet-shapes/train` and examples/unet_torch.py read the
//! same files): 64x64 RGB pictures of one to three filled circles (class 1) and
//! squares (class 2) of random sizes and colors on a textured background (class
//! 0: random stripes and noise in random colors). Each mask pixel holds its class;
//! a one-pixel band around every shape holds 255, void, which the model's
//! `loss cross_entropy ignore 255` and the evaluation leave out (as in Pascal VOC).
//! 1,600 training and 200 test pictures, from a fixed seed.
//!
//! It ends with the test set's pixel accuracy and `mean IoU: 0.XX`.

use cnnc::rt::data::{segmentation_folder, FolderOptions};
use cnnc::rt::fit::fit;
use image::{GrayImage, Luma, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::time::Instant;

cnn_macros::cnn!(file = "examples/models/unet.cnn");

const SIDE: u32 = 64;
const TRAIN: usize = 1600;
const TEST: usize = 200;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/unet-shapes"));
    for (split, count, seed) in [("train", TRAIN, 1), ("test", TEST, 2)] {
        let dir = root.join(split);
        if !dir.join("masks").join(format!("{:04}.png", count - 1)).is_file() {
            println!("writing {count} pictures and masks to {}", dir.display());
            write_split(&dir, count, seed)?;
        }
    }
    let options = FolderOptions::for_input(&[3, SIDE as usize, SIDE as usize])?;
    let train = segmentation_folder(root.join("train"), &options)?;
    let test = segmentation_folder(root.join("test"), &options)?;
    let fit_config = UNet::FIT;
    println!(
        "UNet: {} parameters; {} training and {} test pictures, {} classes; {} epochs of batch {}",
        UNet::PARAM_COUNT,
        train.data.len(),
        test.data.len(),
        train.classes,
        fit_config.epochs,
        fit_config.batch
    );
    let mut model = UNet::new(fit_config.seed);
    let start = Instant::now();
    let report = fit(&mut model, &train.data, &fit_config)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "trained in {seconds:.1}s ({:.2}s per epoch)",
        seconds / report.history.len().max(1) as f64
    );
    let result = model.evaluate(&test.data)?;
    model.save_safetensors("unet.safetensors")?;
    println!(
        "test loss {:.4}, pixel accuracy {:.2}%; weights saved to unet.safetensors",
        result.loss,
        result.accuracy.unwrap_or(0.0) * 100.0
    );
    println!("mean IoU: {:.4}", result.mean_iou.unwrap_or(0.0));
    Ok(())
}

/// Writes `count` pictures and their masks to `dir/images` and `dir/masks`.
fn write_split(dir: &Path, count: usize, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir.join("images"))?;
    std::fs::create_dir_all(dir.join("masks"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..count {
        let (picture, mask) = sample(&mut rng);
        picture.save(dir.join("images").join(format!("{i:04}.png")))?;
        mask.save(dir.join("masks").join(format!("{i:04}.png")))?;
    }
    Ok(())
}

/// One picture and its mask.
fn sample(rng: &mut ChaCha8Rng) -> (RgbImage, GrayImage) {
    let mut picture = background(rng);
    let mut mask = GrayImage::from_pixel(SIDE, SIDE, Luma([0]));
    for _ in 0..rng.random_range(1..=3) {
        let class = rng.random_range(1..=2u8);
        let r = rng.random_range(6.0..13.0f32);
        let (cx, cy) = (
            rng.random_range(r..SIDE as f32 - r),
            rng.random_range(r..SIDE as f32 - r),
        );
        let color = [rng.random(), rng.random(), rng.random()];
        // Inside when the distance (round for circles, max-norm for squares) is
        // below r; the void band is the pixels within one pixel of the edge.
        let distance = |x: f32, y: f32| match class {
            1 => ((x - cx).powi(2) + (y - cy).powi(2)).sqrt(),
            _ => (x - cx).abs().max((y - cy).abs()),
        };
        for y in 0..SIDE {
            for x in 0..SIDE {
                let d = distance(x as f32 + 0.5, y as f32 + 0.5);
                if d < r - 0.75 {
                    picture.put_pixel(x, y, Rgb(color));
                    mask.put_pixel(x, y, Luma([class]));
                } else if d < r + 0.75 {
                    if d < r {
                        picture.put_pixel(x, y, Rgb(color));
                    }
                    mask.put_pixel(x, y, Luma([255]));
                }
            }
        }
    }
    (picture, mask)
}

/// Stripes of a random angle and period in two random colors, plus noise.
fn background(rng: &mut ChaCha8Rng) -> RgbImage {
    let (a, b): ([f32; 3], [f32; 3]) = (
        std::array::from_fn(|_| rng.random_range(0.0..255.0)),
        std::array::from_fn(|_| rng.random_range(0.0..255.0)),
    );
    let angle = rng.random_range(0.0..std::f32::consts::PI);
    let period = rng.random_range(4.0..16.0f32);
    let (s, c) = angle.sin_cos();
    RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let t = 0.5 + 0.5 * ((x as f32 * c + y as f32 * s) * std::f32::consts::TAU / period).sin();
        let noise = rng.random_range(-20.0..20.0f32);
        Rgb(std::array::from_fn(|k| {
            (a[k] * t + b[k] * (1.0 - t) + noise).clamp(0.0, 255.0) as u8
        }))
    })
}
