//! A wrong model inside `cnn!` is a compile error at the offending tokens, every
//! error at once, with no cascade of secondary errors in the user's code; and
//! generated code compiles whatever the caller's scope holds.

#[test]
fn bad_models_fail_to_compile_with_located_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}

#[test]
fn generated_code_is_hygienic() {
    let t = trybuild::TestCases::new();
    t.pass("tests/compile_pass/*.rs");
}
