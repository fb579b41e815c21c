//! Every elementwise activation, in one place: the word the language writes, its
//! value and derivative (the one definition the interpreter, the generated code
//! and the plan executor all compute), what fusion needs to know of it, and how
//! ONNX writes it.
//!
//! Adding an activation is a variant and its rows here, and its word in the
//! grammar's `activation_word` (grammar/cnn.pest). Everything else (parsing,
//! keywords and hints, checking, lowering, the generated code, the executor,
//! drawing, ONNX export and import) reads these tables. Softmax is not here: it
//! normalizes over a sample's features, so it is a layer of its own (`Op::Softmax`).

/// An elementwise activation: a layer of its own, or fused into the layer before
/// it by the code generator. `Identity` is what a layer without one applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// The negative slope, which the checker requires to be >= 0 so that the
    /// derivative can be read from the output.
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    /// `x * sigmoid(x)` (`SiLU`).
    Silu,
    /// `x * Phi(x)`, the exact form through erf (`GELU()`).
    Gelu,
    /// `min(max(x, 0), 6)` (`ReLU6()`).
    Relu6,
    /// `x * relu6(x + 3) / 6` (`Hardswish()`).
    Hardswish,
    /// `relu6(x + 3) / 6` (`Hardsigmoid()`).
    Hardsigmoid,
}

/// leaky_relu's slope when none is written (PyTorch's).
pub const DEFAULT_SLOPE: f32 = 0.01;

/// Every activation the language writes, leaky_relu with its default slope.
pub const ALL: [Activation; 9] = [
    Activation::Relu,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::LeakyRelu(DEFAULT_SLOPE),
    Activation::Silu,
    Activation::Gelu,
    Activation::Relu6,
    Activation::Hardswish,
    Activation::Hardsigmoid,
];

/// Every word the grammar's `activation` starts with: the activations', and
/// `softmax` (after the first three, the order the error messages list them in).
pub fn words() -> impl Iterator<Item = &'static str> {
    let (first, rest) = ALL.split_at(3);
    let keyword = |a: &Activation| a.keyword();
    first
        .iter()
        .map(keyword)
        .chain(["softmax"])
        .chain(rest.iter().map(keyword))
}

/// How ONNX writes an activation: what export writes and import reads back.
#[derive(Debug, Clone, PartialEq)]
pub enum Onnx {
    /// Nothing: the identity.
    Nothing,
    /// One node of this operator with these float attributes: each its name,
    /// its value, and ONNX's default for it when absent (leaky_relu's `alpha` is
    /// its slope).
    Node(&'static str, Vec<(&'static str, f32, f32)>),
    /// `Clip` to `[min, max]`, the bounds as inputs (opset 11 on), as PyTorch
    /// exports ReLU6.
    Clip(f32, f32),
    /// `Mul(x, Sigmoid(x))`, as PyTorch exports SiLU.
    TimesSigmoid,
    /// `x * 0.5 * (1 + Erf(x / √2))`, PyTorch's exporter's GELU at opset 17;
    /// import also reads the `Gelu` operator of opset 20.
    ErfGelu,
}

impl Activation {
    /// The keyword, which is also the prefix of default layer names.
    pub fn keyword(&self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Silu => "silu",
            Activation::Gelu => "gelu",
            Activation::Relu6 => "relu6",
            Activation::Hardswish => "hardswish",
            Activation::Hardsigmoid => "hardsigmoid",
        }
    }

    /// The activation a word of the language names (`slope` for leaky_relu,
    /// its default when `None`); `None` for other words, softmax included.
    pub fn from_word(word: &str, slope: Option<f32>) -> Option<Activation> {
        let found = ALL.into_iter().find(|a| a.keyword() == word)?;
        Some(match found {
            Activation::LeakyRelu(default) => Activation::LeakyRelu(slope.unwrap_or(default)),
            other => other,
        })
    }

    /// As a `.cnn` text writes it: `relu`, `leaky_relu 0.2`.
    pub fn text(&self) -> String {
        match self {
            Activation::LeakyRelu(slope) if *slope != DEFAULT_SLOPE => format!("leaky_relu {slope}"),
            other => other.keyword().to_string(),
        }
    }

    /// Whether the derivative is a function of the output alone, so the layer can
    /// be fused into the one before it without keeping its input.
    pub fn derivative_from_output(&self) -> bool {
        match self {
            Activation::Identity
            | Activation::Relu
            | Activation::LeakyRelu(_)
            | Activation::Sigmoid
            | Activation::Tanh
            | Activation::Relu6
            | Activation::Hardsigmoid => true,
            Activation::Silu | Activation::Gelu | Activation::Hardswish => false,
        }
    }

    /// How ONNX writes it.
    pub fn onnx(&self) -> Onnx {
        match *self {
            Activation::Identity => Onnx::Nothing,
            Activation::Relu => Onnx::Node("Relu", vec![]),
            Activation::LeakyRelu(slope) => Onnx::Node("LeakyRelu", vec![("alpha", slope, 0.01)]),
            Activation::Sigmoid => Onnx::Node("Sigmoid", vec![]),
            Activation::Tanh => Onnx::Node("Tanh", vec![]),
            Activation::Silu => Onnx::TimesSigmoid,
            Activation::Gelu => Onnx::ErfGelu,
            Activation::Relu6 => Onnx::Clip(0.0, 6.0),
            Activation::Hardswish => Onnx::Node("HardSwish", vec![]),
            Activation::Hardsigmoid => Onnx::Node("HardSigmoid", vec![("alpha", 1.0 / 6.0, 0.2), ("beta", 0.5, 0.5)]),
        }
    }
}

#[cfg(feature = "runtime")]
impl Activation {
    /// The activation of one value, in `f32` (generated code, the executor, the
    /// interpreter's fixtures) or `f64` (the interpreter's gradient checks).
    #[inline(always)]
    pub fn value<T: crate::real::Real>(self, x: T) -> T {
        let c = T::from_f64;
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(T::ZERO),
            Activation::LeakyRelu(a) => {
                if x > T::ZERO {
                    x
                } else {
                    c(a as f64) * x
                }
            }
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Silu => x * sigmoid(x),
            Activation::Gelu => x * normal_cdf(x),
            Activation::Relu6 => clamp(x, T::ZERO, c(6.0)),
            Activation::Hardswish => x * clamp(x + c(3.0), T::ZERO, c(6.0)) / c(6.0),
            Activation::Hardsigmoid => clamp(x + c(3.0), T::ZERO, c(6.0)) / c(6.0),
        }
    }

    /// dy/dx at input `x` with output `y`. Activations whose derivative is a
    /// function of the output ([`Activation::derivative_from_output`]) read only
    /// `y`, so a fused layer may pass its output for both. At the kinks, PyTorch's
    /// choices: 0 at and past the ends of relu6 and hardsigmoid, hardswish's middle
    /// piece `x / 3 + 0.5` with its ends included.
    #[inline(always)]
    pub fn derivative<T: crate::real::Real>(self, x: T, y: T) -> T {
        let c = T::from_f64;
        let step = |on: bool, slope: T| if on { slope } else { T::ZERO };
        match self {
            Activation::Identity => T::ONE,
            Activation::Relu => step(y > T::ZERO, T::ONE),
            Activation::LeakyRelu(a) => {
                if y > T::ZERO {
                    T::ONE
                } else {
                    c(a as f64)
                }
            }
            Activation::Sigmoid => y * (T::ONE - y),
            Activation::Tanh => T::ONE - y * y,
            Activation::Silu => {
                let s = sigmoid(x);
                s * (T::ONE + x * (T::ONE - s))
            }
            // d/dx x·Φ(x) = Φ(x) + x·φ(x).
            Activation::Gelu => {
                let pdf = (-(x * x) / c(2.0)).exp() / c((2.0 * std::f64::consts::PI).sqrt());
                normal_cdf(x) + x * pdf
            }
            Activation::Relu6 => step(y > T::ZERO && y < c(6.0), T::ONE),
            Activation::Hardsigmoid => step(y > T::ZERO && y < T::ONE, T::ONE / c(6.0)),
            Activation::Hardswish => {
                if x < c(-3.0) {
                    T::ZERO
                } else if x <= c(3.0) {
                    x / c(3.0) + c(0.5)
                } else {
                    T::ONE
                }
            }
        }
    }
}

/// `1 / (1 + e^-x)`, computed without overflow for large |x|.
#[cfg(feature = "runtime")]
#[inline(always)]
pub fn sigmoid<T: crate::real::Real>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// Φ(x), the standard normal CDF, through erf.
#[cfg(feature = "runtime")]
#[inline(always)]
fn normal_cdf<T: crate::real::Real>(x: T) -> T {
    T::from_f64(0.5) * (T::ONE + (x / T::from_f64(std::f64::consts::SQRT_2)).erf())
}

#[cfg(feature = "runtime")]
#[inline(always)]
fn clamp<T: crate::real::Real>(x: T, lo: T, hi: T) -> T {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_its_activation() {
        for a in ALL {
            assert_eq!(Activation::from_word(a.keyword(), None), Some(a));
            assert_eq!(Activation::from_word(&a.text(), None), Some(a), "{}", a.text());
        }
        assert_eq!(
            Activation::from_word("leaky_relu", Some(0.2)),
            Some(Activation::LeakyRelu(0.2))
        );
        assert_eq!(Activation::from_word("softmax", None), None);
        assert_eq!(Activation::LeakyRelu(0.2).text(), "leaky_relu 0.2");
    }
}
