//! The canonical formatting of a schema file (`shmidl fmt`).
//!
//! Rules: four-space indentation; one declaration per paragraph (consecutive imports,
//! and consecutive undocumented constants, stay together); struct, message, enum and
//! topic bodies always one member per line with a trailing comma; `topic "t": T;` when a
//! topic has no body. Literals keep their spelling (`0xff` stays `0xff`).
//!
//! Comments are kept, in order: a comment on its own line, or followed on its line by
//! the next member (`a: u8, /* c */ b: u8`), stays before the declaration, doc line,
//! field, variant or option that follows it, on a line of its own; a comment that ends
//! a line after a declaration or member stays at the end of that line. A comment inside
//! a declaration's header, a member or a type stays between the same two tokens: a
//! `/* */` comment in line, a `//` comment at the end of the line, the rest continuing
//! on the next line, indented once more. So every comment keeps its place among the
//! names, keywords and literals (only punctuation may move past it). Formatting is
//! idempotent: formatting the output again changes nothing.

use crate::{
    ast::{self, Bound, ConstExprKind, ItemKind, OptionValue, TypeExprKind},
    lexer,
    source::Span,
};

const INDENT: &str = "    ";

/// Formats a parsed file. `text` must be the source `file` was parsed from (comments are
/// copied from it).
pub fn format_file(file: &ast::File, text: &str) -> String {
    let mut p = Printer {
        text,
        comments: &file.comments,
        next: 0,
        out: String::with_capacity(text.len() + 64),
    };
    let mut previous: Option<&ast::Item> = None;
    for item in &file.items {
        if let Some(prev) = previous {
            let tight = matches!(
                (&prev.kind, &item.kind),
                (ItemKind::Import(_), ItemKind::Import(_))
            ) || matches!(
                (&prev.kind, &item.kind),
                (ItemKind::Const(_), ItemKind::Const(_))
            ) && prev.docs.is_empty()
                && item.docs.is_empty();
            if !tight {
                p.out.push('\n');
            }
        }
        p.item(item);
        previous = Some(item);
    }
    if p.next < p.comments.len() {
        if !file.items.is_empty() {
            p.out.push('\n');
        }
        p.leading(usize::MAX, "");
    }
    p.out
}

struct Printer<'a> {
    text: &'a str,
    comments: &'a [Span],
    /// Index of the first comment not printed yet.
    next: usize,
    out: String,
}

impl Printer<'_> {
    /// Prints every pending comment that starts before `before`, each on its own line.
    fn leading(&mut self, before: usize, indent: &str) {
        while let Some(&c) = self.comments.get(self.next) {
            if c.start >= before {
                break;
            }
            self.out.push_str(indent);
            self.out
                .push_str(self.text.get(c.start..c.end).unwrap_or("").trim_end());
            self.out.push('\n');
            self.next += 1;
            // Keep one blank line after a comment that had one (a file header, say).
            let rest = self.text.get(c.end..).unwrap_or("");
            let next = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
            let gap = rest.get(..rest.len() - next.len()).unwrap_or("");
            // At the end of the file (`before == usize::MAX`) only another comment can
            // follow; a blank line before nothing would vanish on the next run.
            let more_follows = before != usize::MAX || self.next < self.comments.len();
            if gap.matches('\n').count() >= 2 && !next.is_empty() && more_follows {
                self.out.push('\n');
            }
        }
    }

    /// Ends the current line, appending a one-line comment that follows `after` on the
    /// same source line (with at most the member's `,` between) and ends that line. A
    /// comment with more tokens before it, or with the next member after it on its line,
    /// is left for [`leading`](Self::leading) to print before what follows it.
    fn end_line(&mut self, after: usize) {
        if let Some(&c) = self.comments.get(self.next) {
            let comment = self.text.get(c.start..c.end).unwrap_or("");
            // Both scans stop at the first character that fails them, so on a file
            // written as one line they do not read ahead to its end for every member.
            let mut commas = 0;
            let only_separator = c.start >= after
                && self.text.get(after..c.start).is_some_and(|between| {
                    between.chars().all(|ch| {
                        commas += usize::from(ch == ',');
                        (ch == ',' && commas == 1) || (ch.is_whitespace() && ch != '\n')
                    })
                });
            let ends_its_line = || {
                self.text.get(c.end..).is_some_and(|rest| {
                    rest.chars()
                        .find(|ch| !ch.is_whitespace() || *ch == '\n')
                        .is_none_or(|ch| ch == '\n')
                })
            };
            if only_separator && !comment.contains('\n') && ends_its_line() {
                self.out.push(' ');
                self.out.push_str(comment.trim_end());
                self.next += 1;
            }
        }
        self.out.push('\n');
    }

    /// Prints the doc lines of a declaration or member that starts at `start` (at its
    /// first doc line), each after the comments that stand before it.
    fn docs(&mut self, start: usize, docs: &[String], indent: &str) {
        let mut pos = start;
        for line in docs {
            let doc_start = lexer::skip_trivia(self.text, pos);
            self.leading(doc_start, indent);
            pos = self
                .text
                .get(doc_start..)
                .and_then(|rest| rest.find('\n'))
                .map_or(self.text.len(), |p| doc_start + p + 1);
            self.out.push_str(indent);
            if line.is_empty() {
                self.out.push_str("///\n");
            } else {
                self.out.push_str("/// ");
                self.out.push_str(line);
                self.out.push('\n');
            }
        }
    }

    fn item(&mut self, item: &ast::Item) {
        self.docs(item.span.start, &item.docs, "");
        self.leading(item.keyword_span.start, "");
        match &item.kind {
            ItemKind::Package(path) => {
                self.out.push_str("package ");
                self.word(path.span.start, &path.text(), "");
                self.out.push(';');
                self.end_line(item.span.end);
            }
            ItemKind::Import(lit) => {
                self.out.push_str("import ");
                self.word(lit.span.start, &quoted(&lit.value), "");
                self.out.push(';');
                self.end_line(item.span.end);
            }
            ItemKind::Const(c) => {
                self.out.push_str("const ");
                self.word(c.name.span.start, &c.name.name, "");
                self.out.push_str(": ");
                self.type_expr(&c.ty, "");
                self.out.push_str(" = ");
                let value = match &c.value.kind {
                    ConstExprKind::Bool(b) => if *b { "true" } else { "false" }.to_owned(),
                    ConstExprKind::Int(i) => i.text.clone(),
                    ConstExprKind::Float(f) => f.clone(),
                    ConstExprKind::Path(p) => p.text(),
                };
                self.word(c.value.span.start, &value, "");
                self.out.push(';');
                self.end_line(item.span.end);
            }
            ItemKind::Enum(e) => {
                self.out.push_str("enum ");
                self.word(e.name.span.start, &e.name.name, "");
                self.out.push_str(": ");
                self.type_expr(&e.repr, "");
                let close = Span::point(item.span.end.saturating_sub(1));
                self.body(e.variants.is_empty(), close, item.span.end, |p| {
                    for v in &e.variants {
                        p.docs(v.span.start, &v.docs, INDENT);
                        p.leading(v.name.span.start, INDENT);
                        p.out.push_str(INDENT);
                        p.out.push_str(&v.name.name);
                        if let Some(value) = &v.value {
                            p.out.push_str(" = ");
                            p.word(value.span.start, &value.text, INDENT);
                        }
                        p.out.push(',');
                        p.end_line(v.span.end);
                    }
                });
            }
            ItemKind::Struct(s) => {
                self.out
                    .push_str(if s.is_message { "message " } else { "struct " });
                self.word(s.name.span.start, &s.name.name, "");
                self.body(s.fields.is_empty(), s.close_span, item.span.end, |p| {
                    for f in &s.fields {
                        p.docs(f.span.start, &f.docs, INDENT);
                        p.leading(f.name.span.start, INDENT);
                        p.out.push_str(INDENT);
                        p.out.push_str(&f.name.name);
                        p.out.push_str(": ");
                        p.type_expr(&f.ty, INDENT);
                        p.out.push(',');
                        p.end_line(f.span.end);
                    }
                });
            }
            ItemKind::Topic(t) => {
                self.out.push_str("topic ");
                self.word(t.name.span.start, &quoted(&t.name.value), "");
                self.out.push_str(": ");
                self.word(t.payload.span.start, &t.payload.text(), "");
                match &t.options {
                    None => {
                        self.out.push(';');
                        self.end_line(item.span.end);
                    }
                    Some(options) => {
                        self.body(options.is_empty(), t.close_span, item.span.end, |p| {
                            for o in options {
                                p.leading(o.name.span.start, INDENT);
                                p.out.push_str(INDENT);
                                p.out.push_str(&o.name.name);
                                p.out.push_str(": ");
                                let value = match &o.value {
                                    OptionValue::Int(i) => i.text.clone(),
                                    OptionValue::Path(path) => path.text(),
                                };
                                p.word(o.value.span().start, &value, INDENT);
                                p.out.push(',');
                                p.end_line(o.span.end);
                            }
                        })
                    }
                }
            }
        }
    }

    /// Prints `text`, the token at `at` in the source, after the comments that stand
    /// before it inside a declaration's header or a member (where [`leading`] does not
    /// reach): a `/* */` comment in line, a `//` comment at the end of the line, the
    /// token then continuing on the next, indented once more than `indent`.
    ///
    /// [`leading`]: Self::leading
    fn word(&mut self, at: usize, text: &str, indent: &str) {
        while let Some(&c) = self.comments.get(self.next) {
            if c.start >= at {
                break;
            }
            let comment = self.text.get(c.start..c.end).unwrap_or("").trim_end();
            if !self.out.ends_with([' ', '\n', '[', '<']) {
                self.out.push(' ');
            }
            self.out.push_str(comment);
            if comment.starts_with("//") {
                self.out.push('\n');
                self.out.push_str(indent);
                self.out.push_str(INDENT);
            } else {
                self.out.push(' ');
            }
            self.next += 1;
        }
        self.out.push_str(text);
    }

    /// [`write_type`], with the comments inside the type kept in place by [`word`].
    ///
    /// [`word`]: Self::word
    fn type_expr(&mut self, ty: &ast::TypeExpr, indent: &str) {
        match &ty.kind {
            TypeExprKind::Named(p) => self.word(p.span.start, &p.text(), indent),
            TypeExprKind::Array(element, bound) => {
                self.word(ty.span.start, "[", indent);
                self.type_expr(element, indent);
                self.out.push_str("; ");
                self.bound(bound, indent);
                self.out.push(']');
            }
            TypeExprKind::String(bound) => {
                self.word(ty.span.start, "string<", indent);
                self.bound(bound, indent);
                self.out.push('>');
            }
            TypeExprKind::Bytes(bound) => {
                self.word(ty.span.start, "bytes<", indent);
                self.bound(bound, indent);
                self.out.push('>');
            }
            TypeExprKind::Sequence(element, bound) => {
                self.word(ty.span.start, "sequence<", indent);
                self.type_expr(element, indent);
                self.out.push_str(", ");
                self.bound(bound, indent);
                self.out.push('>');
            }
        }
    }

    fn bound(&mut self, bound: &Bound, indent: &str) {
        match bound {
            Bound::Int(i) => self.word(i.span.start, &i.text, indent),
            Bound::Const(p) => self.word(p.span.start, &p.text(), indent),
        }
    }

    /// Prints ` {`, the members, and `}`; an empty body prints ` {}`.
    fn body(&mut self, empty: bool, close: Span, end: usize, members: impl FnOnce(&mut Self)) {
        let has_inner_comments = self
            .comments
            .get(self.next)
            .is_some_and(|c| c.start < close.start);
        if empty && !has_inner_comments {
            self.out.push_str(" {}");
            self.end_line(end);
            return;
        }
        self.out.push_str(" {\n");
        members(self);
        self.leading(close.start, INDENT);
        self.out.push('}');
        self.end_line(end);
    }
}

fn quoted(value: &str) -> String {
    format!("\"{value}\"")
}

/// Writes a type expression in canonical spelling.
pub(crate) fn write_type(ty: &ast::TypeExpr, out: &mut String) {
    match &ty.kind {
        TypeExprKind::Named(p) => out.push_str(&p.text()),
        TypeExprKind::Array(element, bound) => {
            out.push('[');
            write_type(element, out);
            out.push_str("; ");
            write_bound(bound, out);
            out.push(']');
        }
        TypeExprKind::String(bound) => {
            out.push_str("string<");
            write_bound(bound, out);
            out.push('>');
        }
        TypeExprKind::Bytes(bound) => {
            out.push_str("bytes<");
            write_bound(bound, out);
            out.push('>');
        }
        TypeExprKind::Sequence(element, bound) => {
            out.push_str("sequence<");
            write_type(element, out);
            out.push_str(", ");
            write_bound(bound, out);
            out.push('>');
        }
    }
}

fn write_bound(bound: &Bound, out: &mut String) {
    match bound {
        Bound::Int(i) => out.push_str(&i.text),
        Bound::Const(p) => out.push_str(&p.text()),
    }
}

#[cfg(test)]
mod tests {
    fn format(text: &str) -> String {
        crate::format_str("t.shmidl", text).unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn topic_options_are_kept_as_written_and_defaults_are_not_added() {
        let text = "message M { x: u8 }\ntopic \"a\": M { pool: 16, pool_chunks: 0x4 }\ntopic \"b\": M { depth: 2 }\ntopic \"c\": M;\n";
        let formatted = format(text);
        assert_eq!(
            formatted,
            "message M {\n    x: u8,\n}\n\ntopic \"a\": M {\n    pool: 16,\n    pool_chunks: 0x4,\n}\n\ntopic \"b\": M {\n    depth: 2,\n}\n\ntopic \"c\": M;\n"
        );
        assert_eq!(format(&formatted), formatted);
    }
}
