//! What the file-reader fuzz targets check on each input, shared with
//! tests/integration/io_fuzz_regressions.rs (which replays every input that once failed, and
//! the seeds). Each reader must return, never panic; what it accepts must be
//! consistent, and what it refuses must be a named error that changed nothing.
#![allow(dead_code)]

use crate::io_model::TableModel;
use cnnc::rt::checkpoint::Checkpoint;
use cnnc::rt::data::parse_idx;
use cnnc::rt::weights::{load_bytes, to_bytes};

/// `load_bytes` into a model with a batchnorm layer: an accepted file set
/// finite values of the model's shapes and saves and loads back to the same
/// model; a refused one left the model as it was.
pub fn weights(data: &[u8]) -> Result<(), String> {
    let mut model = TableModel::small(1);
    let before = model.clone();
    match load_bytes(&mut model, data, "fuzz") {
        Ok(()) => {
            for (name, a) in model.params.iter().chain(&model.buffers) {
                assert!(a.iter().all(|v| v.is_finite()), "{name} is not finite");
            }
            let bytes = to_bytes(&model).expect("a loaded model saves");
            let mut again = TableModel::small(2);
            load_bytes(&mut again, &bytes, "again").expect("what was saved loads");
            assert_eq!(again, model, "a save and load changed the model");
            Ok(())
        }
        Err(e) => {
            assert_eq!(model, before, "a refused file changed the model");
            let text = e.to_string();
            assert!(text.starts_with("fuzz: "), "the source is not named: {text}");
            Err(text)
        }
    }
}

/// `Checkpoint::from_bytes`: an accepted checkpoint saves, and loads back equal.
pub fn checkpoint(data: &[u8]) -> Result<(), String> {
    match Checkpoint::from_bytes(data, "fuzz") {
        Ok(c) => {
            let bytes = c.to_bytes().expect("a loaded checkpoint saves");
            let again = Checkpoint::from_bytes(&bytes, "again").expect("what was saved loads");
            assert_eq!(again, c, "a save and load changed the checkpoint");
            Ok(())
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with("fuzz: "), "the source is not named: {text}");
            Err(text)
        }
    }
}

/// `parse_idx`, plain or gzipped: accepted data has exactly the declared size.
pub fn idx(data: &[u8]) -> Result<(), String> {
    match parse_idx(data) {
        Ok(idx) => {
            let declared = idx.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            assert_eq!(declared, Some(idx.data.len()), "dims {:?}", idx.dims);
            assert!(!idx.dims.is_empty());
            Ok(())
        }
        Err(message) => {
            assert!(!message.is_empty());
            Err(message)
        }
    }
}
