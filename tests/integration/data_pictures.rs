//! Pictures and tables: training curves (`rt::plot`), the confusion matrix
//! (`rt::confusion`) and the model diagram (`cnnc::draw`), whose LeNet and ResNet8
//! drawings are kept in docs/ (`CNNC_WRITE_DOCS=1` rewrites them).

use cnnc::draw::{escape, model_svg};
use cnnc::ir::{self, Op};
use cnnc::ndarray::{ArrayD, ArrayViewD, IxDyn};
use cnnc::rt::confusion::confusion_matrix;
use cnnc::rt::data::{Dataset, Targets};
use cnnc::rt::fit::{EpochReport, Evaluation, FitReport};
use cnnc::rt::plot::{training_svg, training_svg_string};
use cnnc::{Error, Model};

fn report(epochs: usize, classifier: bool, validation: bool) -> FitReport {
    FitReport {
        history: (0..epochs)
            .map(|e| EpochReport {
                epoch: e,
                learning_rate: 0.01,
                train_loss: 2.0 / (e as f64 + 1.0),
                train_accuracy: classifier.then(|| 0.5 + 0.4 * e as f64 / epochs as f64),
                validation: validation.then(|| Evaluation {
                    loss: 2.2 / (e as f64 + 1.0),
                    accuracy: classifier.then(|| 0.45 + 0.4 * e as f64 / epochs as f64),
                    mean_iou: None,
                }),
                seconds: 1.0,
            })
            .collect(),
    }
}

#[test]
fn training_curves_are_written_atomically_with_axes_and_legend() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("training.svg");
    training_svg(&report(12, true, true), &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for word in [
        "Loss",
        "Accuracy",
        "epoch",
        "accuracy (%)",
        "training",
        "validation",
        "<polyline",
    ] {
        assert!(svg.contains(word), "no {word:?} in the picture");
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
    // A regression run has no accuracy panel; one epoch still draws.
    let svg = training_svg_string(&report(1, false, false)).unwrap();
    assert!(svg.contains("Loss") && !svg.contains("Accuracy") && !svg.contains("validation"));
    assert!(training_svg_string(&FitReport::default()).is_err());
    let e = training_svg(&FitReport::default(), &path).unwrap_err();
    assert!(e.to_string().contains("training.svg"), "{e}");
    let e = training_svg(&report(2, true, false), tmp.path().join("no/such/dir.svg")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

/// A "model" whose prediction is its input: the data decides every prediction.
struct Echo {
    shape: Vec<usize>,
}

impl Model for Echo {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }
    fn output_shape(&self) -> &[usize] {
        &self.shape
    }
    fn param_names(&self) -> Vec<String> {
        Vec::new()
    }
    fn param(&self, _: &str) -> Option<ArrayD<f32>> {
        None
    }
    fn set_param(&mut self, name: &str, _: ArrayViewD<'_, f32>) -> Result<(), Error> {
        Err(Error::UnknownParam {
            name: name.into(),
            known: Vec::new(),
        })
    }
    fn predict(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, Error> {
        Ok(x.to_owned())
    }
}

#[test]
fn confusion_matrix_counts_true_against_predicted() {
    // 700 samples (several chunks): true class i % 3, predicted (i % 3) except
    // that every 7th sample of class 0 is taken for class 2.
    let n = 700;
    let mut x = ArrayD::zeros(IxDyn(&[n, 3]));
    let mut labels = Vec::new();
    let mut expected = [[0usize; 3]; 3];
    for i in 0..n {
        let t = i % 3;
        let p = if t == 0 && i % 7 == 0 { 2 } else { t };
        x[[i, p]] = 1.0;
        labels.push(t);
        expected[t][p] += 1;
    }
    let data = Dataset::new(x, Targets::Labels(labels)).unwrap();
    let classes: Vec<String> = ["cat", "dog", "a very long class name"].map(String::from).to_vec();
    let m = confusion_matrix(&mut Echo { shape: vec![3] }, &data, &classes).unwrap();
    assert_eq!(m.counts, expected.map(|r| r.to_vec()).to_vec());
    assert_eq!(m.total(), n);
    let wrong = expected[0][2];
    assert_eq!(m.correct(), n - wrong);
    assert_eq!(m.class_accuracy(1), Some(1.0));
    let class0 = expected[0][0] as f64 / (expected[0][0] + wrong) as f64;
    assert_eq!(m.class_accuracy(0), Some(class0));
    let table = m.to_string();
    println!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    assert!(lines[0].contains("rows: true class"));
    assert!(lines[1].contains("cat") && lines[1].contains("a very long~") && lines[1].ends_with("| accuracy"));
    assert!(lines[2].trim_start().starts_with("cat"));
    assert!(lines[2].contains(&format!("{:.2}%", class0 * 100.0)), "{}", lines[2]);
    assert!(lines[3].contains("100.00%  (233/233)"), "{}", lines[3]);
    assert!(lines[5].starts_with("overall accuracy"));
    // The columns line up: every row as wide as the header.
    let bar = lines[1].find('|').unwrap();
    assert!(lines[2..5].iter().all(|l| l.find('|') == Some(bar)), "{table}");

    // Unnamed classes are numbered; a class without samples shows a dash.
    let few = data.select(&[1, 4]);
    let m = confusion_matrix(&mut Echo { shape: vec![3] }, &few, &[]).unwrap();
    assert_eq!(m.classes, ["0", "1", "2"]);
    assert_eq!(m.class_accuracy(0), None);
    assert!(m.to_string().contains("(no samples)"));

    // Errors.
    let two = ["a".to_string(), "b".to_string()];
    assert!(matches!(
        confusion_matrix(&mut Echo { shape: vec![3] }, &data, &two),
        Err(Error::Config(_))
    ));
    let bad = Dataset::new(ArrayD::zeros(IxDyn(&[2, 3])), Targets::Labels(vec![0, 3])).unwrap();
    assert!(matches!(
        confusion_matrix(&mut Echo { shape: vec![3] }, &bad, &[]),
        Err(Error::Label {
            sample: 1,
            label: 3,
            ..
        })
    ));
    let values = Dataset::new(
        ArrayD::zeros(IxDyn(&[2, 3])),
        Targets::Values(ArrayD::zeros(IxDyn(&[2, 3]))),
    )
    .unwrap();
    assert!(matches!(
        confusion_matrix(&mut Echo { shape: vec![3] }, &values, &[]),
        Err(Error::Target(_))
    ));
    assert!(matches!(
        confusion_matrix(&mut Echo { shape: vec![4] }, &data, &[]),
        Err(Error::Shape { .. })
    ));
}

/// The ResNet-8 example of LANGUAGE.md.
const RESNET8: &str = include_str!("../../examples/models/resnet8.cnn");

fn resnet8() -> ir::Model {
    cnnc::compile(RESNET8).unwrap().remove(0)
}

/// Compares a drawing with its copy in docs/, or rewrites the copy.
fn check_doc(name: &str, svg: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
    if std::env::var_os("CNNC_WRITE_DOCS").is_some() {
        std::fs::write(&path, svg).unwrap();
    } else {
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            kept == svg,
            "docs/{name} is not the current drawing: rerun with CNNC_WRITE_DOCS=1"
        );
    }
}

fn count(svg: &str, what: &str) -> usize {
    svg.matches(what).count()
}

#[test]
fn lenet_is_drawn_as_one_box_per_layer() {
    let text = include_str!("../../examples/models/lenet.cnn");
    let model = cnnc::compile(text).unwrap().remove(0);
    let svg = model_svg(&model);
    // The input and 13 layers; no residual frame.
    assert_eq!(count(&svg, "<rect x="), 1 + model.layers.len());
    assert_eq!(count(&svg, "stroke-dasharray"), 0);
    for text in [
        "LeNet: 61,706 parameters, output 10",
        "input 1x28x28",
        "conv 6, 5x5, pad 2",
        "out 6x28x28 · 156 params",
        "maxpool 2",
        "out 16x5x5",
        "dense 120",
        "out 120 · 48,120 params",
        "softmax",
    ] {
        assert!(svg.contains(text), "no {text:?} in the drawing");
    }
    check_doc("lenet.svg", &svg);
}

#[test]
fn resnet8_is_drawn_with_branches_joined_at_add_nodes() {
    let model = resnet8();
    let svg = model_svg(&model);
    // Three blocks: three frames, three add nodes; two identity shortcuts.
    assert_eq!(count(&svg, "stroke-dasharray"), 3);
    assert_eq!(count(&svg, "identity</text>"), 2);
    assert_eq!(count(&svg, "add, out"), 3);
    let boxes = model
        .all_layers()
        .iter()
        .filter(|l| !matches!(l.op, Op::Residual(_)))
        .count();
    assert_eq!(count(&svg, "<rect x=") - 3, 1 + boxes);
    let n = model.param_count().to_string();
    let title = format!("ResNet8: {},{} parameters", &n[..n.len() - 3], &n[n.len() - 3..]);
    for text in [
        title.as_ref(),
        "conv 32, 3x3, stride 2, pad 1, no bias",
        "dw: conv 32, 3x3, pad 2, dilation 2, groups 32, no bias",
        "add, out 32x16x16",
        "avgpool global",
        "residual2 · ",
    ] {
        assert!(svg.contains(text), "no {text:?} in the drawing");
    }
    check_doc("resnet8.svg", &svg);
}

#[test]
fn text_is_escaped_for_xml() {
    assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
    let mut model = cnnc::compile("model M { input 4 dense 2 softmax }").unwrap().remove(0);
    model.name = "M<&>".into();
    let svg = model_svg(&model);
    assert!(svg.contains("M&lt;&amp;&gt;: 10 parameters") && !svg.contains("M<&>"));
}
