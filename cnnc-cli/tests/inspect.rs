//! `cnnc inspect` end to end on LeNet with seeded weights (written by cnnc's own
//! API) and a drawn digit: the PNG has the size the SVG of the same picture
//! declares, holds every tile the SVG places (the input, conv1's 6 kernels, the
//! maps of conv1, maxpool1, conv2 and maxpool2), and no tile is blank. Bad input
//! (an image of another size or colour, an unknown layer, another model's
//! weights) is an error naming what is wrong, exit code 2, no panic.

mod common;

use cnnc::Model as _;
use common::path_str as s;
use common::{cnnc, stderr, stdout};
use image::{GrayImage, Luma, RgbImage};
use std::path::{Path, PathBuf};

const LENET: &str = include_str!("../../examples/models/lenet.cnn");

/// A folder of its own for each test (they run in parallel).
fn folder(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect").join(name);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// LeNet's weights from seed 3, saved in `dir`.
fn lenet_weights(dir: &Path) -> PathBuf {
    let model = cnnc::interp::Interpreter::from_source(LENET, "LeNet", 3).expect("LeNet");
    let path = dir.join("lenet.safetensors");
    cnnc::rt::weights::save_safetensors(&model, &path).expect("weights saved");
    path
}

/// A 28x28 gray "7": a bar across the top and a stroke down to the left.
fn digit(dir: &Path, size: u32) -> PathBuf {
    let image = GrayImage::from_fn(size, size, |x, y| {
        let bar = (5..=8).contains(&y) && (6..=21).contains(&x);
        let stroke = (8..=23).contains(&y) && (x as i32 - (21 - (y as i32 - 8) / 2)).abs() <= 1;
        Luma([if bar || stroke { 255 } else { 0 }])
    });
    let path = dir.join(format!("seven_{size}.png"));
    image.save(&path).expect("digit saved");
    path
}

/// The number attribute `name` of an SVG element.
fn attr(tag: &str, name: &str) -> u32 {
    let start = tag.find(&format!(" {name}=\"")).expect("attribute") + name.len() + 3;
    let end = start + tag[start..].find('"').expect("closing quote");
    tag[start..end].parse().expect("a number")
}

/// `(x, y, w, h)` of every `<image>` in an SVG that `inspect` wrote.
fn svg_tiles(svg: &str) -> Vec<[u32; 4]> {
    svg.lines()
        .filter(|l| l.starts_with("<image "))
        .map(|t| [attr(t, "x"), attr(t, "y"), attr(t, "width"), attr(t, "height")])
        .collect()
}

/// `(x, y)` of every `<text>`.
fn svg_texts(svg: &str) -> Vec<[u32; 2]> {
    svg.lines()
        .filter(|l| l.starts_with("<text "))
        .map(|t| [attr(t, "x"), attr(t, "y")])
        .collect()
}

fn svg_size(svg: &str) -> (u32, u32) {
    let first = svg.lines().next().expect("a first line");
    let number = |name: &str| -> u32 {
        let start = first.find(&format!(" {name}=\"")).expect("size") + name.len() + 3;
        let end = start + first[start..].find('"').expect("quote");
        first[start..end].parse().expect("a number")
    };
    (number("width"), number("height"))
}

#[test]
fn lenet_picture_shows_every_map_and_the_top_class() {
    let dir = folder("lenet");
    let (weights, image) = (lenet_weights(&dir), digit(&dir, 28));
    let (png, svg) = (dir.join("seven.png"), dir.join("seven.svg"));
    for out in [&png, &svg] {
        let o = cnnc(&[
            "inspect",
            "examples/models/lenet.cnn",
            "--weights",
            s(&weights),
            s(&image),
            "-o",
            s(out),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let line = stdout(&o);
        assert!(
            line.starts_with("top class: ") && line.trim_end().ends_with("%)"),
            "{line}"
        );
    }
    let svg = std::fs::read_to_string(&svg).expect("svg written");
    for label in [
        "input 1x28x28",
        "conv1 kernels  6x1x5x5",
        "conv1 + relu1  6x28x28",
        "maxpool1  6x14x14",
    ] {
        assert!(svg.contains(label), "no `{label}` in the SVG");
    }
    assert!(svg.contains("conv2 + relu2  16x10x10") && svg.contains("maxpool2  16x5x5"));
    let tiles = svg_tiles(&svg);
    // No tile has a caption: a constant map would say its value across it.
    for [tx, ty] in svg_texts(&svg) {
        let inside = |&[x, y, w, h]: &[u32; 4]| (x..x + w).contains(&tx) && (y..y + h).contains(&ty);
        assert!(!tiles.iter().any(inside), "a caption at ({tx}, {ty}) over a tile");
    }
    // The input, 6 kernels, 6 + 6 maps of conv1 and maxpool1, 16 + 16 of conv2 and maxpool2.
    assert_eq!(tiles.len(), 1 + 6 + 6 + 6 + 16 + 16);
    let picture: RgbImage = image::open(&png).expect("the PNG reads back").to_rgb8();
    assert_eq!(picture.dimensions(), svg_size(&svg));
    for (i, [x, y, w, h]) in tiles.into_iter().enumerate() {
        assert!(
            x + w <= picture.width() && y + h <= picture.height(),
            "tile {i} is outside"
        );
        let first = picture.get_pixel(x, y);
        let varied = (y..y + h).any(|py| (x..x + w).any(|px| picture.get_pixel(px, py) != first));
        assert!(varied, "tile {i} at ({x}, {y}) is one colour");
    }
}

#[test]
fn one_layer_shows_all_its_channels() {
    let dir = folder("layer");
    let (weights, image) = (lenet_weights(&dir), digit(&dir, 28));
    let out = dir.join("conv2.svg");
    let o = cnnc(&[
        "inspect",
        "examples/models/lenet.cnn",
        "-w",
        s(&weights),
        s(&image),
        "--layer",
        "conv2",
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&out).expect("svg written");
    assert!(svg.contains("conv2  16x10x10"));
    // The input and conv2's 16 maps; no kernels.
    assert_eq!(svg_tiles(&svg).len(), 1 + 16);
    // A vector layer is one map.
    let o = cnnc(&[
        "inspect",
        "examples/models/lenet.cnn",
        "-w",
        s(&weights),
        s(&image),
        "--layer",
        "dense1",
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&out).expect("svg written");
    assert!(svg.contains("dense1  120 values"));
    assert_eq!(svg_tiles(&svg).len(), 2);
}

/// Runs inspect with `args` after the model; it must fail with exit code 2, a
/// message holding every one of `expected`, and no panic, and write nothing.
fn refuses(dir: &Path, args: &[&str], expected: &[&str]) {
    let out = dir.join("never.png");
    let mut all = vec!["inspect", "examples/models/lenet.cnn"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", s(&out)]);
    let o = cnnc(&all);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for e in expected {
        assert!(err.contains(e), "expected `{e}` in {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "a picture was written after an error");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = folder("bad");
    let (weights, image) = (lenet_weights(&dir), digit(&dir, 28));
    let big = digit(&dir, 32);
    refuses(
        &dir,
        &["-w", s(&weights), s(&big)],
        &["is 32x32", "takes 28x28", "--resize"],
    );
    let colour = dir.join("colour.png");
    RgbImage::from_fn(28, 28, |x, _| image::Rgb([x as u8 * 9, 0, 0]))
        .save(&colour)
        .expect("saved");
    refuses(&dir, &["-w", s(&weights), s(&colour)], &["color image", "1 channel"]);
    refuses(
        &dir,
        &["-w", s(&weights), s(&image), "--layer", "conv3"],
        &["no layer `conv3`", "did you mean `conv1`?", "maxpool2"],
    );
    // Another model's weights: the error names the tensors that differ.
    let other = cnnc::compile("model Small { input 1x28x28 conv 4 kernel 3 flatten dense 10 softmax }")
        .expect("valid")
        .remove(0);
    let small = cnnc::interp::Interpreter::new(other, 0);
    let wrong = dir.join("small.safetensors");
    cnnc::rt::weights::save_safetensors(&small, &wrong).expect("saved");
    assert_eq!(small.param_names()[0], "conv1.weight");
    refuses(
        &dir,
        &["-w", s(&wrong), s(&image)],
        &["do not fit model LeNet", "conv1.weight"],
    );
    refuses(
        &dir,
        &["-w", "no/such.safetensors", s(&image)],
        &["no/such.safetensors"],
    );
    refuses(&dir, &["-w", s(&weights), "no/such.png"], &["no/such.png"]);
    let out = dir.join("picture.gif");
    let o = cnnc(&[
        "inspect",
        "examples/models/lenet.cnn",
        "-w",
        s(&weights),
        s(&image),
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(".png or .svg"), "{}", stderr(&o));
}

#[test]
fn resize_accepts_another_size() {
    let dir = folder("resize");
    let (weights, big) = (lenet_weights(&dir), digit(&dir, 32));
    let out = dir.join("resized.png");
    let o = cnnc(&[
        "inspect",
        "examples/models/lenet.cnn",
        "-w",
        s(&weights),
        s(&big),
        "--resize",
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.is_file());
}

#[test]
fn class_names_come_from_classes_txt_beside_the_weights() {
    let dir = folder("classes");
    let (weights, image) = (lenet_weights(&dir), digit(&dir, 28));
    let names = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    std::fs::write(dir.join("classes.txt"), names.join("\n")).expect("classes written");
    let out = dir.join("named.svg");
    let o = cnnc(&[
        "inspect",
        "examples/models/lenet.cnn",
        "-w",
        s(&weights),
        s(&image),
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let line = stdout(&o);
    let top = line
        .trim_start_matches("top class: ")
        .split(' ')
        .next()
        .unwrap_or_default();
    assert!(names.contains(&top), "{line}");
}

#[test]
fn an_rgb_model_with_residual_blocks_shows_colour_kernels_and_the_block_output() {
    let dir = folder("residual");
    let model = "tests/fixtures/residual_projection/model.cnn";
    let source = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(model))
        .expect("the fixture reads");
    let interp = cnnc::interp::Interpreter::from_source(&source, "ResidualProjection", 5).expect("a model");
    let weights = dir.join("residual.safetensors");
    cnnc::rt::weights::save_safetensors(&interp, &weights).expect("saved");
    let image = dir.join("colour.png");
    RgbImage::from_fn(7, 7, |x, y| image::Rgb([x as u8 * 36, y as u8 * 36, 200]))
        .save(&image)
        .expect("saved");
    let out = dir.join("residual.svg");
    let o = cnnc(&["inspect", model, "-w", s(&weights), s(&image), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&out).expect("written");
    for label in [
        "conv1 kernels  4x3x3x3",
        "conv1 + batchnorm1 + relu1  4x7x7",
        "residual1.conv1 + residual1.batchnorm1 + residual1.relu1  8x4x4",
        "residual1.shortcut.conv1 + residual1.shortcut.batchnorm1  8x4x4",
        "residual1 + relu2  8x4x4",
    ] {
        assert!(svg.contains(label), "no `{label}` in the picture");
    }
    // A 3-channel model's kernels are in colour: some kernel cell is not gray.
    let png = dir.join("residual.png");
    let o = cnnc(&["inspect", model, "-w", s(&weights), s(&image), "-o", s(&png)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let raster = image::open(&png).expect("reads").to_rgb8();
    let [x, y, w, h] = svg_tiles(&svg)[1];
    let coloured = (y..y + h).any(|py| {
        (x..x + w).any(|px| {
            let [r, g, b] = raster.get_pixel(px, py).0;
            r != g || g != b
        })
    });
    assert!(coloured, "the first kernel is gray");
}
