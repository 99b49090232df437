//! `shmidl check` and `shmidl fmt`: the schema commands.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

/// `shmidl check FILE... [-I DIR]... [-v]`: validates the files and everything they
/// import.
///
/// Exit status 0 when every file is valid: nothing is printed, or with `verbose` a
/// summary of every package, type (size, alignment, field offsets, fingerprint) and
/// topic on stdout. Warnings go to stderr and do not change the status. Exit status 1
/// when a file is invalid, with every diagnostic on stderr.
#[allow(clippy::print_stdout)]
pub fn check(files: &[PathBuf], includes: &[PathBuf], verbose: bool) -> ExitCode {
    if files.is_empty() {
        eprintln!("error: no schema files given");
        return ExitCode::FAILURE;
    }
    match shmidl_idl::load_all(files, includes) {
        Ok(schema) => {
            if !schema.warnings().is_empty() {
                eprintln!("{}", schema.warnings());
            }
            if verbose {
                print!("{}", schema.summary());
                let types = schema.types().len();
                let topics = schema.topics().len();
                println!(
                    "ok: {} file{}, {types} type{}, {topics} topic{}",
                    schema.files().len(),
                    plural(schema.files().len()),
                    plural(types),
                    plural(topics)
                );
            }
            ExitCode::SUCCESS
        }
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            ExitCode::FAILURE
        }
    }
}

/// `shmidl fmt FILE [-I DIR]...`: prints the canonical formatting of `file` on stdout.
///
/// The file must be a valid schema (it is checked with `includes` first, so formatting
/// never hides a mistake); on errors, the diagnostics go to stderr, nothing to stdout,
/// and the exit status is 1. Comments are kept, and the output is a fixed point:
/// formatting it again changes nothing.
#[allow(clippy::print_stdout)]
pub fn fmt(file: &Path, includes: &[PathBuf]) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let name = file.display().to_string();
    let formatted = match shmidl_idl::format_str(&name, &text) {
        Ok(formatted) => formatted,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            return ExitCode::FAILURE;
        }
    };
    match shmidl_idl::load(file, includes) {
        Ok(schema) => {
            if !schema.warnings().is_empty() {
                eprintln!("{}", schema.warnings());
            }
        }
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            return ExitCode::FAILURE;
        }
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(formatted.as_bytes())
        .and_then(|()| stdout.flush())
    {
        eprintln!("error: cannot write the formatted schema: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
