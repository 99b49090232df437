//! The syntax tree of one `.shmidl` file, as written, with spans.
//!
//! Nothing here is resolved or checked: names are plain text and literals keep their
//! spelling (`0x10` stays `0x10`) so that [`format_file`](crate::format_file) can print them back.
//! The validated, typed model is [`Schema`](crate::Schema).

use crate::source::Span;

/// A parsed file: its top-level declarations in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct File {
    /// The declarations, in source order.
    pub items: Vec<Item>,
    /// Spans of the plain (`//`, `/* */`) comments, kept for the formatter.
    pub comments: Vec<Span>,
}

/// One top-level declaration with its doc comments.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The `///` lines before the declaration, without the `///` marker.
    pub docs: Vec<String>,
    /// From the first doc comment (or keyword) to the end of the declaration.
    pub span: Span,
    /// Where the declaration itself starts (its keyword), after the docs.
    pub keyword_span: Span,
    /// What is declared.
    pub kind: ItemKind,
}

/// The kinds of top-level declaration.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    /// `package a.b.c;`
    Package(Path),
    /// `import "file.shmidl";`
    Import(StringLit),
    /// `const NAME: type = value;`
    Const(ConstDecl),
    /// `enum Name: repr { ... }`
    Enum(EnumDecl),
    /// `struct Name { ... }` or `message Name { ... }`
    Struct(StructDecl),
    /// `topic "name": Type { ... }`
    Topic(TopicDecl),
}

/// An identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The text.
    pub name: String,
    /// Where it is.
    pub span: Span,
}

/// A name with optional package qualification: `Vec3` or `robot.v1.Vec3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The dot-separated parts.
    pub segments: Vec<String>,
    /// Where it is.
    pub span: Span,
}

impl Path {
    /// The parts joined with `.`.
    pub fn text(&self) -> String {
        self.segments.join(".")
    }
}

/// A string literal; `value` is the text between the quotes (no escapes exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringLit {
    /// The text between the quotes.
    pub value: String,
    /// Where it is, including the quotes.
    pub span: Span,
}

/// An integer literal as written: `16`, `-3`, `0xff`, `0b1010`, `0o17`, `1_000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntLit {
    /// The spelling.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

impl IntLit {
    /// The value, or `None` if it does not fit in an `i128` (the validator reports that).
    pub fn value(&self) -> Option<i128> {
        parse_int(&self.text)
    }
}

/// Parses the spelling of an integer literal.
pub(crate) fn parse_int(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (radix, digits) = if let Some(d) = digits.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = digits.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = digits.strip_prefix("0b") {
        (2, d)
    } else {
        (10, digits)
    };
    let mut value: i128 = 0;
    let mut any = false;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = i128::from(c.to_digit(radix)?);
        value = value.checked_mul(i128::from(radix))?.checked_add(d)?;
        any = true;
    }
    if !any {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// `const NAME: type = value;`
#[derive(Debug, Clone, PartialEq)]
pub struct ConstDecl {
    /// The constant's name.
    pub name: Ident,
    /// Its declared type.
    pub ty: TypeExpr,
    /// Its value.
    pub value: ConstExpr,
}

/// The value of a constant.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstExpr {
    /// What the value is.
    pub kind: ConstExprKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of constant value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstExprKind {
    /// `true` or `false`.
    Bool(bool),
    /// An integer literal.
    Int(IntLit),
    /// A floating-point literal, as written (`1.5`, `-2e3`).
    Float(String),
    /// Another constant, by (possibly qualified) name.
    Path(Path),
}

/// `enum Name: repr { Variant = value, ... }`
#[derive(Debug, Clone, PartialEq)]
pub struct EnumDecl {
    /// The enum's name.
    pub name: Ident,
    /// The integer representation.
    pub repr: TypeExpr,
    /// The variants in order.
    pub variants: Vec<VariantDecl>,
}

/// One enum variant.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantDecl {
    /// Its doc comment lines.
    pub docs: Vec<String>,
    /// Its name.
    pub name: Ident,
    /// Its explicit value; without one, a variant is the previous value plus one (the
    /// first is 0).
    pub value: Option<IntLit>,
    /// From the first doc line to the end of the value.
    pub span: Span,
}

/// `struct Name { ... }` or `message Name { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct StructDecl {
    /// `true` for `message`, which may be a topic payload.
    pub is_message: bool,
    /// The type's name.
    pub name: Ident,
    /// The fields in order.
    pub fields: Vec<FieldDecl>,
    /// The closing `}`.
    pub close_span: Span,
}

/// One struct field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDecl {
    /// Its doc comment lines.
    pub docs: Vec<String>,
    /// Its name (any identifier, Rust keywords included).
    pub name: Ident,
    /// Its type.
    pub ty: TypeExpr,
    /// From the first doc line to the end of the type.
    pub span: Span,
}

/// `topic "name": Type { option: value, ... }` or `topic "name": Type;`
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDecl {
    /// The topic name.
    pub name: StringLit,
    /// The payload message type.
    pub payload: Path,
    /// The options, or `None` when written with `;` instead of a body.
    pub options: Option<Vec<TopicOptionDecl>>,
    /// The closing `}` (the `;` without a body).
    pub close_span: Span,
}

/// `option: value` in a topic body.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicOptionDecl {
    /// The option's name.
    pub name: Ident,
    /// Its value.
    pub value: OptionValue,
    /// The whole option.
    pub span: Span,
}

/// The value of a topic option.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// A number.
    Int(IntLit),
    /// A word (`overwrite_oldest`) or a constant's name.
    Path(Path),
}

impl OptionValue {
    /// Where the value is.
    pub fn span(&self) -> Span {
        match self {
            OptionValue::Int(i) => i.span,
            OptionValue::Path(p) => p.span,
        }
    }
}

/// A type as written.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeExpr {
    /// What the type is.
    pub kind: TypeExprKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of type expression.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeExprKind {
    /// A primitive (`u8`, `f64`, ...) or a declared type, by (possibly qualified) name.
    Named(Path),
    /// `[T; N]`
    Array(Box<TypeExpr>, Bound),
    /// `string<N>`
    String(Bound),
    /// `bytes<N>`
    Bytes(Bound),
    /// `sequence<T, N>`
    Sequence(Box<TypeExpr>, Bound),
}

/// A size bound: a literal or an integer constant's name.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    /// A number.
    Int(IntLit),
    /// A constant.
    Const(Path),
}

impl Bound {
    /// Where the bound is.
    pub fn span(&self) -> Span {
        match self {
            Bound::Int(i) => i.span,
            Bound::Const(p) => p.span,
        }
    }
}

/// Resets every span in a syntax tree to `0..0`, so that two trees can be compared for
/// structure alone (used to check that formatting preserves meaning).
pub trait ClearSpans {
    /// Sets all spans to the empty span at 0.
    fn clear_spans(&mut self);
}

impl ClearSpans for File {
    fn clear_spans(&mut self) {
        self.comments.clear();
        for item in &mut self.items {
            item.clear_spans();
        }
    }
}

impl ClearSpans for Item {
    fn clear_spans(&mut self) {
        self.span = Span::default();
        self.keyword_span = Span::default();
        match &mut self.kind {
            ItemKind::Package(p) => p.span = Span::default(),
            ItemKind::Import(s) => s.span = Span::default(),
            ItemKind::Const(c) => {
                c.name.span = Span::default();
                c.ty.clear_spans();
                c.value.span = Span::default();
                match &mut c.value.kind {
                    ConstExprKind::Int(i) => i.span = Span::default(),
                    ConstExprKind::Path(p) => p.span = Span::default(),
                    ConstExprKind::Bool(_) | ConstExprKind::Float(_) => {}
                }
            }
            ItemKind::Enum(e) => {
                e.name.span = Span::default();
                e.repr.clear_spans();
                for v in &mut e.variants {
                    v.span = Span::default();
                    v.name.span = Span::default();
                    if let Some(value) = &mut v.value {
                        value.span = Span::default();
                    }
                }
            }
            ItemKind::Struct(s) => {
                s.name.span = Span::default();
                s.close_span = Span::default();
                for f in &mut s.fields {
                    f.span = Span::default();
                    f.name.span = Span::default();
                    f.ty.clear_spans();
                }
            }
            ItemKind::Topic(t) => {
                t.name.span = Span::default();
                t.payload.span = Span::default();
                t.close_span = Span::default();
                for o in t.options.iter_mut().flatten() {
                    o.span = Span::default();
                    o.name.span = Span::default();
                    match &mut o.value {
                        OptionValue::Int(i) => i.span = Span::default(),
                        OptionValue::Path(p) => p.span = Span::default(),
                    }
                }
            }
        }
    }
}

impl ClearSpans for TypeExpr {
    fn clear_spans(&mut self) {
        self.span = Span::default();
        match &mut self.kind {
            TypeExprKind::Named(p) => p.span = Span::default(),
            TypeExprKind::Array(inner, bound) | TypeExprKind::Sequence(inner, bound) => {
                inner.clear_spans();
                bound.clear_spans();
            }
            TypeExprKind::String(bound) | TypeExprKind::Bytes(bound) => bound.clear_spans(),
        }
    }
}

impl ClearSpans for Bound {
    fn clear_spans(&mut self) {
        match self {
            Bound::Int(i) => i.span = Span::default(),
            Bound::Const(p) => p.span = Span::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_literals_parse_in_every_radix() {
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("-0x10"), Some(-16));
        assert_eq!(parse_int("0b1010"), Some(10));
        assert_eq!(parse_int("0o17"), Some(15));
        assert_eq!(parse_int("0x_"), None);
        assert_eq!(parse_int(&"9".repeat(60)), None);
    }
}
