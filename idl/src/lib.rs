//! The `.shmidl` schema language: grammar, validation, diagnostics, layouts and
//! fingerprints.
//!
//! A schema describes message types and topics for shmidl's shared-memory transport:
//!
//! ```text
//! /// Robot arm state.
//! package robot.v1;
//!
//! const MAX_JOINTS: u32 = 16;
//!
//! enum Mode: u8 { Idle = 0, Run = 1, Fault = 2 }
//!
//! struct Vec3 { x: f64, y: f64, z: f64 }
//!
//! message JointState {
//!     stamp_ns: u64,
//!     mode: Mode,
//!     names: [string<32>; MAX_JOINTS],
//!     position: sequence<f64, MAX_JOINTS>,
//!     pose: Vec3,
//! }
//!
//! topic "robot/joint_states": JointState { pool: 64, depth: 8, overflow: overwrite_oldest }
//! ```
//!
//! This crate turns such files into a [`Schema`]: every name resolved, every bound a
//! number, every type with its `#[repr(C)]` [`Layout`] and 64-bit fingerprint. The full
//! language reference, the layout rules and the fingerprint algorithm are in
//! `docs/schema-language.md`.
//!
//! # Example
//!
//! ```
//! let schema = shmidl_idl::parse_str(
//!     "robot.shmidl",
//!     "package robot.v1;\nstruct Vec3 { x: f64, y: f64, z: f64 }\n",
//! )
//! .expect("valid schema");
//! let vec3 = schema.type_by_name("robot.v1.Vec3").expect("declared");
//! assert_eq!(vec3.layout.size, 24);
//! assert_eq!(schema.describe_def(vec3.id), "struct robot.v1.Vec3 { x: f64, y: f64, z: f64 }");
//!
//! // Errors render like a compiler's, with the source line and a caret:
//! let errors = shmidl_idl::parse_str("bad.shmidl", "struct A { x: Vec4 }\n").unwrap_err();
//! assert!(errors.to_string().starts_with("bad.shmidl:1:15: error: unknown type `Vec4`"));
//! ```
//!
//! Load files from disk, following imports, with [`load`] (or [`load_all`] for several
//! root files); format a file canonically with [`format_str`].
//!
//! # Guarantees
//!
//! No input makes this crate panic, overflow its stack or take more than linear-ish time:
//! bracket nesting is limited to [`MAX_NESTING`], files to [`MAX_FILE_SIZE`], stored
//! diagnostics to [`MAX_ERRORS`] errors, and name suggestions to short names.

mod check;
mod diagnostic;
pub mod fingerprint;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod lexer;
mod loader;
mod model;
mod names;
mod parser;
mod report;
mod source;

pub mod ast;

use std::path::{Path, PathBuf};

pub use check::MAX_TYPE_SIZE;
pub use diagnostic::{Diagnostic, Diagnostics, Location, Note, Severity, MAX_ERRORS, MAX_WARNINGS};
pub use format::format_file;
pub use lexer::MAX_NESTING;
pub use loader::{MAX_FILES, MAX_FILE_SIZE};
pub use model::{
    Const, ConstValue, EnumDef, Field, Layout, Overflow, Package, Primitive, Schema, StructDef,
    Topic, TopicOptions, Type, TypeDef, TypeDefKind, TypeId, Variant, MAX_TOPIC_NAME_LEN,
};
pub use source::{FileId, SourceFile, Span};

impl TypeId {
    /// The id of the `index`-th entry of [`Schema::types`].
    pub fn from_index(index: usize) -> TypeId {
        TypeId(u32::try_from(index).unwrap_or(u32::MAX))
    }
}

/// Loads the schema file at `path` and every file it imports, and validates them.
///
/// Imports are looked up relative to the importing file first, then in each directory of
/// `includes`, in order. On failure, the [`Diagnostics`] hold every error found (and the
/// warnings); on success the warnings are in [`Schema::warnings`].
pub fn load(path: impl AsRef<Path>, includes: &[PathBuf]) -> Result<Schema, Diagnostics> {
    load_all(&[path.as_ref().to_path_buf()], includes)
}

/// Loads and validates several root files together (with their imports), as
/// `shmidl check a.shmidl b.shmidl` does. Duplicate declarations across files of one
/// package are errors.
pub fn load_all(paths: &[PathBuf], includes: &[PathBuf]) -> Result<Schema, Diagnostics> {
    let loaded = loader::load_paths(paths, includes);
    check::check(&loaded)
}

/// Parses and validates `text` as a schema file named `name` (the name only appears in
/// diagnostics). `import` declarations are errors here, as there is no directory to
/// resolve them in; use [`load`] for schemas with imports.
pub fn parse_str(name: &str, text: &str) -> Result<Schema, Diagnostics> {
    let loaded = loader::load_source(name, text);
    check::check(&loaded)
}

/// Parses `text` into a syntax tree without validating it. Fails only on syntax errors.
pub fn parse_ast(name: &str, text: &str) -> Result<ast::File, Diagnostics> {
    let mut sources = source::SourceMap::default();
    let id = sources.add(SourceFile::new(name, text));
    let (file, errors) = parser::parse(text, MAX_ERRORS);
    if errors.is_empty() {
        return Ok(file);
    }
    let mut diagnostics = Diagnostics::default();
    diagnostics.set_sources(sources);
    for e in errors {
        diagnostics.push(e.into_diagnostic(id));
    }
    Err(diagnostics)
}

/// Formats `text` canonically (see [`format_file`]); fails only on syntax errors.
pub fn format_str(name: &str, text: &str) -> Result<String, Diagnostics> {
    let file = parse_ast(name, text)?;
    Ok(format_file(&file, text))
}
