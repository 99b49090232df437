//! The canonical formatting of a schema file (`shmidl fmt`).
//!
//! Rules: four-space indentation; one declaration per paragraph (consecutive imports,
//! and consecutive undocumented constants, stay together); struct, message, enum and
//! topic bodies always one member per line with a trailing comma; `topic "t": T;` when a
//! topic has no body. Literals keep their spelling (`0xff` stays `0xff`).
//!
//! Comments are kept: a comment on its own line stays before the declaration, field,
//! variant or option that follows it; a comment at the end of a line stays at the end
//! of that line. A comment inside a declaration's header or inside a type moves to the
//! line before the next member. Formatting is idempotent: formatting the output again
//! changes nothing.

use crate::{
    ast::{self, Bound, ConstExprKind, ItemKind, OptionValue, TypeExprKind},
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
    /// same source line.
    fn end_line(&mut self, after: usize) {
        if let Some(&c) = self.comments.get(self.next) {
            let between = self.text.get(after..c.start).unwrap_or("\n");
            let comment = self.text.get(c.start..c.end).unwrap_or("");
            // Only separators may stand between: a comment after the next field on
            // the same line belongs before that field, not at the end of this one.
            let adjacent = between
                .chars()
                .all(|ch| matches!(ch, ' ' | '\t' | ',' | ';'));
            if c.start >= after && adjacent && !comment.contains('\n') {
                self.out.push(' ');
                self.out.push_str(comment.trim_end());
                self.next += 1;
            }
        }
        self.out.push('\n');
    }

    fn docs(&mut self, docs: &[String], indent: &str) {
        for line in docs {
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
        self.leading(item.keyword_span.start, "");
        self.docs(&item.docs, "");
        match &item.kind {
            ItemKind::Package(path) => {
                self.out.push_str("package ");
                self.out.push_str(&path.text());
                self.out.push(';');
                self.end_line(item.span.end);
            }
            ItemKind::Import(lit) => {
                self.out.push_str("import ");
                write_string(&lit.value, &mut self.out);
                self.out.push(';');
                self.end_line(item.span.end);
            }
            ItemKind::Const(c) => {
                self.out.push_str("const ");
                self.out.push_str(&c.name.name);
                self.out.push_str(": ");
                write_type(&c.ty, &mut self.out);
                self.out.push_str(" = ");
                match &c.value.kind {
                    ConstExprKind::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
                    ConstExprKind::Int(i) => self.out.push_str(&i.text),
                    ConstExprKind::Float(f) => self.out.push_str(f),
                    ConstExprKind::Path(p) => self.out.push_str(&p.text()),
                }
                self.out.push(';');
                self.end_line(item.span.end);
            }
            ItemKind::Enum(e) => {
                self.out.push_str("enum ");
                self.out.push_str(&e.name.name);
                self.out.push_str(": ");
                write_type(&e.repr, &mut self.out);
                let close = Span::point(item.span.end.saturating_sub(1));
                self.body(e.variants.is_empty(), close, item.span.end, |p| {
                    for v in &e.variants {
                        p.leading(v.name.span.start, INDENT);
                        p.docs(&v.docs, INDENT);
                        p.out.push_str(INDENT);
                        p.out.push_str(&v.name.name);
                        if let Some(value) = &v.value {
                            p.out.push_str(" = ");
                            p.out.push_str(&value.text);
                        }
                        p.out.push(',');
                        p.end_line(v.span.end);
                    }
                });
            }
            ItemKind::Struct(s) => {
                self.out
                    .push_str(if s.is_message { "message " } else { "struct " });
                self.out.push_str(&s.name.name);
                self.body(s.fields.is_empty(), s.close_span, item.span.end, |p| {
                    for f in &s.fields {
                        p.leading(f.name.span.start, INDENT);
                        p.docs(&f.docs, INDENT);
                        p.out.push_str(INDENT);
                        p.out.push_str(&f.name.name);
                        p.out.push_str(": ");
                        write_type(&f.ty, &mut p.out);
                        p.out.push(',');
                        p.end_line(f.span.end);
                    }
                });
            }
            ItemKind::Topic(t) => {
                self.out.push_str("topic ");
                write_string(&t.name.value, &mut self.out);
                self.out.push_str(": ");
                self.out.push_str(&t.payload.text());
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
                                match &o.value {
                                    OptionValue::Int(i) => p.out.push_str(&i.text),
                                    OptionValue::Path(path) => p.out.push_str(&path.text()),
                                }
                                p.out.push(',');
                                p.end_line(o.span.end);
                            }
                        })
                    }
                }
            }
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

fn write_string(value: &str, out: &mut String) {
    out.push('"');
    out.push_str(value);
    out.push('"');
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
