//! The generated code of every example model, formatted by prettyplease
//! (`cnnc emit`), pinned with insta: a change to the code generator shows up as a
//! reviewable diff of the Rust it writes.

#[test]
fn generated_code_of_every_example_model() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5, "the example models are missing");
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "cnn")) {
        let text = std::fs::read_to_string(path).unwrap();
        let code =
            cnnc::codegen::emit(&text).unwrap_or_else(|d| panic!("{}", d.render(&path.display().to_string(), &text)));
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        insta::assert_snapshot!(name, code);
    }
}

#[test]
fn a_model_without_train_block_has_no_backward_code() {
    let code =
        cnnc::codegen::emit("model Infer { input 3x8x8 conv 4 kernel 3 relu maxpool 2 flatten dense 2 softmax }")
            .unwrap();
    assert!(
        !code.contains("fn backward"),
        "backward code was generated for an inference-only model"
    );
    assert!(!code.contains("impl ::cnnc::Train"));
    let trained = cnnc::codegen::emit(
        "model T { input 3x8x8 conv 4 kernel 3 relu flatten dense 2 softmax train { loss cross_entropy optimizer sgd lr 0.1 } }",
    )
    .unwrap();
    assert!(trained.contains("fn backward") && trained.contains("impl ::cnnc::Train"));
}

#[test]
fn identical_layers_share_one_function() {
    let code = cnnc::codegen::emit(
        "model Twins { input 4x8x8 conv 4 kernel 3 pad 1 relu conv 4 kernel 3 pad 1 relu conv 4 kernel 3 pad 1 relu flatten dense 2 }",
    )
    .unwrap();
    assert_eq!(code.matches("fn forward_conv1(").count(), 1);
    assert!(
        !code.contains("fn forward_conv2") && !code.contains("fn forward_conv3"),
        "three identical convs need one forward function"
    );
    assert_eq!(code.matches("Self::forward_conv1(").count(), 3);
}
