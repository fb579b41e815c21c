//! `cnnc emit` output pasted into a crate compiles without a warning
//! (tests/integration/codegen.rs keeps emitted/models.rs current).
#![deny(warnings)]

include!("emitted/models.rs");

fn main() {
    use cnnc::{Model, Train};
    let lenet = LeNet::new(0);
    let _ = (lenet.learning_rate(0), Tour::new(0).param_names(), Head::new(0), conv::new(0));
    let mut blocks = Blocks::new(1);
    let x = cnnc::ndarray::ArrayD::<f32>::zeros(vec![2, 3, 8, 8]);
    let _ = blocks.predict(x.view());
}
