//! The end of a convolution's forward pass, shared by its algorithms.

use crate::compute::Activation;

/// What follows a convolution's product and bias in its forward pass: a tensor
/// of the output's shape added (inference fuses a residual join here, so the
/// join costs no pass over memory of its own), then the activation.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a> {
    /// `n` samples of the output's shape, added before the activation.
    pub add: Option<&'a [f32]>,
    pub act: Activation,
}

impl From<Activation> for Epilogue<'_> {
    fn from(act: Activation) -> Self {
        Epilogue { add: None, act }
    }
}

impl Epilogue<'_> {
    /// Finishes `row`, which sits at offset `at` of the (n-sample) output: adds
    /// the same span of `add`, then applies the activation.
    #[inline(always)]
    pub fn finish(&self, row: &mut [f32], at: usize) {
        let Some(add) = self.add else {
            if self.act != Activation::Identity {
                self.act.forward(row);
            }
            return;
        };
        let add = &add[at..][..row.len()];
        match self.act {
            Activation::Identity => row.iter_mut().zip(add).for_each(|(y, &r)| *y += r),
            Activation::Relu => row.iter_mut().zip(add).for_each(|(y, &r)| *y = (*y + r).max(0.0)),
            _ => {
                row.iter_mut().zip(add).for_each(|(y, &r)| *y += r);
                self.act.forward(row);
            }
        }
    }

    /// Whether there is anything to do after the bias.
    #[inline(always)]
    pub fn is_identity(&self) -> bool {
        self.add.is_none() && self.act == Activation::Identity
    }
}
