//! The fixture harness: checks any `Model`/`Train` implementation against a fixture
//! case directory (`model.cnn` + `case.safetensors`, format in tests/fixtures/README.md):
//! the PyTorch cases in tests/fixtures/ and the interpreter's own cases in
//! tests/fixtures_own/ (docs/interpreter-fixtures.md). The interpreter's test
//! (tests/integration/fixtures.rs) runs it with the interpreter; the generated-code
//! test (tests/isa/generated_fixtures.rs) calls the same [`check_case`] with
//! generated models. Self-contained: it needs nothing else from tests/common.
#![allow(dead_code)]

use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::{Model, Target, Train};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The PyTorch cases (a copy of the shared fixtures).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// The cases computed by the f64 interpreter (constructs PyTorch has no case for).
pub fn own_fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures_own")
}

/// The names of every case directory in `dir`, sorted.
pub fn case_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{} is not readable: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("case.safetensors").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One fixture case: its model text, tensors and tolerances.
pub struct Case {
    pub name: String,
    pub source: String,
    tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
    /// `(key, rtol, atol)`; keys ending in `/` are prefixes.
    tolerances: Vec<(String, f64, f64)>,
}

impl Case {
    pub fn load(dir: &Path) -> Case {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = std::fs::read_to_string(dir.join("model.cnn")).expect("model.cnn is readable");
        let bytes = std::fs::read(dir.join("case.safetensors")).expect("case.safetensors is readable");
        let (_, metadata) = SafeTensors::read_metadata(&bytes).expect("safetensors header");
        let tolerances = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get("tolerances"))
            .map(|json| parse_tolerances(json))
            .unwrap_or_default();
        let st = SafeTensors::deserialize(&bytes).expect("safetensors file");
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
            .collect();
        Case {
            name,
            source,
            tensors,
            tolerances,
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The names that start with `prefix`, with the prefix removed.
    pub fn names_under(&self, prefix: &str) -> Vec<String> {
        self.tensors
            .keys()
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_string))
            .collect()
    }

    /// An f32 tensor.
    pub fn f32(&self, name: &str) -> Option<ArrayD<f32>> {
        let (dtype, shape, data) = self.tensors.get(name)?;
        assert_eq!(*dtype, Dtype::F32, "{name} is not f32");
        let values = data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Some(ArrayD::from_shape_vec(IxDyn(shape), values).expect("tensor size matches its shape"))
    }

    /// v3: an i64 `[N, H, W]` tensor of label maps.
    pub fn label_maps(&self, name: &str) -> Option<cnnc::ndarray::Array3<usize>> {
        let (_, shape, _) = self.tensors.get(name)?;
        let &[n, h, w] = shape.as_slice() else {
            return None;
        };
        let flat = self.labels(name)?;
        cnnc::ndarray::Array3::from_shape_vec((n, h, w), flat.to_vec()).ok()
    }

    /// An i64 tensor of class labels.
    pub fn labels(&self, name: &str) -> Option<Array1<usize>> {
        let (dtype, _, data) = self.tensors.get(name)?;
        if *dtype != Dtype::I64 {
            return None;
        }
        Some(
            data.chunks_exact(8)
                .map(|b| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    i64::from_le_bytes(a) as usize
                })
                .collect(),
        )
    }

    /// `(rtol, atol)` for a tensor: its own key, else the longest prefix key, else the
    /// README's recommended values.
    pub fn tolerance(&self, name: &str) -> (f64, f64) {
        if let Some((_, r, a)) = self.tolerances.iter().find(|(k, _, _)| k == name) {
            return (*r, *a);
        }
        let prefix = self
            .tolerances
            .iter()
            .filter(|(k, _, _)| k.ends_with('/') && name.starts_with(k.as_str()))
            .max_by_key(|(k, _, _)| k.len());
        if let Some((_, r, a)) = prefix {
            return (*r, *a);
        }
        match name {
            n if n.starts_with("grad/") => (1e-3, 1e-5),
            "lr" => (1e-6, 0.0),
            _ => (1e-4, 1e-6),
        }
    }
}

/// Parses `{"key": [rtol, atol], ...}` (the fixtures' only JSON: flat, no escapes).
pub fn parse_tolerances(json: &str) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    let mut rest = json.trim().trim_start_matches('{').trim_end_matches('}');
    while let Some(open) = rest.find('"') {
        let after = &rest[open + 1..];
        let close = after.find('"').expect("closing quote in tolerances");
        let key = after[..close].to_string();
        let after = &after[close + 1..];
        let lb = after.find('[').expect("[ in tolerances");
        let rb = after.find(']').expect("] in tolerances");
        let nums: Vec<f64> = after[lb + 1..rb]
            .split(',')
            .map(|s| s.trim().parse().expect("a number in tolerances"))
            .collect();
        assert_eq!(nums.len(), 2, "tolerance of {key} is [rtol, atol]");
        out.push((key, nums[0], nums[1]));
        rest = &after[rb + 1..];
    }
    out
}

/// The largest `|got - want| / (atol + rtol |want|)` over the elements (1.0 = at the
/// tolerance), or an explanation when the shapes differ.
pub fn error_ratio(got: &ArrayD<f32>, want: &ArrayD<f32>, rtol: f64, atol: f64) -> Result<f64, String> {
    if got.shape() != want.shape() {
        return Err(format!("shape {:?}, expected {:?}", got.shape(), want.shape()));
    }
    let mut worst = 0.0f64;
    for (&g, &w) in got.iter().zip(want.iter()) {
        let (g, w) = (g as f64, w as f64);
        let diff = (g - w).abs();
        let bound = atol + rtol * w.abs();
        let ratio = if diff == 0.0 {
            0.0
        } else if g.is_finite() && bound > 0.0 {
            diff / bound
        } else {
            f64::INFINITY
        };
        worst = worst.max(ratio);
    }
    Ok(worst)
}

/// What one case check found: per group (`fwd`, `grad`, `step`, `lr`), the largest
/// error ratio and the number of tensors compared; and every failure.
#[derive(Debug, Default)]
pub struct Report {
    pub case: String,
    pub groups: BTreeMap<&'static str, (f64, usize)>,
    pub failures: Vec<String>,
}

impl Report {
    fn compare(&mut self, case: &Case, group: &'static str, name: &str, got: &ArrayD<f32>) {
        let Some(want) = case.f32(name) else {
            self.failures.push(format!("{name}: missing from the case"));
            return;
        };
        let (rtol, atol) = case.tolerance(name);
        let entry = self.groups.entry(group).or_insert((0.0, 0));
        entry.1 += 1;
        match error_ratio(got, &want, rtol, atol) {
            Ok(ratio) => {
                entry.0 = entry.0.max(ratio);
                if ratio > 1.0 || ratio.is_nan() {
                    self.failures
                        .push(format!("{name}: error ratio {ratio:.3} > 1 (rtol {rtol}, atol {atol})"));
                }
            }
            Err(msg) => {
                entry.0 = f64::INFINITY;
                self.failures.push(format!("{name}: {msg}"));
            }
        }
    }

    fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    pub fn ratio(&self, group: &str) -> Option<f64> {
        self.groups.get(group).map(|g| g.0)
    }

    /// How many tensors of a group were compared.
    pub fn compared(&self, group: &str) -> usize {
        self.groups.get(group).map_or(0, |g| g.1)
    }

    /// `| case | fwd | grad | step | lr | result |`, `-` for groups the case does not have.
    pub fn table_row(&self) -> String {
        let cell = |g: &str| self.ratio(g).map_or("-".to_string(), |r| format!("{r:.3}"));
        format!(
            "| `{}` | {} | {} | {} | {} | {} |",
            self.case,
            cell("fwd"),
            cell("grad"),
            cell("step"),
            cell("lr"),
            if self.failures.is_empty() { "pass" } else { "FAIL" }
        )
    }
}

fn scalar(a: f32) -> ArrayD<f32> {
    ArrayD::from_elem(IxDyn(&[1]), a)
}

/// Sorted, for comparing name lists.
fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// Builds the case's model with `build(model.cnn text)` and loads its `params/` with
/// `set_param` and `buffers/` with `set_buffer`.
fn load_model(case: &Case, build: &dyn Fn(&str) -> Box<dyn Train>, report: &mut Report) -> Box<dyn Train> {
    let mut model = build(&case.source);
    set_state(case, &mut *model, report);
    model
}

/// Sets every `params/*` and `buffers/*` tensor of the case; the names must be the
/// model's parameters and buffers.
fn set_state<M: Model + ?Sized>(case: &Case, model: &mut M, report: &mut Report) {
    for (prefix, have) in [("params/", model.param_names()), ("buffers/", model.buffer_names())] {
        let names = case.names_under(prefix);
        if sorted(names.clone()) != sorted(have.clone()) {
            report.fail(format!("the model's {prefix} are {have:?}, the case has {names:?}"));
        }
        for name in names {
            let Some(value) = case.f32(&format!("{prefix}{name}")) else {
                continue;
            };
            let set = if prefix == "params/" {
                model.set_param(&name, value.view())
            } else {
                model.set_buffer(&name, value.view())
            };
            if let Err(e) = set {
                report.fail(format!("setting {prefix}{name}: {e}"));
            }
        }
    }
}

/// The buffers are still those of the case's `buffers/` (exactly).
fn check_buffers_unchanged<M: Model + ?Sized>(case: &Case, model: &M, after: &str, report: &mut Report) {
    for name in model.buffer_names() {
        let want = case.f32(&format!("buffers/{name}"));
        if model.buffer(&name) != want {
            report.fail(format!("{after} changed buffer {name}"));
        }
    }
}

/// Checks the output of a forward-only case (one without a train block, such as
/// `seed_example`) with a model that need not implement `Train`.
pub fn check_forward_case(dir: &Path, build: &dyn Fn(&str) -> Box<dyn Model>) -> Report {
    let case = Case::load(dir);
    let mut report = Report {
        case: case.name.clone(),
        ..Report::default()
    };
    let mut model = build(&case.source);
    set_state(&case, &mut *model, &mut report);
    check_output(&case, &mut *model, &mut report);
    report
}

fn check_output<M: Model + ?Sized>(case: &Case, model: &mut M, report: &mut Report) {
    let Some(input) = case.f32("input") else {
        report.fail("the case has no input".to_string());
        return;
    };
    match model.predict(input.view()) {
        Ok(out) => report.compare(case, "fwd", "expected/output", &out),
        Err(e) => report.fail(format!("predict: {e}")),
    }
    check_buffers_unchanged(case, model, "predict", report);
}

/// Checks one case directory against a model built from its `model.cnn` text:
/// the learning-rate table; the output of `predict` (inference mode); the loss and
/// every gradient of `gradients` (training mode), which must leave the buffers as they
/// were; and 3 `train_step`s on the same batch from the case's parameters and buffers:
/// their losses, the parameters and buffers after steps 1 and 3, and
/// `batches_tracked` (the steps taken) when the model has buffers.
pub fn check_case(dir: &Path, build: &dyn Fn(&str) -> Box<dyn Train>) -> Report {
    let case = Case::load(dir);
    let mut report = Report {
        case: case.name.clone(),
        ..Report::default()
    };

    if let Some(lrs) = case.f32("lr") {
        let model = build(&case.source);
        let got: Vec<f32> = (0..lrs.len()).map(|e| model.learning_rate(e)).collect();
        let got = ArrayD::from_shape_vec(IxDyn(&[got.len()]), got).expect("a vector");
        report.compare(&case, "lr", "lr", &got);
    }
    if !case.has("input") {
        return report;
    }
    let input = case.f32("input").expect("input is f32");
    let maps = case.label_maps("target");
    let labels = if maps.is_none() { case.labels("target") } else { None };
    let values = if labels.is_none() && maps.is_none() {
        case.f32("target")
    } else {
        None
    };
    let target = || match (&maps, &labels, &values) {
        (Some(m), _, _) => Some(Target::LabelMaps(m.view())),
        (None, Some(l), _) => Some(Target::Labels(l.view())),
        (None, None, Some(v)) => Some(Target::Values(v.view())),
        (None, None, None) => None,
    };

    let mut model = load_model(&case, build, &mut report);
    check_output(&case, &mut *model, &mut report);

    let Some(t) = target() else {
        return report;
    };
    match model.gradients(input.view(), t) {
        Ok(g) => {
            report.compare(&case, "fwd", "expected/loss", &scalar(g.loss));
            report.compare(&case, "grad", "grad/input", &g.input);
            for (name, grad) in &g.params {
                report.compare(&case, "grad", &format!("grad/{name}"), grad);
            }
            let got: Vec<String> = g.params.iter().map(|(n, _)| n.clone()).collect();
            let mut want = case.names_under("grad/");
            want.retain(|n| n != "input");
            if sorted(got.clone()) != sorted(want.clone()) {
                report.fail(format!("gradients of {got:?}, the case has {want:?}"));
            }
        }
        Err(e) => report.fail(format!("gradients: {e}")),
    }
    check_buffers_unchanged(&case, &*model, "gradients", &mut report);

    if !case.has("step_losses") {
        return report;
    }
    let mut model = load_model(&case, build, &mut report);
    let mut losses = Vec::new();
    for step in 1..=3u64 {
        match model.train_step(input.view(), target().expect("a target")) {
            Ok(loss) => losses.push(loss),
            Err(e) => {
                report.fail(format!("train_step {step}: {e}"));
                return report;
            }
        }
        if step == 1 || step == 3 {
            for name in model.param_names() {
                let got = model.param(&name).expect("a listed parameter exists");
                report.compare(&case, "step", &format!("step{step}/{name}"), &got);
            }
            for name in model.buffer_names() {
                let got = model.buffer(&name).expect("a listed buffer exists");
                report.compare(&case, "step", &format!("step{step}/{name}"), &got);
            }
        }
        if !model.buffer_names().is_empty() && model.batches_tracked() != step {
            report.fail(format!(
                "batches_tracked() is {} after {step} train_step(s)",
                model.batches_tracked()
            ));
        }
    }
    let losses = ArrayD::from_shape_vec(IxDyn(&[3]), losses).expect("a vector");
    report.compare(&case, "step", "step_losses", &losses);
    report
}
