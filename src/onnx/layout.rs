//! The items an ONNX import writes and their text: activations as shorthands where
//! nothing else reads the layer's own output, names for the items that are read
//! again (`from`, `concat`, `add`, `mul`), the layout of the model, and the matching
//! of the kept weights to cnnc's tensor names.

use crate::ir::Shape;
use ndarray::ArrayD;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// One item of the model being written.
#[derive(Debug)]
pub struct Item {
    pub kind: Kind,
    /// A name taken from the ONNX node, written where the text checks with it.
    pub label: Option<String>,
    /// The name written (`NAME: ...`): the label, or a made-up one for an item that
    /// is read again; set by [`name_items`].
    pub name: Option<String>,
    /// The ONNX tensor this item's line outputs (after its activation shorthand);
    /// for `from`, the tensor it reads.
    pub out: String,
}

#[derive(Debug)]
pub enum Kind {
    /// A layer: its text (`conv 16 kernel 3 pad 1`), its activation shorthand, and
    /// its tensors in cnnc's order (parameters, then buffers).
    Layer {
        text: String,
        act: Option<String>,
        tensors: Vec<ArrayD<f32>>,
    },
    /// An activation on a line of its own.
    Act(String),
    Residual {
        body: Vec<Item>,
        shortcut: Vec<Item>,
        act: Option<String>,
    },
    /// `concat`, `add` or `mul` of the current tensor and the tensors `refs`.
    Join {
        word: &'static str,
        refs: Vec<String>,
        act: Option<String>,
    },
    /// `from NAME`: the next item reads the tensor `out`.
    From,
}

impl Item {
    /// A layer item (its output is set by the walk).
    pub fn layer(text: &str, label: Option<String>, tensors: Vec<ArrayD<f32>>) -> Item {
        Item::new(
            Kind::Layer {
                text: text.to_string(),
                act: None,
                tensors,
            },
            label,
        )
    }

    pub fn act(word: &str, label: Option<String>) -> Item {
        Item::new(Kind::Act(word.to_string()), label)
    }

    pub fn new(kind: Kind, label: Option<String>) -> Item {
        Item {
            kind,
            label,
            name: None,
            out: String::new(),
        }
    }

    /// Whether an activation may follow on the item's line.
    fn takes_shorthand(&self) -> bool {
        match &self.kind {
            Kind::Layer { text, act, .. } => {
                act.is_none() && ["conv", "dense", "batchnorm"].iter().any(|k| text.starts_with(k))
            }
            Kind::Residual { act, .. } => act.is_none(),
            Kind::Join { word, act, .. } => act.is_none() && *word != "concat",
            Kind::Act(_) | Kind::From => false,
        }
    }

    fn shorthand(&mut self) -> Option<&mut Option<String>> {
        match &mut self.kind {
            Kind::Layer { act, .. } | Kind::Residual { act, .. } | Kind::Join { act, .. } => Some(act),
            Kind::Act(_) | Kind::From => None,
        }
    }
}

/// The tensors the items of one block read by name.
fn referenced(items: &[Item]) -> HashSet<&str> {
    let mut out = HashSet::new();
    for item in items {
        match &item.kind {
            Kind::From => {
                out.insert(item.out.as_str());
            }
            Kind::Join { refs, .. } => out.extend(refs.iter().map(String::as_str)),
            _ => {}
        }
    }
    out
}

/// An activation without a label goes on the line of the item before it (`conv ...
/// relu`), unless something else reads that item's own output: a name refers to the
/// output after the shorthand.
pub fn fold_activations(items: Vec<Item>) -> Vec<Item> {
    let read: HashSet<String> = referenced(&items).into_iter().map(str::to_string).collect();
    let mut out: Vec<Item> = Vec::with_capacity(items.len());
    for mut item in items {
        if let (Kind::Act(word), None) = (&item.kind, &item.label) {
            if let Some(prev) = out.last_mut().filter(|p| p.takes_shorthand() && !read.contains(&p.out)) {
                if let Some(slot) = prev.shorthand() {
                    *slot = Some(word.clone());
                }
                prev.out = std::mem::take(&mut item.out);
                continue;
            }
        }
        if let Kind::Residual { body, shortcut, .. } = &mut item.kind {
            *body = fold_activations(std::mem::take(body));
            *shortcut = fold_activations(std::mem::take(shortcut));
        }
        out.push(item);
    }
    out
}

/// Sets each item's written name: its label (with `labels`), and for an item read
/// by name without one, `t1`, `t2`, ... (no default name has that form).
pub fn name_items(items: &mut [Item], labels: bool) {
    let read: HashSet<String> = referenced(items).into_iter().map(str::to_string).collect();
    let mut taken: HashSet<String> = HashSet::new();
    if labels {
        taken.extend(items.iter().filter_map(|i| i.label.clone()));
    }
    let mut k = 0;
    for item in items.iter_mut() {
        item.name = if labels { item.label.clone() } else { None };
        if matches!(item.kind, Kind::From) {
            item.name = None;
        } else if item.name.is_none() && read.contains(&item.out) {
            let name = loop {
                k += 1;
                let n = format!("t{k}");
                if !taken.contains(&n) {
                    break n;
                }
            };
            taken.insert(name.clone());
            item.name = Some(name);
        }
        if let Kind::Residual { body, shortcut, .. } = &mut item.kind {
            name_items(body, labels);
            name_items(shortcut, labels);
        }
    }
}

/// How the model's text is laid out.
pub struct Layout<'a> {
    pub name: &'a str,
    pub what: &'a str,
    pub nodes: usize,
    pub opset: i64,
    pub input: Shape,
    /// The ONNX tensor the model's items start from (`input` in the text).
    pub start: &'a str,
    pub normalize: Option<(Vec<f32>, Vec<f32>)>,
    pub train: bool,
}

impl Layout<'_> {
    /// The model's text; an error when an item reads a tensor no earlier item of
    /// its block writes (a bug in the walk).
    pub fn text(&self, items: &[Item]) -> Result<String, String> {
        let mut s = format!(
            "// Imported by `cnnc import` from {} ({} nodes, opset {}).\n",
            self.what, self.nodes, self.opset
        );
        let _ = write!(s, "model {} {{\n    input {}", self.name, self.input);
        if let Some((mean, std)) = &self.normalize {
            let list = |v: &[f32]| v.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(" ");
            let _ = write!(s, " normalize mean {} std {}", list(mean), list(std));
        }
        s.push('\n');
        lines(&mut s, items, 1, Some(self.start))?;
        if self.train {
            s += "\n    // A default recipe for fine-tuning: edit it to suit the data.\n";
            s += "    train {\n        loss cross_entropy\n        optimizer sgd lr 0.01 momentum 0.9\n";
            s += "        weight_decay 5e-4\n        schedule cosine\n        batch 32\n        epochs 5\n    }\n";
        }
        s += "}\n";
        Ok(s)
    }
}

/// The lines of one block; `start` is the tensor `input` names (the model's block).
fn lines(s: &mut String, items: &[Item], depth: usize, start: Option<&str>) -> Result<(), String> {
    let indent = "    ".repeat(depth);
    let mut names: HashMap<&str, &str> = HashMap::new();
    if let Some(start) = start {
        names.insert(start, crate::ir::Ref::INPUT);
    }
    let name_of = |names: &HashMap<&str, &str>, t: &str| {
        names.get(t).map(|n| n.to_string()).ok_or_else(|| {
            format!("the importer refers to tensor `{t}` before it has a name (a bug; please report it)")
        })
    };
    let act_text = |act: &Option<String>| act.as_ref().map(|a| format!(" {a}")).unwrap_or_default();
    for item in items {
        let label = item.name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default();
        match &item.kind {
            Kind::Layer { text, act, .. } => {
                let _ = writeln!(s, "{indent}{label}{text}{}", act_text(act));
            }
            Kind::Act(word) => {
                let _ = writeln!(s, "{indent}{label}{word}");
            }
            Kind::Residual { body, shortcut, act } => {
                let _ = writeln!(s, "{indent}{label}residual {{");
                lines(s, body, depth + 1, None)?;
                if !shortcut.is_empty() {
                    let _ = writeln!(s, "{indent}    shortcut {{");
                    lines(s, shortcut, depth + 2, None)?;
                    let _ = writeln!(s, "{indent}    }}");
                }
                let _ = writeln!(s, "{indent}}}{}", act_text(act));
            }
            Kind::Join { word, refs, act } => {
                let refs = refs.iter().map(|r| name_of(&names, r)).collect::<Result<Vec<_>, _>>()?;
                let _ = writeln!(s, "{indent}{label}{word} {}{}", refs.join(" "), act_text(act));
            }
            Kind::From => {
                let _ = writeln!(s, "{indent}from {}", name_of(&names, &item.out)?);
            }
        }
        if let (Some(name), false) = (&item.name, matches!(item.kind, Kind::From)) {
            names.insert(&item.out, name);
        }
    }
    Ok(())
}

/// The kept tensors under cnnc's names: the checked model's layers with parameters
/// or buffers, in order, take the items' tensors in order.
pub fn name_tensors(source: &str, model: &str, items: &[Item]) -> Result<Vec<(String, ArrayD<f32>)>, String> {
    let models = crate::compile(source).map_err(|d| {
        format!(
            "the imported model does not check (a bug in the importer; please report it):\n{}",
            d.render("imported.cnn", source)
        )
    })?;
    let ir = models
        .iter()
        .find(|m| m.name == model)
        .ok_or("the imported model is missing")?;
    let mut kept = Vec::new();
    collect(items, &mut kept);
    let layers: Vec<_> = ir
        .all_layers()
        .into_iter()
        .filter(|l| !l.params().is_empty() || !l.buffers().is_empty())
        .collect();
    if layers.len() != kept.len() {
        return Err(format!(
            "the importer kept weights for {} layers, the model has {} (a bug; please report it)",
            kept.len(),
            layers.len()
        ));
    }
    let mut out = Vec::new();
    for (layer, tensors) in layers.into_iter().zip(kept) {
        let names = layer.params().into_iter().chain(layer.buffers());
        for (p, t) in names.zip(tensors) {
            if p.shape != t.shape() {
                return Err(format!(
                    "tensor `{}` is {:?} in the ONNX file, the model needs {:?}",
                    p.name,
                    t.shape(),
                    p.shape
                ));
            }
            out.push((p.name, t.clone()));
        }
    }
    Ok(out)
}

fn collect<'a>(items: &'a [Item], out: &mut Vec<&'a [ArrayD<f32>]>) {
    for item in items {
        match &item.kind {
            Kind::Layer { tensors, .. } if !tensors.is_empty() => out.push(tensors),
            Kind::Residual { body, shortcut, .. } => {
                collect(body, out);
                collect(shortcut, out);
            }
            _ => {}
        }
    }
}
