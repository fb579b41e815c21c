//! A checked model drawn as an SVG diagram: one box per layer, top to bottom, with
//! the layer's output shape and parameter count; a residual block as two branches,
//! the body on the main line and the shortcut to its right (the identity shortcut
//! a plain line), joined at an add node. v3 references are drawn as a graph: each
//! `add`, `concat`, `mul` and `from` gets a line from the box of every output it
//! reads, routed in a lane of its own right of the column; a `from` box takes no
//! line from the box above it (the branch before it ends there).
//!
//! The SVG is written by hand: plotters draws charts on axes, not boxes-and-arrows
//! diagrams, and the layout here is a single column with side branches, which a few
//! lines of arithmetic place exactly. Text uses a monospace font, so box widths
//! follow from character counts without measuring fonts.

use crate::ir::{Activation, Layer, Model, Op, Window};
use std::fmt::Write;

const FONT: f64 = 13.0;
/// The advance of one monospace character at `FONT` (0.6 em).
const CHAR: f64 = FONT * 0.6;
const BOX_H: f64 = 40.0;
const BOX_PAD: f64 = 12.0;
const MIN_BOX_W: f64 = 150.0;
/// Vertical space between consecutive items (holds an arrow).
const GAP: f64 = 24.0;
/// Inner margin of a residual block's frame.
const FRAME_PAD: f64 = 14.0;
/// The band at the top of a frame holding its label.
const FRAME_LABEL: f64 = 20.0;
/// Horizontal space between a body and its shortcut.
const COL_GAP: f64 = 36.0;
/// The add node's radius.
const ADD_R: f64 = 11.0;
const MARGIN: f64 = 20.0;
const TITLE_H: f64 = 46.0;
/// The spacing of the lanes reference lines run down, right of the column.
const LANE: f64 = 14.0;

/// What colour a box gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Input,
    Conv,
    Pool,
    Dense,
    Norm,
    Activation,
    Shape,
}

impl Kind {
    /// (fill, stroke)
    fn colors(self) -> (&'static str, &'static str) {
        match self {
            Kind::Input => ("#eeeeee", "#555555"),
            Kind::Conv => ("#dbe9f6", "#2f6ea5"),
            Kind::Pool => ("#dff0d8", "#3c7a3c"),
            Kind::Dense => ("#fde5cc", "#c0661a"),
            Kind::Norm => ("#ece0f5", "#7b4fa0"),
            Kind::Activation => ("#f7f7f7", "#8a8a8a"),
            Kind::Shape => ("#fff6cc", "#a08a1a"),
        }
    }
}

/// One thing in a column: a layer's box or a residual block.
enum Item {
    Box {
        title: String,
        detail: String,
        kind: Kind,
        /// The IR name of the layer (`input` for the input).
        name: String,
        /// v3: the outputs it reads by name, and whether it is a `from`.
        reads: Vec<String>,
        from: bool,
    },
    Block {
        label: String,
        add: String,
        body: Vec<Item>,
        shortcut: Vec<Item>,
    },
}

/// How far a column reaches left and right of its axis, and down.
#[derive(Debug, Clone, Copy, Default)]
struct Extent {
    left: f64,
    right: f64,
    height: f64,
}

fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR
}

impl Item {
    fn extent(&self) -> Extent {
        match self {
            Item::Box { title, detail, .. } => {
                let w = (text_width(title).max(text_width(detail)) + 2.0 * BOX_PAD).max(MIN_BOX_W);
                Extent {
                    left: w / 2.0,
                    right: w / 2.0,
                    height: BOX_H,
                }
            }
            Item::Block {
                label,
                add,
                body,
                shortcut,
            } => {
                let b = column_extent(body);
                let s = column_extent(shortcut);
                let layout = block_layout(b, s);
                let label_w = text_width(label) * (FONT - 1.0) / FONT;
                // The add node's label sits to its left.
                let add_w = ADD_R + 8.0 + text_width(add) * 0.9;
                // The label sits left of the axis, clear of the line into the fork.
                let left = b.left.max(add_w).max(label_w + 6.0) + FRAME_PAD;
                let right = layout.shortcut_x + layout.shortcut_right + FRAME_PAD;
                Extent {
                    left,
                    right,
                    height: layout.height,
                }
            }
        }
    }
}

/// Where the parts of a block go, relative to its axis and top.
struct BlockLayout {
    fork_y: f64,
    inner_y: f64,
    shortcut_x: f64,
    /// How far the shortcut column reaches right of its own axis.
    shortcut_right: f64,
    add_y: f64,
    height: f64,
}

fn block_layout(body: Extent, shortcut: Extent) -> BlockLayout {
    let fork_y = FRAME_LABEL + 10.0;
    let inner_y = fork_y + GAP;
    let identity = shortcut.height == 0.0;
    let (shortcut_x, shortcut_right) = if identity {
        // A plain line, with "identity" written beside it.
        (body.right + COL_GAP, 8.0 + text_width("identity") * 0.85)
    } else {
        (body.right + COL_GAP + shortcut.left, shortcut.right)
    };
    let add_y = inner_y + body.height.max(shortcut.height) + GAP + ADD_R;
    BlockLayout {
        fork_y,
        inner_y,
        shortcut_x,
        shortcut_right,
        add_y,
        height: add_y + ADD_R + FRAME_PAD,
    }
}

fn column_extent(items: &[Item]) -> Extent {
    let mut e = Extent::default();
    for (i, item) in items.iter().enumerate() {
        let x = item.extent();
        e.left = e.left.max(x.left);
        e.right = e.right.max(x.right);
        e.height += x.height + if i > 0 { GAP } else { 0.0 };
    }
    e
}

/// `3` for a square window, `3x5` otherwise.
fn pair(v: [usize; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        format!("{}x{}", v[0], v[1])
    }
}

/// `, stride 2, pad 1` for the parts of a window that are not defaults.
fn window_options(w: &Window, stride_default: [usize; 2]) -> String {
    let mut s = String::new();
    if w.stride != stride_default {
        let _ = write!(s, ", stride {}", pair(w.stride));
    }
    if w.pad_before != [0, 0] || w.pad_after != [0, 0] {
        if w.pad_before == w.pad_after {
            let _ = write!(s, ", pad {}", pair(w.pad_before));
        } else {
            let _ = write!(
                s,
                ", pad {},{},{},{}",
                w.pad_before[0], w.pad_before[1], w.pad_after[0], w.pad_after[1]
            );
        }
    }
    if w.ceil {
        s.push_str(", ceil");
    }
    s
}

/// What a layer does, in the language's words, and the word its default names start with.
fn describe(op: &Op) -> (String, &'static str, Kind) {
    match op {
        Op::Conv(c) => {
            let mut s = format!("conv {}, {}", c.filters, {
                let [h, w] = c.window.size;
                format!("{h}x{w}")
            });
            s += &window_options(&c.window, [1, 1]);
            if c.dilation != [1, 1] {
                let _ = write!(s, ", dilation {}", pair(c.dilation));
            }
            if c.groups != 1 {
                let _ = write!(s, ", groups {}", c.groups);
            }
            if !c.bias {
                s.push_str(", no bias");
            }
            (s, "conv", Kind::Conv)
        }
        Op::MaxPool(w) => (
            format!("maxpool {}{}", pair(w.size), window_options(w, w.size)),
            "maxpool",
            Kind::Pool,
        ),
        Op::AvgPool(w) => (
            format!("avgpool {}{}", pair(w.size), window_options(w, w.size)),
            "avgpool",
            Kind::Pool,
        ),
        Op::GlobalAvgPool => ("avgpool global".into(), "avgpool", Kind::Pool),
        Op::Flatten => ("flatten".into(), "flatten", Kind::Shape),
        Op::Dense(d) => (
            format!("dense {}{}", d.units, if d.bias { "" } else { ", no bias" }),
            "dense",
            Kind::Dense,
        ),
        Op::BatchNorm(_) => ("batchnorm".into(), "batchnorm", Kind::Norm),
        Op::Dropout(p) => (format!("dropout {p}"), "dropout", Kind::Shape),
        Op::Activation(a) => {
            let text = match a {
                Activation::LeakyRelu(slope) => format!("leaky_relu {slope}"),
                other => other.text(),
            };
            (text, a.keyword(), Kind::Activation)
        }
        Op::Softmax => ("softmax".into(), "softmax", Kind::Activation),
        Op::Residual(_) => ("residual".into(), "residual", Kind::Shape),
        Op::ConvTranspose(t) => {
            let mut s = format!("convtranspose {}, {}", t.filters, pair(t.size));
            if t.stride != [1, 1] {
                let _ = write!(s, ", stride {}", pair(t.stride));
            }
            if t.pad != [0, 0] {
                let _ = write!(s, ", pad {}", pair(t.pad));
            }
            if t.output_pad != [0, 0] {
                let _ = write!(s, ", output_pad {}", pair(t.output_pad));
            }
            if t.dilation != [1, 1] {
                let _ = write!(s, ", dilation {}", pair(t.dilation));
            }
            if t.groups != 1 {
                let _ = write!(s, ", groups {}", t.groups);
            }
            if !t.bias {
                s.push_str(", no bias");
            }
            (s, "convtranspose", Kind::Conv)
        }
        Op::GlobalMaxPool => ("maxpool global".into(), "maxpool", Kind::Pool),
        Op::Upsample(u) => (
            format!(
                "upsample {}{}",
                pair(u.factor),
                if u.bilinear { ", bilinear" } else { "" }
            ),
            "upsample",
            Kind::Pool,
        ),
        Op::Concat(refs) => (
            format!(
                "concat {}",
                refs.iter().map(|r| r.written.as_str()).collect::<Vec<_>>().join(" ")
            ),
            "concat",
            Kind::Shape,
        ),
        Op::Add(r) => (format!("add {}", r.written), "add", Kind::Shape),
        Op::Mul(r) => (format!("mul {}", r.written), "mul", Kind::Shape),
        Op::From(r) => (format!("from {}", r.written), "from", Kind::Shape),
    }
}

/// `61,706`
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn params_text(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => " · 1 param".into(),
        n => format!(" · {} params", thousands(n)),
    }
}

/// All parameters of a layer, those inside a residual block included.
fn layer_params(layer: &Layer) -> usize {
    let own: usize = layer.params().iter().map(|p| p.len()).sum();
    let inner: usize = match &layer.op {
        Op::Residual(r) => r.body.iter().chain(&r.shortcut).map(layer_params).sum(),
        _ => 0,
    };
    own + inner
}

fn items(layers: &[Layer]) -> Vec<Item> {
    layers
        .iter()
        .map(|layer| {
            let short = layer.name.rsplit('.').next().unwrap_or(&layer.name);
            match &layer.op {
                Op::Residual(r) => Item::Block {
                    label: format!("{short}{}", params_text(layer_params(layer))),
                    add: format!("add, out {}", layer.output),
                    body: items(&r.body),
                    shortcut: items(&r.shortcut),
                },
                op => {
                    let (text, word, kind) = describe(op);
                    // `conv1` needs no name beside `conv 6, 5x5`; a user's name does.
                    let title =
                        if short.trim_end_matches(|c: char| c.is_ascii_digit()) == word || matches!(op, Op::From(_)) {
                            text
                        } else {
                            format!("{short}: {text}")
                        };
                    let reads = match &layer.op {
                        Op::Concat(refs) => refs.iter().map(|r| r.name.clone()).collect(),
                        Op::Add(r) | Op::Mul(r) | Op::From(r) => vec![r.name.clone()],
                        _ => Vec::new(),
                    };
                    Item::Box {
                        title,
                        detail: format!("out {}{}", layer.output, params_text(layer_params(layer))),
                        kind,
                        name: layer.name.clone(),
                        reads,
                        from: matches!(layer.op, Op::From(_)),
                    }
                }
            }
        })
        .collect()
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

struct Svg {
    out: String,
    /// Each box's right edge and middle, by IR name, and the reference lines to draw.
    places: std::collections::HashMap<String, (f64, f64)>,
    links: Vec<(String, (f64, f64))>,
}

impl Svg {
    fn line(&mut self, points: &[(f64, f64)], arrow: bool) {
        let pts: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            self.out,
            r##"<polyline points="{}" fill="none" stroke="#444" stroke-width="1.5"{}/>"##,
            pts.join(" "),
            if arrow { r#" marker-end="url(#arrow)""# } else { "" }
        );
    }

    fn text(&mut self, x: f64, y: f64, text: &str, anchor: &str, size: f64, style: &str) {
        let _ = writeln!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" {style}>{}</text>"#,
            escape(text)
        );
    }

    /// Draws `items` down the axis `x` from `y`; returns the bottom.
    fn column(&mut self, items: &[Item], x: f64, mut y: f64) -> f64 {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                // Boxes get an arrowhead; a block's line runs on to its fork; a
                // `from` reads another output, not the box above it.
                let arrow = matches!(item, Item::Box { .. });
                if !matches!(item, Item::Box { from: true, .. }) {
                    self.line(&[(x, y), (x, y + GAP - if arrow { 1.5 } else { 0.0 })], arrow);
                }
                y += GAP;
            }
            y = self.item(item, x, y);
        }
        y
    }

    fn item(&mut self, item: &Item, x: f64, y: f64) -> f64 {
        let e = item.extent();
        match item {
            Item::Box {
                title,
                detail,
                kind,
                name,
                reads,
                ..
            } => {
                let (fill, stroke) = kind.colors();
                let w = e.left + e.right;
                let middle = y + BOX_H / 2.0;
                self.places.insert(name.clone(), (x + e.right, middle));
                for r in reads {
                    self.links.push((r.clone(), (x + e.right, middle)));
                }
                let _ = writeln!(
                    self.out,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{w:.1}" height="{BOX_H}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
                    x - e.left
                );
                self.text(
                    x,
                    y + 17.0,
                    title,
                    "middle",
                    FONT,
                    r##"font-weight="bold" fill="#222""##,
                );
                self.text(x, y + 33.0, detail, "middle", FONT - 1.0, r##"fill="#555""##);
            }
            Item::Block {
                label,
                add,
                body,
                shortcut,
            } => {
                let b = column_extent(body);
                let s = column_extent(shortcut);
                let l = block_layout(b, s);
                let _ = writeln!(
                    self.out,
                    r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" rx="10" fill="#fafafa" stroke="#999" stroke-width="1.2" stroke-dasharray="6 4"/>"##,
                    x - e.left,
                    e.left + e.right,
                    e.height
                );
                self.text(
                    x - e.left + 10.0,
                    y + 15.0,
                    label,
                    "start",
                    FONT - 1.0,
                    r##"fill="#666" font-style="italic""##,
                );
                let fork = y + l.fork_y;
                let inner = y + l.inner_y;
                let add_y = y + l.add_y;
                let sx = x + l.shortcut_x;
                // Into the block, to the fork.
                self.line(&[(x, y), (x, fork)], false);
                let _ = writeln!(
                    self.out,
                    r##"<circle cx="{x:.1}" cy="{fork:.1}" r="3.5" fill="#444"/>"##
                );
                // Body: down the axis into the add node.
                self.line(&[(x, fork), (x, inner - 1.5)], true);
                let body_end = self.column(body, x, inner);
                self.line(&[(x, body_end), (x, add_y - ADD_R - 1.5)], true);
                // Shortcut: right, down, back left into the add node.
                if shortcut.is_empty() {
                    self.line(&[(x, fork), (sx, fork), (sx, add_y), (x + ADD_R + 1.5, add_y)], true);
                    self.text(
                        sx + 8.0,
                        (fork + add_y) / 2.0 + 4.0,
                        "identity",
                        "start",
                        FONT - 2.0,
                        r##"fill="#666" font-style="italic""##,
                    );
                } else {
                    self.line(&[(x, fork), (sx, fork), (sx, inner - 1.5)], true);
                    let end = self.column(shortcut, sx, inner);
                    self.line(&[(sx, end), (sx, add_y), (x + ADD_R + 1.5, add_y)], true);
                }
                let _ = writeln!(
                    self.out,
                    r##"<circle cx="{x:.1}" cy="{add_y:.1}" r="{ADD_R}" fill="#fff" stroke="#444" stroke-width="1.5"/>"##
                );
                self.line(&[(x - 5.5, add_y), (x + 5.5, add_y)], false);
                self.line(&[(x, add_y - 5.5), (x, add_y + 5.5)], false);
                self.text(x - ADD_R - 8.0, add_y + 4.0, add, "end", FONT - 1.0, r##"fill="#555""##);
                // Out of the add node to the block's bottom edge.
                self.line(&[(x, add_y + ADD_R), (x, y + e.height)], false);
            }
        }
        y + e.height
    }
}

/// The SVG text of `model`'s diagram.
pub fn model_svg(model: &Model) -> String {
    let mut input_title = format!("input {}", model.input);
    if model.normalize.is_some() {
        input_title += ", normalize";
    }
    let mut all = vec![Item::Box {
        title: input_title,
        detail: format!("{} values per sample", thousands(model.input.len())),
        kind: Kind::Input,
        name: crate::ir::Ref::INPUT.to_string(),
        reads: Vec::new(),
        from: false,
    }];
    all.extend(items(&model.layers));
    let e = column_extent(&all);
    let title = format!(
        "{}: {} parameters, output {}",
        model.name,
        thousands(model.param_count()),
        model.output()
    );
    let width = (e.left + e.right).max(text_width(&title) * 1.25) + 2.0 * MARGIN;
    let axis = MARGIN + e.left.max((width - 2.0 * MARGIN) / 2.0);
    let mut refs = Vec::new();
    crate::ir::references(&model.layers, &mut refs);
    let lanes = refs.len() as f64 * LANE;
    let width = width.max(axis + e.right + MARGIN + lanes);
    let height = TITLE_H + e.height + 2.0 * MARGIN;
    let mut svg = Svg {
        out: String::new(),
        places: Default::default(),
        links: Vec::new(),
    };
    let _ = writeln!(
        svg.out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">"#
    );
    svg.out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#444\"/></marker></defs>\n",
    );
    let _ = writeln!(svg.out, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    svg.text(
        width / 2.0,
        MARGIN + 18.0,
        &title,
        "middle",
        16.0,
        r##"font-weight="bold" fill="#111""##,
    );
    svg.column(&all, axis, MARGIN + TITLE_H);
    // References: right from the output read, down its lane, left into the reader.
    let right = axis + e.right;
    let links = std::mem::take(&mut svg.links);
    for (k, (from, (tx, ty))) in links.into_iter().enumerate() {
        if let Some(&(fx, fy)) = svg.places.get(&from) {
            let lane = right + LANE * (k as f64 + 1.0);
            svg.line(&[(fx, fy), (lane, fy), (lane, ty), (tx + 1.5, ty)], true);
        }
    }
    svg.out.push_str("</svg>\n");
    svg.out
}
