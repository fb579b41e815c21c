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
//! ```
//! let models = cnnc::compile("model Tiny { input 4 dense 2 softmax }").unwrap();
//! assert_eq!(models[0].param_count(), 10);
//! ```

#[cfg(feature = "runtime")]
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub mod check;
pub mod codegen;
#[cfg(feature = "runtime")]
pub mod compute;
pub mod diag;
pub mod draw;
#[cfg(feature = "runtime")]
pub mod interp;
pub mod ir;
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
pub fn compile(source: &str) -> Result<Vec<ir::Model>, Diagnostics> {
    let file = syntax::parse(source).map_err(|d| Diagnostics(vec![d]))?;
    check::check(&file)
}
