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

/// `shmidl fmt FILE [--check]`: prints the canonical formatting of `file` on
/// stdout, or with `check`, prints nothing and exits 0 when the file is
/// already formatted, else prints a diff and exits 1 (as `rustfmt --check`).
///
/// Formatting needs only the file: it is parsed, not validated, and its
/// imports are not loaded (so a file whose imports are elsewhere formats
/// fine). On syntax errors the diagnostics go to stderr, nothing to stdout,
/// and the exit status is 1. Comments are kept where they stand, and the
/// output is a fixed point: formatting it again changes nothing.
#[allow(clippy::print_stdout)]
pub fn fmt(file: &Path, check: bool) -> ExitCode {
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
    if check {
        if formatted == text {
            return ExitCode::SUCCESS;
        }
        print!("{}", diff(&name, &text, &formatted));
        return ExitCode::FAILURE;
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

/// A line diff of `old` → `new` in the style of `rustfmt --check`: for each
/// changed region, `Diff in FILE at line N:`, then `-` and `+` lines.
fn diff(name: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence by dynamic programming; schemas are small,
    // and beyond 16M cells the whole files are shown as one change.
    let ops = if a.len().saturating_mul(b.len()) <= 1 << 24 {
        let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i][j] = if a[i] == b[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j, mut ops) = (0, 0, Vec::new());
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                ops.push((' ', i, a[i]));
                i += 1;
                j += 1;
            } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
                ops.push(('+', i, b[j]));
                j += 1;
            } else {
                ops.push(('-', i, a[i]));
                i += 1;
            }
        }
        ops
    } else {
        a.iter()
            .enumerate()
            .map(|(i, l)| ('-', i, *l))
            .chain(b.iter().map(|l| ('+', a.len(), *l)))
            .collect()
    };
    let mut out = String::new();
    let mut in_hunk = false;
    for (op, line, text) in ops {
        if op == ' ' {
            in_hunk = false;
            continue;
        }
        if !in_hunk {
            out.push_str(&format!("Diff in {name} at line {}:\n", line + 1));
            in_hunk = true;
        }
        out.push_str(&format!("{op}{text}\n"));
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
