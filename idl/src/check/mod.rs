//! Validation: parsed files → [`Schema`], reporting every error found.
//!
//! Passes, in order (each continues past errors so one run reports them all):
//! 1. packages: one `package` per file, first;
//! 2. declarations: names, duplicates, reserved words, style warnings;
//! 3. constants: values, types, references between constants, cycles;
//! 4. types: field and element types, bounds, enum values;
//! 5. layouts and fingerprints, in dependency order (recursive structs are errors);
//! 6. topics: names, payloads, options.
//!
//! No pass recurses over user-controlled depth except type expressions, whose nesting
//! the lexer bounds; chains of structs or constants are walked iteratively.

use std::collections::HashMap;

mod build;
mod consts;
mod topics;
mod types;

use crate::{
    ast::{self, ItemKind},
    diagnostic::{Diagnostic, Diagnostics},
    loader::Loaded,
    model::*,
    names,
    source::{FileId, Span},
};

/// The largest size of any type, in bytes (1 GiB).
pub const MAX_TYPE_SIZE: u64 = 1 << 30;

/// What a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decl {
    Type(usize),
    Const(usize),
}

struct TypeDecl<'a> {
    file: FileId,
    package: usize,
    docs: &'a [String],
    kind: TypeDeclKind<'a>,
    name: &'a ast::Ident,
}

enum TypeDeclKind<'a> {
    Struct(&'a ast::StructDecl),
    Enum(&'a ast::EnumDecl),
}

struct ConstDecl<'a> {
    file: FileId,
    package: usize,
    docs: &'a [String],
    decl: &'a ast::ConstDecl,
}

/// State of a type during layout computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Unvisited,
    InProgress,
    Done,
    Broken,
}

struct Checker<'a> {
    loaded: &'a Loaded,
    diags: Diagnostics,
    /// Package path per file.
    file_package: Vec<usize>,
    packages: Vec<Package>,
    package_index: HashMap<Vec<String>, usize>,
    types: Vec<TypeDecl<'a>>,
    consts: Vec<ConstDecl<'a>>,
    /// (package, name) → declaration.
    symbols: HashMap<(usize, &'a str), Decl>,
    /// Simple name → declarations with that name, in any package.
    by_simple_name: HashMap<&'a str, Vec<Decl>>,
    /// Resolved constant values (`None`: invalid or not yet evaluated).
    const_values: Vec<Option<(Primitive, ConstValue)>>,
}

/// Validates everything `loaded` holds.
pub(crate) fn check(loaded: &Loaded) -> Result<Schema, Diagnostics> {
    let mut c = Checker {
        loaded,
        diags: loaded.diagnostics.clone(),
        file_package: Vec::new(),
        packages: Vec::new(),
        package_index: HashMap::new(),
        types: Vec::new(),
        consts: Vec::new(),
        symbols: HashMap::new(),
        by_simple_name: HashMap::new(),
        const_values: Vec::new(),
    };
    if c.diags.has_errors() {
        c.diags.sort();
        return Err(c.diags);
    }
    c.packages_pass();
    c.declarations_pass();
    c.consts_pass();
    let resolved = c.types_pass();
    let (layouts, fingerprints) = c.layout_pass(&resolved);
    let topics = c.topics_pass();
    c.diags.sort();
    if c.diags.has_errors() {
        return Err(c.diags);
    }
    Ok(c.build(resolved, &layouts, &fingerprints, topics))
}

/// A resolved struct or enum, before layout.
enum Resolved {
    Struct(Vec<(String, Vec<String>, Option<Type>, Span)>),
    Enum(Primitive, Vec<Variant>),
    Invalid,
}

impl<'a> Checker<'a> {
    fn error(&mut self, file: FileId, span: Span, message: impl Into<String>) {
        self.push(Diagnostic::error(file, span, message));
    }

    fn error_help(
        &mut self,
        file: FileId,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Diagnostic::error(file, span, message).with_help(help));
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn units(&self) -> impl Iterator<Item = (FileId, &'a crate::loader::Unit)> + 'a {
        self.loaded
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| (FileId(u32::try_from(i).unwrap_or(u32::MAX)), u))
    }

    // -- 1. packages --------------------------------------------------------------------

    fn packages_pass(&mut self) {
        for (file, unit) in self.units() {
            let mut package: Option<(&ast::Path, &[String])> = None;
            let mut seen_other = false;
            for item in &unit.ast.items {
                match &item.kind {
                    ItemKind::Package(path) => {
                        if let Some((first, _)) = package {
                            let first_span = first.span;
                            self.push(
                                Diagnostic::error(
                                    file,
                                    path.span,
                                    "a file can declare only one package",
                                )
                                .with_note_at(
                                    file,
                                    first_span,
                                    "the package is declared here",
                                ),
                            );
                        } else {
                            if seen_other {
                                self.error(
                                    file,
                                    item.keyword_span,
                                    "`package` must come before every other declaration",
                                );
                            }
                            package = Some((path, &item.docs));
                        }
                    }
                    _ => seen_other = true,
                }
            }
            let (path, docs) = match package {
                Some((path, docs)) => {
                    self.check_package_path(file, path);
                    (path.segments.clone(), docs)
                }
                None => (Vec::new(), &[][..]),
            };
            let index = match self.package_index.get(&path) {
                Some(&i) => i,
                None => {
                    self.packages.push(Package {
                        path: path.clone(),
                        docs: Vec::new(),
                        files: Vec::new(),
                        types: Vec::new(),
                        consts: Vec::new(),
                        topics: Vec::new(),
                    });
                    self.package_index.insert(path, self.packages.len() - 1);
                    self.packages.len() - 1
                }
            };
            self.packages[index].files.push(file);
            self.packages[index].docs.extend(docs.iter().cloned());
            self.file_package.push(index);
        }
    }

    fn check_package_path(&mut self, file: FileId, path: &ast::Path) {
        let mut offset = path.span.start;
        for segment in &path.segments {
            let span = Span::new(offset, offset + segment.len());
            offset += segment.len() + 1;
            if let Some(reason) = names::reserved_reason(segment) {
                self.error(
                    file,
                    span,
                    format!("`{segment}` cannot be a package name: {reason}"),
                );
            } else if !names::is_snake_case(segment) {
                self.push(
                    Diagnostic::warning(
                        file,
                        span,
                        format!("package name `{segment}` should be snake_case"),
                    )
                    .with_help(format!("write `{}`", names::to_snake_case(segment))),
                );
            }
        }
    }

    // -- 2. declarations ----------------------------------------------------------------

    fn declarations_pass(&mut self) {
        for (file, unit) in self.units() {
            let package = self.file_package[file.index()];
            for item in &unit.ast.items {
                let (name, decl) = match &item.kind {
                    ItemKind::Struct(s) => {
                        self.types.push(TypeDecl {
                            file,
                            package,
                            docs: &item.docs,
                            kind: TypeDeclKind::Struct(s),
                            name: &s.name,
                        });
                        (&s.name, Decl::Type(self.types.len() - 1))
                    }
                    ItemKind::Enum(e) => {
                        self.types.push(TypeDecl {
                            file,
                            package,
                            docs: &item.docs,
                            kind: TypeDeclKind::Enum(e),
                            name: &e.name,
                        });
                        (&e.name, Decl::Type(self.types.len() - 1))
                    }
                    ItemKind::Const(k) => {
                        self.consts.push(ConstDecl {
                            file,
                            package,
                            docs: &item.docs,
                            decl: k,
                        });
                        (&k.name, Decl::Const(self.consts.len() - 1))
                    }
                    _ => continue,
                };
                self.declare(file, package, name, decl);
            }
        }
        self.const_values = vec![None; self.consts.len()];
    }

    fn declare(&mut self, file: FileId, package: usize, name: &'a ast::Ident, decl: Decl) {
        let what = match decl {
            Decl::Type(i) => match self.types[i].kind {
                TypeDeclKind::Struct(s) if s.is_message => "message",
                TypeDeclKind::Struct(_) => "struct",
                TypeDeclKind::Enum(_) => "enum",
            },
            Decl::Const(_) => "constant",
        };
        if let Some(reason) = names::reserved_reason(&name.name) {
            let article = if what == "enum" { "an" } else { "a" };
            self.error(
                file,
                name.span,
                format!(
                    "`{}` cannot be the name of {article} {what}: {reason}",
                    name.name
                ),
            );
        } else {
            let ok = match decl {
                Decl::Type(_) => names::is_camel_case(&name.name),
                Decl::Const(_) => names::is_screaming_snake_case(&name.name),
            };
            if !ok {
                let (style, fixed) = match decl {
                    Decl::Type(_) => ("CamelCase", names::to_camel_case(&name.name)),
                    Decl::Const(_) => (
                        "SCREAMING_SNAKE_CASE",
                        names::to_snake_case(&name.name).to_ascii_uppercase(),
                    ),
                };
                self.push(
                    Diagnostic::warning(
                        file,
                        name.span,
                        format!("{what} name `{}` should be {style}", name.name),
                    )
                    .with_help(format!("write `{fixed}`")),
                );
            }
        }
        self.by_simple_name
            .entry(name.name.as_str())
            .or_default()
            .push(decl);
        match self.symbols.get(&(package, name.name.as_str())) {
            Some(&previous) => {
                let (pfile, pspan) = self.decl_location(previous);
                let pkg = self.package_label(package);
                self.push(
                    Diagnostic::error(
                        file,
                        name.span,
                        format!("`{}` is declared more than once{pkg}", name.name),
                    )
                    .with_note_at(pfile, pspan, "first declared here"),
                );
            }
            None => {
                self.symbols.insert((package, name.name.as_str()), decl);
            }
        }
    }

    fn package_label(&self, package: usize) -> String {
        let name = self.packages[package].name();
        if name.is_empty() {
            String::new()
        } else {
            format!(" in package `{name}`")
        }
    }

    fn decl_location(&self, decl: Decl) -> (FileId, Span) {
        match decl {
            Decl::Type(i) => (self.types[i].file, self.types[i].name.span),
            Decl::Const(i) => (self.consts[i].file, self.consts[i].decl.name.span),
        }
    }

    fn qualified(&self, package: usize, name: &str) -> String {
        let pkg = self.packages[package].name();
        if pkg.is_empty() {
            name.to_owned()
        } else {
            format!("{pkg}.{name}")
        }
    }

    // -- name lookup ----------------------------------------------------------------------

    /// The files whose declarations `file` can see: itself and what it imports directly.
    fn visible_files(&self, file: FileId) -> Vec<FileId> {
        let mut files = vec![file];
        if let Some(unit) = self.loaded.units.get(file.index()) {
            files.extend(unit.imports.iter().filter_map(|(t, _)| *t));
        }
        files
    }

    fn decl_file(&self, decl: Decl) -> FileId {
        self.decl_location(decl).0
    }

    fn decl_package(&self, decl: Decl) -> usize {
        match decl {
            Decl::Type(i) => self.types[i].package,
            Decl::Const(i) => self.consts[i].package,
        }
    }

    /// Resolves `path` as seen from `file`. `want` names the expected kind for messages
    /// ("type", "constant"). Reports and returns `None` on failure.
    fn lookup(&mut self, file: FileId, path: &ast::Path, want: Want) -> Option<Decl> {
        let visible = self.visible_files(file);
        let (name, package_path) = match path.segments.split_last() {
            Some((name, pkg)) => (name.as_str(), pkg),
            None => return None,
        };
        let own_package = self.file_package[file.index()];
        let found = if package_path.is_empty() {
            let own = self
                .symbols
                .get(&(own_package, name))
                .copied()
                .filter(|d| visible.contains(&self.decl_file(*d)));
            match own {
                Some(d) => Some(d),
                None => {
                    let mut candidates: Vec<Decl> = visible
                        .iter()
                        .map(|f| self.file_package[f.index()])
                        .filter(|&p| p != own_package)
                        .filter_map(|p| self.symbols.get(&(p, name)).copied())
                        .filter(|d| visible.contains(&self.decl_file(*d)))
                        .collect();
                    candidates.sort_by_key(|d| self.decl_location(*d));
                    candidates.dedup();
                    if candidates.len() > 1 {
                        let options: Vec<String> = candidates
                            .iter()
                            .map(|d| format!("`{}`", self.qualified(self.decl_package(*d), name)))
                            .collect();
                        self.push(
                            Diagnostic::error(file, path.span, format!("`{name}` is ambiguous"))
                                .with_note(format!("it could be {}", options.join(" or ")))
                                .with_help("write the qualified name"),
                        );
                        return None;
                    }
                    candidates.first().copied()
                }
            }
        } else {
            let Some(&package) = self.package_index.get(package_path) else {
                let pkg = package_path.join(".");
                let known: Vec<String> = self.packages.iter().map(Package::name).collect();
                let mut d = Diagnostic::error(file, path.span, format!("unknown package `{pkg}`"));
                if let Some(s) = names::suggest(&pkg, known.iter().map(String::as_str)) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.push(d);
                return None;
            };
            match self.symbols.get(&(package, name)).copied() {
                Some(d) if !visible.contains(&self.decl_file(d)) => {
                    let target = self.decl_file(d);
                    let target_name = self.import_text(file, target);
                    let (dfile, dspan) = self.decl_location(d);
                    self.push(
                        Diagnostic::error(
                            file,
                            path.span,
                            format!(
                                "`{}` is declared in a file that this file does not import",
                                path.text()
                            ),
                        )
                        .with_note_at(dfile, dspan, "declared here")
                        .with_help(format!("add `import \"{target_name}\";`")),
                    );
                    return None;
                }
                found => found,
            }
        };
        let Some(decl) = found else {
            self.report_unknown(file, path, want, &visible);
            return None;
        };
        let ok = matches!(
            (want, decl),
            (Want::Type, Decl::Type(_)) | (Want::Const, Decl::Const(_))
        );
        if !ok {
            let (dfile, dspan) = self.decl_location(decl);
            let message = match want {
                Want::Type => format!("`{}` is a constant, not a type", path.text()),
                Want::Const => format!("`{}` is a type, not a constant", path.text()),
            };
            self.push(Diagnostic::error(file, path.span, message).with_note_at(
                dfile,
                dspan,
                "declared here",
            ));
            return None;
        }
        Some(decl)
    }

    fn report_unknown(&mut self, file: FileId, path: &ast::Path, want: Want, visible: &[FileId]) {
        let text = path.text();
        let what = match want {
            Want::Type => "type",
            Want::Const => "constant",
        };
        let mut d = Diagnostic::error(file, path.span, format!("unknown {what} `{text}`"));
        let elsewhere = if path.segments.len() == 1 {
            self.not_imported(&text)
        } else {
            None
        };
        if let Some((decl, qualified)) = elsewhere {
            let (dfile, dspan) = self.decl_location(decl);
            let import = self.import_text(file, dfile);
            d = d
                .with_note_at(
                    dfile,
                    dspan,
                    format!(
                        "`{qualified}` is declared here, in a file that this file does not import"
                    ),
                )
                .with_help(format!("add `import \"{import}\";`"));
        } else if let Some(help) = (want == Want::Type)
            .then(|| foreign_type_help(&text))
            .flatten()
        {
            d = d.with_help(help);
        } else if !self.diags.error_limit_reached() {
            let mut candidates: Vec<String> = Vec::new();
            if want == Want::Type {
                candidates.extend(Primitive::ALL.iter().map(|p| p.name().to_owned()));
            }
            let own_package = self.file_package[file.index()];
            'outer: for (&(package, name), &decl) in &self.symbols {
                let kind_ok = matches!(
                    (want, decl),
                    (Want::Type, Decl::Type(_)) | (Want::Const, Decl::Const(_))
                );
                if kind_ok && visible.contains(&self.decl_file(decl)) {
                    candidates.push(if package == own_package || path.segments.len() == 1 {
                        name.to_owned()
                    } else {
                        self.qualified(package, name)
                    });
                    if candidates.len() > 5_000 {
                        break 'outer;
                    }
                }
            }
            let last = path.segments.last().map_or("", String::as_str);
            let target = if path.segments.len() == 1 {
                last
            } else {
                text.as_str()
            };
            if let Some(s) = names::suggest(target, candidates.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
        }
        self.push(d);
    }

    /// What to write in `import "...";` in `from` to reach `target`: the path relative to
    /// `from`'s directory when `target` is below it, else the path as loaded.
    fn import_text(&self, from: FileId, target: FileId) -> String {
        let path = |f: FileId| {
            self.loaded
                .sources
                .get(f)
                .map(|s| s.path().to_path_buf())
                .unwrap_or_default()
        };
        let (from, target) = (path(from), path(target));
        let dir = from.parent().unwrap_or(std::path::Path::new(""));
        target
            .strip_prefix(dir)
            .unwrap_or(&target)
            .display()
            .to_string()
    }

    /// A declaration named `name` anywhere in the loaded files, with its qualified name,
    /// for "you forgot an import" hints.
    fn not_imported(&self, name: &str) -> Option<(Decl, String)> {
        let decl = self.by_simple_name.get(name)?.first().copied()?;
        Some((decl, self.qualified(self.decl_package(decl), name)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Type,
    Const,
}

/// Explanations for types people bring from other languages.
fn foreign_type_help(name: &str) -> Option<String> {
    Some(match name {
        "usize" | "isize" => format!(
            "`{name}` has a different size on different machines; use `u32`/`i32` or `u64`/`i64`"
        ),
        "u128" | "i128" => {
            "128-bit integers are not supported; use two `u64` fields or `[u64; 2]`".to_owned()
        }
        "char" => "use `u32` for a Unicode scalar value, or `string<4>`".to_owned(),
        "String" | "str" => "strings in shared memory are bounded: use `string<N>`".to_owned(),
        "Vec" => "vectors in shared memory are bounded: use `sequence<T, N>`".to_owned(),
        "f16" | "f128" => "use `f32` or `f64`".to_owned(),
        "int" | "uint" | "float" | "double" => {
            "use a sized type: `i32`, `u32`, `f32` or `f64`".to_owned()
        }
        _ => return None,
    })
}
