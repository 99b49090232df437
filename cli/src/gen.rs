//! `shmidl gen`: the build.rs generator as a command, for builds without
//! build.rs (checked-in code, other build systems). Same output as
//! `shmidl_codegen::compile`.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

/// `shmidl gen FILE... [-I DIR]... -o DIR [--runtime-crate PATH] [--no-topics]`:
/// writes one `<package>.rs` per package into `out`, only where the content
/// changed, and lists them on stdout. Exit status 1 with the diagnostics on
/// stderr when a schema is invalid.
#[allow(clippy::print_stdout)]
pub fn gen(
    files: &[PathBuf],
    includes: &[PathBuf],
    out: &Path,
    runtime: Option<&str>,
    no_topics: bool,
) -> ExitCode {
    let mut config = shmidl_codegen::Config::new();
    config
        .out_dir(out)
        .emit_rerun_if_changed(false)
        .emit_warnings(false)
        .topics(!no_topics);
    if let Some(path) = runtime {
        config.runtime_crate(path);
    }
    let generated = match config.generate(files, includes) {
        Ok(generated) => generated,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = config.compile(files, includes) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    for file in generated {
        println!("{}", out.join(file.name).display());
    }
    ExitCode::SUCCESS
}
