//! The per-layer table of `cnnc summary`: shapes, parameters, FLOPs and memory.

use crate::ir::{Model, Op, Optimizer, Window};
use std::fmt::Write as _;

/// A human-readable table for one model.
pub fn summary(model: &Model) -> String {
    let mut rows = vec![[
        "layer".to_string(),
        "kind".into(),
        "output".into(),
        "params".into(),
        "FLOPs".into(),
    ]];
    rows.push([
        "input".into(),
        String::new(),
        model.input.to_string(),
        String::new(),
        String::new(),
    ]);
    let mut flops: u128 = 0;
    let mut total_params: u128 = 0;
    let mut activations: u128 = model.input.len() as u128;
    for layer in &model.layers {
        // u128 throughout: the checker bounds each count, but sums and products of
        // bounded counts must not wrap either (a 32-bit usize would).
        let params: u128 = layer.params().iter().map(|p| p.len() as u128).sum();
        total_params += params;
        let f = layer.flops();
        flops += f;
        activations += layer.output.len() as u128;
        rows.push([
            layer.name.clone(),
            kind(&layer.op),
            layer.output.to_string(),
            if params > 0 { group(params) } else { "-".into() },
            group(f),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let total_width: usize = widths.iter().sum::<usize>() + 2 * 4;
    let _ = writeln!(out, "model {}", model.name);
    for (i, row) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        );
        if i == 0 {
            let _ = writeln!(out, "{}", "-".repeat(total_width));
        }
    }
    let _ = writeln!(out, "{}", "-".repeat(total_width));
    let params = total_params;
    let batch = model.train.as_ref().map_or(1, |t| t.batch) as u128;
    let _ = writeln!(out, "parameters:         {}", group(params));
    let _ = writeln!(out, "FLOPs per sample:   {} (forward)", group(flops));
    let _ = writeln!(out, "parameter memory:   {}", bytes(params * 4));
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
        bytes(activations * 4 * batch)
    );
    out
}

fn kind(op: &Op) -> String {
    let window = |word: &str, w: &Window| {
        let stride = if w.stride[0] == w.stride[1] {
            w.stride[0].to_string()
        } else {
            format!("{}x{}", w.stride[0], w.stride[1])
        };
        format!("{word} {}x{}/{stride}", w.size[0], w.size[1])
    };
    match op {
        Op::Conv(c) => window("conv", &c.window),
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
