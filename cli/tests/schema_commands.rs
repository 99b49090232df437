//! `shmidl gen` and `shmidl fmt` through the real binary, as a user runs them.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

const SHMIDL: &str = env!("CARGO_BIN_EXE_shmidl");

fn run(args: &[&str]) -> Output {
    Command::new(SHMIDL)
        .args(args)
        .output()
        .expect("running shmidl")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shmidl-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn gen_writes_what_build_rs_generates() {
    let out = temp_dir("gen");
    let input = repo("idl/tests/fixtures/valid/robot_example/input.shmidl");
    let o = run(&["gen", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let written = std::fs::read_to_string(out.join("robot.v1.rs")).unwrap();
    let snapshot =
        std::fs::read_to_string(repo("codegen/tests/fixtures/robot_example/robot.v1.rs")).unwrap();
    assert_eq!(written, snapshot, "shmidl gen and build.rs differ");
    assert!(String::from_utf8_lossy(&o.stdout).contains("robot.v1.rs"));

    let o = run(&[
        "gen",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--runtime-crate",
        "::rt",
        "--no-topics",
    ]);
    assert!(o.status.success(), "{o:?}");
    let written = std::fs::read_to_string(out.join("robot.v1.rs")).unwrap();
    assert!(written.contains("::rt::ShmMessage") && !written.contains("mod topics"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn gen_fails_with_the_diagnostic_file_line_column_and_caret() {
    let dir = temp_dir("gen-err");
    let bad = dir.join("bad.shmidl");
    std::fs::write(&bad, "package p;\nmessage M { x: u32, y: Vec9 }\n").unwrap();
    let o = run(&[
        "gen",
        bad.to_str().unwrap(),
        "-o",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("bad.shmidl:2:24: error: unknown type `Vec9`"),
        "{stderr}"
    );
    assert!(stderr.contains("^^^^"), "{stderr}");
    assert!(!dir.join("out").exists(), "nothing is written on error");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fmt_needs_only_the_file_and_check_reports_a_diff() {
    let dir = temp_dir("fmt");
    // Valid syntax; the import is nowhere to be found.
    let file = dir.join("app.shmidl");
    std::fs::write(
        &file,
        "package app;\nimport \"elsewhere/geo.shmidl\";\nmessage  M{ x:u32 }\n",
    )
    .unwrap();
    let o = run(&["fmt", file.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let formatted = String::from_utf8(o.stdout).unwrap();
    assert!(formatted.contains("message M {"), "{formatted}");

    let o = run(&["fmt", "--check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let diff = String::from_utf8_lossy(&o.stdout);
    assert!(
        diff.contains("Diff in") && diff.contains("at line 3:"),
        "{diff}"
    );
    assert!(diff.contains("-message  M{ x:u32 }"), "{diff}");

    std::fs::write(&file, &formatted).unwrap();
    let o = run(&["fmt", "--check", file.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    assert!(o.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The schemas this repository ships are in canonical formatting (what a
/// user who copies one and runs `shmidl fmt --check` expects).
#[test]
fn the_shipped_schemas_are_canonical() {
    let mut checked = 0;
    for dir in ["examples/schema"] {
        let Ok(entries) = std::fs::read_dir(repo(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "shmidl") {
                let o = run(&["fmt", "--check", path.to_str().unwrap()]);
                assert!(
                    o.status.success(),
                    "{} is not canonical:\n{}",
                    path.display(),
                    String::from_utf8_lossy(&o.stdout)
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 2, "no schema found");
}
