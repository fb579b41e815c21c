//! `cnnc train [MODEL.cnn] --data PATH [--out DIR] [--epochs N] [--batch N] [--lr X]
//! [--threads T] [--resume CKPT]`: trains a model read at run time at the speed of
//! generated code (the run-time plan executor, `cnnc::rt::exec`), on data whose
//! format it recognises (data.rs). Without a model it writes a sound default for
//! the data (`model.cnn`). Output in the MNIST example's form.

use crate::data::{self, Format, Loaded};
use cnnc::ir::{self, Loss, Optimizer};
use cnnc::rt::confusion::confusion_matrix;
use cnnc::rt::data::{save_classes, CIFAR10_CLASSES};
use cnnc::rt::exec::Executor;
use cnnc::rt::fit::{evaluate, fit_resumable, FitConfig, FitOptions};
use cnnc::rt::plot::training_svg;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What `cnnc train` was asked to do.
pub struct Request {
    /// The model's file and, when it holds several, which one.
    pub model: Option<PathBuf>,
    pub name: Option<String>,
    pub data: PathBuf,
    pub out: PathBuf,
    pub epochs: Option<usize>,
    pub batch: Option<usize>,
    pub lr: Option<f64>,
    pub threads: Option<usize>,
    pub resume: Option<PathBuf>,
    /// Weights to start from (fine-tuning; tensors the file lacks keep their initialization).
    pub weights: Option<PathBuf>,
    /// Refuse images of another size than the model's input instead of resizing.
    pub no_resize: bool,
}

/// Set by the first Ctrl-C; training stops at the next step with a checkpoint.
static STOP: AtomicBool = AtomicBool::new(false);

/// How a run ended when it did not fail.
pub enum Ended {
    Done,
    /// Ctrl-C: the checkpoint to resume from.
    Interrupted(String),
}

pub fn run(r: &Request) -> Result<Ended, String> {
    crate::use_threads(r.threads)?;
    let format = data::detect(&r.data)?;
    let started = Instant::now();
    let (model, written, loaded) = model_and_data(&format, r)?;
    let Some(train) = model.train.clone() else {
        return Err(format!(
            "model {} has no train block: add one (`train {{ loss cross_entropy optimizer adam lr 0.001 }}`)",
            model.name
        ));
    };
    check_fit(&model, &format, &r.data, &loaded)?;
    let classes = class_names(&format, &loaded);
    std::fs::create_dir_all(&r.out).map_err(|e| format!("cannot create {}: {e}", r.out.display()))?;
    if let Some(text) = &written {
        let path = r.out.join("model.cnn");
        cnnc::rt::atomic::write(&path, text.as_bytes()).map_err(|e| e.to_string())?;
        println!(
            "no model given: wrote the default for {} to {}",
            format.describe(),
            path.display()
        );
    }
    report_skipped(&loaded);
    let mut net = Executor::from_model(&model, train.seed);
    if let Some(path) = &r.weights {
        start_from(&mut net, path, &model)?;
    }
    let config = FitConfig::of(net.spec());
    println!(
        "{}: {} parameters; {} training and {} test samples{}; {} epochs of batch {}",
        model.name,
        model.param_count(),
        loaded.train.len(),
        loaded.test.len(),
        if loaded.held_out { " (a fifth held out)" } else { "" },
        config.epochs,
        config.batch
    );
    let stem = r.out.join(&model.name);
    let checkpoint = stem.with_extension("ckpt");
    install_ctrl_c();
    let mut options = FitOptions::default().checkpoint(&checkpoint).stop(&STOP);
    if let Some(path) = &r.resume {
        options = options.resume(path);
    }
    eprintln!("ready to train in {:.2}s", started.elapsed().as_secs_f64());
    let start = Instant::now();
    let report = match fit_resumable(&mut net, &loaded.train, &config, &options) {
        Ok(report) => report,
        Err(cnnc::Error::Interrupted { checkpoint: c, .. }) => {
            return Ok(Ended::Interrupted(
                c.unwrap_or_else(|| checkpoint.display().to_string()),
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    let seconds = start.elapsed().as_secs_f64();
    let epoch_seconds: f64 = report.history.iter().map(|e| e.seconds).sum();
    println!(
        "trained in {seconds:.1}s ({:.2}s per epoch)",
        epoch_seconds / report.history.len().max(1) as f64
    );
    let mut saved = save_weights(&net, &stem, &classes)?;
    let curves = r.out.join("training.svg");
    training_svg(&report, &curves).map_err(|e| e.to_string())?;
    saved.push(curves.display().to_string());
    saved.push(checkpoint.display().to_string());
    test(&mut net, &model, &loaded, &config, &classes, &saved)?;
    Ok(Ended::Done)
}

/// The model to train, its text when it is the default one written for the data
/// (no model file given), and the data read for it.
fn model_and_data(format: &Format, r: &Request) -> Result<(ir::Model, Option<String>, Loaded), String> {
    Ok(match &r.model {
        Some(file) => {
            let mut model = chosen_model(file, r.name.as_deref())?;
            override_train(&mut model, r)?;
            let loaded = load_for(format, &model, r)?;
            (model, None, loaded)
        }
        None => {
            // Folders are read at the model's input size; the others as they are.
            let read = match format {
                Format::Folder { .. } => None,
                // At the first picture's size, rounded down to what two poolings divide.
                Format::Segmentation { train, .. } => {
                    Some(data::load(format, &segmentation_input(train)?, true, true, 0)?)
                }
                _ => Some(data::load(format, &[], true, true, 0)?),
            };
            let text = default_model(format, &r.data, read.as_ref())?;
            let mut model = cnnc::compile(&text)
                .map_err(|d| d.render("model.cnn", &text))?
                .remove(0);
            override_train(&mut model, r)?;
            let loaded = match read {
                Some(loaded) => loaded,
                None => load_for(format, &model, r)?,
            };
            (model, Some(text), loaded)
        }
    })
}

/// `--weights`: loads the tensors of `path` that `model` has (fine-tuning) and
/// says what was loaded; an error when it has none of them.
fn start_from(net: &mut Executor, path: &Path, model: &ir::Model) -> Result<(), String> {
    let report = net.load_safetensors_partial(path).map_err(|e| e.to_string())?;
    if report.loaded.is_empty() {
        return Err(format!(
            "{} holds none of model {}'s tensors (it has {}): nothing to start from",
            path.display(),
            model.name,
            report.unexpected.join(", ")
        ));
    }
    println!(
        "started from {}: {} tensors loaded{}",
        path.display(),
        report.loaded.len(),
        if report.missing.is_empty() {
            String::new()
        } else {
            format!(", {} initialized ({})", report.missing.len(), report.missing.join(", "))
        }
    );
    Ok(())
}

/// Writes the trained weights to `stem`.safetensors and the class names beside
/// them (when the data names its classes); returns the files written.
fn save_weights(net: &Executor, stem: &Path, classes: &[String]) -> Result<Vec<String>, String> {
    let weights = stem.with_extension("safetensors");
    net.save_safetensors(&weights).map_err(|e| e.to_string())?;
    let mut saved = vec![weights.display().to_string()];
    if !classes.is_empty() {
        saved.push(
            save_classes(&weights, classes)
                .map_err(|e| e.to_string())?
                .display()
                .to_string(),
        );
    }
    Ok(saved)
}

/// Evaluates the trained model on the test samples and prints the results (the
/// confusion matrix of a classifier, a segmenter's pixel accuracy and mean IoU)
/// with the files `saved`.
fn test(
    net: &mut Executor,
    model: &ir::Model,
    loaded: &Loaded,
    config: &FitConfig,
    classes: &[String],
    saved: &[String],
) -> Result<(), String> {
    let result = evaluate(net, &loaded.test, config.loss, config.batch).map_err(|e| e.to_string())?;
    if let Some(iou) = result.mean_iou {
        println!("test loss {:.4}; wrote {}", result.loss, saved.join(", "));
        println!("pixel accuracy: {:.2}%", result.accuracy.unwrap_or(0.0) * 100.0);
        println!("mean IoU: {iou:.4}");
        return Ok(());
    }
    if config.loss == Loss::CrossEntropy {
        // A model with more outputs than the data has classes (a fine-tuned head
        // left wider): the outputs past the named classes go by their numbers.
        let mut names = classes.to_vec();
        if !names.is_empty() {
            names.extend((names.len()..model.output().len()).map(|k| k.to_string()));
        }
        println!(
            "{}",
            confusion_matrix(net, &loaded.test, &names).map_err(|e| e.to_string())?
        );
    }
    println!("test loss {:.4}; wrote {}", result.loss, saved.join(", "));
    match result.accuracy {
        Some(a) => println!("test accuracy: {:.2}%", a * 100.0),
        None => println!("test loss: {:.6}", result.loss),
    }
    Ok(())
}

/// The data read for `model`: images at its input size, labels or values as its loss reads.
fn load_for(format: &Format, model: &ir::Model, r: &Request) -> Result<Loaded, String> {
    let train = model.train.as_ref();
    let labels = train.is_none_or(|t| t.loss == Loss::CrossEntropy);
    let seed = train.map_or(0, |t| t.seed);
    data::load(format, &model.input.dims(), labels, !r.no_resize, seed)
}

fn install_ctrl_c() {
    let handler = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting now");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: finishing the current step and writing a checkpoint (Ctrl-C again exits at once)");
    });
    if let Err(e) = handler {
        eprintln!("warning: Ctrl-C will not write a checkpoint: {e}");
    }
}

/// The model of `file` to train: `name`, or the only one with a train block.
fn chosen_model(file: &Path, name: Option<&str>) -> Result<ir::Model, String> {
    let text = crate::read_source(file)?;
    let shown = file.display().to_string();
    let models = cnnc::compile(&text).map_err(|d| d.render(&shown, &text))?;
    if let Some(name) = name {
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        return models
            .iter()
            .find(|m| m.name == name)
            .cloned()
            .ok_or_else(|| format!("{shown} has no model {name}; it has {}", names.join(", ")));
    }
    let trainable: Vec<&ir::Model> = models.iter().filter(|m| m.train.is_some()).collect();
    match trainable.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!(
            "{shown}: no model has a train block (add `train {{ loss cross_entropy optimizer adam lr 0.001 }}`)"
        )),
        many => Err(format!(
            "{shown} has {} models with a train block ({}); choose one with --model",
            many.len(),
            many.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// `--epochs`, `--batch` and `--lr` over the train block.
fn override_train(model: &mut ir::Model, r: &Request) -> Result<(), String> {
    let Some(t) = model.train.as_mut() else {
        return Ok(());
    };
    if let Some(e) = r.epochs {
        t.epochs = e;
    }
    if let Some(b) = r.batch {
        t.batch = b;
    }
    if let Some(lr) = r.lr {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(format!("--lr {lr}: the learning rate must be a positive number"));
        }
        match &mut t.optimizer {
            Optimizer::Sgd { lr: x, .. } | Optimizer::Adam { lr: x, .. } | Optimizer::AdamW { lr: x, .. } => *x = lr,
        }
    }
    Ok(())
}

/// The model and the data agree: input shapes, and one output per class.
fn check_fit(model: &ir::Model, format: &Format, path: &Path, loaded: &Loaded) -> Result<(), String> {
    let sample = &loaded.train.inputs.shape()[1..];
    let input = model.input.dims();
    if sample != input.as_slice() {
        let shape = sample.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        return Err(format!(
            "model {} takes inputs of shape {} but {} ({}) holds samples of shape {shape}: \
             change the model's `input` line to `input {shape}`",
            model.name,
            model.input,
            path.display(),
            format.describe()
        ));
    }
    // A per-position softmax has a class per channel.
    let outputs = match model.output() {
        cnnc::ir::Shape::Image { c, .. } => c,
        cnnc::ir::Shape::Vector(n) => n,
    };
    let train = model.train.as_ref().map(|t| t.loss);
    if let (Some(Loss::CrossEntropy), Some(labels)) = (train, data::label_count(&loaded.train)) {
        let classes = loaded.classes.len().max(labels);
        if classes > outputs {
            return Err(format!(
                "model {} has {outputs} outputs but {} holds {classes} classes: make its last dense layer `dense {classes}`",
                model.name,
                path.display()
            ));
        }
    }
    Ok(())
}

fn class_names(format: &Format, loaded: &Loaded) -> Vec<String> {
    match format {
        Format::Cifar(_) => CIFAR10_CLASSES.iter().map(|c| c.to_string()).collect(),
        _ => loaded.classes.clone(),
    }
}

fn report_skipped(loaded: &Loaded) {
    if let Some(first) = loaded.skipped.first() {
        println!(
            "skipped {} files that are not usable images; the first: {first}",
            loaded.skipped.len()
        );
    }
}

/// The default model for a data set: for images, a small residual network with
/// batchnorm, flips (not for digits) and crops, adam on a cosine schedule, and
/// epochs scaled to the data set; for vectors, two hidden layers.
fn default_model(format: &Format, path: &Path, read: Option<&Loaded>) -> Result<String, String> {
    let (train, classes) = match read {
        Some(loaded) => (
            loaded.train.len(),
            data::label_count(&loaded.train)
                .unwrap_or(0)
                .max(loaded.classes.len())
                .max(2),
        ),
        None => count_folder(format, path)?,
    };
    let epochs = (24_000 / train.max(1)).clamp(10, 60);
    let batch = if train < 4_000 { 16 } else { 64 };
    if let (Format::Segmentation { .. }, Some(loaded)) = (format, read) {
        let &[c, h, w] = &loaded.train.inputs.shape()[1..] else {
            return Err(format!("{}: the pictures are not CxHxW images", path.display()));
        };
        return Ok(unet(
            &path.display().to_string(),
            [c, h, w],
            classes,
            epochs.min(30),
            16,
        ));
    }
    let Some([c, h, w]) = data::image_input(format) else {
        let features: usize = read.map_or(0, |l| l.train.inputs.shape()[1..].iter().product());
        return Ok(format!(
            "// The default model `cnnc train` chose for {}: {classes} classes.\n\
             model Classifier {{\n    input {features}\n    dense 64 relu\n    dense 64 relu\n    dense {classes} softmax\n    \
             train {{\n        loss cross_entropy\n        optimizer adam lr 0.003\n        schedule cosine\n        \
             batch {batch}\n        epochs {epochs}\n        validation 0.1\n    }}\n}}\n",
            path.display()
        ));
    };
    // Digits and letters change meaning when mirrored.
    let flip = if matches!(format, Format::Idx(_)) {
        ""
    } else {
        "flip horizontal "
    };
    Ok(format!(
        "// The default model `cnnc train` chose for {data}: {classes} classes of {c}x{h}x{w} images.
// A small residual network with batchnorm; edit it and train again with
// `cnnc train model.cnn --data {data}`.
model Classifier {{
    input {c}x{h}x{w}
    conv 16 kernel 3 pad 1 bias off
    batchnorm relu
    maxpool 2
    residual {{
        conv 16 kernel 3 pad 1 bias off
        batchnorm relu
        conv 16 kernel 3 pad 1 bias off
        batchnorm
    }} relu
    residual {{
        conv 32 kernel 3 stride 2 pad 1 round floor bias off
        batchnorm relu
        conv 32 kernel 3 pad 1 bias off
        batchnorm
        shortcut {{
            conv 32 kernel 1 stride 2 round floor bias off
            batchnorm
        }}
    }} relu
    avgpool global
    flatten
    dense {classes} softmax
    train {{
        loss cross_entropy
        optimizer adam lr 0.005
        schedule cosine
        batch {batch}
        epochs {epochs}
        validation 0.1
        augment {flip}crop {crop}
    }}
}}
",
        data = path.display(),
        crop = (h / 8).max(1),
    ))
}

/// The input size for a segmentation folder's default model: the first picture's
/// channels (1 for gray, else 3) and size, rounded down to multiples of 4 (the
/// default U-Net pools twice), at least 8.
fn segmentation_input(train: &Path) -> Result<Vec<usize>, String> {
    let images = train.join("images");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&images)
        .map_err(|e| format!("cannot read {}: {e}", images.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    let first = files
        .first()
        .ok_or_else(|| format!("{}: no pictures", images.display()))?;
    let picture = image::open(first).map_err(|e| format!("{}: {e}", first.display()))?;
    let channels = if picture.color().has_color() { 3 } else { 1 };
    let round = |v: u32| ((v as usize) / 4 * 4).max(8);
    Ok(vec![channels, round(picture.height()), round(picture.width())])
}

/// The default segmentation model: a small U-Net (two poolings, a transposed
/// convolution and a bilinear upsampling, the encoder's maps concatenated), a
/// class per pixel, 255 void.
fn unet(data: &str, [c, h, w]: [usize; 3], classes: usize, epochs: usize, batch: usize) -> String {
    format!(
        "// The default model `cnnc train` chose for {data}: {classes} classes per pixel of {c}x{h}x{w} pictures.
// A small U-Net; edit it and train again with `cnnc train model.cnn --data {data}`.
model Segmenter {{
    input {c}x{h}x{w}
    conv 16 kernel 3 pad 1 bias off
    batchnorm relu
    e1: conv 16 kernel 3 pad 1 relu
    maxpool 2
    e2: conv 32 kernel 3 pad 1 relu
    maxpool 2
    conv 64 kernel 3 pad 1 relu
    convtranspose 32 kernel 2 stride 2
    concat e2
    conv 32 kernel 3 pad 1 relu
    upsample 2 bilinear
    concat e1
    conv 16 kernel 3 pad 1 relu
    conv {classes} kernel 1 softmax
    train {{
        loss cross_entropy ignore 255
        optimizer adam lr 0.002
        schedule cosine
        batch {batch}
        epochs {epochs}
        augment flip horizontal
    }}
}}
"
    )
}

/// An image folder's files and classes, for the default model's sizes.
fn count_folder(format: &Format, path: &Path) -> Result<(usize, usize), String> {
    let Format::Folder { train, .. } = format else {
        return Err(format!("{}: not an image folder", path.display()));
    };
    let classes = cnnc::rt::data::class_names(train).map_err(|e| e.to_string())?;
    if classes.len() < 2 {
        return Err(format!(
            "{}: found {} class folder(s); a classifier needs at least 2",
            train.display(),
            classes.len()
        ));
    }
    let files = classes
        .iter()
        .map(|class| std::fs::read_dir(train.join(class)).map_or(0, |d| d.count()))
        .sum();
    Ok((files, classes.len()))
}
