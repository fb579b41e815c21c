//! One bad model per diagnostic in `tests/ui/*.cnn`; each file's rendered errors are
//! pinned in `tests/ui/snapshots/`. Review a changed snapshot as a user would: the
//! caret on the right token, the arithmetic in the message, the fix in the hint.

use std::path::Path;

fn ui_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/ui exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cnn"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_model_renders_its_diagnostics() {
    let files = ui_files();
    assert!(files.len() >= 20, "only {} ui cases", files.len());
    for path in files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_string();
        let source = std::fs::read_to_string(&path).expect("readable ui case");
        let file_name = format!("tests/ui/{name}.cnn");
        let diags = match cnnc::compile(&source) {
            Ok(models) => panic!("{file_name} is valid ({} models), but ui cases must fail", models.len()),
            Err(d) => d,
        };
        let rendered = diags.render(&file_name, &source);
        // Every diagnostic is located: it names the file, line and column.
        assert_eq!(
            rendered.matches(&format!("--> {file_name}:")).count(),
            diags.len(),
            "{rendered}"
        );
        insta::with_settings!({
            snapshot_path => "ui/snapshots",
            prepend_module_to_snapshot => false,
            input_file => &path,
        }, {
            insta::assert_snapshot!(name, rendered);
        });
    }
}
