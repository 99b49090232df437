//! Passes 4 and 5: resolving field and element types, bounds and enum values; then
//! layouts and fingerprints in dependency order.

use super::*;
use crate::ast::{Bound, TypeExprKind};

impl<'a> Checker<'a> {
    // -- 4. types --------------------------------------------------------------------------

    pub(super) fn types_pass(&mut self) -> Vec<Resolved> {
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

    pub(super) fn layout_pass(&mut self, resolved: &[Resolved]) -> (Vec<Option<Layout>>, Vec<u64>) {
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
pub(super) fn type_layout(ty: &Type, layouts: &[Option<Layout>]) -> Option<Layout> {
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
            Some(Layout::string(*capacity).unwrap_or(saturated(1)))
        }
        Type::Sequence { element, capacity } => {
            let e = type_layout(element, layouts)?;
            Some(Layout::sequence(e, *capacity).unwrap_or(saturated(e.align)))
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
