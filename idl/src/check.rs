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

use crate::{
    ast::{self, Bound, ConstExprKind, ItemKind, OptionValue, TypeExprKind},
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

    // -- 3. constants ---------------------------------------------------------------------

    fn consts_pass(&mut self) {
        #[derive(Clone, Copy)]
        enum State {
            Pending,
            Active,
            Done(Option<(Primitive, ConstValue)>),
        }
        let mut state = vec![State::Pending; self.consts.len()];
        for start in 0..self.consts.len() {
            // Follow `const A: T = B;` references iteratively; `chain` holds the constants
            // that wait for the value of the next one.
            let mut chain: Vec<usize> = Vec::new();
            let mut current = start;
            let mut inner: Option<(Primitive, ConstValue)> = None;
            loop {
                match state[current] {
                    State::Done(value) => {
                        inner = value;
                        break;
                    }
                    State::Active => {
                        self.report_const_cycle(&chain, current);
                        break;
                    }
                    State::Pending => {
                        state[current] = State::Active;
                        chain.push(current);
                        let c = &self.consts[current];
                        let (file, decl) = (c.file, c.decl);
                        let ConstExprKind::Path(path) = &decl.value.kind else {
                            break;
                        };
                        match self.lookup(file, path, Want::Const) {
                            Some(Decl::Const(next)) => current = next,
                            _ => break,
                        }
                    }
                }
            }
            // Unwind: evaluate from the innermost constant outwards.
            while let Some(index) = chain.pop() {
                inner = self.eval_const(index, inner);
                state[index] = State::Done(inner);
            }
        }
        self.const_values = state
            .into_iter()
            .map(|s| match s {
                State::Done(v) => v,
                State::Pending | State::Active => None,
            })
            .collect();
    }

    fn report_const_cycle(&mut self, chain: &[usize], again: usize) {
        let from = chain.iter().position(|&c| c == again).unwrap_or(0);
        let mut names: Vec<String> = chain[from..]
            .iter()
            .map(|&c| self.consts[c].decl.name.name.clone())
            .collect();
        names.push(self.consts[again].decl.name.name.clone());
        let c = &self.consts[again];
        let (file, span) = (c.file, c.decl.value.span);
        self.error(
            file,
            span,
            format!(
                "constant `{}` depends on itself: {}",
                names[0],
                names.join(" → ")
            ),
        );
    }

    /// Evaluates constant `index`; `referenced` is the value of the constant it names
    /// (when its value is a name) or a placeholder for literals.
    fn eval_const(
        &mut self,
        index: usize,
        referenced: Option<(Primitive, ConstValue)>,
    ) -> Option<(Primitive, ConstValue)> {
        let c = &self.consts[index];
        let (file, decl) = (c.file, c.decl);
        let ty = match &decl.ty.kind {
            TypeExprKind::Named(p) if p.segments.len() == 1 => {
                match Primitive::from_name(&p.segments[0]) {
                    Some(prim) => prim,
                    None => {
                        self.error_help(
                            file,
                            decl.ty.span,
                            format!("a constant must have a built-in type, not `{}`", p.text()),
                            "use `bool`, an integer type, `f32` or `f64`".to_owned(),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.error_help(
                    file,
                    decl.ty.span,
                    "a constant must have a built-in type",
                    "use `bool`, an integer type, `f32` or `f64`".to_owned(),
                );
                return None;
            }
        };
        let span = decl.value.span;
        let value = match &decl.value.kind {
            ConstExprKind::Bool(b) => ConstValue::Bool(*b),
            ConstExprKind::Int(lit) => match lit.value() {
                Some(v) => ConstValue::Int(v),
                None => {
                    self.error(
                        file,
                        span,
                        format!("integer literal `{}` is too large", lit.text),
                    );
                    return None;
                }
            },
            ConstExprKind::Float(text) => match text.replace('_', "").parse::<f64>() {
                Ok(v) if v.is_finite() => ConstValue::Float(v),
                _ => {
                    self.error(file, span, format!("`{text}` is not a finite number"));
                    return None;
                }
            },
            ConstExprKind::Path(_) => referenced?.1,
        };
        let converted = match (ty, value) {
            (Primitive::Bool, ConstValue::Bool(b)) => Some(ConstValue::Bool(b)),
            (p, ConstValue::Int(v)) if p.is_integer() => {
                let (min, max) = p.int_range().unwrap_or((0, 0));
                if v < min || v > max {
                    self.error_help(
                        file,
                        span,
                        format!("value {v} does not fit in `{p}` (range {min}..={max})"),
                        format!("`{}` needs a wider type", decl.name.name),
                    );
                    return None;
                }
                Some(ConstValue::Int(v))
            }
            (p, ConstValue::Int(v)) if p.is_float() => Some(ConstValue::Float(v as f64)),
            (Primitive::F64, ConstValue::Float(v)) => Some(ConstValue::Float(v)),
            (Primitive::F32, ConstValue::Float(v)) => {
                let narrow = v as f32;
                if !narrow.is_finite() {
                    self.error(
                        file,
                        span,
                        format!(
                            "value {v:e} does not fit in `f32` (its largest value is {:e})",
                            f32::MAX
                        ),
                    );
                    return None;
                }
                Some(ConstValue::Float(f64::from(narrow)))
            }
            _ => None,
        };
        match converted {
            Some(v) => Some((ty, v)),
            None => {
                let kind = match value {
                    ConstValue::Bool(_) => "a boolean",
                    ConstValue::Int(_) => "an integer",
                    ConstValue::Float(_) => "a floating-point number",
                };
                self.error(
                    file,
                    span,
                    format!(
                        "mismatched types: `{}` is `{ty}` but its value is {kind}",
                        decl.name.name
                    ),
                );
                None
            }
        }
    }

    // -- 4. types --------------------------------------------------------------------------

    fn types_pass(&mut self) -> Vec<Resolved> {
        let mut out = Vec::with_capacity(self.types.len());
        for index in 0..self.types.len() {
            let t = &self.types[index];
            let file = t.file;
            let resolved = match t.kind {
                TypeDeclKind::Struct(s) => self.resolve_struct(file, s),
                TypeDeclKind::Enum(e) => self.resolve_enum(file, e),
            };
            out.push(resolved);
        }
        out
    }

    fn resolve_struct(&mut self, file: FileId, s: &'a ast::StructDecl) -> Resolved {
        let what = if s.is_message { "message" } else { "struct" };
        if s.fields.is_empty() {
            self.push(
                Diagnostic::error(
                    file,
                    s.name.span,
                    format!("{what} `{}` has no fields", s.name.name),
                )
                .with_note("every type in shared memory needs a size of at least one byte")
                .with_help("add a field, for example `reserved: u8`"),
            );
        }
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut fields = Vec::with_capacity(s.fields.len());
        for f in &s.fields {
            let name = f.name.name.as_str();
            if name == "_" {
                self.error(file, f.name.span, "`_` cannot be a field name");
            } else if name.starts_with("__") {
                self.error(file, f.name.span, format!("field name `{name}` is reserved: names starting with `__` are used for generated padding"));
            } else if !names::is_snake_case(name) {
                self.push(
                    Diagnostic::warning(
                        file,
                        f.name.span,
                        format!("field name `{name}` should be snake_case"),
                    )
                    .with_help(format!("write `{}`", names::to_snake_case(name))),
                );
            }
            if let Some(&first) = seen.get(name) {
                self.push(
                    Diagnostic::error(
                        file,
                        f.name.span,
                        format!(
                            "field `{name}` is declared more than once in `{}`",
                            s.name.name
                        ),
                    )
                    .with_note_at(file, first, "first declared here"),
                );
            } else {
                seen.insert(name, f.name.span);
            }
            let ty = self.resolve_type(file, &f.ty);
            fields.push((name.to_owned(), f.docs.clone(), ty, f.name.span));
        }
        Resolved::Struct(fields)
    }

    fn resolve_enum(&mut self, file: FileId, e: &'a ast::EnumDecl) -> Resolved {
        let repr = match &e.repr.kind {
            TypeExprKind::Named(p) if p.segments.len() == 1 => {
                Primitive::from_name(&p.segments[0]).filter(|p| p.is_integer())
            }
            _ => None,
        };
        let repr_span = e.repr.span;
        if e.variants.is_empty() {
            self.push(
                Diagnostic::error(
                    file,
                    e.name.span,
                    format!("enum `{}` has no variants", e.name.name),
                )
                .with_note("an enum needs at least one value to be stored in shared memory"),
            );
        }
        let Some(repr) = repr else {
            let text = format_type_text(&e.repr);
            self.push(
                Diagnostic::error(
                    file,
                    repr_span,
                    format!("enum representation must be an integer type, not `{text}`"),
                )
                .with_help("use one of `u8`, `u16`, `u32`, `u64`, `i8`, `i16`, `i32`, `i64`"),
            );
            return Resolved::Invalid;
        };
        let (min, max) = repr.int_range().unwrap_or((0, 0));
        let mut next: Option<i128> = Some(0);
        let mut by_name: HashMap<&str, Span> = HashMap::new();
        let mut by_value: HashMap<i128, (&str, Span)> = HashMap::new();
        let mut variants = Vec::with_capacity(e.variants.len());
        for v in &e.variants {
            let name = v.name.name.as_str();
            if let Some(reason) = names::reserved_reason(name) {
                self.error(
                    file,
                    v.name.span,
                    format!("`{name}` cannot be the name of an enum variant: {reason}"),
                );
            } else if !names::is_camel_case(name) {
                self.push(
                    Diagnostic::warning(
                        file,
                        v.name.span,
                        format!("variant name `{name}` should be CamelCase"),
                    )
                    .with_help(format!("write `{}`", names::to_camel_case(name))),
                );
            }
            if let Some(&first) = by_name.get(name) {
                self.push(
                    Diagnostic::error(
                        file,
                        v.name.span,
                        format!(
                            "variant `{name}` is declared more than once in `{}`",
                            e.name.name
                        ),
                    )
                    .with_note_at(file, first, "first declared here"),
                );
            } else {
                by_name.insert(name, v.name.span);
            }
            let (value, span) = match &v.value {
                Some(lit) => match lit.value() {
                    Some(x) => (Some(x), lit.span),
                    None => {
                        self.error(
                            file,
                            lit.span,
                            format!("integer literal `{}` is too large", lit.text),
                        );
                        (None, lit.span)
                    }
                },
                None => (next, v.name.span),
            };
            let Some(value) = value else {
                if v.value.is_none() {
                    self.error_help(
                        file,
                        v.name.span,
                        format!("the implicit value of `{name}` overflows `{repr}`"),
                        "give the variant an explicit value".to_owned(),
                    );
                }
                next = None;
                continue;
            };
            next = value.checked_add(1).filter(|n| *n <= max);
            if value < min || value > max {
                let how = if v.value.is_some() { "" } else { "implicit " };
                self.push(
                    Diagnostic::error(file, span, format!("{how}value {value} of `{name}` does not fit in `{repr}` (range {min}..={max})"))
                        .with_help("choose a smaller value or a wider representation"),
                );
                continue;
            }
            if let Some(&(other, first)) = by_value.get(&value) {
                self.push(
                    Diagnostic::error(
                        file,
                        span,
                        format!("`{name}` has the value {value}, which `{other}` already has"),
                    )
                    .with_note_at(
                        file,
                        first,
                        format!("`{other}` is declared here"),
                    ),
                );
            } else {
                by_value.insert(value, (name, span));
            }
            variants.push(Variant {
                name: name.to_owned(),
                docs: v.docs.clone(),
                value,
                span: v.name.span,
            });
        }
        Resolved::Enum(repr, variants)
    }

    /// Resolves a type expression. Recursion depth is bounded by the lexer's nesting
    /// limit.
    fn resolve_type(&mut self, file: FileId, ty: &ast::TypeExpr) -> Option<Type> {
        match &ty.kind {
            TypeExprKind::Named(path) => {
                if path.segments.len() == 1 {
                    let name = path.segments[0].as_str();
                    if let Some(p) = Primitive::from_name(name) {
                        return Some(Type::Primitive(p));
                    }
                    let needs = match name {
                        "string" => Some("`string` needs a capacity: write `string<N>`"),
                        "bytes" => Some("`bytes` needs a capacity: write `bytes<N>`"),
                        "sequence" => Some("`sequence` needs an element type and a capacity: write `sequence<T, N>`"),
                        _ => None,
                    };
                    if let Some(message) = needs {
                        self.error(file, path.span, message);
                        return None;
                    }
                }
                match self.lookup(file, path, Want::Type)? {
                    Decl::Type(i) => {
                        Some(Type::Named(TypeId(u32::try_from(i).unwrap_or(u32::MAX))))
                    }
                    Decl::Const(_) => None,
                }
            }
            TypeExprKind::Array(element, bound) => {
                let element = self.resolve_type(file, element);
                let len = self.resolve_bound(file, bound, "array length");
                Some(Type::Array {
                    element: Box::new(element?),
                    len: len?,
                })
            }
            TypeExprKind::String(bound) => Some(Type::String {
                capacity: self.resolve_bound(file, bound, "string capacity")?,
            }),
            TypeExprKind::Bytes(bound) => Some(Type::Bytes {
                capacity: self.resolve_bound(file, bound, "bytes capacity")?,
            }),
            TypeExprKind::Sequence(element, bound) => {
                let element = self.resolve_type(file, element);
                let capacity = self.resolve_bound(file, bound, "sequence capacity");
                Some(Type::Sequence {
                    element: Box::new(element?),
                    capacity: capacity?,
                })
            }
        }
    }

    fn resolve_bound(&mut self, file: FileId, bound: &Bound, what: &str) -> Option<u64> {
        let span = bound.span();
        let value = match bound {
            Bound::Int(lit) => match lit.value() {
                Some(v) => v,
                None => {
                    self.error_help(
                        file,
                        span,
                        format!("{what} `{}` is too large", lit.text),
                        format!("the largest {what} is {}", u32::MAX),
                    );
                    return None;
                }
            },
            Bound::Const(path) => {
                let Decl::Const(i) = self.lookup(file, path, Want::Const)? else {
                    return None;
                };
                match self.const_values[i] {
                    Some((_, ConstValue::Int(v))) => v,
                    Some((ty, _)) => {
                        let (dfile, dspan) = self.decl_location(Decl::Const(i));
                        self.push(
                            Diagnostic::error(
                                file,
                                span,
                                format!(
                                    "{what} must be an integer, but `{}` is `{ty}`",
                                    path.text()
                                ),
                            )
                            .with_note_at(
                                dfile,
                                dspan,
                                "declared here",
                            ),
                        );
                        return None;
                    }
                    // The constant itself is invalid and already reported.
                    None => return None,
                }
            }
        };
        if value <= 0 {
            self.push(
                Diagnostic::error(
                    file,
                    span,
                    format!("{what} must be at least 1, not {value}"),
                )
                .with_note(
                    "types in shared memory have a fixed size, and an empty one is not useful",
                ),
            );
            return None;
        }
        if value > i128::from(u32::MAX) {
            self.error(
                file,
                span,
                format!("{what} {value} is too large (the limit is {})", u32::MAX),
            );
            return None;
        }
        u64::try_from(value).ok()
    }

    // -- 5. layouts and fingerprints --------------------------------------------------------

    fn layout_pass(&mut self, resolved: &[Resolved]) -> (Vec<Option<Layout>>, Vec<u64>) {
        let n = resolved.len();
        let mut mark = vec![Mark::Unvisited; n];
        let mut layouts: Vec<Option<Layout>> = vec![None; n];
        let mut fingerprints = vec![0u64; n];
        for start in 0..n {
            if mark[start] != Mark::Unvisited {
                continue;
            }
            // Iterative DFS over "contains" edges; `stack` holds (type, next field index).
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            mark[start] = Mark::InProgress;
            while let Some(&(t, field_index)) = stack.last() {
                let deps = match &resolved[t] {
                    Resolved::Struct(fields) => {
                        fields.get(field_index).map(|f| (f.2.as_ref(), f.3))
                    }
                    _ => None,
                };
                if let Some((ty, span)) = deps {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    let mut named = Vec::new();
                    if let Some(ty) = ty {
                        collect_named(ty, &mut named);
                    }
                    for dep in named {
                        match mark[dep] {
                            Mark::Unvisited => {
                                mark[dep] = Mark::InProgress;
                                stack.push((dep, 0));
                                break;
                            }
                            Mark::InProgress => {
                                let from = stack.iter().position(|&(x, _)| x == dep).unwrap_or(0);
                                let cycle: Vec<usize> =
                                    stack[from..].iter().map(|&(x, _)| x).collect();
                                self.report_type_cycle(&cycle, t, span);
                                for c in cycle {
                                    mark[c] = Mark::Broken;
                                }
                            }
                            Mark::Done | Mark::Broken => {}
                        }
                    }
                    continue;
                }
                stack.pop();
                if mark[t] == Mark::Broken {
                    continue;
                }
                mark[t] = Mark::Done;
                let (layout, fp) = self.compute_layout(t, &resolved[t], &layouts, &fingerprints);
                layouts[t] = layout;
                if let Some(fp) = fp {
                    fingerprints[t] = fp;
                }
            }
        }
        (layouts, fingerprints)
    }

    fn report_type_cycle(&mut self, cycle: &[usize], last: usize, span: Span) {
        let mut names: Vec<String> = cycle
            .iter()
            .map(|&t| self.types[t].name.name.clone())
            .collect();
        names.push(self.types[cycle[0]].name.name.clone());
        let first = &self.types[cycle[0]];
        let (file, name_span, name) = (first.file, first.name.span, first.name.name.clone());
        let last_file = self.types[last].file;
        let message = if cycle.len() == 1 {
            format!("`{name}` contains itself")
        } else {
            format!("`{name}` contains itself through {}", names.join(" → "))
        };
        self.push(
            Diagnostic::error(file, name_span, message)
                .with_note_at(last_file, span, "through this field")
                .with_help("a type in shared memory has a fixed size, so it cannot contain itself, not even inside an array or sequence"),
        );
    }

    /// Layout and fingerprint of type `t`, whose dependencies are all computed.
    fn compute_layout(
        &mut self,
        t: usize,
        resolved: &Resolved,
        layouts: &[Option<Layout>],
        fingerprints: &[u64],
    ) -> (Option<Layout>, Option<u64>) {
        let decl = &self.types[t];
        let (file, name_span, qualified) = (
            decl.file,
            decl.name.span,
            self.qualified(decl.package, &decl.name.name),
        );
        match resolved {
            Resolved::Invalid => (None, None),
            Resolved::Enum(repr, variants) => {
                let mut h = crate::fingerprint::Fingerprinter::new();
                h.str("enum")
                    .str(&qualified)
                    .str(repr.name())
                    .u64(variants.len() as u64);
                for v in variants {
                    h.str(&v.name).u64(v.value_bits());
                }
                (Some(repr.layout()), Some(h.finish()))
            }
            Resolved::Struct(fields) => {
                let mut h = crate::fingerprint::Fingerprinter::new();
                h.str("struct").str(&qualified).u64(fields.len() as u64);
                let mut offset = 0u64;
                let mut align = 1u64;
                let mut ok = !fields.is_empty();
                for (name, _, ty, span) in fields {
                    let Some(ty) = ty else {
                        ok = false;
                        continue;
                    };
                    // A dependency without a layout is invalid and already reported.
                    let Some(layout) = type_layout(ty, layouts) else {
                        ok = false;
                        continue;
                    };
                    if layout.size > MAX_TYPE_SIZE {
                        self.error(file, *span, format!("the type of field `{name}` is too large: {} (the limit is {MAX_TYPE_SIZE} bytes)", size_text(layout.size)));
                        ok = false;
                        continue;
                    }
                    align = align.max(layout.align);
                    offset = round_up(offset, layout.align)
                        .unwrap_or(u64::MAX)
                        .saturating_add(layout.size);
                    h.str(name).u64(type_fingerprint(ty, &|id| {
                        fingerprints.get(id.index()).copied().unwrap_or(0)
                    }));
                }
                if !ok {
                    return (None, None);
                }
                let size = round_up(offset, align).unwrap_or(u64::MAX);
                if size > MAX_TYPE_SIZE {
                    self.error(
                        file,
                        name_span,
                        format!(
                            "`{}` is too large: {size} bytes (the limit is {MAX_TYPE_SIZE} bytes)",
                            self.types[t].name.name
                        ),
                    );
                    return (None, None);
                }
                (Some(Layout { size, align }), Some(h.finish()))
            }
        }
    }

    // -- 6. topics ---------------------------------------------------------------------------

    fn topics_pass(&mut self) -> Vec<Topic> {
        let mut topics = Vec::new();
        let mut seen: HashMap<String, (FileId, Span)> = HashMap::new();
        for (file, unit) in self.units() {
            for item in &unit.ast.items {
                let ItemKind::Topic(t) = &item.kind else {
                    continue;
                };
                let name_ok = self.check_topic_name(file, &t.name);
                if name_ok {
                    if let Some(&(pfile, pspan)) = seen.get(&t.name.value) {
                        self.push(
                            Diagnostic::error(
                                file,
                                t.name.span,
                                format!("topic `{}` is declared more than once", t.name.value),
                            )
                            .with_note_at(
                                pfile,
                                pspan,
                                "first declared here",
                            ),
                        );
                    } else {
                        seen.insert(t.name.value.clone(), (file, t.name.span));
                    }
                }
                let payload = self.topic_payload(file, &t.payload);
                let options = self.topic_options(file, t.options.as_deref().unwrap_or(&[]));
                if let (true, Some(payload), Some(options)) = (name_ok, payload, options) {
                    topics.push(Topic {
                        name: t.name.value.clone(),
                        package: self.packages[self.file_package[file.index()]].path.clone(),
                        docs: item.docs.clone(),
                        payload,
                        options,
                        file,
                        span: t.name.span,
                    });
                }
            }
        }
        topics
    }

    fn check_topic_name(&mut self, file: FileId, lit: &ast::StringLit) -> bool {
        let name = lit.value.as_str();
        let inner = lit.span.start + 1;
        let help = "a topic name is made of segments of `A-Z a-z 0-9 _` separated by `/`, like \"robot/joint_states\"";
        if name.is_empty() {
            self.error_help(
                file,
                lit.span,
                "a topic name cannot be empty",
                help.to_owned(),
            );
            return false;
        }
        if name.len() > MAX_TOPIC_NAME_LEN {
            self.error(
                file,
                lit.span,
                format!(
                    "topic name is too long: {} bytes (the limit is {MAX_TOPIC_NAME_LEN})",
                    name.len()
                ),
            );
            return false;
        }
        if let Some((i, c)) = name
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '/'))
        {
            let span = Span::new(inner + i, inner + i + c.len_utf8());
            self.error_help(
                file,
                span,
                format!("invalid character `{}` in topic name", c.escape_debug()),
                help.to_owned(),
            );
            return false;
        }
        let mut offset = 0;
        for segment in name.split('/') {
            if segment.is_empty() {
                let span = Span::point(inner + offset);
                self.error_help(
                    file,
                    span,
                    "topic name has an empty segment",
                    "names cannot start or end with `/`, or contain `//`",
                );
                return false;
            }
            offset += segment.len() + 1;
        }
        true
    }

    fn topic_payload(&mut self, file: FileId, path: &ast::Path) -> Option<TypeId> {
        let Decl::Type(i) = self.lookup(file, path, Want::Type)? else {
            return None;
        };
        let (dfile, dspan) = self.decl_location(Decl::Type(i));
        match self.types[i].kind {
            TypeDeclKind::Struct(s) if s.is_message => {
                Some(TypeId(u32::try_from(i).unwrap_or(u32::MAX)))
            }
            TypeDeclKind::Struct(_) => {
                self.push(
                    Diagnostic::error(
                        file,
                        path.span,
                        format!("topic payload `{}` is a struct, not a message", path.text()),
                    )
                    .with_note_at(dfile, dspan, "declared here")
                    .with_help("declare it with `message` instead of `struct`"),
                );
                None
            }
            TypeDeclKind::Enum(_) => {
                self.push(
                    Diagnostic::error(
                        file,
                        path.span,
                        format!("topic payload `{}` is an enum, not a message", path.text()),
                    )
                    .with_note_at(dfile, dspan, "declared here")
                    .with_help("wrap it in a `message`"),
                );
                None
            }
        }
    }

    fn topic_options(
        &mut self,
        file: FileId,
        options: &[ast::TopicOptionDecl],
    ) -> Option<TopicOptions> {
        const KNOWN: [&str; 5] = [
            "pool",
            "depth",
            "overflow",
            "max_publishers",
            "max_subscribers",
        ];
        let mut out = TopicOptions::default();
        let mut ok = true;
        let mut seen: HashMap<&str, Span> = HashMap::new();
        // Where `pool` and `depth` were given, for the depth > pool warning.
        let mut pool_span: Option<Span> = None;
        let mut depth_span: Option<Span> = None;
        for option in options {
            let name = option.name.name.as_str();
            if !KNOWN.contains(&name) {
                let mut d = Diagnostic::error(
                    file,
                    option.name.span,
                    format!("unknown topic option `{name}`"),
                );
                d = match names::suggest(name, KNOWN) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_note(format!(
                        "the options are {}",
                        KNOWN.map(|k| format!("`{k}`")).join(", ")
                    )),
                };
                self.push(d);
                ok = false;
                continue;
            }
            if let Some(&first) = seen.get(name) {
                self.push(
                    Diagnostic::error(
                        file,
                        option.name.span,
                        format!("topic option `{name}` is given more than once"),
                    )
                    .with_note_at(file, first, "first given here"),
                );
                ok = false;
                continue;
            }
            seen.insert(name, option.name.span);
            if name == "overflow" {
                let policy = match &option.value {
                    OptionValue::Path(p) if p.segments.len() == 1 => Overflow::ALL
                        .into_iter()
                        .find(|o| o.name() == p.segments[0]),
                    _ => None,
                };
                match policy {
                    Some(p) => out.overflow = p,
                    None => {
                        let text = match &option.value {
                            OptionValue::Path(p) => p.text(),
                            OptionValue::Int(i) => i.text.clone(),
                        };
                        let mut d = Diagnostic::error(
                            file,
                            option.value.span(),
                            format!("unknown overflow policy `{text}`"),
                        );
                        d = match names::suggest(&text, Overflow::ALL.map(Overflow::name)) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None => d.with_note("the policies are `overwrite_oldest`, `wait_if_full` and `soft_fail`"),
                        };
                        self.push(d);
                        ok = false;
                    }
                }
                continue;
            }
            let (min, max) = TopicOptions::LIMITS
                .iter()
                .find(|l| l.0 == name)
                .map_or((1, 1), |l| (l.1, l.2));
            let value = match &option.value {
                OptionValue::Int(lit) => lit.value(),
                OptionValue::Path(p) => {
                    match self.lookup(file, p, Want::Const) {
                        Some(Decl::Const(i)) => match self.const_values[i] {
                            Some((_, ConstValue::Int(v))) => Some(v),
                            Some((ty, _)) => {
                                self.error(file, p.span, format!("topic option `{name}` must be an integer, but `{}` is `{ty}`", p.text()));
                                ok = false;
                                continue;
                            }
                            None => {
                                ok = false;
                                continue;
                            }
                        },
                        _ => {
                            ok = false;
                            continue;
                        }
                    }
                }
            };
            match value.filter(|v| (i128::from(min)..=i128::from(max)).contains(v)) {
                Some(v) => {
                    let v = u32::try_from(v).unwrap_or(max);
                    match name {
                        "pool" => {
                            out.pool = v;
                            pool_span = Some(option.value.span());
                        }
                        "depth" => {
                            out.depth = v;
                            depth_span = Some(option.value.span());
                        }
                        "max_publishers" => out.max_publishers = v,
                        _ => out.max_subscribers = v,
                    }
                }
                None => {
                    let shown = value.map_or_else(|| "the value".to_owned(), |v| v.to_string());
                    self.error(
                        file,
                        option.value.span(),
                        format!(
                            "topic option `{name}` must be between {min} and {max}, not {shown}"
                        ),
                    );
                    ok = false;
                }
            }
        }
        if ok && out.depth > out.pool {
            let span = depth_span.or(pool_span).unwrap_or_default();
            self.push(
                Diagnostic::warning(
                    file,
                    span,
                    format!(
                        "queue depth {} is larger than the pool of {} samples",
                        out.depth, out.pool
                    ),
                )
                .with_note("every queued sample holds a pool slot, so the queues can never fill up")
                .with_help("make `pool` at least `depth`"),
            );
        }
        ok.then_some(out)
    }

    // -- building the model -----------------------------------------------------------------

    fn build(
        mut self,
        resolved: Vec<Resolved>,
        layouts: &[Option<Layout>],
        fingerprints: &[u64],
        topics: Vec<Topic>,
    ) -> Schema {
        let mut types = Vec::with_capacity(resolved.len());
        let mut by_name = HashMap::new();
        for (index, r) in resolved.into_iter().enumerate() {
            let decl = &self.types[index];
            let layout = layouts
                .get(index)
                .copied()
                .flatten()
                .unwrap_or(Layout { size: 0, align: 1 });
            let kind = match r {
                Resolved::Struct(fields) => {
                    let mut offset = 0u64;
                    let mut out = Vec::with_capacity(fields.len());
                    for (name, docs, ty, span) in fields {
                        let ty = ty.unwrap_or(Type::Primitive(Primitive::U8));
                        let field_layout =
                            type_layout(&ty, layouts).unwrap_or(Primitive::U8.layout());
                        let aligned = round_up(offset, field_layout.align).unwrap_or(offset);
                        out.push(Field {
                            name,
                            docs,
                            ty,
                            layout: field_layout,
                            offset: aligned,
                            padding_before: aligned - offset,
                            span,
                        });
                        offset = aligned + field_layout.size;
                    }
                    TypeDefKind::Struct(StructDef {
                        is_message: matches!(decl.kind, TypeDeclKind::Struct(s) if s.is_message),
                        fields: out,
                        trailing_padding: layout.size.saturating_sub(offset),
                    })
                }
                Resolved::Enum(repr, variants) => TypeDefKind::Enum(EnumDef { repr, variants }),
                Resolved::Invalid => TypeDefKind::Enum(EnumDef {
                    repr: Primitive::U8,
                    variants: Vec::new(),
                }),
            };
            let package = self.packages[decl.package].path.clone();
            let qualified_name = self.qualified(decl.package, &decl.name.name);
            let id = TypeId(u32::try_from(index).unwrap_or(u32::MAX));
            by_name.insert(qualified_name.clone(), id);
            self.packages[decl.package].types.push(id);
            types.push(TypeDef {
                name: decl.name.name.clone(),
                package,
                qualified_name,
                docs: decl.docs.to_vec(),
                kind,
                layout,
                fingerprint: fingerprints.get(index).copied().unwrap_or(0),
                file: decl.file,
                span: decl.name.span,
            });
        }
        let mut consts = Vec::with_capacity(self.consts.len());
        for (index, c) in self.consts.iter().enumerate() {
            let (ty, value) =
                self.const_values[index].unwrap_or((Primitive::Bool, ConstValue::Bool(false)));
            self.packages[c.package].consts.push(index);
            consts.push(Const {
                name: c.decl.name.name.clone(),
                package: self.packages[c.package].path.clone(),
                qualified_name: self.qualified(c.package, &c.decl.name.name),
                docs: c.docs.to_vec(),
                ty,
                value,
                file: c.file,
                span: c.decl.name.span,
            });
        }
        for (index, t) in topics.iter().enumerate() {
            if let Some(&p) = self.package_index.get(&t.package) {
                self.packages[p].topics.push(index);
            }
        }
        Schema {
            sources: self.loaded.sources.clone(),
            root_files: self.loaded.roots.clone(),
            packages: self.packages,
            types,
            consts,
            topics,
            warnings: self.diags,
            by_name,
        }
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

fn collect_named(ty: &Type, out: &mut Vec<usize>) {
    match ty {
        Type::Named(id) => out.push(id.index()),
        Type::Array { element, .. } | Type::Sequence { element, .. } => collect_named(element, out),
        Type::Primitive(_) | Type::String { .. } | Type::Bytes { .. } => {}
    }
}

/// Layout of `ty` given the layouts of declared types; `None` if a declared type it uses
/// has no layout (it is invalid). Sizes that overflow saturate at `u64::MAX`, so the
/// caller's size limit check catches them.
fn type_layout(ty: &Type, layouts: &[Option<Layout>]) -> Option<Layout> {
    let saturated = |align| Layout {
        size: u64::MAX,
        align,
    };
    match ty {
        Type::Primitive(p) => Some(p.layout()),
        Type::Array { element, len } => {
            let e = type_layout(element, layouts)?;
            Some(Layout::array(e, *len).unwrap_or(saturated(e.align)))
        }
        Type::String { capacity } | Type::Bytes { capacity } => {
            Some(Layout::string(*capacity).unwrap_or(saturated(4)))
        }
        Type::Sequence { element, capacity } => {
            let e = type_layout(element, layouts)?;
            Some(Layout::sequence(e, *capacity).unwrap_or(saturated(e.align.max(4))))
        }
        Type::Named(id) => layouts.get(id.index()).copied().flatten(),
    }
}

fn size_text(size: u64) -> String {
    if size == u64::MAX {
        "more than 2^64 bytes".to_owned()
    } else {
        format!("{size} bytes")
    }
}

fn format_type_text(ty: &ast::TypeExpr) -> String {
    let mut out = String::new();
    crate::format::write_type(ty, &mut out);
    out
}
