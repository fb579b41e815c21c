//! `train_step` and `predict_into` of a generated model, and of the run-time plan
//! executor, allocate nothing: every buffer is made in `new()` (`from_source`).
//! A counting global allocator proves it.

use cnnc::ndarray::{Array1, Array2, Array4};
use cnnc::{Target, Train};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations count: the measuring thread's and the
    /// rayon pool's while `allocations_during` runs, not the test harness's
    /// (which prints another test's result meanwhile) nor any other thread's.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    // `try_with`: a thread being torn down has no thread-locals left.
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

cnn_macros::cnn!(file = "tests/no_alloc_lenet.cnn");

cnn_macros::cnn! {
    model Regressor {
        input 2x9x9
        conv 4 kernel 3 stride 2 pad same tanh
        avgpool 3 stride 2 pad 1
        flatten
        dense 3 sigmoid
        train { loss mse optimizer sgd lr 0.1 momentum 0.9 nesterov batch 4 }
    }
}

/// Held by each test for its whole run: the count is global, so the tests run
/// one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The allocations made while `f` runs on a thread of rayon's pool. (Called from
/// outside the pool, each parallel phase is a job injected into rayon's global
/// queue, which allocates a block of its own every 63 jobs: rayon's memory,
/// amortized, not the model's; from inside, the phases' joins use the pool
/// threads' own deques.)
fn allocations_during(f: impl FnOnce() + Send) -> usize {
    let counting = |on: bool| {
        rayon::broadcast(|_| COUNTED.with(|c| c.set(on)));
    };
    counting(true);
    let n = rayon::scope(|_| {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        f();
        ALLOCATIONS.load(Ordering::Relaxed) - before
    });
    counting(false);
    n
}

#[test]
fn training_and_prediction_allocate_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lenet = Lenet::new(1);
    // 40 samples: two full chunks of 16 and a partial one.
    let x = Array4::<f32>::from_shape_fn((40, 1, 28, 28), |(n, _, h, w)| ((n + h * w) % 7) as f32 / 7.0);
    let labels = Array1::from_shape_fn(40, |i| i % 10);
    let mut out = vec![0.0f32; 40 * 10];
    // Warm up once (nothing should allocate here either, but measure the steady state).
    lenet
        .train_step(x.view().into_dyn(), Target::Labels(labels.view()))
        .unwrap();
    let n = allocations_during(|| {
        for _ in 0..3 {
            lenet
                .train_step(x.view().into_dyn(), Target::Labels(labels.view()))
                .unwrap();
        }
        lenet.predict_into(x.view().into_dyn(), &mut out).unwrap();
    });
    assert_eq!(n, 0, "Lenet allocated {n} times");

    let mut reg = Regressor::new(2);
    let x = Array4::<f32>::from_shape_fn((6, 2, 9, 9), |(n, c, h, w)| ((n * 3 + c + h + 2 * w) % 5) as f32 / 5.0);
    let t = Array2::<f32>::from_shape_fn((6, 3), |(n, j)| ((n + j) % 3) as f32 / 3.0);
    let mut out = vec![0.0f32; 6 * 3];
    let n = allocations_during(|| {
        for _ in 0..3 {
            reg.train_step(x.view().into_dyn(), Target::Values(t.view().into_dyn()))
                .unwrap();
        }
        reg.predict_into(x.view().into_dyn(), &mut out).unwrap();
    });
    assert_eq!(n, 0, "Regressor allocated {n} times");
}

/// The executor (`cnnc train`'s path) on the same LeNet and on ResNet-8 (batchnorm
/// phases, residual joins, a strided projection, a depthwise layer, and the fused
/// inference plan, whose folded weights are made again after each step).
#[test]
fn the_executor_allocates_nothing_per_step() {
    use cnnc::rt::exec::Executor;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lenet = include_str!("no_alloc_lenet.cnn");
    let resnet8 = include_str!("../examples/models/resnet8.cnn");
    for (name, source, input) in [("LeNet", lenet, (1, 28, 28)), ("ResNet-8", resnet8, (3, 32, 32))] {
        let mut net = Executor::from_source(source, None, 3).unwrap();
        let (c, h, w) = input;
        let x = Array4::<f32>::from_shape_fn((40, c, h, w), |(n, c, h, w)| ((n + c + h * w) % 7) as f32 / 7.0);
        let labels = Array1::from_shape_fn(40, |i| i % 10);
        let mut out = vec![0.0f32; 40 * 10];
        // Warm up: the first step and prediction may size what they keep.
        net.train_step(x.view().into_dyn(), Target::Labels(labels.view()))
            .unwrap();
        net.predict_into(x.view().into_dyn(), &mut out).unwrap();
        let n = allocations_during(|| {
            for _ in 0..2 {
                net.train_step(x.view().into_dyn(), Target::Labels(labels.view()))
                    .unwrap();
                net.predict_into(x.view().into_dyn(), &mut out).unwrap();
            }
        });
        assert_eq!(n, 0, "the executor allocated {n} times on {name}");
    }
}
