//! The public API as a code generator uses it.

use std::{
    fs,
    path::{Path, PathBuf},
};

use shmidl_idl::{ConstValue, Overflow, Primitive, Type, TypeDefKind};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("shmidl-idl-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Self(dir)
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            let _ = fs::create_dir_all(parent);
        }
        fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn parse(text: &str) -> shmidl_idl::Schema {
    shmidl_idl::parse_str("t.shmidl", text).unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn the_model_exposes_resolved_types_layouts_constants_and_topics() {
    let sut = parse(include_str!("fixtures/valid/robot_example/input.shmidl"));
    assert_eq!(sut.packages().len(), 1);
    assert_eq!(sut.packages()[0].name(), "robot.v1");
    assert_eq!(sut.packages()[0].docs, ["Robot arm state."]);

    let c = &sut.consts()[0];
    assert_eq!(
        (c.name.as_str(), c.ty, c.value),
        ("MAX_JOINTS", Primitive::U32, ConstValue::Int(16))
    );

    let state = sut
        .type_by_name("robot.v1.JointState")
        .unwrap_or_else(|| panic!("missing"));
    let TypeDefKind::Struct(s) = &state.kind else {
        panic!("not a struct")
    };
    assert!(s.is_message);
    let names = &s.fields[2];
    assert_eq!(names.name, "names");
    assert_eq!(
        names.ty,
        Type::Array {
            element: Box::new(Type::String { capacity: 32 }),
            len: 16
        }
    );
    assert_eq!((names.offset, names.padding_before), (9, 0));
    assert_eq!(sut.describe(&names.ty), "[string<32>; 16]");
    let Type::Named(mode) = s.fields[1].ty else {
        panic!("mode is not named")
    };
    assert_eq!(sut.type_def(mode).qualified_name, "robot.v1.Mode");
    assert_eq!(
        sut.fingerprint_of(&s.fields[1].ty),
        sut.type_def(mode).fingerprint
    );

    let topic = &sut.topics()[0];
    assert_eq!(topic.name, "robot/joint_states");
    assert_eq!(topic.payload, state.id);
    assert_eq!((topic.options.pool, topic.options.depth), (64, 8));
    assert_eq!(topic.options.pool_chunks, 1);
    assert_eq!(topic.options.overflow, Overflow::OverwriteOldest);
    assert_eq!(
        (topic.options.max_publishers, topic.options.max_subscribers),
        (8, 8)
    );
}

#[test]
fn parse_str_rejects_imports_and_points_to_load() {
    let err = shmidl_idl::parse_str("a.shmidl", "import \"b.shmidl\";\n")
        .err()
        .map(|d| d.to_string());
    let text = err.unwrap_or_default();
    assert!(
        text.contains("imports cannot be resolved in a schema parsed from a string"),
        "{text}"
    );
    assert!(text.contains("shmidl_idl::load"));
}

#[test]
fn imports_look_next_to_the_importing_file_before_the_include_directories() {
    let tmp = TempDir::new("include-order");
    let main = tmp.write(
        "main/app.shmidl",
        "package app;\nimport \"dep.shmidl\";\nmessage M { d: dep.D }\n",
    );
    tmp.write("main/dep.shmidl", "package dep;\nstruct D { near: u8 }\n");
    tmp.write("inc1/dep.shmidl", "package dep;\nstruct D { far: u8 }\n");
    let sut = shmidl_idl::load(&main, &[tmp.path("inc1")]).unwrap_or_else(|d| panic!("{d}"));
    let d = sut.type_by_name("dep.D").map(|t| sut.describe_def(t.id));
    assert_eq!(d.as_deref(), Some("struct dep.D { near: u8 }"));

    // Without the sibling, include directories are searched in order.
    let main = tmp.write(
        "other/app.shmidl",
        "package app;\nimport \"dep.shmidl\";\nmessage M { d: dep.D }\n",
    );
    tmp.write("inc2/dep.shmidl", "package dep;\nstruct D { second: u8 }\n");
    let sut = shmidl_idl::load(&main, &[tmp.path("inc1"), tmp.path("inc2")])
        .unwrap_or_else(|d| panic!("{d}"));
    let d = sut.type_by_name("dep.D").map(|t| sut.describe_def(t.id));
    assert_eq!(d.as_deref(), Some("struct dep.D { far: u8 }"));
}

#[test]
fn a_file_imported_twice_through_different_paths_is_loaded_once() {
    let tmp = TempDir::new("diamond");
    let main = tmp.write(
        "a.shmidl",
        "package a;\nimport \"b.shmidl\";\nimport \"sub/../c.shmidl\";\nstruct A { b: b.B, c: c.C }\n",
    );
    tmp.write(
        "b.shmidl",
        "package b;\nimport \"c.shmidl\";\nstruct B { c: c.C }\n",
    );
    tmp.write("c.shmidl", "package c;\nstruct C { x: u8 }\n");
    fs::create_dir_all(tmp.path("sub")).unwrap_or_else(|e| panic!("{e}"));
    let sut = shmidl_idl::load(&main, &[]).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(sut.files().len(), 3);
    assert_eq!(sut.root_files().len(), 1);
}

#[test]
fn several_root_files_are_checked_together() {
    let tmp = TempDir::new("roots");
    let a = tmp.write("a.shmidl", "package p;\nstruct A { x: u8 }\n");
    let b = tmp.write("b.shmidl", "package p;\nstruct A { y: u8 }\n");
    let err = shmidl_idl::load_all(&[a.clone(), b], &[])
        .err()
        .map(|d| d.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("`A` is declared more than once in package `p`"),
        "{err}"
    );
    let ok = shmidl_idl::load_all(&[a.clone(), a], &[]).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(ok.root_files().len(), 1);
}

#[test]
fn warnings_do_not_fail_validation_and_are_kept_on_the_schema() {
    let sut = parse("struct bad_name { x: u8 }");
    assert_eq!(sut.warnings().warning_count(), 1);
    assert!(!sut.warnings().has_errors());
    assert!(sut
        .warnings()
        .to_string()
        .contains("warning: struct name `bad_name` should be CamelCase"));
}

#[test]
fn formatting_keeps_literals_and_comments() {
    let text = "const A: u32 = 0x10; // hex\nstruct S { /* why */ a: [u8; A] }";
    let sut = shmidl_idl::format_str("f.shmidl", text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        sut,
        "const A: u32 = 0x10; // hex\n\nstruct S {\n    /* why */\n    a: [u8; A],\n}\n"
    );
}

#[test]
fn syntax_trees_are_available_without_validation() {
    let sut = shmidl_idl::parse_ast("a.shmidl", "struct A { x: Unknown }")
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(sut.items.len(), 1);
    let err = shmidl_idl::parse_ast("a.shmidl", "struct A { x: }")
        .err()
        .map(|d| d.error_count());
    assert_eq!(err, Some(1));
}

#[test]
fn unreadable_and_non_utf8_files_are_errors_without_a_location() {
    let tmp = TempDir::new("unreadable");
    let bad = tmp.path("bad.shmidl");
    fs::write(&bad, b"struct A { x: u8 }\n\xff\n").unwrap_or_else(|e| panic!("{e}"));
    let text = shmidl_idl::load(&bad, &[])
        .err()
        .map(|d| d.to_string())
        .unwrap_or_default();
    assert!(
        text.contains("not valid UTF-8 (invalid byte on line 2)"),
        "{text}"
    );
    let missing = shmidl_idl::load(Path::new("/nonexistent/x.shmidl"), &[])
        .err()
        .map(|d| d.to_string());
    assert!(missing
        .unwrap_or_default()
        .contains("cannot read `/nonexistent/x.shmidl`"));
}
