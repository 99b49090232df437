//! Names that are distinct in the schema but would be one name in Rust.
//!
//! `shmidl-idl` checks the schema's own rules; a few collisions only exist
//! after the mapping to Rust, and the generator reports them as schema
//! errors (rendered like `shmidl check`) instead of writing code that does
//! not compile:
//!
//! - two fields whose identifiers meet after escaping (`self` → `self_`
//!   next to a field `self_`);
//! - two topics of a package whose modules meet (`a/b` and `a_b`, or `A`
//!   and `a`: module names are lowercased);
//! - in one package's module, a type named like the `topics` module or like
//!   the module of a sub-package (`struct v1` in `robot` next to package
//!   `robot.v1`): structs, enums and modules share Rust's type namespace.

use std::collections::HashMap;

use shmidl_idl::{Diagnostic, Diagnostics, FileId, Schema, Span, TypeDefKind};

use super::{Config, Error};
use crate::ident::{ident, topic_module};

/// Every Rust-level name collision in `schema`, as one [`Error::Schema`]
/// rendered with the schema's warnings, as `shmidl check` would print it.
pub(crate) fn check(schema: &Schema, config: &Config) -> Result<(), Error> {
    let mut found = Vec::new();
    fields(schema, &mut found);
    modules(schema, config, &mut found);
    if found.is_empty() {
        return Ok(());
    }
    let mut diagnostics: Diagnostics = schema.warnings().clone();
    for d in found {
        diagnostics.push(d);
    }
    Err(Error::Schema(diagnostics.to_string()))
}

fn fields(schema: &Schema, found: &mut Vec<Diagnostic>) {
    for def in schema.types() {
        let TypeDefKind::Struct(s) = &def.kind else {
            continue;
        };
        let mut seen: HashMap<String, &str> = HashMap::new();
        for f in &s.fields {
            let rust = ident(&f.name).to_string();
            match seen.get(&rust) {
                Some(first) => found.push(
                    Diagnostic::error(
                        def.file,
                        f.span,
                        format!(
                            "fields `{first}` and `{}` of `{}` are both `{rust}` in Rust",
                            f.name, def.qualified_name
                        ),
                    )
                    .with_note("`self`, `Self`, `super` and `crate` become `self_`, `Self_`, `super_` and `crate_`")
                    .with_help("rename one of the fields"),
                ),
                None => {
                    seen.insert(rust, &f.name);
                }
            }
        }
    }
}

/// What takes a name in a package module's type namespace.
enum Owner {
    Type,
    Topics,
    Package(String),
}

fn modules(schema: &Schema, config: &Config, found: &mut Vec<Diagnostic>) {
    for package in schema.packages() {
        // Type namespace of the package's module: its types, its `topics`
        // module, and the modules of its direct sub-packages.
        let mut names: HashMap<String, Owner> = HashMap::new();
        let has_topics = config.topics && !package.topics.is_empty();
        if has_topics {
            names.insert("topics".to_owned(), Owner::Topics);
        }
        for sub in schema.packages() {
            if sub.path.len() == package.path.len() + 1 && sub.path.starts_with(&package.path) {
                let segment = &sub.path[package.path.len()];
                names.insert(ident(segment).to_string(), Owner::Package(sub.name()));
            }
        }
        for &id in &package.types {
            let def = schema.type_def(id);
            let rust = ident(&def.name).to_string();
            match names.get(&rust) {
                Some(Owner::Topics) => found.push(
                    Diagnostic::error(
                        def.file,
                        def.span,
                        format!(
                            "type `{}` has the name of the generated module of the package's topics",
                            def.qualified_name
                        ),
                    )
                    .with_help("rename the type (types are CamelCase), or generate without topics"),
                ),
                Some(Owner::Package(sub)) => found.push(
                    Diagnostic::error(
                        def.file,
                        def.span,
                        format!(
                            "type `{}` has the name of the module of package `{sub}`",
                            def.qualified_name
                        ),
                    )
                    .with_note("types and modules share a namespace in Rust")
                    .with_help("rename the type or the package"),
                ),
                _ => {
                    names.insert(rust, Owner::Type);
                }
            }
        }
        if !has_topics {
            continue;
        }
        let mut topics: HashMap<String, (&str, FileId, Span)> = HashMap::new();
        for &i in &package.topics {
            let t = &schema.topics()[i];
            let module = topic_module(&t.name).to_string();
            match topics.get(&module) {
                Some(&(first, file, span)) => found.push(
                    Diagnostic::error(
                        t.file,
                        t.span,
                        format!(
                            "topics \"{first}\" and \"{}\" both generate the module `topics::{module}`",
                            t.name
                        ),
                    )
                    .with_note_at(file, span, "the first one")
                    .with_note("a topic's module is its name lowercased, with `/` as `_`")
                    .with_help("rename one of the topics"),
                ),
                None => {
                    topics.insert(module, (&t.name, t.file, t.span));
                }
            }
        }
    }
}
