//! Compile-time behaviour of `#[derive(ShmMessage)]`: what it accepts and
//! the error it gives for each thing it refuses. The `.stderr` files are
//! written by `TRYBUILD=overwrite cargo test -p shmidl-macros --test ui`,
//! never by hand.

use std::{fs, path::Path};

#[test]
fn ui() {
    // One `TestCases` for all files: dependencies are built once.
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}

/// trybuild ignores a `.stderr` whose case was renamed or deleted; this
/// catches it, so every expected output belongs to a case that runs.
#[test]
fn every_stderr_file_belongs_to_a_failing_case() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).expect("reading tests/ui") {
        let path = entry.expect("reading tests/ui").path();
        if path.extension().is_some_and(|e| e == "stderr") {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            assert!(
                stem.starts_with("fail_") && path.with_extension("rs").is_file(),
                "{} has no `fail_*.rs` case: delete it or restore the case",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no .stderr files found in {}", dir.display());
}
