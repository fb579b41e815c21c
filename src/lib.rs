//! # cnnc
//!
//! A small language for convolutional networks, checked at compile time and lowered
//! to specialized Rust. The pipeline, one stage per module:
//!
//! ```text
//! .cnn text --syntax--> AST (spans) --check--> IR (every shape known) --codegen--> Rust
//!                                                                    \--interp---> ndarray
//! ```
//!
//! ## Quick start
//!
//! Depend on `cnnc` and `cnn-macros`, write the model in `cnn! { ... }` (or keep it in
//! a file: `cnn!(file = "models/lenet.cnn")`), and train it:
//!
//! ```no_run
//! use cnnc::rt::data::{mnist, Split};
//!
//! cnn_macros::cnn! {
//!     model LeNet {
//!         input 1x28x28
//!         conv 6 kernel 5 pad 2 relu
//!         maxpool 2
//!         conv 16 kernel 5 relu
//!         maxpool 2
//!         flatten
//!         dense 120 relu
//!         dense 84 relu
//!         dense 10 softmax
//!         train { loss cross_entropy optimizer sgd lr 0.01 momentum 0.9 batch 64 epochs 10 }
//!     }
//! }
//!
//! fn main() -> Result<(), cnnc::Error> {
//!     let train = mnist("data/mnist-10k", Split::Train)?;
//!     let test = mnist("data/mnist-10k", Split::Test)?;
//!     let mut model = LeNet::new(0);
//!     model.fit(&train)?; // or model.fit_with(&train, &LeNet::FIT.quiet())
//!     let result = model.evaluate(&test)?;
//!     println!("test accuracy: {:.2}%", result.accuracy.unwrap_or(0.0) * 100.0);
//!     model.save_safetensors("lenet.safetensors") // loads into PyTorch unchanged
//! }
//! ```
//!
//! Every generated model, and the reference interpreter ([`interp::Interpreter`]),
//! implements [`Model`] and [`Train`]. The language is described in the
//! repository's `docs/language.md`; a wrong model is a compile error at the
//! offending tokens, with the arithmetic and the fix.
//!
//! The front end alone, without code generation:
//!
//! ```
//! let models = cnnc::compile("model Tiny { input 4 dense 2 softmax }").unwrap();
//! assert_eq!(models[0].param_count(), 10);
//! ```

#[cfg(feature = "runtime")]
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub mod activation;
pub mod check;
pub mod codegen;
#[cfg(feature = "runtime")]
pub mod compute;
pub mod diag;
pub mod draw;
#[cfg(feature = "runtime")]
pub mod interp;
pub mod ir;
#[cfg(feature = "onnx")]
pub mod onnx;
#[cfg(feature = "runtime")]
mod real;
#[cfg(feature = "runtime")]
pub mod rt;
pub mod summary;
pub mod syntax;

pub use diag::{Diagnostic, Diagnostics};
#[cfg(feature = "runtime")]
pub use ndarray;
#[cfg(feature = "runtime")]
pub use rt::{Error, Gradients, Model, Target, Train};

/// Parses and checks a `.cnn` text: every model of it, or every error in it.
/// Warnings are left out; [`compile_with_warnings`] gives them too.
pub fn compile(source: &str) -> Result<Vec<ir::Model>, Diagnostics> {
    let file = syntax::parse(source).map_err(|d| Diagnostics(vec![d]))?;
    check::check(&file)
}

/// [`compile`], and the warnings of the text (valid text that is likely not what
/// was meant, such as `input 32x32x3`), whether or not it has errors. A text with a
/// syntax error has no warnings.
///
/// ```
/// let (models, warnings) = cnnc::compile_with_warnings("model M { input 28x28x1 flatten dense 2 }");
/// assert!(models.is_ok());
/// assert_eq!(warnings.iter().next().map(|w| w.is_warning()), Some(true));
/// ```
pub fn compile_with_warnings(source: &str) -> (Result<Vec<ir::Model>, Diagnostics>, Diagnostics) {
    match syntax::parse(source) {
        Ok(file) => {
            let checked = check::check(&file);
            let warnings = check::lint::warnings(&file, checked.as_deref().unwrap_or(&[]));
            (checked, warnings)
        }
        Err(d) => (Err(Diagnostics(vec![d])), Diagnostics::default()),
    }
}
