//! The run-time plan executor: a model known only at run time (a `.cnn` file
//! read by `cnnc train`, `predict` or `bench`) run by the same plan, kernels and
//! driver as the code `cnn!` generates, with the shapes as values.
//!
//! `cnn!` lowers the plan ([`crate::codegen::plan`]) to a worker whose calls name
//! marker types with constant shapes; here the plan's steps become a list of
//! [`Op`]s with their shapes, and [`ExecWorker`] walks it, calling each kernel's
//! run-time-shape build (`compute::layers::*_dyn`). Step for step it makes the
//! calls the generated worker makes, in the same order, on the same buffers, so
//! results match generated code bit for bit (`tests/integration/exec.rs`). The
//! driver is the same [`Driver`]: the batch split, batchnorm phases, loss,
//! optimizer, `Model`/`Train`, `fit`, checkpoints and distributed training all
//! work unchanged. The reference interpreter stays the plain-loop oracle.
//!
//! A generated model's [`Spec`] is a constant in the binary. The executor builds
//! its spec once per distinct model and keeps it for the process, like a loaded
//! library: [`Program::new`] looks the model up first, so building the same
//! model again (a test loop, a resumed run) reuses it and adds nothing.

mod spec;
mod step;
mod worker;

pub use step::{Compiled, ExecStep, Op, StepTime};
pub use worker::ExecWorker;

use super::driver::{Driver, Network, Spec};
use super::Error;
use crate::codegen::plan::Plan;
use crate::ir;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex};
use step::compile;

/// A model run by the executor: `Executor::from_source(text, None, seed)`.
pub type Executor = Driver<Program>;

/// The model the executor runs: its static spec and its plan.
#[derive(Debug, Clone)]
pub struct Program {
    spec: &'static Spec,
    compiled: Arc<Compiled>,
}

impl Network for Program {
    type Worker = ExecWorker;

    fn spec(&self) -> &'static Spec {
        self.spec
    }

    fn worker(&self, samples: usize) -> ExecWorker {
        ExecWorker::new(Arc::clone(&self.compiled), samples)
    }
}

/// Specs already built, by the model they describe.
static SPECS: LazyLock<Mutex<HashMap<String, &'static Spec>>> = LazyLock::new(Default::default);

impl Program {
    /// The plan of a checked model.
    pub fn new(model: &ir::Model) -> Program {
        let plan = Plan::new(model);
        let compiled = compile(&plan, model.train.is_some());
        let key = format!("{model:?}");
        let spec = {
            let mut specs = SPECS.lock().unwrap_or_else(|e| e.into_inner());
            *specs
                .entry(key)
                .or_insert_with(|| Box::leak(Box::new(spec::spec(model, &plan))))
        };
        Program {
            spec,
            compiled: Arc::new(compiled),
        }
    }

    /// The executed steps.
    pub fn steps(&self) -> &[ExecStep] {
        &self.compiled.steps
    }

    /// Per-sample length of each activation buffer.
    pub fn buffers(&self) -> &[usize] {
        &self.compiled.buffers
    }

    /// Starts timing every step (or stops, with `false`); the times so far are kept.
    pub fn set_profiling(&self, on: bool) {
        self.compiled.profile.on.store(on, Ordering::Relaxed);
    }

    /// Clears the step times.
    pub fn reset_profile(&self) {
        let p = &self.compiled.profile;
        for t in p.forward.iter().chain(&p.backward) {
            t.store(0, Ordering::Relaxed);
        }
    }

    /// The time each step took while profiling, summed over the worker threads.
    pub fn profile(&self) -> Vec<StepTime> {
        let p = &self.compiled.profile;
        self.compiled
            .steps
            .iter()
            .enumerate()
            .map(|(s, step)| StepTime {
                name: step.name.clone(),
                forward_s: p.forward[s].load(Ordering::Relaxed) as f64 * 1e-9,
                backward_s: p.backward[s].load(Ordering::Relaxed) as f64 * 1e-9,
            })
            .collect()
    }
}

impl Driver<Program> {
    /// The model `model` of a checked file, initialized from `seed` as `NAME::new(seed)`.
    pub fn from_model(model: &ir::Model, seed: u64) -> Self {
        Driver::with_network(Program::new(model), seed)
    }

    /// Model `name` of `.cnn` source `text` (the only model when `None`).
    pub fn from_source(text: &str, name: Option<&str>, seed: u64) -> Result<Self, Error> {
        let models = crate::compile(text).map_err(|d| Error::Config(d.to_string()))?;
        let model = match name {
            Some(name) => models.iter().find(|m| m.name == name).ok_or_else(|| {
                let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
                Error::Config(format!("no model named {name}; the source has {}", names.join(", ")))
            })?,
            None => match models.as_slice() {
                [model] => model,
                _ => {
                    return Err(Error::Config(format!(
                        "the source has {} models; name one",
                        models.len()
                    )))
                }
            },
        };
        Ok(Self::from_model(model, seed))
    }

    /// The plan this model runs.
    pub fn program(&self) -> &Program {
        self.network()
    }
}
