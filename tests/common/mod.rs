//! Checks any `Model`/`Train` implementation against the PyTorch fixtures in
//! tests/fixtures/*/ (see tests/fixtures/README.md). The interpreter's tests use it
//! with the interpreter; the code generator's tests call the same `check_case` with
//! generated models.
#![allow(dead_code)]

use cnnc::ndarray::{Array1, ArrayD, Dimension, IxDyn};
use cnnc::{Model, Target, Train};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The text of every model file in examples/models.
pub const EXAMPLE_MODELS: &[&str] = &[
    include_str!("../../examples/models/lenet.cnn"),
    include_str!("../../examples/models/vgg_cifar.cnn"),
    include_str!("../../examples/models/mlp_binary.cnn"),
    include_str!("../../examples/models/regression.cnn"),
    include_str!("../../examples/models/tour.cnn"),
];

/// The directory that holds every fixture case.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// The names of every case directory, sorted.
pub fn case_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures is readable")
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

/// Parses `{"key": [rtol, atol], ...}`.
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

    /// `| case | fwd | grad | step | lr |`, `-` for groups the case does not have.
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

fn to_f32(a: f32) -> ArrayD<f32> {
    ArrayD::from_elem(IxDyn(&[1]), a)
}

/// Loads the model of a case with `build(model.cnn text)` and the case's `params/`.
fn load_model(case: &Case, build: &dyn Fn(&str) -> Box<dyn Train>, report: &mut Report) -> Box<dyn Train> {
    let mut model = build(&case.source);
    set_params(case, &mut *model, report);
    model
}

/// Sets every `params/*` tensor of the case; the names must be the model's.
fn set_params<M: Model + ?Sized>(case: &Case, model: &mut M, report: &mut Report) {
    let mut names = case.names_under("params/");
    let mut have = model.param_names();
    names.sort();
    have.sort();
    if names != have {
        report.fail(format!("parameter names {have:?}, the case has {names:?}"));
    }
    for name in case.names_under("params/") {
        if let Some(value) = case.f32(&format!("params/{name}")) {
            if let Err(e) = model.set_param(&name, value.view()) {
                report.fail(format!("set_param({name}): {e}"));
            }
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
    set_params(&case, &mut *model, &mut report);
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
}

/// Checks one case directory against a model built from its `model.cnn` text:
/// the learning-rate table, the output, the loss and every gradient, and the
/// parameters and losses of 1 and 3 optimizer steps on the same batch.
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
    let labels = case.labels("target");
    let values = if labels.is_none() { case.f32("target") } else { None };
    let target = || match (&labels, &values) {
        (Some(l), _) => Some(Target::Labels(l.view())),
        (None, Some(v)) => Some(Target::Values(v.view())),
        (None, None) => None,
    };

    let mut model = load_model(&case, build, &mut report);
    check_output(&case, &mut *model, &mut report);

    let Some(t) = target() else {
        return report;
    };
    match model.gradients(input.view(), t) {
        Ok(g) => {
            report.compare(&case, "fwd", "expected/loss", &to_f32(g.loss));
            report.compare(&case, "grad", "grad/input", &g.input);
            for (name, grad) in &g.params {
                report.compare(&case, "grad", &format!("grad/{name}"), grad);
            }
            let mut got: Vec<&str> = g.params.iter().map(|(n, _)| n.as_str()).collect();
            let mut want = case.names_under("grad/");
            want.retain(|n| n != "input");
            got.sort();
            want.sort();
            if got != want {
                report.fail(format!("gradients of {got:?}, the case has {want:?}"));
            }
        }
        Err(e) => report.fail(format!("gradients: {e}")),
    }

    if !case.has("step_losses") {
        return report;
    }
    let mut model = load_model(&case, build, &mut report);
    let mut losses = Vec::new();
    for step in 1..=3 {
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
        }
    }
    let losses = ArrayD::from_shape_vec(IxDyn(&[3]), losses).expect("a vector");
    report.compare(&case, "step", "step_losses", &losses);
    report
}

/// Deterministic, varied inputs.
pub fn input(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        let k = ix.slice().iter().enumerate().map(|(i, &v)| (i + 3) * v).sum::<usize>();
        ((k * 37 % 101) as f32 / 50.0) - 1.0
    })
}

pub fn close(what: &str, got: &ArrayD<f32>, want: &ArrayD<f32>, rtol: f32, atol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{i}]: generated {g}, interpreter {w}"
        );
    }
}

/// The generic body: `a` and `b` start from the same parameters and must agree.
pub fn agree(a: &mut dyn Train, b: &mut dyn Train, x: &ArrayD<f32>, target: Target<'_>) {
    for name in a.param_names() {
        let p = a.param(&name).expect("listed parameter");
        b.set_param(&name, p.view()).expect("same parameters");
    }
    assert_eq!(a.param_names(), b.param_names());
    assert_eq!(a.output_shape(), b.output_shape());
    close(
        "output",
        &a.predict(x.view()).unwrap(),
        &b.predict(x.view()).unwrap(),
        1e-4,
        1e-6,
    );
    let (ga, gb) = (
        a.gradients(x.view(), target.clone()).unwrap(),
        b.gradients(x.view(), target.clone()).unwrap(),
    );
    assert!(
        (ga.loss - gb.loss).abs() <= 1e-4 * gb.loss.abs() + 1e-6,
        "loss {} vs {}",
        ga.loss,
        gb.loss
    );
    close("input gradient", &ga.input, &gb.input, 1e-3, 1e-5);
    for ((na, pa), (nb, pb)) in ga.params.iter().zip(&gb.params) {
        assert_eq!(na, nb);
        close(&format!("gradient of {na}"), pa, pb, 1e-3, 1e-5);
    }
    for step in 0..3 {
        let (la, lb) = (
            a.train_step(x.view(), target.clone()).unwrap(),
            b.train_step(x.view(), target.clone()).unwrap(),
        );
        assert!(
            (la - lb).abs() <= 1e-4 * lb.abs() + 1e-6,
            "step {step} loss {la} vs {lb}"
        );
    }
    for name in a.param_names() {
        close(
            &format!("{name} after 3 steps"),
            &a.param(&name).unwrap(),
            &b.param(&name).unwrap(),
            1e-3,
            1e-5,
        );
    }
}
