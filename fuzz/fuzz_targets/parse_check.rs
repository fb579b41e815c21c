//! Arbitrary bytes through the whole front end: parse, check, render every
//! diagnostic, and summarize every accepted model. None of it may panic, hang or
//! exhaust memory; every error must be located in the source.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    run(&source);
});

fn run(source: &str) {
    match cnnc::compile(source) {
        Ok(models) => {
            for m in &models {
                // Each layer's input is the previous layer's output.
                let mut previous = m.input;
                for layer in &m.layers {
                    assert_eq!(layer.input, previous, "{}: input of {}", m.name, layer.name);
                    assert!(!layer.output.is_empty(), "{}: empty output", layer.name);
                    previous = layer.output;
                }
                let _ = m.param_count();
                let _ = cnnc::summary::summary(m);
            }
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "an error without a diagnostic");
            let text = diags.render("fuzz.cnn", source);
            // A few short lines each, however long the input's lines and words.
            assert!(
                text.len() <= 1_000 * diags.len(),
                "{} bytes for {} diagnostics",
                text.len(),
                diags.len()
            );
            assert_eq!(
                text.matches("--> fuzz.cnn:").count(),
                diags.len(),
                "every diagnostic is located:\n{text}"
            );
            for d in diags.iter() {
                assert!(d.span.start <= d.span.end, "inverted span {:?}", d.span);
                assert!(
                    d.span.end <= source.len(),
                    "span {:?} past the end {}",
                    d.span,
                    source.len()
                );
                let _ = d.to_string();
            }
        }
    }
}
