//! The `cnn!` macro (coming with the code generator).
