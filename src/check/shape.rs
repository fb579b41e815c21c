//! The output-size arithmetic of a sliding window, per spatial axis:
//!
//! ```text
//! out = (in + pb + pa - K) / S + 1        (the seed formula, (W - K + 2P) / S + 1)
//! ```
//!
//! with the exact-division rule and `round floor|ceil` of the spec.

use crate::syntax::ast::Rounding;

/// One spatial axis of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axis {
    pub input: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad_before: usize,
    pub pad_after: usize,
}

/// Why an axis has no valid output size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AxisError {
    /// The kernel does not fit in the padded input.
    KernelTooLarge { padded: usize },
    /// `(in + pb + pa - K) / S` leaves a remainder and no `round` was given.
    NotWhole { remainder: usize },
    /// With `round ceil`, the last window would start past the input and its
    /// leading padding (PyTorch silently drops it; the spec makes it an error).
    CeilPastEnd,
}

impl Axis {
    pub fn padded(&self) -> usize {
        self.input + self.pad_before + self.pad_after
    }

    /// `in + pb + pa - K`, the distance the window travels.
    fn travel(&self) -> Option<usize> {
        self.padded().checked_sub(self.kernel)
    }

    /// The number of outputs along this axis.
    pub fn output(&self, round: Option<Rounding>) -> Result<usize, AxisError> {
        let travel = self
            .travel()
            .ok_or(AxisError::KernelTooLarge { padded: self.padded() })?;
        let remainder = travel % self.stride;
        let floor = travel / self.stride + 1;
        match (remainder, round) {
            (0, _) | (_, Some(Rounding::Floor)) => Ok(floor),
            (_, None) => Err(AxisError::NotWhole { remainder }),
            (_, Some(Rounding::Ceil)) => {
                // The extra window starts at floor * S, which must lie inside the
                // input or its leading padding.
                if floor * self.stride >= self.input + self.pad_before {
                    Err(AxisError::CeilPastEnd)
                } else {
                    Ok(floor + 1)
                }
            }
        }
    }

    /// The arithmetic as the user reads it: `(28 + 0 + 0 - 5) / 2 + 1 = 12.5`.
    pub fn explain(&self) -> String {
        let exact = self.padded() as f64 - self.kernel as f64;
        let value = exact / self.stride as f64 + 1.0;
        format!(
            "({} + {} + {} - {}) / {} + 1 = {}",
            self.input,
            self.pad_before,
            self.pad_after,
            self.kernel,
            self.stride,
            format_decimal(value)
        )
    }

    /// The padding to add after the input so that the division is exact.
    pub fn missing_padding(&self) -> usize {
        match self.travel() {
            Some(t) if t % self.stride != 0 => self.stride - t % self.stride,
            Some(_) => 0,
            None => self.kernel - self.padded(),
        }
    }
}

/// `pad same`: output `ceil(in / S)`, total padding `max((out-1)·S + K - in, 0)`
/// split with the smaller half before.
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out.max(1) - 1) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2)
}

/// A value with at most two decimals and no trailing zeros: `12.5`, `8.67`, `13`.
pub fn format_decimal(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(input: usize, kernel: usize, stride: usize, pb: usize, pa: usize) -> Axis {
        Axis {
            input,
            kernel,
            stride,
            pad_before: pb,
            pad_after: pa,
        }
    }

    #[test]
    fn the_seed_formula() {
        // (W - K + 2P) / S + 1
        assert_eq!(axis(28, 5, 1, 2, 2).output(None), Ok(28));
        assert_eq!(axis(28, 2, 2, 0, 0).output(None), Ok(14));
        assert_eq!(axis(3, 2, 1, 0, 0).output(None), Ok(2));
        assert_eq!(axis(32, 3, 1, 1, 1).output(None), Ok(32));
    }

    #[test]
    fn inexact_division_needs_rounding() {
        let a = axis(28, 5, 2, 0, 0);
        assert_eq!(a.output(None), Err(AxisError::NotWhole { remainder: 1 }));
        assert_eq!(a.explain(), "(28 + 0 + 0 - 5) / 2 + 1 = 12.5");
        assert_eq!(a.output(Some(Rounding::Floor)), Ok(12));
        assert_eq!(a.output(Some(Rounding::Ceil)), Ok(13));
        assert_eq!(a.missing_padding(), 1);
        assert_eq!(axis(10, 3, 2, 0, 0).output(Some(Rounding::Floor)), Ok(4));
    }

    #[test]
    fn ceil_drops_nothing_past_the_input() {
        // 5 wide, kernel 2, stride 2: windows start at 0, 2 and, with ceil, 4 (inside).
        assert_eq!(axis(5, 2, 2, 0, 0).output(Some(Rounding::Ceil)), Ok(3));
        // With pad 1 the ceil window would start at 6, past input + leading padding
        // (5 + 1): PyTorch drops it, the spec makes it an error.
        assert_eq!(
            axis(5, 2, 2, 1, 1).output(Some(Rounding::Ceil)),
            Err(AxisError::CeilPastEnd)
        );
    }

    #[test]
    fn kernel_larger_than_input() {
        assert_eq!(
            axis(4, 5, 1, 0, 0).output(None),
            Err(AxisError::KernelTooLarge { padded: 4 })
        );
    }

    #[test]
    fn same_padding_splits_smaller_half_first() {
        assert_eq!(same_padding(9, 3, 2), (1, 1));
        assert_eq!(same_padding(5, 2, 1), (0, 1));
        assert_eq!(same_padding(28, 5, 1), (2, 2));
    }
}
