//! Snapshot tests of the schema generator: every valid golden schema of
//! `idl/tests/fixtures/valid/<case>/input.shmidl`, and every case of the
//! generator's own in `codegen/tests/fixtures/<case>/input.shmidl` (each with
//! its case directory's `include/` as include path), generates exactly
//! `codegen/tests/fixtures/<case>/<package>.rs`. Set `SHMIDL_BLESS=1` to
//! rewrite them; a snapshot whose case or package is gone fails the test.
//! (`shmidl-tests` compiles every one of these files and checks their sizes
//! and fingerprints against the schema compiler.)

#![cfg(feature = "schema")]

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

/// The case directories holding an `input.shmidl` under `root`.
fn cases_in(root: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(root)
        .expect("listing schema cases")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("input.shmidl").is_file())
        .collect();
    cases.sort();
    cases
}

/// The golden cases of `idl`, then the generator's own.
fn cases() -> Vec<PathBuf> {
    let golden =
        cases_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../idl/tests/fixtures/valid"));
    let own = cases_in(&snapshot_root());
    for case in &own {
        assert!(
            !golden.iter().any(|g| g.file_name() == case.file_name()),
            "{}: a golden case of idl has this name already",
            case.display()
        );
    }
    golden.into_iter().chain(own).collect()
}

fn snapshot_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn every_golden_schema_generates_its_snapshot() {
    let bless = std::env::var_os("SHMIDL_BLESS").is_some();
    let mut failures = Vec::new();
    let mut expected_files = BTreeSet::new();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let include = case.join("include");
        let includes: Vec<PathBuf> = if include.is_dir() {
            vec![include]
        } else {
            Vec::new()
        };
        let files = shmidl_codegen::Config::new()
            .generate(&[case.join("input.shmidl")], &includes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!files.is_empty(), "{name}: nothing generated");
        let dir = snapshot_root().join(&name);
        for file in files {
            let path = dir.join(&file.name);
            expected_files.insert(path.clone());
            if bless {
                fs::create_dir_all(&dir).unwrap();
                fs::write(&path, &file.content).unwrap();
                continue;
            }
            let expected = fs::read_to_string(&path).unwrap_or_default();
            if expected != file.content {
                failures.push(format!(
                    "{}: generated code differs (SHMIDL_BLESS=1 to accept)\n--- expected\n{expected}\n--- actual\n{}",
                    path.display(),
                    file.content
                ));
            }
        }
    }
    // Orphans: snapshots no case produces any more.
    for entry in fs::read_dir(snapshot_root())
        .into_iter()
        .flatten()
        .flatten()
    {
        for file in fs::read_dir(entry.path()).into_iter().flatten().flatten() {
            let path = file.path();
            // A case of the generator's own: its schema and imports.
            if path.ends_with("input.shmidl") || path.ends_with("include") {
                continue;
            }
            if !expected_files.contains(&path) {
                if bless {
                    fs::remove_file(&path).unwrap();
                } else {
                    failures.push(format!("{} is orphaned: delete it", path.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_schema_error_renders_like_shmidl_check_in_display_and_debug() {
    let dir = std::env::temp_dir().join(format!("shmidl-codegen-err-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let schema = dir.join("bad.shmidl");
    fs::write(&schema, "package p;\nstruct A { x: Vec4 }\n").unwrap();
    let err = shmidl_codegen::Config::new()
        .out_dir(&dir)
        .emit_rerun_if_changed(false)
        .compile(&[&schema], &[] as &[&Path])
        .unwrap_err();
    let shown = format!("{err:?}");
    assert_eq!(shown, err.to_string());
    assert!(
        shown.contains("bad.shmidl:2:15: error: unknown type `Vec4`"),
        "{shown}"
    );
    assert!(shown.contains("struct A { x: Vec4 }"), "{shown}");
    assert!(shown.contains('^'), "{shown}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_are_written_only_when_their_content_changes() {
    let dir = std::env::temp_dir().join(format!("shmidl-codegen-write-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let schema = dir.join("a.shmidl");
    fs::write(&schema, "package a;\nstruct P { x: u32 }\n").unwrap();
    let mut config = shmidl_codegen::Config::new();
    config.out_dir(dir.join("out")).emit_rerun_if_changed(false);
    config.compile(&[&schema], &[] as &[&Path]).unwrap();
    let out = dir.join("out/a.rs");
    let first = fs::metadata(&out).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    config.compile(&[&schema], &[] as &[&Path]).unwrap();
    assert_eq!(fs::metadata(&out).unwrap().modified().unwrap(), first);
    fs::write(&schema, "package a;\nstruct P { x: u64 }\n").unwrap();
    config.compile(&[&schema], &[] as &[&Path]).unwrap();
    assert!(fs::read_to_string(&out).unwrap().contains("pub x: u64"));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn attributes_apply_by_type_path_and_the_runtime_path_is_configurable() {
    let dir = std::env::temp_dir().join(format!("shmidl-codegen-attr-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let schema = dir.join("a.shmidl");
    fs::write(
        &schema,
        "package a.b;\nstruct P { x: u32 }\nmessage Q { y: u32 }\ntopic \"t\": Q;\n",
    )
    .unwrap();
    let files = shmidl_codegen::Config::new()
        .derive("a.b.P", "serde::Serialize")
        .type_attribute("a", "#[must_use]")
        .runtime_crate("::rt")
        .topics(false)
        .generate(&[&schema], &[] as &[&Path])
        .unwrap();
    let code = &files[0].content;
    let p = code.find("pub struct P").unwrap();
    let q = code.find("pub struct Q").unwrap();
    assert_eq!(code[..p].matches("serde::Serialize").count(), 1, "{code}");
    assert!(!code[p..q].contains("serde"), "{code}");
    assert_eq!(code.matches("#[must_use]").count(), 2, "{code}");
    assert!(code.contains("crate = \"::rt\"") && code.contains("::rt::ShmMessage"));
    assert!(!code.contains("::shmidl"), "{code}");
    assert!(!code.contains("mod topics"), "{code}");

    let bad = shmidl_codegen::Config::new()
        .type_attribute(".", "#[derive(")
        .generate(&[&schema], &[] as &[&Path])
        .unwrap_err();
    assert!(bad.to_string().contains("#[derive("), "{bad}");
    fs::remove_dir_all(&dir).unwrap();
}

/// Generates `schema` (one file, `package p;` added unless it has one) and
/// returns the error's rendering.
fn generate_error(name: &str, schema: &str) -> String {
    let dir = std::env::temp_dir().join(format!("shmidl-codegen-{name}-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.shmidl");
    fs::write(&path, schema).unwrap();
    let err = shmidl_codegen::Config::new()
        .generate(&[&path], &[] as &[&Path])
        .unwrap_err();
    fs::remove_dir_all(&dir).unwrap();
    let shown = format!("{err:?}");
    assert_eq!(shown, err.to_string());
    shown
}

#[test]
fn names_that_meet_in_rust_are_schema_errors_with_carets() {
    let shown = generate_error("fields", "package p;\nstruct A { self: u8, self_: u8 }\n");
    assert!(
        shown.contains(
            "s.shmidl:2:22: error: fields `self` and `self_` of `p.A` are both `self_` in Rust"
        ),
        "{shown}"
    );
    assert!(shown.contains("^^^^^"), "{shown}");

    let shown = generate_error(
        "topics",
        "package p;\nmessage M { x: u8 }\ntopic \"a/b\": M;\ntopic \"A_b\": M;\n",
    );
    assert!(
        shown.contains("s.shmidl:4:7: error: topics \"a/b\" and \"A_b\" both generate the module `topics::a_b`"),
        "{shown}"
    );
    assert!(
        shown.contains("s.shmidl:3:7: note: the first one"),
        "{shown}"
    );

    let shown = generate_error(
        "topics-type",
        "package p;\nmessage topics { x: u8 }\ntopic \"t\": topics;\n",
    );
    assert!(
        shown.contains(
            "error: type `p.topics` has the name of the generated module of the package's topics"
        ),
        "{shown}"
    );
}

#[test]
fn a_type_may_not_share_its_name_with_a_sub_package_module() {
    let dir = std::env::temp_dir().join(format!("shmidl-codegen-subpkg-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("a.shmidl"),
        "package robot;\nstruct v1 { x: u8 }\n",
    )
    .unwrap();
    fs::write(
        dir.join("b.shmidl"),
        "package robot.v1;\nstruct P { x: u8 }\n",
    )
    .unwrap();
    let err = shmidl_codegen::Config::new()
        .generate(
            &[dir.join("a.shmidl"), dir.join("b.shmidl")],
            &[] as &[&Path],
        )
        .unwrap_err();
    fs::remove_dir_all(&dir).unwrap();
    assert!(
        err.to_string().contains(
            "a.shmidl:2:8: error: type `robot.v1` has the name of the module of package `robot.v1`"
        ),
        "{err}"
    );
}

#[test]
fn a_topic_named_underscore_gets_a_module() {
    let dir =
        std::env::temp_dir().join(format!("shmidl-codegen-underscore-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.shmidl");
    fs::write(&path, "package p;\nmessage M { x: u8 }\ntopic \"_\": M;\n").unwrap();
    let files = shmidl_codegen::Config::new()
        .generate(&[&path], &[] as &[&Path])
        .unwrap();
    fs::remove_dir_all(&dir).unwrap();
    assert!(
        files[0].content.contains("pub mod __ {"),
        "{}",
        files[0].content
    );
}

#[test]
fn a_runtime_crate_that_is_not_a_path_is_refused() {
    let dir = std::env::temp_dir().join(format!("shmidl-codegen-rt-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.shmidl");
    fs::write(&path, "package p;\nstruct A { x: u8 }\n").unwrap();
    let err = shmidl_codegen::Config::new()
        .runtime_crate("::my rt")
        .generate(&[&path], &[] as &[&Path])
        .unwrap_err();
    assert!(
        matches!(err, shmidl_codegen::Error::InvalidRuntimeCrate { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("`::my rt`"), "{err}");
    let files = shmidl_codegen::Config::new()
        .runtime_crate("crate::rt")
        .generate(&[&path], &[] as &[&Path])
        .unwrap();
    fs::remove_dir_all(&dir).unwrap();
    assert!(
        files[0].content.contains("crate::rt::ShmMessage"),
        "{}",
        files[0].content
    );
}
