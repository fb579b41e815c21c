//! `Model`, `Train` and `FlatTrain` for every driven model (a generated one or the
//! executor's): the parameter and buffer tables by name, and the entry points
//! over the driver's passes.

use super::{Backward, Driver, Network, Tensor};
use crate::ir::Loss;
use crate::rt::inputs::{batch_size, check_finite, shape_text};
use crate::rt::{Error, FlatTrain, Gradients, Model, OptimizerState, Target, Train};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

fn find<'a>(table: &'a [Tensor], name: &str) -> Option<&'a Tensor> {
    table.iter().find(|t| t.name == name)
}

fn get(table: &[Tensor], values: &[f32], name: &str) -> Option<ArrayD<f32>> {
    let t = find(table, name)?;
    ArrayD::from_shape_vec(IxDyn(t.shape), values.get(t.range())?.to_vec()).ok()
}

fn set(table: &[Tensor], values: &mut [f32], what: &str, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
    let t = find(table, name).ok_or_else(|| Error::UnknownParam {
        name: name.to_string(),
        known: table.iter().map(|t| t.name.to_string()).collect(),
    })?;
    if value.shape() != t.shape {
        return Err(Error::Shape {
            what: format!("{what} `{name}`"),
            expected: shape_text(None, t.shape),
            given: value.shape().to_vec(),
        });
    }
    // A NaN weight would only show up later, as NaN outputs.
    check_finite(&format!("{what} `{name}`"), &value)?;
    for (d, s) in values[t.range()].iter_mut().zip(value.iter()) {
        *d = *s;
    }
    Ok(())
}

impl<N: Network> Model for Driver<N> {
    fn input_shape(&self) -> &[usize] {
        self.spec().input
    }

    fn output_shape(&self) -> &[usize] {
        self.spec().output
    }

    fn param_names(&self) -> Vec<String> {
        self.spec().params.iter().map(|t| t.name.to_string()).collect()
    }

    fn param(&self, name: &str) -> Option<ArrayD<f32>> {
        get(self.spec().params, &self.params, name)
    }

    fn set_param(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        self.folded_fresh = false;
        set(self.spec().params, &mut self.params, "parameter", name, value)
    }

    fn predict(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, Error> {
        let n = batch_size("input", x.shape(), self.spec().input)?;
        let mut out = vec![0.0f32; n * self.spec().output_len()];
        self.predict_into(x, &mut out)?;
        let mut dims = vec![n];
        dims.extend_from_slice(self.spec().output);
        ArrayD::from_shape_vec(dims, out).map_err(|e| Error::Config(e.to_string()))
    }

    fn activations(&mut self, x: ArrayViewD<'_, f32>) -> Result<Vec<(String, ArrayD<f32>)>, Error> {
        Driver::activations(self, x)
    }

    fn buffer_names(&self) -> Vec<String> {
        self.spec().buffers.iter().map(|t| t.name.to_string()).collect()
    }

    fn buffer(&self, name: &str) -> Option<ArrayD<f32>> {
        get(self.spec().buffers, &self.buffers, name)
    }

    fn set_buffer(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        self.folded_fresh = false;
        set(self.spec().buffers, &mut self.buffers, "buffer", name, value)
    }

    fn batches_tracked(&self) -> u64 {
        self.tracked
    }

    fn set_batches_tracked(&mut self, steps: u64) {
        self.tracked = steps;
    }
}

impl<N: Network> Train for Driver<N>
where
    N::Worker: Backward,
{
    fn gradients(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<Gradients, Error> {
        let spec = self.spec();
        let n = batch_size("input", x.shape(), spec.input)?;
        let mut input = vec![0.0f32; n * spec.input_len()];
        let loss = self.accumulate(x, target, Some(&mut input))?;
        let mut dims = vec![n];
        dims.extend_from_slice(spec.input);
        let input = ArrayD::from_shape_vec(dims, input).map_err(|e| Error::Config(e.to_string()))?;
        let params = spec
            .params
            .iter()
            .filter_map(|t| get(spec.params, &self.grads, t.name).map(|g| (t.name.to_string(), g)))
            .collect();
        Ok(Gradients { loss, input, params })
    }

    fn train_step(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<f32, Error> {
        let loss = self.accumulate(x, target, None)?;
        if !loss.is_finite() {
            return Err(Error::Diverged {
                epoch: self.epoch,
                batch: self.step as usize,
                loss,
            });
        }
        FlatTrain::apply_update(self)?;
        Ok(loss)
    }

    fn learning_rate(&self, epoch: usize) -> f32 {
        self.learning_rate_at(epoch)
    }

    fn set_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
    }

    fn set_epochs(&mut self, epochs: usize) {
        self.epochs = epochs;
    }

    fn min_train_batch(&self) -> usize {
        if self.spec().batchnorms.iter().any(|bn| bn.area < 2) {
            2
        } else {
            1
        }
    }

    fn max_train_batch(&self) -> Option<usize> {
        (!self.spec().batchnorms.is_empty()).then_some(self.spec().batch)
    }

    fn last_correct(&self) -> Option<usize> {
        match self.spec().train.map(|t| t.loss) {
            Some(Loss::CrossEntropy | Loss::BinaryCrossEntropy) => Some(self.correct),
            _ => None,
        }
    }
}

impl<N: Network> FlatTrain for Driver<N>
where
    N::Worker: Backward,
{
    fn local_gradients(&mut self, x: ArrayViewD<'_, f32>, target: Target<'_>) -> Result<f32, Error> {
        self.accumulate(x, target, None)
    }

    fn flat_gradients(&mut self) -> &mut [f32] {
        &mut self.grads
    }

    fn flat_buffers(&mut self) -> &mut [f32] {
        self.folded_fresh = false;
        &mut self.buffers
    }

    fn apply_update(&mut self) -> Result<(), Error> {
        self.folded_fresh = false;
        self.update_running_stats();
        self.tracked += 1;
        self.optimizer_step()
    }

    fn optimizer_state(&mut self) -> OptimizerState<'_> {
        OptimizerState {
            moments: [&mut self.state1, &mut self.state2],
            step: &mut self.step,
        }
    }
}
