//! A differential check of the compiler: random valid models drawn from the whole
//! language (tests/random_models/generate.py writes them; 40 in CI, as many as you
//! like locally: `python3 tests/random_models/generate.py 300 7`), each compiled by
//! `cnn!` and compared with the reference interpreter built from the same text:
//! the output, the loss, every gradient, three training steps and the buffers.

use crate::common;

#[path = "../random_models/generated.rs"]
mod generated;

use cnnc::interp::Interpreter;
use cnnc::ndarray::{Array1, ArrayD, IxDyn};
use cnnc::{Model, Target};

#[test]
fn generated_code_agrees_with_the_interpreter_on_random_models() {
    let models = generated::all();
    assert!(models.len() >= 40, "the generated set is missing");
    for (name, text, build) in models {
        let mut generated = build();
        let mut interp = Interpreter::from_source(text, name, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
        let batch = 3; // at most every model's `batch`: a batchnorm step takes the whole batch
        let mut shape = vec![batch];
        shape.extend_from_slice(generated.input_shape());
        let x = common::input(&shape);
        let out: usize = generated.output_shape().iter().product();
        let values;
        let labels;
        let maps;
        let classifier = text.contains("cross_entropy") && !text.contains("binary_cross_entropy");
        let target = if let (true, &[c, h, w]) = (classifier, generated.output_shape()) {
            // v3 segmentation: a class per position, some void.
            let void = text.contains("ignore 255").then_some(255);
            maps = cnnc::ndarray::Array3::from_shape_fn((batch, h, w), |(i, y, x)| match ((i + 2 * y + x) % 7, void) {
                (6, Some(v)) => v,
                (k, _) => k % c,
            });
            Target::LabelMaps(maps.view())
        } else if classifier {
            labels = Array1::from_iter((0..batch).map(|i| i % out));
            Target::Labels(labels.view())
        } else {
            let mut dims = vec![batch];
            dims.extend_from_slice(generated.output_shape());
            values = ArrayD::from_shape_fn(IxDyn(&dims), |ix| ((ix[0] * 7 + ix[1]) % 5) as f32 / 4.0);
            Target::Values(values.view())
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            common::agree(generated.as_mut(), &mut interp, &x, target.clone());
            for b in generated.buffer_names() {
                common::close(
                    &format!("buffer {b} after 3 steps"),
                    &generated.buffer(&b).unwrap(),
                    &interp.buffer(&b).unwrap(),
                    1e-3,
                    1e-5,
                );
            }
        }));
        assert!(result.is_ok(), "model {name} disagrees with the interpreter:\n{text}");
    }
}
