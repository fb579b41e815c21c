//! The command line of the examples that train with checkpoints (mnist, mnist_mpi).

use std::path::PathBuf;

/// `--resume PATH`, or nothing; `-h`/`--help` prints `usage` and exits.
pub fn resume_argument(usage: &str) -> Result<Option<PathBuf>, String> {
    let mut args = std::env::args().skip(1);
    let mut resume = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--resume" => match args.next() {
                Some(path) => resume = Some(PathBuf::from(path)),
                None => return Err("--resume needs the checkpoint's path".into()),
            },
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(resume)
}
