//! `.shmidl` schemas → Rust source files, for `build.rs` and `shmidl gen`.
//!
//! [`compile`] is the three-line `build.rs`; [`Config`] is the builder with
//! the options. The output is one file per package, `<package>.rs` in
//! `$OUT_DIR` (`_.rs` for files without a `package` declaration), formatted
//! with prettyplease, starting with an `@generated` header, and written only
//! when its content changed, so Cargo does not rebuild for nothing.

mod generate;
mod names;

use std::{
    fmt,
    path::{Path, PathBuf},
};

use proc_macro2::TokenStream;
use quote::quote;

/// Why code generation failed.
///
/// `Debug` prints the same as `Display`: in a `build.rs` whose `main`
/// returns this error, Cargo shows the schema diagnostics (`path:line:col:
/// error: …` with the source line and a caret), not a struct dump.
#[non_exhaustive]
pub enum Error {
    /// The schemas have errors: every one, rendered as `shmidl check` does.
    Schema(String),
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No output directory: not run by Cargo (no `$OUT_DIR`) and none set.
    NoOutDir,
    /// An attribute given to [`Config::type_attribute`] does not parse.
    InvalidAttribute {
        /// The type path it was given for.
        path: String,
        /// The attribute.
        attribute: String,
        /// The parser's message.
        message: String,
    },
    /// The path given to [`Config::runtime_crate`] is not a Rust path.
    InvalidRuntimeCrate {
        /// The path.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// The generated code does not parse (a bug in this crate).
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Schema(diagnostics) => write!(f, "{}", diagnostics.trim_end()),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::NoOutDir => write!(
                f,
                "no output directory: $OUT_DIR is not set (not run from build.rs?); \
                 set one with `Config::out_dir`"
            ),
            Error::InvalidAttribute {
                path,
                attribute,
                message,
            } => write!(
                f,
                "the attribute `{attribute}` for `{path}` does not parse: {message}"
            ),
            Error::InvalidRuntimeCrate { path, message } => write!(
                f,
                "the runtime crate path `{path}` is not a Rust path such as `::shmidl` \
                 or `crate::rt`: {message}"
            ),
            Error::Internal(message) => write!(
                f,
                "internal error: the generated code does not parse ({message}); please report it"
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// The file name (`robot.v1.rs`).
    pub name: String,
    /// The package it holds (`robot.v1`; empty for the root package).
    pub package: String,
    /// The formatted source.
    pub content: String,
}

/// Options of the schema → Rust generator. A `&mut Self` builder:
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     shmidl_codegen::Config::new()
///         .derive("robot.v1", "serde::Serialize")
///         .topics(true)
///         .compile(&["schema/robot.shmidl"], &["schema"])?;
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    out_dir: Option<PathBuf>,
    attributes: Vec<(String, String)>,
    runtime: String,
    topics: bool,
    rerun_if_changed: Option<bool>,
    warnings: Option<bool>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// The defaults: output to `$OUT_DIR`, runtime at `::shmidl`, topic
    /// modules on, `cargo:rerun-if-changed` lines when run by Cargo.
    pub fn new() -> Self {
        Config {
            out_dir: None,
            attributes: Vec::new(),
            runtime: "::shmidl".to_owned(),
            topics: true,
            rerun_if_changed: None,
            warnings: None,
        }
    }

    /// Where the files go (default `$OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Adds `attribute` (such as `#[serde(rename_all = "camelCase")]`) to
    /// the types matching `path`: `"."` for every type, a package
    /// (`"robot.v1"`) for its types, or a qualified type name
    /// (`"robot.v1.Pose"`).
    pub fn type_attribute(&mut self, path: &str, attribute: &str) -> &mut Self {
        self.attributes
            .push((path.to_owned(), attribute.to_owned()));
        self
    }

    /// Adds `#[derive(<derive>)]` to the types matching `path` (see
    /// [`type_attribute`](Self::type_attribute)).
    pub fn derive(&mut self, path: &str, derive: &str) -> &mut Self {
        self.type_attribute(path, &format!("#[derive({derive})]"))
    }

    /// The path of the runtime crate in generated code (default `::shmidl`),
    /// for a renamed dependency or a re-export; written as the paths'
    /// prefix and as `#[shm(crate = "…")]` on every type. Generation fails
    /// with [`Error::InvalidRuntimeCrate`] when it is not a Rust path.
    pub fn runtime_crate(&mut self, path: &str) -> &mut Self {
        self.runtime = path.to_owned();
        self
    }

    /// Whether to generate a `topics` module per package (default `true`).
    pub fn topics(&mut self, on: bool) -> &mut Self {
        self.topics = on;
        self
    }

    /// Whether to print `cargo:rerun-if-changed=` for every schema and
    /// import (default: when `$OUT_DIR` is set, i.e. under Cargo).
    pub fn emit_rerun_if_changed(&mut self, on: bool) -> &mut Self {
        self.rerun_if_changed = Some(on);
        self
    }

    /// Whether to print each schema warning (a style problem, a queue
    /// deeper than its pool) as a `cargo:warning=` line (default: when
    /// `$OUT_DIR` is set, i.e. under Cargo, which shows them for the user's
    /// own packages and not for dependencies).
    pub fn emit_warnings(&mut self, on: bool) -> &mut Self {
        self.warnings = Some(on);
        self
    }

    /// Loads and checks `schemas` (imports looked up next to each file,
    /// then in `includes`), and returns the generated files without writing
    /// them.
    pub fn generate(
        &self,
        schemas: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Vec<GeneratedFile>, Error> {
        Ok(self.load_and_generate(schemas, includes)?.files)
    }

    /// Generates the files and writes those whose content changed.
    pub fn compile(
        &self,
        schemas: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let Generated {
            files,
            inputs,
            warnings,
        } = self.load_and_generate(schemas, includes)?;
        let under_cargo = std::env::var_os("OUT_DIR").is_some();
        let mut lines = Vec::new();
        if self.rerun_if_changed.unwrap_or(under_cargo) {
            lines.extend(rerun_if_changed(&inputs));
        }
        if self.warnings.unwrap_or(under_cargo) {
            lines.extend(warnings);
        }
        // The build-script protocol is lines on stdout.
        #[allow(clippy::print_stdout)]
        for line in lines {
            println!("{line}");
        }
        std::fs::create_dir_all(&out_dir).map_err(|source| Error::Io {
            path: out_dir.clone(),
            source,
        })?;
        for file in files {
            write_if_changed(&out_dir.join(&file.name), &file.content)?;
        }
        Ok(())
    }

    fn load_and_generate(
        &self,
        schemas: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Generated, Error> {
        if let Err(e) = syn::parse_str::<syn::Path>(&self.runtime) {
            return Err(Error::InvalidRuntimeCrate {
                path: self.runtime.clone(),
                message: e.to_string(),
            });
        }
        let paths: Vec<PathBuf> = schemas.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let includes: Vec<PathBuf> = includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let schema =
            shmidl_idl::load_all(&paths, &includes).map_err(|d| Error::Schema(d.to_string()))?;
        names::check(&schema, self)?;
        let inputs: Vec<PathBuf> = schema
            .files()
            .iter()
            .map(|f| f.path().to_path_buf())
            .collect();
        let mut files = Vec::new();
        for package in schema.packages() {
            // The files that declare the package, by file name (not the
            // full path, so the output does not depend on where it is built).
            let sources: Vec<String> = package
                .files
                .iter()
                .filter_map(|&id| schema.file(id))
                .map(|f| {
                    f.path()
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
                .collect();
            let gen = generate::PackageGen {
                schema: &schema,
                package,
                config: self,
            };
            let tokens = gen.items().map_err(Error::Internal)?;
            let name = package.path.join(".");
            files.push(GeneratedFile {
                name: if name.is_empty() {
                    "_.rs".to_owned()
                } else {
                    format!("{name}.rs")
                },
                content: format_file(&name, &sources, tokens)?,
                package: name,
            });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Generated {
            files,
            inputs,
            warnings: cargo_warnings(&schema),
        })
    }

    /// The runtime path as tokens; checked to be a path before generating.
    pub(crate) fn runtime_path_tokens(&self) -> TokenStream {
        syn::parse_str::<syn::Path>(&self.runtime)
            .map(|p| quote!(#p))
            .unwrap_or_else(|_| quote!(::shmidl))
    }

    /// The configured attributes for the type `qualified`, parsed.
    pub(crate) fn attributes_for<'a>(
        &'a self,
        qualified: &'a str,
    ) -> impl Iterator<Item = Result<TokenStream, String>> + 'a {
        self.attributes
            .iter()
            .filter(move |(path, _)| {
                path.is_empty()
                    || path == "."
                    || qualified == path
                    || qualified
                        .strip_prefix(path.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .map(|(path, attribute)| {
                let parsed = syn::parse::Parser::parse_str(syn::Attribute::parse_outer, attribute)
                    .map_err(|e| {
                        Error::InvalidAttribute {
                            path: path.clone(),
                            attribute: attribute.clone(),
                            message: e.to_string(),
                        }
                        .to_string()
                    })?;
                Ok(quote!(#(#parsed)*))
            })
    }
}

/// The `cargo:rerun-if-changed` lines for every loaded file: the schemas
/// given and every file they import.
fn rerun_if_changed(inputs: &[PathBuf]) -> Vec<String> {
    inputs
        .iter()
        .map(|input| format!("cargo:rerun-if-changed={}", input.display()))
        .collect()
}

/// What one run of the generator produced.
struct Generated {
    /// The files, by name.
    files: Vec<GeneratedFile>,
    /// Every loaded schema file, imports included.
    inputs: Vec<PathBuf>,
    /// The schema's warnings as `cargo:warning=` lines.
    warnings: Vec<String>,
}

/// One `cargo:warning=` line per schema warning (`path:line:col: message`),
/// so a style problem shows in `cargo build` as it does in `shmidl check`.
/// Cargo shows them for the user's own packages, not for dependencies.
fn cargo_warnings(schema: &shmidl_idl::Schema) -> Vec<String> {
    let warnings = schema.warnings();
    warnings
        .iter()
        .map(|d| {
            let place = d
                .location
                .and_then(|l| {
                    let file = warnings.source(l.file).or_else(|| schema.file(l.file))?;
                    let (line, col) = file.line_col(l.span.start);
                    Some(format!("{}:{line}:{col}: ", file.path().display()))
                })
                .unwrap_or_default();
            let help = d
                .help
                .as_deref()
                .map(|h| format!(" (help: {h})"))
                .unwrap_or_default();
            format!("cargo:warning={place}{}{help}", d.message).replace(['\n', '\r'], " ")
        })
        .collect()
}

/// Formats a package's items as a file with its header.
fn format_file(package: &str, sources: &[String], items: TokenStream) -> Result<String, Error> {
    let file: syn::File = syn::parse2(items).map_err(|e| Error::Internal(e.to_string()))?;
    let body = prettyplease::unparse(&file);
    let package = if package.is_empty() {
        "the root package".to_owned()
    } else {
        format!("package `{package}`")
    };
    Ok(format!(
        "// @generated by shmidl-codegen from {}: {package}. Do not edit.\n\n{body}",
        sources.join(", ")
    ))
}

/// Writes `content` to `path` unless the file already holds exactly that.
fn write_if_changed(path: &Path, content: &str) -> Result<(), Error> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    std::fs::write(path, content).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Compiles `schemas` with the default [`Config`]: the whole `build.rs`.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     shmidl_codegen::compile(&["schema/robot.shmidl"], &["schema"])?;
///     Ok(())
/// }
/// ```
pub fn compile(schemas: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<(), Error> {
    Config::new().compile(schemas, includes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_reruns_when_a_schema_or_any_file_it_imports_changes() {
        let dir = std::env::temp_dir().join(format!("shmidl-codegen-rerun-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("inc/deep")).unwrap();
        std::fs::write(
            dir.join("app.shmidl"),
            "package app;\nimport \"geo.shmidl\";\nstruct A { p: geo.P }\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("inc/geo.shmidl"),
            "package geo;\nimport \"deep/time.shmidl\";\nstruct P { t: time.T }\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("inc/deep/time.shmidl"),
            "package time;\nstruct T { ns: u64 }\n",
        )
        .unwrap();
        let Generated {
            files,
            inputs,
            warnings,
        } = Config::new()
            .load_and_generate(&[dir.join("app.shmidl")], &[dir.join("inc")])
            .unwrap();
        assert_eq!(files.len(), 3);
        assert!(warnings.is_empty(), "{warnings:?}");
        let mut lines = rerun_if_changed(&inputs);
        lines.sort();
        let want = |p: &str| format!("cargo:rerun-if-changed={}", dir.join(p).display());
        let mut expected = vec![
            want("app.shmidl"),
            want("inc/deep/time.shmidl"),
            want("inc/geo.shmidl"),
        ];
        expected.sort();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(lines, expected);
    }

    #[test]
    fn schema_warnings_become_cargo_warnings_with_their_place() {
        let dir = std::env::temp_dir().join(format!("shmidl-codegen-warn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.shmidl");
        std::fs::write(&path, "package w;\nstruct bad_name { x: u8 }\n").unwrap();
        let Generated { warnings, .. } = Config::new()
            .load_and_generate(std::slice::from_ref(&path), &[] as &[PathBuf])
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let prefix = format!("cargo:warning={}:2:8: ", path.display());
        assert!(warnings[0].starts_with(&prefix), "{warnings:?}");
        assert!(warnings[0].contains("bad_name"), "{warnings:?}");
    }
}
