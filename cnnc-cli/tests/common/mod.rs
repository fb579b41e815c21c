//! What every CLI test file uses: run `cnnc` from the workspace root, read its
//! output, name paths. (Each file uses a part; the rest is allowed to go unused.)
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn cnnc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnnc"))
        .args(args)
        // The workspace root, where examples/ and tests/ui/ are.
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("cnnc runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
