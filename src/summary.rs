//! The per-layer table of `cnnc summary`: shapes, parameters, buffers, FLOPs and
//! memory. A residual block is a row, its body and shortcut indented below it,
//! then the add as a row of its own.

use crate::ir::{Layer, Model, Op, Optimizer, Window};
use std::fmt::Write as _;

/// The table's columns: name, kind, output, params, buffers, FLOPs.
type Row = [String; 6];

/// Totals over every layer, block contents included; u128 throughout: the checker
/// bounds each count, but sums and products of bounded counts must not wrap either
/// (a 32-bit usize would).
#[derive(Default)]
struct Totals {
    params: u128,
    buffers: u128,
    flops: u128,
    activations: u128,
}

/// A human-readable table for one model.
pub fn summary(model: &Model) -> String {
    let has_buffers = !model.buffers().is_empty();
    let mut rows: Vec<Row> = vec![[
        "layer".to_string(),
        "kind".into(),
        "output".into(),
        "params".into(),
        "buffers".into(),
        "FLOPs".into(),
    ]];
    rows.push([
        "input".into(),
        if model.normalize.is_some() {
            "normalize".into()
        } else {
            String::new()
        },
        model.input.to_string(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let mut totals = Totals {
        activations: model.input.len() as u128,
        ..Totals::default()
    };
    add_rows(&model.layers, 0, &mut rows, &mut totals);
    // The buffers column only when some layer has buffers.
    let columns: Vec<usize> = if has_buffers {
        (0..6).collect()
    } else {
        vec![0, 1, 2, 3, 5]
    };
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let total_width: usize = columns.iter().map(|&c| widths[c]).sum::<usize>() + 2 * (columns.len() - 1);
    let mut out = String::new();
    let _ = writeln!(out, "model {}", model.name);
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|&c| match c {
                0..=2 => format!("{:<w$}", row[c], w = widths[c]),
                _ => format!("{:>w$}", row[c], w = widths[c]),
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        if i == 0 {
            let _ = writeln!(out, "{}", "-".repeat(total_width));
        }
    }
    let _ = writeln!(out, "{}", "-".repeat(total_width));
    let params = totals.params;
    let batch = model.train.as_ref().map_or(1, |t| t.batch) as u128;
    let _ = writeln!(out, "parameters:         {}", group(params));
    if has_buffers {
        let _ = writeln!(
            out,
            "buffers:            {} (batchnorm running statistics, not trained)",
            group(totals.buffers)
        );
    }
    let _ = writeln!(out, "FLOPs per sample:   {} (forward)", group(totals.flops));
    let _ = writeln!(out, "parameter memory:   {}", bytes(params * 4));
    if has_buffers {
        let _ = writeln!(out, "buffer memory:      {}", bytes(totals.buffers * 4));
    }
    if let Some(train) = &model.train {
        // Gradients plus the optimizer's state per parameter.
        let state = match train.optimizer {
            Optimizer::Sgd { momentum: 0.0, .. } => 1,
            Optimizer::Sgd { .. } => 2,
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => 3,
        };
        let _ = writeln!(
            out,
            "training state:     {} (gradients and optimizer state)",
            bytes(params * 4 * state)
        );
    }
    let _ = writeln!(
        out,
        "activation memory:  {} at batch {batch}",
        bytes(totals.activations * 4 * batch)
    );
    out
}

/// The rows of a sequence of layers, `depth` levels inside residual blocks.
fn add_rows(layers: &[Layer], depth: usize, rows: &mut Vec<Row>, totals: &mut Totals) {
    let indent = "  ".repeat(depth);
    for layer in layers {
        let params: u128 = layer.params().iter().map(|p| p.len() as u128).sum();
        let buffers: u128 = layer.buffers().iter().map(|p| p.len() as u128).sum();
        let flops = layer.flops();
        totals.params += params;
        totals.buffers += buffers;
        totals.flops += flops;
        totals.activations += layer.output.len() as u128;
        let count = |n: u128| if n > 0 { group(n) } else { "-".into() };
        match &layer.op {
            Op::Residual(r) => {
                rows.push([
                    format!("{indent}{}", layer.name),
                    "residual".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
                add_rows(&r.body, depth + 1, rows, totals);
                if r.shortcut.is_empty() {
                    rows.push([
                        format!("{indent}  (shortcut)"),
                        "identity".into(),
                        layer.input.to_string(),
                        "-".into(),
                        "-".into(),
                        "0".into(),
                    ]);
                } else {
                    add_rows(&r.shortcut, depth + 1, rows, totals);
                }
                rows.push([
                    format!("{indent}  (add)"),
                    "add".into(),
                    layer.output.to_string(),
                    "-".into(),
                    "-".into(),
                    group(flops),
                ]);
            }
            Op::Conv(_)
            | Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::GlobalAvgPool
            | Op::Flatten
            | Op::Dense(_)
            | Op::BatchNorm(_)
            | Op::Dropout(_)
            | Op::Activation(_)
            | Op::Softmax
            | Op::ConvTranspose(_)
            | Op::GlobalMaxPool
            | Op::Upsample(_)
            | Op::Concat(_)
            | Op::Add(_)
            | Op::Mul(_)
            | Op::From(_) => rows.push([
                format!("{indent}{}", layer.name),
                kind(&layer.op),
                layer.output.to_string(),
                count(params),
                count(buffers),
                group(flops),
            ]),
        }
    }
}

fn kind(op: &Op) -> String {
    let pair = |v: [usize; 2]| {
        if v[0] == v[1] {
            v[0].to_string()
        } else {
            format!("{}x{}", v[0], v[1])
        }
    };
    let window = |word: &str, w: &Window| format!("{word} {}x{}/{}", w.size[0], w.size[1], pair(w.stride));
    match op {
        Op::Conv(c) => {
            let mut text = window("conv", &c.window);
            if c.dilation != [1, 1] {
                let _ = write!(text, " dil {}", pair(c.dilation));
            }
            if c.groups != 1 {
                let _ = write!(text, " g{}", c.groups);
            }
            text
        }
        Op::MaxPool(w) => window("maxpool", w),
        Op::AvgPool(w) => window("avgpool", w),
        Op::GlobalAvgPool => "avgpool global".into(),
        Op::Flatten => "flatten".into(),
        Op::Dense(_) => "dense".into(),
        Op::Dropout(p) => format!("dropout {p}"),
        Op::Activation(a) => a.keyword().into(),
        Op::Softmax => "softmax".into(),
        Op::BatchNorm(_) => "batchnorm".into(),
        Op::Residual(_) => "residual".into(),
        Op::ConvTranspose(t) => {
            let mut text = format!("convtranspose {}x{}/{}", t.size[0], t.size[1], pair(t.stride));
            if t.groups != 1 {
                let _ = write!(text, " g{}", t.groups);
            }
            text
        }
        Op::GlobalMaxPool => "maxpool global".into(),
        Op::Upsample(u) => format!(
            "upsample {}{}",
            pair(u.factor),
            if u.bilinear { " bilinear" } else { "" }
        ),
        Op::Concat(refs) => format!(
            "concat {}",
            refs.iter().map(|r| r.written.as_str()).collect::<Vec<_>>().join(" ")
        ),
        Op::Add(r) => format!("add {}", r.written),
        Op::Mul(r) => format!("mul {}", r.written),
        Op::From(r) => format!("from {}", r.written),
    }
}

/// `61706` as `61,706`.
fn group(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
