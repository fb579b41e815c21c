//! A hand-built `Model` for the file tests (weights, checkpoints, fuzz seeds): named
//! tensors in a table, with buffers and a step count, independent of the code
//! generator. Included with `#[path]` by tests/integration/main.rs and by the fuzz targets.
#![allow(dead_code)]

use cnnc::ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn};
use cnnc::{Error, Model};

/// Parameters and buffers by name, in order, and a step count.
#[derive(Debug, Clone, PartialEq)]
pub struct TableModel {
    pub params: Vec<(String, ArrayD<f32>)>,
    pub buffers: Vec<(String, ArrayD<f32>)>,
    pub tracked: u64,
    input: Vec<usize>,
    output: Vec<usize>,
}

/// Deterministic values that differ from tensor to tensor and from seed to seed;
/// every buffer value is positive (a valid `running_var`).
fn values(shape: &[usize], salt: u64) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    let mut state = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    let v = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2000) as f32 / 1000.0 + 0.001
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape and length agree")
}

impl TableModel {
    /// Tensors of these names and shapes, filled from `seed`.
    pub fn new(params: &[(&str, &[usize])], buffers: &[(&str, &[usize])], seed: u64) -> TableModel {
        let mut salt = seed.wrapping_mul(1000);
        let mut fill = |list: &[(&str, &[usize])]| {
            list.iter()
                .map(|(n, s)| {
                    salt += 1;
                    (n.to_string(), values(s, salt))
                })
                .collect()
        };
        TableModel {
            params: fill(params),
            buffers: fill(buffers),
            tracked: seed,
            input: vec![1, 4, 4],
            output: vec![3],
        }
    }

    /// conv1 (bias off) -> batchnorm1 -> dense1: one batchnorm layer, whose running
    /// mean and variance are the model's buffers.
    pub fn small(seed: u64) -> TableModel {
        TableModel::new(
            &[
                ("conv1.weight", &[2, 1, 3, 3]),
                ("batchnorm1.weight", &[2]),
                ("batchnorm1.bias", &[2]),
                ("dense1.weight", &[3, 8]),
                ("dense1.bias", &[3]),
            ],
            &[("batchnorm1.running_mean", &[2]), ("batchnorm1.running_var", &[2])],
            seed,
        )
    }

    /// The tensors of the spec's residual-projection example (tests/fixtures'
    /// `residual_projection`): nested names as PyTorch's `state_dict()` gives them.
    pub fn residual(seed: u64) -> TableModel {
        TableModel::new(
            &[
                ("conv1.weight", &[4, 3, 3, 3]),
                ("batchnorm1.weight", &[4]),
                ("batchnorm1.bias", &[4]),
                ("residual1.conv1.weight", &[8, 4, 3, 3]),
                ("residual1.batchnorm1.weight", &[8]),
                ("residual1.batchnorm1.bias", &[8]),
                ("residual1.conv2.weight", &[8, 8, 3, 3]),
                ("residual1.batchnorm2.weight", &[8]),
                ("residual1.batchnorm2.bias", &[8]),
                ("residual1.shortcut.conv1.weight", &[8, 4, 1, 1]),
                ("residual1.shortcut.batchnorm1.weight", &[8]),
                ("residual1.shortcut.batchnorm1.bias", &[8]),
                ("dense1.weight", &[3, 8]),
                ("dense1.bias", &[3]),
            ],
            &[
                ("batchnorm1.running_mean", &[4]),
                ("batchnorm1.running_var", &[4]),
                ("residual1.batchnorm1.running_mean", &[8]),
                ("residual1.batchnorm1.running_var", &[8]),
                ("residual1.batchnorm2.running_mean", &[8]),
                ("residual1.batchnorm2.running_var", &[8]),
                ("residual1.shortcut.batchnorm1.running_mean", &[8]),
                ("residual1.shortcut.batchnorm1.running_var", &[8]),
            ],
            seed,
        )
    }

    /// The model without buffers: conv and dense layers only.
    pub fn plain(seed: u64) -> TableModel {
        TableModel::new(&[("conv1.weight", &[2, 1, 3, 3]), ("conv1.bias", &[2])], &[], seed)
    }
}

fn set(list: &mut [(String, ArrayD<f32>)], kind: &str, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
    let known = list.iter().map(|(n, _)| n.clone()).collect();
    let Some((_, slot)) = list.iter_mut().find(|(n, _)| n == name) else {
        return Err(Error::UnknownParam {
            name: name.to_string(),
            known,
        });
    };
    if slot.shape() != value.shape() {
        return Err(Error::Shape {
            what: format!("{kind} `{name}`"),
            expected: format!("{:?}", slot.shape()),
            given: value.shape().to_vec(),
        });
    }
    if let Some((index, v)) = value.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: format!("{kind} `{name}`"),
            value: *v,
            index: index.slice().to_vec(),
        });
    }
    slot.assign(&value);
    Ok(())
}

impl Model for TableModel {
    fn input_shape(&self) -> &[usize] {
        &self.input
    }
    fn output_shape(&self) -> &[usize] {
        &self.output
    }
    fn param_names(&self) -> Vec<String> {
        self.params.iter().map(|(n, _)| n.clone()).collect()
    }
    fn param(&self, name: &str) -> Option<ArrayD<f32>> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, a)| a.clone())
    }
    fn set_param(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        set(&mut self.params, "parameter", name, value)
    }
    /// Every output is the sum of every parameter and buffer value, so that any
    /// change of state shows in the prediction.
    fn predict(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, Error> {
        let total: f32 = self.params.iter().chain(&self.buffers).map(|(_, a)| a.sum()).sum();
        let n = x.shape().first().copied().unwrap_or(0);
        Ok(ArrayD::from_elem(IxDyn(&[n, self.output[0]]), total))
    }
    fn buffer_names(&self) -> Vec<String> {
        self.buffers.iter().map(|(n, _)| n.clone()).collect()
    }
    fn buffer(&self, name: &str) -> Option<ArrayD<f32>> {
        self.buffers.iter().find(|(n, _)| n == name).map(|(_, a)| a.clone())
    }
    fn set_buffer(&mut self, name: &str, value: ArrayViewD<'_, f32>) -> Result<(), Error> {
        set(&mut self.buffers, "buffer", name, value)
    }
    fn batches_tracked(&self) -> u64 {
        self.tracked
    }
    fn set_batches_tracked(&mut self, steps: u64) {
        self.tracked = steps;
    }
}
