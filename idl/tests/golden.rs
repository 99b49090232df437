//! Golden tests: every schema under `tests/fixtures/valid/<case>/input.shmidl` must
//! validate, and its summary (layouts, offsets, fingerprints, canonical descriptions)
//! plus its canonical formatting must match `expected.txt`; every schema under
//! `tests/fixtures/invalid/<case>/input.shmidl` must fail with exactly the diagnostics
//! in `expected.txt`. Set `SHMIDL_BLESS=1` to rewrite the expectations.
//!
//! A case directory may hold more `.shmidl` files (imported by `input.shmidl`) and an
//! `include/` directory, passed as an include path.

use std::{
    fs,
    path::{Path, PathBuf},
};

fn cases(kind: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("input.shmidl").is_file())
        .collect();
    cases.sort();
    cases
}

fn includes(case: &Path) -> Vec<PathBuf> {
    let include = case.join("include");
    if include.is_dir() {
        vec![include]
    } else {
        Vec::new()
    }
}

/// Paths in the output are relative to the case directory, so snapshots do not depend on
/// where the repository is checked out.
/// Makes paths in output relative to the fixture directory, so snapshots
/// do not depend on where the repository is checked out.
fn relative(text: &str, case: &Path) -> String {
    text.replace(&format!("{}/", case.display()), "")
        .replace(&case.display().to_string(), ".")
}

fn compare(case: &Path, actual: &str, failures: &mut Vec<String>) {
    let expected_path = case.join("expected.txt");
    if std::env::var_os("SHMIDL_BLESS").is_some() {
        fs::write(&expected_path, actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", expected_path.display()));
        return;
    }
    let expected = fs::read_to_string(&expected_path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{}: output differs from expected.txt (run with SHMIDL_BLESS=1 to accept)\n--- expected\n{expected}\n--- actual\n{actual}",
            case.display()
        ));
    }
}

#[test]
fn every_valid_fixture_validates_and_matches_its_snapshot() {
    let cases = cases("valid");
    assert!(
        cases.len() >= 10,
        "expected at least 10 valid fixtures, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let input = case.join("input.shmidl");
        let actual = match shmidl_idl::load(&input, &includes(case)) {
            Ok(schema) => {
                let text = fs::read_to_string(&input).unwrap_or_default();
                let formatted =
                    shmidl_idl::format_str("input.shmidl", &text).unwrap_or_else(|d| d.to_string());
                let warnings = if schema.warnings().is_empty() {
                    String::new()
                } else {
                    format!("{}\n", schema.warnings())
                };
                format!(
                    "== summary\n{}== warnings\n{warnings}== formatted\n{formatted}",
                    schema.summary()
                )
            }
            Err(diagnostics) => {
                failures.push(format!(
                    "{}: valid fixture failed:\n{diagnostics}",
                    case.display()
                ));
                continue;
            }
        };
        compare(case, &relative(&actual, case), &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_invalid_fixture_fails_with_its_expected_diagnostics() {
    let cases = cases("invalid");
    assert!(
        cases.len() >= 40,
        "expected at least 40 invalid fixtures, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let input = case.join("input.shmidl");
        match shmidl_idl::load(&input, &includes(case)) {
            Ok(_) => failures.push(format!("{}: invalid fixture validated", case.display())),
            Err(diagnostics) => {
                assert!(diagnostics.has_errors());
                compare(
                    case,
                    &format!("{}\n", relative(&diagnostics.to_string(), case)),
                    &mut failures,
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
