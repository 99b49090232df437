//! Reading files, following imports, detecting import cycles.
//!
//! An `import "p";` is looked up first relative to the importing file's directory, then
//! in each include directory in order; the first existing file wins. Files are
//! identified by their canonical path, so a file reached twice is loaded once.

use std::{
    collections::{HashMap, VecDeque},
    path::{Path, PathBuf},
};

use crate::{
    ast::{self, ItemKind},
    diagnostic::{Diagnostic, Diagnostics, Severity, MAX_ERRORS},
    parser,
    source::{FileId, SourceFile, SourceMap, Span},
};

/// The largest schema file accepted, in bytes.
pub const MAX_FILE_SIZE: u64 = 64 << 20;
/// The most files one load may read (roots and imports together).
pub const MAX_FILES: usize = 1024;

/// One parsed file and where its imports lead.
#[derive(Debug)]
pub(crate) struct Unit {
    pub(crate) ast: ast::File,
    /// `(target, span of the import's string)`; the target is `None` when not found.
    pub(crate) imports: Vec<(Option<FileId>, Span)>,
}

/// The result of loading: every file, parsed, plus the problems found so far.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) sources: SourceMap,
    /// Indexed by `FileId`.
    pub(crate) units: Vec<Unit>,
    pub(crate) roots: Vec<FileId>,
    pub(crate) diagnostics: Diagnostics,
}

/// Where imports are looked up; `None` for sources given as strings (imports are an
/// error there).
struct Resolver<'a> {
    includes: Option<&'a [PathBuf]>,
    by_canonical: HashMap<PathBuf, FileId>,
}

/// Loads `paths` and everything they import.
pub(crate) fn load_paths(paths: &[PathBuf], includes: &[PathBuf]) -> Loaded {
    let mut loaded = Loaded::empty();
    let mut resolver = Resolver {
        includes: Some(includes),
        by_canonical: HashMap::new(),
    };
    let mut queue = VecDeque::new();
    for path in paths {
        match read(path) {
            Ok((canonical, text)) => {
                if let Some(&id) = resolver.by_canonical.get(&canonical) {
                    if !loaded.roots.contains(&id) {
                        loaded.roots.push(id);
                    }
                    continue;
                }
                let id = loaded.add(SourceFile::new(path.clone(), text));
                resolver.by_canonical.insert(canonical, id);
                loaded.roots.push(id);
                queue.push_back(id);
            }
            Err(message) => {
                loaded
                    .diagnostics
                    .push(Diagnostic::new(Severity::Error, None, message))
            }
        }
    }
    loaded.process(queue, &mut resolver);
    loaded
}

/// Parses `text` as a file called `name`. Imports cannot be resolved without a file
/// system location, so each `import` is reported as an error.
pub(crate) fn load_source(name: &str, text: &str) -> Loaded {
    let mut loaded = Loaded::empty();
    let mut resolver = Resolver {
        includes: None,
        by_canonical: HashMap::new(),
    };
    let id = loaded.add(SourceFile::new(name, text));
    loaded.roots.push(id);
    loaded.process(VecDeque::from([id]), &mut resolver);
    loaded
}

fn read(path: &Path) -> Result<(PathBuf, String), String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("cannot read `{shown}`: not a regular file"));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(format!(
            "cannot read `{shown}`: the file is {} bytes, more than the limit of {MAX_FILE_SIZE}",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e
            .as_bytes()
            .get(..at)
            .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
            + 1;
        format!("cannot read `{shown}`: it is not valid UTF-8 (invalid byte on line {line})")
    })?;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok((canonical, text))
}

impl Loaded {
    fn empty() -> Self {
        Self {
            sources: SourceMap::default(),
            units: Vec::new(),
            roots: Vec::new(),
            diagnostics: Diagnostics::default(),
        }
    }

    fn add(&mut self, file: SourceFile) -> FileId {
        self.units.push(Unit {
            ast: ast::File::default(),
            imports: Vec::new(),
        });
        self.sources.add(file)
    }

    fn process(&mut self, mut queue: VecDeque<FileId>, resolver: &mut Resolver<'_>) {
        while let Some(id) = queue.pop_front() {
            let Some(source) = self.sources.get(id).cloned() else {
                continue;
            };
            let budget = MAX_ERRORS
                .saturating_sub(self.diagnostics.error_count())
                .max(1);
            let (file, errors) = parser::parse(source.text(), budget);
            for e in errors {
                self.diagnostics.push(e.into_diagnostic(id));
            }
            let mut imports = Vec::new();
            for item in &file.items {
                let ItemKind::Import(lit) = &item.kind else {
                    continue;
                };
                let target = self.resolve_import(id, source.path(), lit, resolver, &mut queue);
                if let Some(t) = target {
                    if imports.iter().any(|(other, _)| *other == Some(t)) {
                        self.diagnostics.push(Diagnostic::warning(
                            id,
                            lit.span,
                            format!("`{}` is imported more than once", lit.value),
                        ));
                    }
                }
                imports.push((target, lit.span));
            }
            if let Some(unit) = self.units.get_mut(id.index()) {
                *unit = Unit { ast: file, imports };
            }
        }
        self.report_cycles();
        self.diagnostics.set_sources(self.sources.clone());
    }

    fn resolve_import(
        &mut self,
        from: FileId,
        from_path: &Path,
        lit: &ast::StringLit,
        resolver: &mut Resolver<'_>,
        queue: &mut VecDeque<FileId>,
    ) -> Option<FileId> {
        let Some(includes) = resolver.includes else {
            self.diagnostics.push(
                Diagnostic::error(
                    from,
                    lit.span,
                    "imports cannot be resolved in a schema parsed from a string",
                )
                .with_help("load the schema from a file with `shmidl_idl::load`"),
            );
            return None;
        };
        if lit.value.is_empty() {
            self.diagnostics
                .push(Diagnostic::error(from, lit.span, "empty import path"));
            return None;
        }
        let dir = from_path.parent().unwrap_or(Path::new(""));
        let mut searched = vec![dir.to_path_buf()];
        searched.extend(includes.iter().cloned());
        let found = searched
            .iter()
            .map(|d| d.join(&lit.value))
            .find(|p| p.is_file());
        let Some(path) = found else {
            let dirs: Vec<String> = searched
                .iter()
                .map(|d| {
                    if d.as_os_str().is_empty() {
                        "`.`".to_owned()
                    } else {
                        format!("`{}`", d.display())
                    }
                })
                .collect();
            self.diagnostics.push(
                Diagnostic::error(
                    from,
                    lit.span,
                    format!("cannot find imported file `{}`", lit.value),
                )
                .with_note(format!("searched in {}", dirs.join(", ")))
                .with_help("add the directory that contains it with `-I DIR`"),
            );
            return None;
        };
        match read(&path) {
            Ok((canonical, text)) => {
                if let Some(&id) = resolver.by_canonical.get(&canonical) {
                    return Some(id);
                }
                if self.units.len() >= MAX_FILES {
                    self.diagnostics.push(Diagnostic::error(
                        from,
                        lit.span,
                        format!("too many files: a schema may load at most {MAX_FILES} files"),
                    ));
                    return None;
                }
                let id = self.add(SourceFile::new(path, text));
                resolver.by_canonical.insert(canonical, id);
                queue.push_back(id);
                Some(id)
            }
            Err(message) => {
                self.diagnostics
                    .push(Diagnostic::error(from, lit.span, message));
                None
            }
        }
    }

    /// Reports every import cycle once, at the import that closes it. Iterative DFS.
    fn report_cycles(&mut self) {
        const WHITE: u8 = 0;
        const GRAY: u8 = 1;
        const BLACK: u8 = 2;
        let n = self.units.len();
        let mut color = vec![WHITE; n];
        for start in 0..n {
            if color[start] != WHITE {
                continue;
            }
            // Stack of (file, next import index).
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            color[start] = GRAY;
            while let Some(&mut (file, ref mut next)) = stack.last_mut() {
                let imports = &self.units[file].imports;
                if *next >= imports.len() {
                    color[file] = BLACK;
                    stack.pop();
                    continue;
                }
                let (target, span) = imports[*next];
                *next += 1;
                let Some(target) = target else { continue };
                let t = target.index();
                match color.get(t).copied() {
                    Some(WHITE) => {
                        color[t] = GRAY;
                        stack.push((t, 0));
                    }
                    Some(GRAY) => {
                        let from = stack.iter().position(|&(f, _)| f == t).unwrap_or(0);
                        let mut chain: Vec<String> = stack[from..]
                            .iter()
                            .map(|&(f, _)| self.file_name(f))
                            .collect();
                        chain.push(self.file_name(t));
                        let message = if chain.len() == 2 {
                            format!("`{}` imports itself", chain[0])
                        } else {
                            format!("import cycle: {}", chain.join(" → "))
                        };
                        let id = FileId(u32::try_from(file).unwrap_or(u32::MAX));
                        self.diagnostics.push(
                            Diagnostic::error(id, span, message)
                                .with_help("imports must form a tree; move the shared declarations into a file that both import"),
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    fn file_name(&self, index: usize) -> String {
        self.sources
            .files
            .get(index)
            .map(|f| {
                f.path().file_name().map_or_else(
                    || f.path().display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            })
            .unwrap_or_default()
    }
}
