//! Checkpoints (src/rt/checkpoint.rs): a bit-exact round trip of everything a
//! resumed fit needs, a file any safetensors reader opens, and a named error, never
//! a panic, for every field corrupted, missing, cut short or from another model.

use crate::io_model;

use cnnc::rt::checkpoint::{Checkpoint, Distributed, EpochRecord, Progress, RngState, Signature, METADATA_KEY};
use cnnc::Error;
use io_model::TableModel;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const TRAIN: &str = "loss cross_entropy optimizer adam lr 0.001 schedule step 2 gamma 0.5 batch 32 epochs 5";

fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("io_checkpoint-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A checkpoint two epochs and three batches into a run, every field filled with
/// values that do not survive a lossy round trip.
fn sample() -> Checkpoint {
    let model = TableModel::small(3);
    let mut c = Checkpoint::new(Signature::of("Small", &model, TRAIN), &model).unwrap();
    c.optimizer = vec![
        ("optim.state1".into(), vec![0.5, -1.25, 3e-8, f32::MIN_POSITIVE]),
        ("optim.state2".into(), (0..40).map(|i| 1.0 / (i as f32 + 3.0)).collect()),
    ];
    c.progress = Progress {
        optimizer_steps: 70,
        epoch: 2,
        step_in_epoch: 3,
        schedule_position: 2,
        batches_tracked: 70,
    };
    c.rng = vec![
        RngState {
            name: "shuffle".into(),
            state: vec![u64::MAX, 0, 12_345_678_901_234_567_890],
        },
        RngState {
            name: "dropout".into(),
            state: vec![1, 2, 3, 4],
        },
    ];
    c.history = vec![
        EpochRecord {
            epoch: 0,
            learning_rate: 0.001f32 as f64,
            train_loss: std::f64::consts::LN_10,
            train_accuracy: Some(0.1),
            validation_loss: Some(2.2),
            validation_accuracy: Some(1.0 / 3.0),
            seconds: 1.5,
        },
        EpochRecord {
            epoch: 1,
            learning_rate: (0.001f32 * 0.5) as f64,
            train_loss: 0.1 + 0.2,
            train_accuracy: None,
            validation_loss: None,
            validation_accuracy: None,
            seconds: 0.0,
        },
    ];
    c
}

fn sample_bytes() -> Vec<u8> {
    sample().to_bytes().unwrap()
}

/// A tensor as it is in a file: dtype, shape, bytes.
type Stored = (Dtype, Vec<usize>, Vec<u8>);

/// A file's tensors and its checkpoint JSON.
fn split(bytes: &[u8]) -> (HashMap<String, Stored>, Value) {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec())))
        .collect();
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let json = &meta.metadata().as_ref().unwrap()[METADATA_KEY];
    (tensors, serde_json::from_str(json).unwrap())
}

/// A file of these tensors with this `__metadata__`.
fn join(tensors: &HashMap<String, Stored>, metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, metadata).unwrap()
}

fn with_json(tensors: &HashMap<String, Stored>, json: &str) -> Vec<u8> {
    join(
        tensors,
        Some(HashMap::from([(METADATA_KEY.to_string(), json.to_string())])),
    )
}

/// The sample with its JSON changed.
fn change_json(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let (tensors, mut meta) = split(&sample_bytes());
    f(&mut meta);
    with_json(&tensors, &meta.to_string())
}

/// The sample with its tensors changed.
fn change_tensors(f: impl FnOnce(&mut HashMap<String, Stored>)) -> Vec<u8> {
    let (mut tensors, meta) = split(&sample_bytes());
    f(&mut tensors);
    with_json(&tensors, &meta.to_string())
}

/// These bytes must be refused with a `Format` error naming the source and containing `expected`.
#[track_caller]
fn refused(bytes: &[u8], expected: &str) {
    match Checkpoint::from_bytes(bytes, "run.ckpt") {
        Ok(_) => panic!("accepted; expected an error with `{expected}`"),
        Err(e @ Error::Format { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with("run.ckpt: ") && text.contains(expected),
                "`{expected}` is missing from: {text}"
            );
        }
        Err(e) => panic!("not a Format error: {e}"),
    }
}

#[test]
fn a_checkpoint_round_trips_bit_for_bit() {
    let dir = scratch("round-trip");
    let path = dir.join("run.ckpt");
    let c = sample();
    c.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(back, c);
    // Bit for bit, beyond `==`: the floats' bits.
    for ((_, a), (_, b)) in back.params.iter().zip(&c.params) {
        assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
    let bits = |h: &[EpochRecord]| -> Vec<u64> {
        h.iter()
            .flat_map(|r| [r.learning_rate.to_bits(), r.train_loss.to_bits(), r.seconds.to_bits()])
            .collect()
    };
    assert_eq!(bits(&back.history), bits(&c.history));
    // Saving what was loaded gives the same bytes.
    assert_eq!(back.to_bytes().unwrap(), std::fs::read(&path).unwrap());
}

#[test]
fn a_distributed_checkpoint_keeps_the_ranks_the_batch_and_every_ranks_buffers() {
    let mut c = sample();
    let per_rank: usize = c.buffers.iter().map(|(_, a)| a.len()).sum();
    assert!(per_rank > 0);
    c.distributed = Some(Distributed {
        ranks: 3,
        global_batch: 96,
        rank_buffers: (0..3 * per_rank).map(|i| 1.0 / (i as f32 + 7.0)).collect(),
    });
    let bytes = c.to_bytes().unwrap();
    let back = Checkpoint::from_bytes(&bytes, "run.ckpt").unwrap();
    assert_eq!(back, c);
    let (tensors, json) = split(&bytes);
    assert_eq!(json["distributed"], serde_json::json!({"ranks": 3, "global_batch": 96}));
    assert_eq!(tensors["distributed/buffers"].1, vec![3 * per_rank]);
    // A single-process checkpoint has neither.
    let (tensors, json) = split(&sample_bytes());
    assert!(json.get("distributed").is_none() && !tensors.contains_key("distributed/buffers"));

    let mut short = c.clone();
    if let Some(d) = short.distributed.as_mut() {
        d.rank_buffers.pop();
    }
    let e = short.to_bytes().unwrap_err();
    assert!(e.contains("3 ranks of") && e.contains("distributed/buffers"), "{e}");
    let mut none = c.clone();
    if let Some(d) = none.distributed.as_mut() {
        d.ranks = 0;
    }
    assert!(none.to_bytes().unwrap_err().contains("0 ranks"));
    let (mut tensors, json) = split(&bytes);
    tensors.remove("distributed/buffers");
    refused(
        &with_json(&tensors, &json.to_string()),
        "tensor `distributed/buffers` is missing",
    );
}

#[test]
fn any_safetensors_reader_opens_it() {
    let bytes = sample_bytes();
    let (tensors, meta) = split(&bytes);
    let mut names: Vec<&str> = tensors.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "buffers/batchnorm1.running_mean",
            "buffers/batchnorm1.running_var",
            "optimizer/optim.state1",
            "optimizer/optim.state2",
            "params/batchnorm1.bias",
            "params/batchnorm1.weight",
            "params/conv1.weight",
            "params/dense1.bias",
            "params/dense1.weight",
        ]
    );
    assert_eq!(tensors["optimizer/optim.state2"].1, [40]);
    assert_eq!(tensors["params/conv1.weight"].1, [2, 1, 3, 3]);
    assert_eq!(meta["version"], 1);
    assert_eq!(meta["signature"]["model"], "Small");
    assert_eq!(meta["progress"]["step_in_epoch"], 3);
    assert_eq!(meta["rng"][0]["state"][0], u64::MAX);
    assert_eq!(meta["history"][1]["train_accuracy"], Value::Null);
}

#[test]
fn the_model_state_is_restored_into_a_model() {
    let c = sample();
    let mut model = TableModel::small(9);
    c.restore_model(&mut model).unwrap();
    let mut expected = TableModel::small(3);
    expected.tracked = 70;
    assert_eq!(model, expected);
    // A model of other shapes is refused and left as it was.
    let mut other = TableModel::residual(1);
    let before = other.clone();
    let text = c.restore_model(&mut other).unwrap_err().to_string();
    assert!(
        text.contains("parameter `conv1.weight` has shape [2, 1, 3, 3] in the checkpoint, [4, 3, 3, 3] in the model"),
        "{text}"
    );
    assert_eq!(other, before);
}

#[test]
fn a_checkpoint_of_another_model_is_refused_naming_the_first_difference() {
    let c = sample();
    let ours = |f: &dyn Fn(&mut Signature)| {
        let mut s = c.signature.clone();
        f(&mut s);
        s
    };
    assert!(c.check_compatible(&c.signature).is_ok());
    let cases: Vec<(Signature, &str)> =
        vec![
        (ours(&|s| s.model = "Other".into()), "it is of model `Small`, not `Other`"),
        (
            ours(&|s| s.params[1].name = "bn.weight".into()),
            "parameter 2 is `batchnorm1.weight` in the checkpoint, `bn.weight` in the model",
        ),
        (
            ours(&|s| s.params[3].shape = vec![3, 9]),
            "parameter `dense1.weight` has shape [3, 8] in the checkpoint, [3, 9] in the model",
        ),
        (
            ours(&|s| {
                s.params.push(cnnc::rt::checkpoint::TensorSpec {
                    name: "dense2.weight".into(),
                    shape: vec![1],
                })
            }),
            "the checkpoint has 5 parameters, the model 6: `dense2.weight` is only in the model",
        ),
        (
            ours(&|s| {
                s.buffers.pop();
            }),
            "the checkpoint has 2 buffers, the model 1: `batchnorm1.running_var` is only in the checkpoint",
        ),
        (
            ours(&|s| s.buffers[0].shape = vec![3]),
            "buffer `batchnorm1.running_mean` has shape [2] in the checkpoint, [3] in the model",
        ),
        (
            ours(&|s| s.train = TRAIN.replace("lr 0.001", "lr 0.01")),
            "the train block differs from character 41: the checkpoint's continues `01 schedule step 2",
        ),
        (
            ours(&|s| s.train = format!("{TRAIN} validation 0.1")),
            "the train block differs from character 87: the checkpoint's continues ``, the model's ` validation 0.1`",
        ),
    ];
    for (other, expected) in cases {
        let text = c.check_compatible(&other).unwrap_err().to_string();
        assert!(
            text.starts_with("the checkpoint does not belong to this model: ") && text.contains(expected),
            "`{expected}` is missing from: {text}"
        );
    }
}

#[test]
fn files_that_are_no_checkpoint_are_named() {
    let dir = scratch("not");
    let missing = dir.join("missing.ckpt");
    let text = Checkpoint::load(&missing).unwrap_err().to_string();
    assert!(
        text.contains(&missing.display().to_string()) && text.contains("No such file"),
        "{text}"
    );
    refused(b"", "not a valid safetensors file");
    refused(b"PK\x03\x04 a zip file", "not a valid safetensors file");
    // A weight file is a safetensors file without the checkpoint's metadata.
    let weights = cnnc::rt::weights::to_bytes(&TableModel::small(1)).unwrap();
    refused(
        &weights,
        "not a checkpoint: the header's __metadata__ has no `cnnc.checkpoint` entry",
    );
    let (tensors, _) = split(&sample_bytes());
    refused(
        &join(&tensors, Some(HashMap::from([("format".into(), "pt".into())]))),
        "not a checkpoint",
    );
    refused(
        &with_json(&tensors, "{\"version\": 1,"),
        "checkpoint metadata is not JSON",
    );
    refused(&with_json(&tensors, "[1, 2]"), "missing field `version`");
}

#[test]
fn a_checkpoint_cut_anywhere_is_refused() {
    let bytes = sample_bytes();
    for len in 0..bytes.len() {
        match Checkpoint::from_bytes(&bytes[..len], "cut") {
            Err(Error::Format { message, .. }) => {
                assert!(
                    message.contains("not a valid safetensors file"),
                    "cut at {len}: {message}"
                )
            }
            other => panic!("cut at {len}: {other:?}"),
        }
    }
    // The JSON cut anywhere, in a well-formed file.
    let (tensors, meta) = split(&bytes);
    let json = meta.to_string();
    for (len, _) in json.char_indices() {
        refused(&with_json(&tensors, &json[..len]), "checkpoint metadata");
    }
}

#[test]
fn any_flipped_byte_is_refused_or_loads_a_valid_checkpoint() {
    let bytes = sample_bytes();
    let mut loaded = 0;
    for at in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[at] ^= flip;
            // Never a panic; what loads passed every check, so it saves again.
            if let Ok(c) = Checkpoint::from_bytes(&b, "flipped") {
                c.to_bytes().unwrap();
                loaded += 1;
            }
        }
    }
    // Flips in tensor data mostly give other finite floats: those load.
    assert!(loaded > 0);
}

/// Every place in a JSON value: the path as serde_path_to_error prints it, and
/// the pointer to it.
fn places(v: &Value, path: String, pointer: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.push((p.clone(), format!("{pointer}/{k}")));
                places(x, p, format!("{pointer}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.push((p.clone(), format!("{pointer}/{i}")));
                places(x, p, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_json_field_missing_mistyped_or_unknown_is_named() {
    let (_, meta) = split(&sample_bytes());
    let mut all = Vec::new();
    places(&meta, String::new(), String::new(), &mut all);
    assert!(all.len() > 60, "{} places", all.len());
    for (path, pointer) in &all {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let in_object = meta.pointer(parent).is_some_and(Value::is_object);
        // Missing: every field of an object is required (`null` for none).
        if in_object {
            let bytes = change_json(|m| {
                m.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(key);
            });
            if path == "version" {
                refused(&bytes, "missing field `version`");
            } else {
                refused(&bytes, &format!("missing field `{key}`"));
            }
        } else {
            // An element gone from a list: refused, or (a random stream's word, a
            // whole stream) a valid checkpoint. Never a panic.
            let bytes = change_json(|m| {
                let i: usize = key.parse().unwrap();
                m.pointer_mut(parent).unwrap().as_array_mut().unwrap().remove(i);
            });
            if Checkpoint::from_bytes(&bytes, "x").is_ok() {
                assert!(path.starts_with("rng["), "{path} removed and still loaded");
            }
        }
        // Mistyped: the path is named.
        let original = meta.pointer(pointer).unwrap().clone();
        let wrong = match original {
            Value::String(_) => Value::from(1),
            _ => Value::String("x".into()),
        };
        let bytes = change_json(|m| *m.pointer_mut(pointer).unwrap() = wrong);
        if path == "version" {
            refused(&bytes, "`version` is not a whole number");
        } else {
            refused(&bytes, &format!("checkpoint metadata: {path}: invalid type"));
        }
        // An unknown field in every object is named.
        if original.is_object() {
            let bytes = change_json(|m| {
                m.pointer_mut(pointer)
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .insert("bogus".into(), Value::from(0));
            });
            refused(&bytes, &format!("{path}.bogus: unknown field `bogus`"));
        }
    }
    let bytes = change_json(|m| {
        m.as_object_mut().unwrap().insert("bogus".into(), Value::from(0));
    });
    refused(&bytes, "checkpoint metadata: bogus: unknown field `bogus`");
}

#[test]
fn inconsistent_values_are_named() {
    use serde_json::json;
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|m| m["version"] = json!(2)),
            "checkpoint format version 2; this cnnc reads version 1",
        ),
        (
            Box::new(|m| m["version"] = json!(-1)),
            "`version` is not a whole number",
        ),
        (
            Box::new(|m| m["progress"]["epoch"] = json!(5)),
            "the history holds 2 epochs, but the progress is at epoch 5",
        ),
        (
            Box::new(|m| m["progress"]["epoch"] = json!(-5)),
            "progress.epoch: invalid value: integer `-5`",
        ),
        (
            Box::new(|m| m["progress"]["optimizer_steps"] = json!(1.5)),
            "progress.optimizer_steps: invalid type: floating point `1.5`",
        ),
        (
            Box::new(|m| m["progress"]["batches_tracked"] = json!(u64::MAX as f64 * 4.0)),
            "progress.batches_tracked: invalid type: floating point",
        ),
        (
            Box::new(|m| m["history"][1]["epoch"] = json!(7)),
            "history record 1 (epoch 7): expected epoch 1",
        ),
        (
            Box::new(|m| m["history"][0]["train_accuracy"] = json!(1.5)),
            "history record 0 (epoch 0): train accuracy 1.5 is not in [0, 1]",
        ),
        (
            Box::new(|m| m["history"][0]["validation_accuracy"] = json!(-0.1)),
            "validation accuracy -0.1 is not in [0, 1]",
        ),
        (
            Box::new(|m| m["history"][1]["validation_accuracy"] = json!(0.5)),
            "a validation accuracy without a validation loss",
        ),
        (
            Box::new(|m| m["history"][1]["learning_rate"] = json!(-0.5)),
            "history record 1 (epoch 1): learning rate -0.5",
        ),
        (
            Box::new(|m| m["history"][1]["seconds"] = json!(-2.0)),
            "history record 1 (epoch 1): -2 seconds",
        ),
        (
            Box::new(|m| m["signature"]["params"][0]["shape"] = json!([2, 1, 9])),
            "tensor `params/conv1.weight` has shape [2, 1, 3, 3], the signature's is [2, 1, 9]",
        ),
        (
            Box::new(|m| m["signature"]["params"][0]["shape"] = json!([u64::MAX, u64::MAX, 2])),
            "tensor `params/conv1.weight` has shape [2, 1, 3, 3], the signature's is [18446744073709551615",
        ),
        (
            Box::new(|m| m["signature"]["params"][1]["name"] = json!("renamed")),
            "holds tensors its metadata does not list: params/batchnorm1.weight",
        ),
        (
            Box::new(|m| m["signature"]["params"][1]["name"] = json!("conv1.weight")),
            "holds tensors its metadata does not list: params/batchnorm1.weight",
        ),
        (
            Box::new(|m| m["signature"]["buffers"][0]["name"] = json!("batchnorm1.running_var")),
            "holds tensors its metadata does not list: buffers/batchnorm1.running_mean",
        ),
        (
            Box::new(|m| m["signature"]["params"][0]["name"] = json!("")),
            "holds tensors its metadata does not list: params/conv1.weight",
        ),
        (
            Box::new(|m| {
                m["signature"]["params"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "dense2.weight", "shape": [2]}))
            }),
            "tensor `params/dense2.weight` is missing",
        ),
        (
            Box::new(|m| m["optimizer"].as_array_mut().unwrap().push(json!("optim.state3"))),
            "tensor `optimizer/optim.state3` is missing",
        ),
        (
            Box::new(|m| m["optimizer"][1] = json!("optim.state1")),
            "holds tensors its metadata does not list: optimizer/optim.state2",
        ),
        (
            Box::new(|m| m["rng"][1]["name"] = json!("shuffle")),
            "random stream `shuffle` appears twice",
        ),
        (
            Box::new(|m| m["rng"][1]["state"][0] = json!(-1)),
            "rng[1].state[0]: invalid value: integer `-1`",
        ),
    ];
    for (change, expected) in cases {
        refused(&change_json(change), expected);
    }
    // A number too large for an f64 (the JSON text itself: a `Value` cannot hold it).
    let (tensors, meta) = split(&sample_bytes());
    let json = meta.to_string().replace(
        &format!("\"train_loss\":{}", std::f64::consts::LN_10),
        "\"train_loss\":1e309",
    );
    assert!(json.contains("1e309"));
    refused(
        &with_json(&tensors, &json),
        "checkpoint metadata is not JSON: number out of range",
    );
    // A field given twice.
    let (tensors, meta) = split(&sample_bytes());
    let json = meta
        .to_string()
        .replacen("\"version\":1", "\"version\":1,\"version\":1", 1);
    refused(&with_json(&tensors, &json), "duplicate field `version`");
    let json = meta.to_string().replacen("\"epoch\":2", "\"epoch\":2,\"epoch\":2", 1);
    refused(&with_json(&tensors, &json), "duplicate field `epoch`");
    // A name listed twice, with its tensor once.
    refused(
        &change_json(|m| {
            let first = m["signature"]["params"][0].clone();
            m["signature"]["params"].as_array_mut().unwrap().push(first);
        }),
        "tensor `conv1.weight` appears twice",
    );
}

#[test]
fn bad_tensors_are_named() {
    let put_f32 = |t: &mut HashMap<String, Stored>, name: &str, at: usize, v: f32| {
        t.get_mut(name).unwrap().2[4 * at..4 * at + 4].copy_from_slice(&v.to_le_bytes());
    };
    refused(
        &change_tensors(|t| put_f32(t, "params/dense1.weight", 9, f32::NAN)),
        "tensor `params/dense1.weight` holds a non-finite value (NaN) at index [1, 1]",
    );
    refused(
        &change_tensors(|t| put_f32(t, "buffers/batchnorm1.running_var", 1, -1.0)),
        "tensor `buffers/batchnorm1.running_var` holds a negative variance (-1) at index [1]",
    );
    refused(
        &change_tensors(|t| put_f32(t, "optimizer/optim.state2", 39, f32::NEG_INFINITY)),
        "tensor `optimizer/optim.state2` holds a non-finite value (-inf) at index 39",
    );
    refused(
        &change_tensors(|t| t.get_mut("optimizer/optim.state2").unwrap().1 = vec![4, 10]),
        "tensor `optimizer/optim.state2` has shape [4, 10], expected one axis",
    );
    refused(
        &change_tensors(|t| {
            let (d, _, b) = t.get_mut("optimizer/optim.state1").unwrap();
            *d = Dtype::I32;
            b.truncate(16);
        }),
        "tensor `optimizer/optim.state1` is I32, expected F32",
    );
    refused(
        &change_tensors(|t| {
            let (d, s, b) = t.get_mut("params/dense1.bias").unwrap();
            *d = Dtype::F64;
            *s = vec![3];
            b.resize(24, 0);
        }),
        "tensor `params/dense1.bias` is F64, expected F32",
    );
    refused(
        &change_tensors(|t| {
            t.remove("buffers/batchnorm1.running_mean");
        }),
        "tensor `buffers/batchnorm1.running_mean` is missing",
    );
    refused(
        &change_tensors(|t| {
            t.insert("params/extra".into(), (Dtype::F32, vec![1], vec![0; 4]));
            t.insert("notes".into(), (Dtype::U8, vec![2], vec![1, 2]));
        }),
        "holds tensors its metadata does not list: notes, params/extra",
    );
}

#[test]
fn a_checkpoint_that_would_not_load_is_not_saved() {
    let dir = scratch("unsaved");
    let path = dir.join("run.ckpt");
    type Change = Box<dyn Fn(&mut Checkpoint)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|c| c.history[0].train_loss = f64::NAN), "train loss NaN"),
        (
            Box::new(|c| {
                c.history.pop();
            }),
            "the history holds 1 epochs, but the progress is at epoch 2",
        ),
        (
            Box::new(|c| c.optimizer[0].1[0] = f32::INFINITY),
            "optimizer tensor `optim.state1` holds a non-finite value (inf) at index 0",
        ),
        (
            Box::new(|c| c.params.swap(0, 1)),
            "parameter `batchnorm1.weight` [2] does not match the signature's `conv1.weight` [2, 1, 3, 3]",
        ),
        (
            Box::new(|c| c.buffers.clear()),
            "the signature lists 2 buffers, the checkpoint holds 0",
        ),
        (
            Box::new(|c| c.optimizer[1].0 = "optim.state1".into()),
            "optimizer tensor `optim.state1` appears twice",
        ),
        (Box::new(|c| c.rng[0].name.clear()), "a random stream has an empty name"),
    ];
    for (change, expected) in cases {
        let mut c = sample();
        change(&mut c);
        let text = c.save(&path).unwrap_err().to_string();
        assert!(
            text.contains(&path.display().to_string()) && text.contains(expected),
            "`{expected}` is missing from: {text}"
        );
        assert!(!path.exists());
    }
}
