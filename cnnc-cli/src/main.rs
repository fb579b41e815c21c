//! `cnnc`: check `.cnn` files, summarize their models, emit the generated Rust,
//! draw them, inspect what a trained model sees in an image (inspect.rs, drawn by
//! picture.rs), and move models to and from ONNX (export.rs, import.rs).

mod bench;
mod data;
mod export;
mod import;
mod input;
mod inspect;
mod picture;
mod predict;
mod train;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cnnc", version, about = "Check, summarize and compile .cnn models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check files for errors and warnings; exit 0 when all are valid (warnings or
    /// not), 1 when any has an error.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print each model's layers, shapes, parameters, buffers, FLOPs and memory.
    Summary {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the Rust module that `cnn!` generates for a file, formatted.
    Emit { file: PathBuf },
    /// Draw each model of a file as an SVG picture: one box per layer with its
    /// output shape and parameters, residual blocks as branches joining at the add.
    Draw {
        file: PathBuf,
        /// Where to write the picture (default: MODEL.svg in the current folder).
        /// Only for a file with one model, or with --model.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Draw only this model of the file.
        #[arg(short, long)]
        model: Option<String>,
    },
    /// Write a model as an ONNX inference graph (opset 17, dynamic batch axis):
    /// batchnorm on its running statistics, dropout removed.
    Export {
        file: PathBuf,
        /// The trained weights; without them, the seeded initialization.
        #[arg(short, long)]
        weights: Option<PathBuf>,
        /// The seed of the initialization used without --weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where to write the ONNX file.
        #[arg(short, long)]
        output: PathBuf,
        /// The model to export, for a file with several.
        #[arg(short, long)]
        model: Option<String>,
    },
    /// Run a model in inference mode on images (each image's top classes, names
    /// from classes.txt beside the weights) or on a NumPy batch (.npy in, .npy out).
    Predict {
        file: PathBuf,
        /// The trained weights; without them, the seeded initialization.
        #[arg(short, long)]
        weights: Option<PathBuf>,
        /// The seed of the initialization used without --weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// PNG or JPEG images of the model's input size.
        images: Vec<PathBuf>,
        /// A float32 .npy batch [N, ...input shape], instead of images.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Where to write the outputs as .npy (with --input).
        #[arg(long)]
        output: Option<PathBuf>,
        /// How many classes to print for each image.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Resize images of another size to the model's input (default: an error).
        #[arg(long)]
        resize: bool,
        /// The model of the file, when it has several.
        #[arg(short, long)]
        model: Option<String>,
    },
    /// Train a model on a data set at the speed of generated code: an IDX folder
    /// (MNIST), a CIFAR-10 binary folder, an image folder (train/ and test/ of class
    /// folders, or class folders to split) or a CSV file. Without MODEL.cnn, a
    /// default model for the data is chosen and written to DIR/model.cnn. Writes
    /// the weights, classes.txt, a checkpoint and training.svg to DIR.
    Train {
        /// The model's .cnn file (a model with a train block).
        file: Option<PathBuf>,
        /// The data set.
        #[arg(long)]
        data: PathBuf,
        /// Where to write the weights, checkpoint, curves (and model.cnn).
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Epochs, overriding the train block.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        epochs: Option<u64>,
        /// Samples per step, overriding the train block.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        batch: Option<u64>,
        /// The learning rate, overriding the optimizer's.
        #[arg(long)]
        lr: Option<f64>,
        /// Worker threads (default: one per core).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..1025))]
        threads: Option<u64>,
        /// Continue from a checkpoint that an interrupted run wrote.
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Start from these weights (fine-tuning): the tensors the file has under the
        /// model's names are loaded, the others (a new head) keep their initialization.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Refuse images of another size than the model's input (default: resize them).
        #[arg(long)]
        no_resize: bool,
        /// The model of the file, when several have a train block.
        #[arg(short, long)]
        model: Option<String>,
    },
    /// Measure a model's speed through the run-time plan executor: training and
    /// inference images/s, one-image latency, and each step's time share, GFLOP/s
    /// and % of the measured FMA peak with the algorithm it runs.
    Bench {
        file: PathBuf,
        /// Samples per step (default: the train block's batch, or 64).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..65537))]
        batch: Option<u64>,
        /// Worker threads (default: one per core).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..1025))]
        threads: Option<u64>,
        /// Seconds each of the 3 timed rounds aims for.
        #[arg(long, default_value_t = 0.5)]
        seconds: f64,
        /// The model of the file, when it has several.
        #[arg(short, long)]
        model: Option<String>,
    },
    /// Read an ONNX CNN (PyTorch's torch.onnx.export, or cnnc export) as a .cnn
    /// model, and its weights as safetensors under cnnc's names.
    Import {
        /// The ONNX file.
        file: PathBuf,
        /// Where to write the .cnn model.
        #[arg(short, long)]
        output: PathBuf,
        /// Where to write the weights (safetensors).
        #[arg(short, long)]
        weights: Option<PathBuf>,
        /// Add a default train block for fine-tuning (and a final softmax after logits).
        #[arg(long)]
        train: bool,
        /// The model's name (default: from the output file's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Show what a trained model sees in one image: the image and the top-5
    /// classes, the first convolution's kernels, and the feature maps of every
    /// convolution, pooling layer and residual block. Prints the top class.
    Inspect {
        /// The model's .cnn file.
        file: PathBuf,
        /// The trained weights (`classes.txt` beside them names the classes).
        #[arg(short, long)]
        weights: PathBuf,
        /// A PNG or JPEG image of the model's input size (gray or RGB as the
        /// model's input channels).
        image: PathBuf,
        /// Where to write the picture: OUT.png or OUT.svg.
        #[arg(short, long)]
        output: PathBuf,
        /// Show every channel of this layer only (a name as `cnnc summary` lists it).
        #[arg(short, long)]
        layer: Option<String>,
        /// The model of the file to inspect, when it has several.
        #[arg(short, long)]
        model: Option<String>,
        /// Resize an image of another size to the model's input (default: an error).
        #[arg(long)]
        resize: bool,
    },
}

/// Files larger than this are refused rather than read: no model is this long.
const MAX_FILE_BYTES: u64 = 16 << 20;

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cli.command {
        Command::Check { files } => check(&files),
        Command::Summary { files } => summary(&files),
        Command::Emit { file } => emit(&file),
        Command::Draw { file, output, model } => draw(&file, output.as_deref(), model.as_deref()),
        Command::Export {
            file,
            weights,
            seed,
            output,
            model,
        } => export(&file, weights.as_deref(), seed, &output, model.as_deref()),
        Command::Predict {
            file,
            weights,
            seed,
            images,
            input,
            output,
            top,
            resize,
            model,
        } => with_model(&file, model.as_deref(), |chosen| {
            let request = predict::Predict {
                model: chosen,
                weights: weights.as_deref(),
                seed,
                images: &images,
                input: input.as_deref(),
                output: output.as_deref(),
                top,
                resize,
            };
            printed(predict::run(&request))
        }),
        Command::Train {
            file,
            data,
            out,
            epochs,
            batch,
            lr,
            threads,
            resume,
            weights,
            no_resize,
            model,
        } => {
            let request = train::Request {
                model: file,
                name: model,
                data,
                out,
                epochs: epochs.map(|e| e as usize),
                batch: batch.map(|b| b as usize),
                lr,
                threads: threads.map(|t| t as usize),
                resume,
                weights,
                no_resize,
            };
            trained(train::run(&request))
        }
        Command::Bench {
            file,
            batch,
            threads,
            seconds,
            model,
        } => run_bench(&file, model.as_deref(), batch, threads, seconds),
        Command::Import {
            file,
            output,
            weights,
            train,
            name,
        } => run_import(&file, &output, weights.as_deref(), train, name.as_deref()),
        Command::Inspect {
            file,
            weights,
            image,
            output,
            layer,
            model,
            resize,
        } => {
            let request = inspect::Request {
                weights,
                image,
                output,
                layer,
                resize,
            };
            run_inspect(&file, model.as_deref(), &request)
        }
    }
}

/// The command line; on failure the exit code, clap's message printed (2 for a
/// usage error, 0 for `--help` and `--version`).
fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// `cnnc bench`: the model's speed through the executor, `seconds` per timed round.
fn run_bench(file: &Path, only: Option<&str>, batch: Option<u64>, threads: Option<u64>, seconds: f64) -> ExitCode {
    with_model(file, only, |chosen| {
        if !(seconds.is_finite() && seconds > 0.0 && seconds <= 600.0) {
            return reported(Err(format!(
                "--seconds {seconds}: give a time between 0 and 600 seconds"
            )));
        }
        let request = bench::Request {
            model: chosen,
            batch: batch.map(|b| b as usize),
            threads: threads.map(|t| t as usize),
            seconds,
        };
        printed(bench::run(&request))
    })
}

/// `cnnc import`: an ONNX file as a `.cnn` model (and its weights).
fn run_import(file: &Path, output: &Path, weights: Option<&Path>, train: bool, name: Option<&str>) -> ExitCode {
    let request = import::Import {
        input: file,
        output,
        weights,
        train,
        name,
    };
    reported(import::run(&request))
}

/// Runs `f` on the model named `only` (or the only one) of the file at `path`;
/// the exit code of [`chosen_model`] when there is none to run.
fn with_model(path: &Path, only: Option<&str>, f: impl FnOnce(&cnnc::ir::Model) -> ExitCode) -> ExitCode {
    match chosen_model(path, only) {
        Ok(m) => f(&m),
        Err(code) => code,
    }
}

/// Exit 0 with the result on stdout, or 2 with the error (as [`reported`]).
fn printed(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => reported(Err(e)),
    }
}

/// `cnnc train`'s exit: 0 when done, 130 when interrupted (with how to resume),
/// 1 with the error.
fn trained(result: Result<train::Ended, String>) -> ExitCode {
    match result {
        Ok(train::Ended::Done) => ExitCode::SUCCESS,
        Ok(train::Ended::Interrupted(checkpoint)) => {
            eprintln!("stopped; checkpoint written to {checkpoint}");
            eprintln!("resume with the same command and --resume {checkpoint}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Reads a source file, refusing directories, huge files and non-UTF-8 text.
///
/// The size limit holds for what is actually read, not only for what the file
/// system reports: `/dev/zero`, a pipe or a growing file stops at the limit too.
pub(crate) fn read_source(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let shown = path.display();
    let limit = format!("the {MAX_FILE_BYTES}-byte (16 MiB) limit for a .cnn file");
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if meta.is_dir() {
        return Err(format!("{shown} is a directory, not a .cnn file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{shown} is {} bytes, more than {limit}", meta.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{shown} holds more than {limit}"));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{shown} is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn print_diagnostics(path: &Path, source: &str, diags: &cnnc::Diagnostics) {
    let text = diags.render(&path.display().to_string(), source);
    if std::io::stderr().is_terminal() {
        // Bold red "error" and bold yellow "warning" (and their codes), everything else plain.
        let mut colored = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let severity = [("error", "1;31"), ("warning", "1;33")]
                .into_iter()
                .find_map(|(word, color)| Some((word, color, line.strip_prefix(word)?)));
            match severity {
                Some((word, color, rest)) if rest.starts_with(':') || rest.starts_with('[') => {
                    let head = rest.find(':').unwrap_or(0);
                    colored.push_str(&format!("\x1b[{color}m{word}{}\x1b[0m{}", &rest[..head], &rest[head..]));
                }
                _ => colored.push_str(line),
            }
        }
        eprint!("{colored}");
    } else {
        eprint!("{text}");
    }
}

fn check(files: &[PathBuf]) -> ExitCode {
    let mut io_error = false;
    let mut invalid = 0;
    for path in files {
        let source = match read_source(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                io_error = true;
                continue;
            }
        };
        // Errors and warnings together, in source order; only errors fail the check.
        let (result, warnings) = cnnc::compile_with_warnings(&source);
        let mut all = result.as_ref().err().cloned().unwrap_or_default();
        let errors = all.len();
        all.0.extend(warnings.iter().cloned());
        all.0.sort_by_key(|d| d.span.start);
        print_diagnostics(path, &source, &all);
        let warned = match warnings.len() {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        };
        match result {
            Ok(models) => {
                let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
                eprintln!("{}: ok ({}){warned}", path.display(), names.join(", "));
            }
            Err(_) => {
                let s = if errors == 1 { "" } else { "s" };
                eprintln!("{}: {errors} error{s}{warned}", path.display());
                invalid += 1;
            }
        }
    }
    if io_error {
        ExitCode::from(2)
    } else if invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints the table of every model of every file; a file with errors gets its
/// diagnostics instead. Exit codes as for `check`.
fn summary(files: &[PathBuf]) -> ExitCode {
    let mut io_error = false;
    let mut invalid = false;
    let mut first = true;
    for path in files {
        let source = match read_source(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                io_error = true;
                continue;
            }
        };
        match cnnc::compile(&source) {
            Ok(models) => {
                for m in &models {
                    if !first {
                        println!();
                    }
                    first = false;
                    if files.len() > 1 {
                        println!("{}:", path.display());
                    }
                    print!("{}", cnnc::summary::summary(m));
                }
            }
            Err(diags) => {
                print_diagnostics(path, &source, &diags);
                invalid = true;
            }
        }
    }
    if io_error {
        ExitCode::from(2)
    } else if invalid {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn emit(path: &Path) -> ExitCode {
    let source = match read_source(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match cnnc::codegen::emit(&source) {
        Ok(code) => {
            print!("{code}");
            ExitCode::SUCCESS
        }
        Err(diags) => {
            print_diagnostics(path, &source, &diags);
            ExitCode::from(1)
        }
    }
}

/// `cnnc inspect`: exit 1 when the model has errors, 2 for every other problem
/// (a file, the weights, the image, a layer name).
fn run_inspect(path: &Path, only: Option<&str>, request: &inspect::Request) -> ExitCode {
    let model = match chosen_model(path, only) {
        Ok(m) => m,
        Err(code) => return code,
    };
    match inspect::inspect(&model, request) {
        Ok(line) => {
            println!("{line}");
            eprintln!("wrote {}", request.output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn draw(path: &Path, output: Option<&Path>, only: Option<&str>) -> ExitCode {
    let (_, models) = match compiled(path) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let chosen: Vec<&cnnc::ir::Model> = match only {
        Some(name) => match models.iter().find(|m| m.name == name) {
            Some(m) => vec![m],
            None => {
                eprintln!(
                    "error: {} has no model `{name}`; it has {}",
                    path.display(),
                    names.join(", ")
                );
                return ExitCode::from(2);
            }
        },
        None => models.iter().collect(),
    };
    if output.is_some() && chosen.len() > 1 {
        eprintln!(
            "error: {} has {} models ({}); choose one with --model NAME to write it to one file",
            path.display(),
            chosen.len(),
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    for model in chosen {
        let target = output.map_or_else(|| PathBuf::from(format!("{}.svg", model.name)), Path::to_path_buf);
        if let Err(e) = cnnc::rt::atomic::write(&target, cnnc::draw::model_svg(model).as_bytes()) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        eprintln!("{}: drew {} to {}", path.display(), model.name, target.display());
    }
    ExitCode::SUCCESS
}

fn export(path: &Path, weights: Option<&Path>, seed: u64, output: &Path, only: Option<&str>) -> ExitCode {
    let (source, models) = match compiled(path) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let model = match choose(path, &models, only) {
        Ok(model) => model,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let request = export::Export {
        path,
        source: &source,
        model,
        weights,
        seed,
        output,
    };
    reported(export::run(&request))
}

/// Exit 0 with what was done on stderr, or 2 with the error.
fn reported(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(done) => {
            eprintln!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// A file's source and checked models; on failure the exit code, the error printed
/// (1 for a model with errors, 2 for a file that cannot be read).
fn compiled(path: &Path) -> Result<(String, Vec<cnnc::ir::Model>), ExitCode> {
    let source = read_source(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    match cnnc::compile(&source) {
        Ok(models) => Ok((source, models)),
        Err(diags) => {
            print_diagnostics(path, &source, &diags);
            Err(ExitCode::from(1))
        }
    }
}

/// The model named `only` (or the only one) of the file at `path`: its errors
/// reported, exit 1 for an invalid file and 2 for a missing or ambiguous name.
fn chosen_model(path: &Path, only: Option<&str>) -> Result<cnnc::ir::Model, ExitCode> {
    let (_, models) = compiled(path)?;
    choose(path, &models, only).cloned().map_err(|e| reported(Err(e)))
}

/// Sizes the global thread pool to `--threads` (before any work runs on it).
pub(crate) fn use_threads(threads: Option<usize>) -> Result<(), String> {
    match threads {
        Some(t) => rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| format!("--threads {t}: {e}")),
        None => Ok(()),
    }
}

/// The model named `only`, or the file's one model.
fn choose<'m>(path: &Path, models: &'m [cnnc::ir::Model], only: Option<&str>) -> Result<&'m cnnc::ir::Model, String> {
    let names = models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
    match (only, models) {
        (Some(name), _) => models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| format!("{} has no model `{name}`; it has {names}", path.display())),
        (None, [one]) => Ok(one),
        (None, _) => Err(format!(
            "{} has {} models ({names}); choose one with --model NAME",
            path.display(),
            models.len()
        )),
    }
}
