//! `cnnc inspect`: what a trained model sees in one image. The run-time plan
//! executor runs the model once (`Model::activations`: every layer's output, as
//! `cnnc train` computes it);
//! the picture shows the image and the top-5 classes, the first convolution's
//! kernels, and the feature maps of every convolution, pooling layer and
//! residual block (up to 16 channels each, each map scaled to its own range),
//! or with `--layer NAME` every channel of one layer.

use crate::input::{class_names, read_image, top_k};
use crate::picture::{text_width, viridis, Color, Item, Picture, BLACK, GRAY, LINE};
use cnnc::ir::{self, Op, Shape};
use cnnc::ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use cnnc::rt::exec::Executor;
use cnnc::Model as _;
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};

/// What `cnnc inspect` was asked.
pub struct Request {
    pub weights: PathBuf,
    pub image: PathBuf,
    pub output: PathBuf,
    /// Every channel of this layer instead of the overview.
    pub layer: Option<String>,
    /// Resize an image of another size to the model's input.
    pub resize: bool,
}

/// Feature maps per layer in the overview.
const MAX_MAPS: usize = 16;
/// Tiles per row.
const PER_ROW: usize = 16;
/// Space around the picture and between sections.
const MARGIN: u32 = 16;
/// Space between tiles.
const GAP: u32 = 4;
/// The size a feature map is shown at (its longer side, about).
const MAP_SIZE: u32 = 64;
/// The size a kernel is shown at.
const KERNEL_SIZE: u32 = 36;
/// The size the input image is shown at.
const INPUT_SIZE: u32 = 112;
/// The length of a probability bar at 100%.
const BAR: u32 = 160;

/// The output format, from the file name's extension.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Png,
    Svg,
}

fn format_of(path: &Path) -> Result<Format, String> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        _ => Err(format!(
            "{}: the picture is written as PNG or SVG; name the output file .png or .svg",
            path.display()
        )),
    }
}

/// Runs `model` on the image, draws the picture to `request.output`, and returns
/// the line to print: the top class and its probability.
pub fn inspect(model: &ir::Model, request: &Request) -> Result<String, String> {
    let format = format_of(&request.output)?;
    let (c, h, w) = match model.input {
        Shape::Image { c, h, w } if c == 1 || c == 3 => (c, h, w),
        other => {
            return Err(format!(
                "model {} takes {other}, not an image of 1 or 3 channels (CxHxW), so it cannot inspect an image",
                model.name
            ))
        }
    };
    let mut net = Executor::from_model(model, 0);
    cnnc::rt::weights::load_safetensors(&mut net, &request.weights)
        .map_err(|e| format!("the weights do not fit model {}: {e}", model.name))?;
    let x = read_image(&request.image, model, (c, h, w), request.resize)?;
    let acts = net.activations(x.view()).map_err(|e| e.to_string())?;
    let layers: Vec<Panel> = match &request.layer {
        Some(name) => vec![one_layer(model, &acts, name)?],
        None => overview(model, &acts),
    };
    let output = acts.last().map_or_else(|| x.clone(), |(_, a)| a.clone());
    let probabilities = matches!(model.layers.last().map(|l| &l.op), Some(Op::Softmax));
    let names = class_names(&request.weights, output.len());
    let top = top_k(output.view(), 5, &names);
    let mut picture = Picture::default();
    let title = format!(
        "{}  {}  {}",
        model.name,
        file_name(&request.image),
        file_name(&request.weights)
    );
    picture.add(text(MARGIN, MARGIN, &title, BLACK), MARGIN);
    let legend = match request.layer {
        Some(_) => "each map in its own range: dark lowest, yellow highest",
        None => "each map in its own range: dark lowest, yellow highest; kernels: mid gray is 0",
    };
    picture.add(text(MARGIN, MARGIN + LINE + 2, legend, GRAY), MARGIN);
    let mut y = MARGIN + 2 * LINE + 16;
    y = header(&mut picture, y, model, x.view(), &top, probabilities);
    if request.layer.is_none() {
        y = kernels(&mut picture, y, model, &net);
    }
    for panel in &layers {
        y = maps(&mut picture, y, panel);
    }
    let bytes = match format {
        Format::Png => picture.png()?,
        Format::Svg => picture.svg()?.into_bytes(),
    };
    cnnc::rt::atomic::write(&request.output, &bytes).map_err(|e| e.to_string())?;
    let (name, value) = top.first().cloned().unwrap_or_default();
    Ok(if probabilities {
        format!("top class: {name} ({:.2}%)", value * 100.0)
    } else {
        format!("top output: {name} ({value:.4})")
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn text(x: u32, y: u32, text: &str, color: Color) -> Item {
    Item::Text {
        x,
        y,
        text: text.to_string(),
        color,
    }
}

/// One row of maps: the label, the layer's output for the one image `[C, ...]`,
/// and how many channels it has in all.
struct Panel {
    label: String,
    /// `[C, H, W]`.
    maps: ArrayD<f32>,
}

/// The panels of the overview: each convolution, pooling layer and residual
/// block with an image output, in the order they run, shown after the batchnorm,
/// activation and dropout layers that directly follow it in its block
/// (`conv1 + relu1`), its first 16 channels.
fn overview(model: &ir::Model, acts: &[(String, ArrayD<f32>)]) -> Vec<Panel> {
    let ops: Vec<(&str, &Op)> = model.all_layers().iter().map(|l| (l.name.as_str(), &l.op)).collect();
    let op = |name: &str| ops.iter().find(|(n, _)| *n == name).map(|(_, op)| *op);
    let block = |name: &str| name.rsplit_once('.').map_or("", |(b, _)| b).to_string();
    let mut panels = Vec::new();
    let mut i = 0;
    while i < acts.len() {
        let (name, _) = &acts[i];
        let shown = matches!(
            op(name),
            Some(Op::Conv(_) | Op::MaxPool(_) | Op::AvgPool(_) | Op::Residual(_))
        );
        let mut names = vec![name.as_str()];
        let mut end = i;
        if shown {
            while let Some((next, _)) = acts.get(end + 1) {
                let follows = matches!(op(next), Some(Op::Activation(_) | Op::BatchNorm(_) | Op::Dropout(_)));
                if !follows || block(next) != block(name) {
                    break;
                }
                names.push(next);
                end += 1;
            }
            let out = acts[end].1.index_axis(Axis(0), 0).to_owned();
            if out.ndim() == 3 {
                let channels = out.shape()[0];
                let maps = out.slice_axis(Axis(0), (0..channels.min(MAX_MAPS)).into()).to_owned();
                panels.push(panel(names.join(" + "), maps, channels));
            }
        }
        i = end + 1;
    }
    panels
}

fn panel(names: String, maps: ArrayD<f32>, channels: usize) -> Panel {
    let shape: Vec<String> = std::iter::once(channels)
        .chain(maps.shape()[1..].iter().copied())
        .map(|d| d.to_string())
        .collect();
    let mut label = format!("{names}  {}", shape.join("x"));
    if maps.shape()[0] < channels {
        label += &format!("  (channels 1-{} of {channels})", maps.shape()[0]);
    }
    Panel { label, maps }
}

/// Every channel of layer `name` (a vector is one map, laid out in rows).
fn one_layer(model: &ir::Model, acts: &[(String, ArrayD<f32>)], name: &str) -> Result<Panel, String> {
    let Some((_, out)) = acts.iter().find(|(n, _)| n == name) else {
        let names: Vec<&str> = acts.iter().map(|(n, _)| n.as_str()).collect();
        let hint = cnnc::diag::did_you_mean(name, names.iter().copied())
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        return Err(format!(
            "model {} has no layer `{name}`; {hint}its layers are {}",
            model.name,
            names.join(", ")
        ));
    };
    let out = out.index_axis(Axis(0), 0).to_owned();
    if out.ndim() == 3 {
        let channels = out.shape()[0];
        return Ok(panel(name.to_string(), out, channels));
    }
    // A vector: one map, its values in rows of about the square root of its length.
    let n = out.len();
    let cols = (1..=n.max(1)).find(|c| c * c >= n).unwrap_or(1);
    let rows = n.div_ceil(cols).max(1);
    let mut values: Vec<f32> = out.iter().copied().collect();
    values.resize(rows * cols, f32::NAN);
    let maps = ArrayD::from_shape_vec(IxDyn(&[1, rows, cols]), values).map_err(|e| e.to_string())?;
    Ok(Panel {
        label: format!("{name}  {n} values"),
        maps,
    })
}

/// The input image and, beside it, the top classes with bars. Returns the next y.
fn header(
    picture: &mut Picture,
    y: u32,
    model: &ir::Model,
    x: ArrayViewD<'_, f32>,
    top: &[(String, f32)],
    probabilities: bool,
) -> u32 {
    picture.add(text(MARGIN, y, &format!("input {}", model.input), BLACK), MARGIN);
    let image = x.index_axis(Axis(0), 0);
    let (c, h, w) = (image.shape()[0], image.shape()[1], image.shape()[2]);
    let cells = RgbImage::from_fn(w as u32, h as u32, |px, py| {
        let v = |ch: usize| (image[[ch.min(c - 1), py as usize, px as usize]].clamp(0.0, 1.0) * 255.0).round() as u8;
        Rgb([v(0), v(1), v(2)])
    });
    let (tw, th) = display(h, w, INPUT_SIZE);
    let top_y = y + LINE + 4;
    picture.add(
        Item::Tile {
            x: MARGIN,
            y: top_y,
            w: tw,
            h: th,
            cells,
        },
        MARGIN,
    );
    let left = MARGIN + tw.max(text_width(6 + model.input.to_string().len())) + 32;
    let heading = if probabilities {
        format!("top {} classes", top.len())
    } else {
        "largest outputs".to_string()
    };
    picture.add(text(left, y, &heading, BLACK), MARGIN);
    let widest = top.iter().map(|(n, _)| n.chars().count().min(24)).max().unwrap_or(1);
    let scale = if probabilities {
        1.0
    } else {
        top.iter().map(|(_, v)| v.abs()).fold(f32::MIN_POSITIVE, f32::max)
    };
    let mut row_y = top_y;
    for (name, value) in top {
        let shown: String = name.chars().take(24).collect();
        picture.add(text(left, row_y, &shown, BLACK), MARGIN);
        let bar_x = left + text_width(widest + 1);
        let bar = |w: u32, color: Color| Item::Box {
            x: bar_x,
            y: row_y + 3,
            w,
            h: LINE - 6,
            color,
        };
        picture.add(bar(BAR, [225, 225, 225]), MARGIN);
        let len = ((value.abs() / scale).clamp(0.0, 1.0) * BAR as f32).round() as u32;
        picture.add(bar(len, [33, 144, 141]), MARGIN);
        let number = if probabilities {
            format!("{:.2}%", value * 100.0)
        } else {
            format!("{value:.4}")
        };
        picture.add(text(bar_x + BAR + 8, row_y, &number, GRAY), MARGIN);
        row_y += LINE + 4;
    }
    (top_y + th).max(row_y) + 2 * MARGIN
}

/// The first convolution's kernels: in colour when it reads 3 channels, else
/// each kernel's first channel in gray; one scale for all (mid gray is 0).
fn kernels(picture: &mut Picture, y: u32, model: &ir::Model, net: &Executor) -> u32 {
    let Some(conv) = model.all_layers().into_iter().find(|l| matches!(l.op, Op::Conv(_))) else {
        return y;
    };
    let Some(weight) = net.param(&format!("{}.weight", conv.name)) else {
        return y;
    };
    let [f, cin, kh, kw] = *weight.shape() else {
        return y;
    };
    let limit = weight.iter().fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()));
    let gray = |v: f32| ((0.5 + 0.5 * v / limit).clamp(0.0, 1.0) * 255.0).round() as u8;
    let colour = cin == 3;
    let tiles: Vec<RgbImage> = (0..f.min(4 * PER_ROW))
        .map(|k| {
            RgbImage::from_fn(kw as u32, kh as u32, |px, py| {
                let v = |ch: usize| gray(weight[[k, ch, py as usize, px as usize]]);
                if colour {
                    Rgb([v(0), v(1), v(2)])
                } else {
                    let g = v(0);
                    Rgb([g, g, g])
                }
            })
        })
        .collect();
    let mut label = format!("{} kernels  {f}x{cin}x{kh}x{kw}", conv.name);
    if !colour && cin > 1 {
        label += "  (first input channel)";
    }
    if f > tiles.len() {
        label += &format!("  (1-{} of {f})", tiles.len());
    }
    let tiles = tiles.into_iter().map(|t| (t, None)).collect();
    row_of_tiles(picture, y, &label, tiles, display(kh, kw, KERNEL_SIZE))
}

/// A panel: its label, then its maps in rows, each map coloured by its own range.
fn maps(picture: &mut Picture, y: u32, panel: &Panel) -> u32 {
    let shape = panel.maps.shape();
    let (h, w) = (shape[1], shape[2]);
    // A constant map (a channel the activation switched off for this image) has
    // no range to show: its tile is dark and says its value.
    let tiles = panel
        .maps
        .outer_iter()
        .map(|map| {
            let values = || map.iter().copied().filter(|v| !v.is_nan());
            let constant = values().next().filter(|&first| values().all(|v| v == first));
            (map_cells(map), constant.map(|v| format!("{v:.2}")))
        })
        .collect();
    row_of_tiles(picture, y, &panel.label, tiles, display(h, w, MAP_SIZE))
}

/// One map as viridis colours, its lowest value dark, its highest light (a
/// constant map is all dark; NaN, the padding of a vector's grid, is white).
fn map_cells(map: ArrayViewD<'_, f32>) -> RgbImage {
    let (lo, hi) = map
        .iter()
        .filter(|v| !v.is_nan())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = hi - lo;
    let (h, w) = (map.shape()[0], map.shape()[1]);
    RgbImage::from_fn(w as u32, h as u32, |px, py| {
        let v = map[[py as usize, px as usize]];
        if v.is_nan() {
            return Rgb(crate::picture::WHITE);
        }
        let t = if span > 0.0 { (v - lo) / span } else { 0.0 };
        Rgb(viridis(t))
    })
}

/// The label at `y`, then the tiles `size` large, [`PER_ROW`] to a row, each
/// with its caption (if any) written across its middle. Returns the next y.
fn row_of_tiles(
    picture: &mut Picture,
    y: u32,
    label: &str,
    tiles: Vec<(RgbImage, Option<String>)>,
    (w, h): (u32, u32),
) -> u32 {
    picture.add(text(MARGIN, y, label, BLACK), MARGIN);
    let top = y + LINE + 4;
    let mut bottom = top;
    for (i, (cells, caption)) in tiles.into_iter().enumerate() {
        let (col, row) = ((i % PER_ROW) as u32, (i / PER_ROW) as u32);
        let (tx, ty) = (MARGIN + col * (w + GAP), top + row * (h + GAP));
        picture.add(
            Item::Tile {
                x: tx,
                y: ty,
                w,
                h,
                cells,
            },
            MARGIN,
        );
        if let Some(caption) = caption.filter(|c| text_width(c.chars().count()) <= w && LINE <= h) {
            let cx = tx + (w - text_width(caption.chars().count())) / 2;
            picture.add(text(cx, ty + (h - LINE) / 2, &caption, crate::picture::WHITE), MARGIN);
        }
        bottom = bottom.max(ty + h);
    }
    bottom + MARGIN
}

/// The size an `h` x `w` grid is shown at: its longer side about `target`
/// pixels, in whole pixels per cell when it is smaller than that.
fn display(h: usize, w: usize, target: u32) -> (u32, u32) {
    let (h, w) = (h.max(1) as u32, w.max(1) as u32);
    let longer = h.max(w);
    if longer <= target {
        let s = target / longer;
        (w * s, h * s)
    } else {
        ((w * target / longer).max(1), (h * target / longer).max(1))
    }
}
