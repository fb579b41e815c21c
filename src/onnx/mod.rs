//! ONNX: a checked model and its weights as an ONNX inference graph ([`export`]).
//!
//! The messages are ONNX's own (`onnx.proto`, through prost: [`proto`]). The graph is
//! what PyTorch's `torch.onnx.export` makes of the same network in `eval()` mode, at
//! opset [`OPSET`]: batchnorm in inference mode (its running statistics), dropout
//! removed, `normalize` as `Sub` and `Div`, `silu` as `x * Sigmoid(x)`, `gelu` as the
//! exact erf form, every activation a node of its own, the batch axis dynamic (`N`).
//! Initializers carry cnnc's tensor names (`conv1.weight`, `batchnorm1.running_var`),
//! nodes and their outputs the layer names. docs/onnx.md has the full mapping.
//!
//! [`import`] goes the other way for the CNN subset of ONNX: a readable `.cnn` text
//! (a conv, its batchnorm and activation on consecutive lines, residual blocks where
//! the graph has them, language version 3's `from`, `concat`, `add` and `mul` for
//! other graphs) and its weights under cnnc's names.

mod export;
mod graph;
mod import;
mod items;
mod layout;
#[allow(clippy::all, missing_docs)]
pub mod proto;
mod resize;
mod walk;

pub use export::{export, export_to_file};
pub use import::{import, Imported};

/// The ONNX operator set the exporter writes (ONNX 1.12 and later read it; ONNX
/// Runtime since 1.12).
pub const OPSET: i64 = 17;

/// The ONNX IR version that goes with [`OPSET`] (IR version 8 for opset 17).
pub const IR_VERSION: i64 = 8;
