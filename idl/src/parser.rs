//! Text → [`ast::File`], one declaration at a time, with readable syntax errors.
//!
//! The parser hands pest one top-level declaration at a time. When a declaration has a
//! syntax error, the error is recorded and parsing resumes at the next line that starts
//! a declaration, so one run reports the syntax errors of many declarations.
//!
//! pest reports a failure as "these rules were tried at byte N". We translate that into
//! what a person would say: the rule names become words (`semi` → "`;`"), and when only
//! punctuation was expected the error moves back to just after the previous token, where
//! the missing `;` or `,` belongs.

use pest::{error::InputLocation, iterators::Pair, Parser as _};

use crate::{
    ast::*,
    lexer::{self, Scan},
    source::Span,
};

mod grammar {
    #![allow(missing_docs)]
    #[derive(pest_derive::Parser)]
    #[grammar = "shmidl.pest"]
    pub(crate) struct ShmidlParser;
}

use grammar::{Rule, ShmidlParser};

/// A syntax error before it is attached to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) span: Span,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
    /// A secondary location, such as the `{` that a missing `}` would close.
    pub(crate) note: Option<(Span, String)>,
}

impl SyntaxError {
    /// The error as a diagnostic in `file`.
    pub(crate) fn into_diagnostic(
        self,
        file: crate::source::FileId,
    ) -> crate::diagnostic::Diagnostic {
        let mut d = crate::diagnostic::Diagnostic::error(file, self.span, self.message);
        d.help = self.help;
        if let Some((span, note)) = self.note {
            d = d.with_note_at(file, span, note);
        }
        d
    }
}

/// Parses `text`. Returns the tree and the syntax errors; the tree holds every
/// declaration that parsed, so the caller decides whether a partial tree is useful.
/// At most `max_errors` errors are collected; parsing stops there.
pub(crate) fn parse(text: &str, max_errors: usize) -> (File, Vec<SyntaxError>) {
    let Scan {
        comments,
        errors: lex_errors,
    } = lexer::scan(text);
    if !lex_errors.is_empty() {
        let errors = lex_errors
            .into_iter()
            .map(|e| SyntaxError {
                span: e.span,
                message: e.message,
                help: None,
                note: None,
            })
            .collect();
        return (
            File {
                items: Vec::new(),
                comments,
            },
            errors,
        );
    }
    let mut items = Vec::new();
    let mut errors = Vec::new();
    let mut pos = lexer::skip_trivia(text, 0);
    let mut lines = LineCache::default();
    while pos < text.len() && errors.len() < max_errors {
        match parse_item(text, pos, &mut lines) {
            Ok(mut pairs) => {
                let Some(pair) = pairs.next() else { break };
                let end = pos + pair.as_span().end();
                items.push(build_item(pair, pos));
                pos = lexer::skip_trivia(text, end.max(pos + 1));
            }
            Err(error) => {
                errors.push(translate(text, pos, &comments, &error));
                match lines.resync(text, pos) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    (File { items, comments }, errors)
}

/// Parses the declaration that starts at `pos`.
///
/// pest builds its error message by scanning its whole input backwards from the end, so
/// a failure on the rest of a large file costs time proportional to the file. To keep a
/// file with thousands of syntax errors linear, pest first gets the text up to the next
/// line that starts a declaration; only if the failure is at the end of that window
/// (the declaration really is longer) does it get a larger one. A declaration always
/// ends with `;` or `}`, so one that parses inside a window parses the same in the whole
/// text.
fn parse_item<'t>(
    text: &'t str,
    pos: usize,
    lines: &mut LineCache,
) -> Result<pest::iterators::Pairs<'t, Rule>, pest::error::Error<Rule>> {
    let mut end = pos;
    loop {
        end = lines.resync(text, end).unwrap_or(text.len());
        let window = text.get(pos..end).unwrap_or("");
        let result = ShmidlParser::parse(Rule::item, window);
        let at_window_end = match &result {
            Err(e) => match e.location {
                InputLocation::Pos(p) => p >= window.len(),
                InputLocation::Span((_, e)) => e >= window.len(),
            },
            Ok(_) => false,
        };
        if !at_window_end || end >= text.len() {
            return result;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Error translation

fn translate(
    text: &str,
    item_start: usize,
    comments: &[Span],
    error: &pest::error::Error<Rule>,
) -> SyntaxError {
    let at = item_start
        + match error.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
    let rules: Vec<Rule> = match &error.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let mut expected: Vec<&'static str> = Vec::new();
    let mut only_punctuation = !rules.is_empty();
    let meaningful: Vec<Rule> = if rules.iter().all(|r| *r == Rule::doc) {
        rules.clone()
    } else {
        rules.iter().copied().filter(|r| *r != Rule::doc).collect()
    };
    for rule in &meaningful {
        let (words, punctuation) = describe_rule(*rule);
        only_punctuation &= punctuation;
        if !expected.contains(&words) {
            expected.push(words);
        }
    }
    if meaningful.iter().all(|r| is_declaration_keyword(*r)) && !meaningful.is_empty() {
        expected = vec![describe_rule(Rule::item).0];
        only_punctuation = false;
    }
    let found = lexer::describe_token_at(text, at);
    let expected_words = join_or(&expected);
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {expected_words}, found {found}")
    };
    // Missing punctuation: point at the offending token when it stands on
    // the same line (`amount: u64 $,` points at `$`); when it starts a later
    // line or the file ends, point just after the last token, where the
    // punctuation is missing (the end of the line with the missing `;`).
    let prev = lexer::prev_token_end(text, at, item_start, comments);
    let on_later_line = text.get(prev..at).is_none_or(|gap| gap.contains('\n'));
    let span = if only_punctuation && (found == "end of file" || on_later_line) {
        Span::point(prev)
    } else {
        Span::new(at, at + token_len(text, at).max(1))
    };
    let after_doc = {
        let prev = lexer::prev_token_end(text, at, item_start, comments);
        let line_start = text
            .get(..prev)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |p| p + 1);
        let line = text.get(line_start..prev).unwrap_or("").trim_start();
        line.starts_with("///") && !line.starts_with("////")
    };
    let help = if after_doc {
        Some("a `///` doc comment must be followed by the item it documents; use `//` for a plain comment".to_owned())
    } else {
        help_for(text, at, &meaningful)
    };
    if let Some(keyword) = keyword_read_as_field(text, at, item_start, comments, &meaningful) {
        let note = unclosed_brace(text, item_start, keyword.start, comments).map(|open| {
            (
                Span::new(open, open + 1),
                "this `{` is not closed".to_owned(),
            )
        });
        let word = text.get(keyword.start..keyword.end).unwrap_or("");
        return SyntaxError {
            span: keyword,
            message: format!("expected `}}`, found keyword `{word}`"),
            help: Some(format!(
                "if a new declaration starts here, close the one above with `}}`; a field named `{word}` needs a `:`"
            )),
            note,
        };
    }
    // A declaration keyword or the end of the file where `}` was possible usually means
    // a `}` is missing: show which `{` it would close.
    let looks_unclosed = meaningful.contains(&Rule::rbrace)
        && (found == "end of file" || found.starts_with("keyword"));
    let note = looks_unclosed
        .then(|| unclosed_brace(text, item_start, at, comments))
        .flatten()
        .map(|open| {
            (
                Span::new(open, open + 1),
                "this `{` is not closed".to_owned(),
            )
        });
    SyntaxError {
        span,
        message,
        help,
        note,
    }
}

/// When the parser wanted the `:` of a field whose name is a declaration keyword at the
/// start of a line (`struct B {` after a struct that lacks its `}`), the span of that
/// keyword.
fn keyword_read_as_field(
    text: &str,
    at: usize,
    item_start: usize,
    comments: &[Span],
    expected: &[Rule],
) -> Option<Span> {
    if expected != [Rule::colon] {
        return None;
    }
    let end = lexer::prev_token_end(text, at, item_start, comments);
    let before = text.get(..end)?;
    let start = before
        .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_')
        .len();
    let word = text.get(start..end)?;
    let line_start = before.get(..start)?.rfind('\n').map_or(0, |p| p + 1);
    let first_on_line = text.get(line_start..start)?.trim().is_empty();
    let keyword = matches!(
        word,
        "package" | "import" | "const" | "enum" | "struct" | "message" | "topic"
    );
    (keyword && first_on_line).then_some(Span::new(start, end))
}

/// The innermost `{` between `from` and `to` that is not closed before `to`, ignoring
/// braces in comments and strings.
fn unclosed_brace(text: &str, from: usize, to: usize, comments: &[Span]) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut open: Vec<usize> = Vec::new();
    let mut comment = comments.partition_point(|c| c.end <= from);
    let mut i = from;
    while i < to.min(bytes.len()) {
        if let Some(c) = comments.get(comment) {
            if c.start <= i {
                i = c.end.max(i + 1);
                comment += 1;
                continue;
            }
        }
        match bytes[i] {
            b'{' => open.push(i),
            b'}' => {
                open.pop();
            }
            b'"' => {
                while i + 1 < bytes.len() && !matches!(bytes[i + 1], b'"' | b'\n') {
                    i += 1;
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                // A doc comment (plain comments are skipped above).
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    open.pop()
}

/// A hint for common mistakes, beyond "expected X".
fn help_for(text: &str, at: usize, expected: &[Rule]) -> Option<String> {
    let rest = text.get(at..).unwrap_or("");
    if rest.starts_with("///") {
        return Some(
            "a `///` doc comment must be followed by the item it documents; use `//` for a plain comment"
                .to_owned(),
        );
    }
    if expected.contains(&Rule::string_lit) && rest.starts_with('\'') {
        return Some("strings use double quotes: \"...\"".to_owned());
    }
    None
}

fn is_declaration_keyword(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_package
            | Rule::kw_import
            | Rule::kw_const
            | Rule::kw_enum
            | Rule::kw_struct
            | Rule::kw_message
            | Rule::kw_topic
    )
}

/// Words for a grammar rule, and whether it is a single punctuation token.
fn describe_rule(rule: Rule) -> (&'static str, bool) {
    match rule {
        Rule::semi => ("`;`", true),
        Rule::comma => ("`,`", true),
        Rule::colon => ("`:`", true),
        Rule::eq => ("`=`", true),
        Rule::lbrace => ("`{`", true),
        Rule::rbrace => ("`}`", true),
        Rule::lbracket => ("`[`", true),
        Rule::rbracket => ("`]`", true),
        Rule::langle => ("`<`", true),
        Rule::rangle => ("`>`", true),
        Rule::ident => ("a name", false),
        Rule::path => ("a name", false),
        Rule::kw_package => ("`package`", false),
        Rule::kw_import => ("`import`", false),
        Rule::kw_const => ("`const`", false),
        Rule::kw_enum => ("`enum`", false),
        Rule::kw_struct => ("`struct`", false),
        Rule::kw_message => ("`message`", false),
        Rule::kw_topic => ("`topic`", false),
        Rule::kw_string => ("`string`", false),
        Rule::kw_bytes => ("`bytes`", false),
        Rule::kw_sequence => ("`sequence`", false),
        Rule::kw_true => ("`true`", false),
        Rule::kw_false => ("`false`", false),
        Rule::int_lit => ("an integer", false),
        Rule::float_lit => ("a number", false),
        Rule::string_lit | Rule::string_text => ("a string in double quotes", false),
        Rule::doc | Rule::doc_text => ("a doc comment", false),
        Rule::item => (
            "a declaration (`package`, `import`, `const`, `enum`, `struct`, `message` or `topic`)",
            false,
        ),
        Rule::package_decl => ("`package`", false),
        Rule::import_decl => ("`import`", false),
        Rule::const_decl => ("`const`", false),
        Rule::enum_decl => ("`enum`", false),
        Rule::struct_decl => ("`struct` or `message`", false),
        Rule::topic_decl => ("`topic`", false),
        Rule::const_value => (
            "a value (a number, `true`, `false` or a constant's name)",
            false,
        ),
        Rule::variant => ("an enum variant", false),
        Rule::field => ("a field (`name: type`)", false),
        Rule::topic_body => ("`{` or `;`", false),
        Rule::topic_option => ("a topic option (`name: value`)", false),
        Rule::option_value => ("a value", false),
        Rule::type_ref
        | Rule::array_type
        | Rule::string_type
        | Rule::bytes_type
        | Rule::sequence_type => ("a type", false),
        Rule::bound => ("a size (an integer or a constant's name)", false),
        Rule::WHITESPACE
        | Rule::COMMENT
        | Rule::ident_char
        | Rule::block_comment
        | Rule::line_comment
        | Rule::digits => ("end of input", false),
    }
}

fn join_or(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Length in bytes of the token at `at`, for the caret (at least 1 char, at most 64).
fn token_len(text: &str, at: usize) -> usize {
    let rest = text.get(at..).unwrap_or("");
    let word: usize = rest
        .char_indices()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .last()
        .map_or(0, |(i, c)| i + c.len_utf8());
    if word > 0 {
        word
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    }
}

/// Remembers the last [`resync`] answer and the line it was asked from: every position
/// on that line has the same answer. Without it, a file of many declarations on one
/// line would scan the rest of the line once per declaration (quadratic: 43 s for a
/// 5 MB one-line schema).
#[derive(Default)]
struct LineCache {
    /// `(start, end)` of the line of the last question, and its answer.
    last: Option<(usize, usize, Option<usize>)>,
}

impl LineCache {
    fn resync(&mut self, text: &str, from: usize) -> Option<usize> {
        if let Some((start, end, answer)) = self.last {
            if (start..end).contains(&from) {
                return answer;
            }
        }
        let start = text
            .get(..from)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |p| p + 1);
        let end = text
            .get(from..)
            .and_then(|t| t.find('\n'))
            .map_or(text.len(), |p| from + p);
        let answer = resync(text, from);
        self.last = Some((start, end, answer));
        answer
    }
}

/// The start of the next line after the one containing `from` that begins a declaration
/// (with its doc comments), or `None` if there is none.
fn resync(text: &str, from: usize) -> Option<usize> {
    let mut line_start = text.get(from..)?.find('\n').map(|p| from + p + 1)?;
    let mut doc_run_start: Option<usize> = None;
    while line_start < text.len() {
        let line_end = text
            .get(line_start..)
            .and_then(|r| r.find('\n'))
            .map_or(text.len(), |p| line_start + p);
        let line = text.get(line_start..line_end).unwrap_or("");
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with("///") && !trimmed.starts_with("////") {
            doc_run_start.get_or_insert(line_start + indent);
        } else if starts_declaration(trimmed) {
            return Some(doc_run_start.unwrap_or(line_start + indent));
        } else {
            doc_run_start = None;
        }
        line_start = line_end + 1;
    }
    None
}

fn starts_declaration(line: &str) -> bool {
    [
        "package", "import", "const", "enum", "struct", "message", "topic",
    ]
    .iter()
    .any(|kw| {
        line.strip_prefix(kw).is_some_and(|rest| {
            rest.starts_with([' ', '\t']) && !rest.trim_start().starts_with(':')
        })
    })
}

// ---------------------------------------------------------------------------------------
// Building the tree. The grammar guarantees the shape of every pair, so the builders
// below only walk it; where a child is optional they use `Option`s and defaults rather
// than panicking, even though the grammar rules that case out.

fn span_of(pair: &Pair<'_, Rule>, base: usize) -> Span {
    let s = pair.as_span();
    Span::new(base + s.start(), base + s.end())
}

fn build_item(pair: Pair<'_, Rule>, base: usize) -> Item {
    let span = span_of(&pair, base);
    let mut docs = Vec::new();
    let mut kind = None;
    let mut keyword_span = span;
    for child in pair.into_inner() {
        match child.as_rule() {
            Rule::doc => docs.push(doc_text(child)),
            _ => {
                keyword_span = span_of(&child, base);
                kind = Some(build_decl(child, base));
            }
        }
    }
    Item {
        docs,
        span,
        keyword_span,
        kind: kind.unwrap_or_else(|| {
            ItemKind::Package(Path {
                segments: Vec::new(),
                span,
            })
        }),
    }
}

/// The text of a `///` line: one leading space and all trailing whitespace removed.
fn doc_text(pair: Pair<'_, Rule>) -> String {
    let text = pair
        .into_inner()
        .next()
        .map_or("", |p| p.as_str())
        .trim_end();
    text.strip_prefix(' ').unwrap_or(text).to_owned()
}

fn build_decl(pair: Pair<'_, Rule>, base: usize) -> ItemKind {
    let rule = pair.as_rule();
    let span = span_of(&pair, base);
    let children: Vec<Pair<'_, Rule>> = pair.into_inner().collect();
    let find = |r: Rule| children.iter().find(|p| p.as_rule() == r).cloned();
    let ident = |r: Rule| {
        find(r).map_or(
            Ident {
                name: String::new(),
                span,
            },
            |p| build_ident(&p, base),
        )
    };
    match rule {
        Rule::package_decl => {
            ItemKind::Package(find(Rule::path).map_or(empty_path(span), |p| build_path(&p, base)))
        }
        Rule::import_decl => ItemKind::Import(find(Rule::string_lit).map_or(
            StringLit {
                value: String::new(),
                span,
            },
            |p| build_string(p, base),
        )),
        Rule::const_decl => ItemKind::Const(ConstDecl {
            name: ident(Rule::ident),
            ty: find(Rule::type_ref).map_or(empty_type(span), |p| build_type(p, base)),
            value: find(Rule::const_value).map_or(
                ConstExpr {
                    kind: ConstExprKind::Bool(false),
                    span,
                },
                |p| build_const_value(p, base),
            ),
        }),
        Rule::enum_decl => ItemKind::Enum(EnumDecl {
            name: ident(Rule::ident),
            repr: find(Rule::type_ref).map_or(empty_type(span), |p| build_type(p, base)),
            variants: children
                .iter()
                .filter(|p| p.as_rule() == Rule::variant)
                .map(|p| build_variant(p.clone(), base))
                .collect(),
        }),
        Rule::struct_decl => ItemKind::Struct(StructDecl {
            is_message: find(Rule::kw_message).is_some(),
            name: ident(Rule::ident),
            fields: children
                .iter()
                .filter(|p| p.as_rule() == Rule::field)
                .map(|p| build_field(p.clone(), base))
                .collect(),
            close_span: find(Rule::rbrace).map_or(span, |p| span_of(&p, base)),
        }),
        _ => {
            let body = find(Rule::topic_body);
            let close_span = match &body {
                Some(b) => b
                    .clone()
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::rbrace)
                    .map_or(span, |p| span_of(&p, base)),
                None => find(Rule::semi).map_or(span, |p| span_of(&p, base)),
            };
            ItemKind::Topic(TopicDecl {
                name: find(Rule::string_lit).map_or(
                    StringLit {
                        value: String::new(),
                        span,
                    },
                    |p| build_string(p, base),
                ),
                payload: find(Rule::path).map_or(empty_path(span), |p| build_path(&p, base)),
                options: body.map(|b| {
                    b.into_inner()
                        .filter(|p| p.as_rule() == Rule::topic_option)
                        .map(|p| build_option(p, base))
                        .collect()
                }),
                close_span,
            })
        }
    }
}

fn empty_path(span: Span) -> Path {
    Path {
        segments: Vec::new(),
        span,
    }
}

fn empty_type(span: Span) -> TypeExpr {
    TypeExpr {
        kind: TypeExprKind::Named(empty_path(span)),
        span,
    }
}

fn build_ident(pair: &Pair<'_, Rule>, base: usize) -> Ident {
    Ident {
        name: pair.as_str().to_owned(),
        span: span_of(pair, base),
    }
}

fn build_path(pair: &Pair<'_, Rule>, base: usize) -> Path {
    Path {
        segments: pair.as_str().split('.').map(str::to_owned).collect(),
        span: span_of(pair, base),
    }
}

fn build_string(pair: Pair<'_, Rule>, base: usize) -> StringLit {
    let span = span_of(&pair, base);
    let value = pair
        .into_inner()
        .next()
        .map_or(String::new(), |p| p.as_str().to_owned());
    StringLit { value, span }
}

fn build_int(pair: &Pair<'_, Rule>, base: usize) -> IntLit {
    IntLit {
        text: pair.as_str().to_owned(),
        span: span_of(pair, base),
    }
}

fn build_const_value(pair: Pair<'_, Rule>, base: usize) -> ConstExpr {
    let span = span_of(&pair, base);
    let kind = match pair.into_inner().next() {
        Some(p) => match p.as_rule() {
            Rule::kw_true => ConstExprKind::Bool(true),
            Rule::kw_false => ConstExprKind::Bool(false),
            Rule::float_lit => ConstExprKind::Float(p.as_str().to_owned()),
            Rule::int_lit => ConstExprKind::Int(build_int(&p, base)),
            _ => ConstExprKind::Path(build_path(&p, base)),
        },
        None => ConstExprKind::Bool(false),
    };
    ConstExpr { kind, span }
}

fn build_variant(pair: Pair<'_, Rule>, base: usize) -> VariantDecl {
    let span = span_of(&pair, base);
    let mut docs = Vec::new();
    let mut name = Ident {
        name: String::new(),
        span,
    };
    let mut value = None;
    for child in pair.into_inner() {
        match child.as_rule() {
            Rule::doc => docs.push(doc_text(child)),
            Rule::ident => name = build_ident(&child, base),
            Rule::int_lit => value = Some(build_int(&child, base)),
            _ => {}
        }
    }
    VariantDecl {
        docs,
        name,
        value,
        span,
    }
}

fn build_field(pair: Pair<'_, Rule>, base: usize) -> FieldDecl {
    let span = span_of(&pair, base);
    let mut docs = Vec::new();
    let mut name = Ident {
        name: String::new(),
        span,
    };
    let mut ty = empty_type(span);
    for child in pair.into_inner() {
        match child.as_rule() {
            Rule::doc => docs.push(doc_text(child)),
            Rule::ident => name = build_ident(&child, base),
            Rule::type_ref => ty = build_type(child, base),
            _ => {}
        }
    }
    FieldDecl {
        docs,
        name,
        ty,
        span,
    }
}

fn build_option(pair: Pair<'_, Rule>, base: usize) -> TopicOptionDecl {
    let span = span_of(&pair, base);
    let mut name = Ident {
        name: String::new(),
        span,
    };
    let mut value = OptionValue::Path(empty_path(span));
    for child in pair.into_inner() {
        match child.as_rule() {
            Rule::ident => name = build_ident(&child, base),
            Rule::option_value => {
                if let Some(v) = child.into_inner().next() {
                    value = if v.as_rule() == Rule::int_lit {
                        OptionValue::Int(build_int(&v, base))
                    } else {
                        OptionValue::Path(build_path(&v, base))
                    };
                }
            }
            _ => {}
        }
    }
    TopicOptionDecl { name, value, span }
}

/// Builds a type. Recursion depth is bounded by [`lexer::MAX_NESTING`].
fn build_type(pair: Pair<'_, Rule>, base: usize) -> TypeExpr {
    let span = span_of(&pair, base);
    let Some(inner) = pair.into_inner().next() else {
        return empty_type(span);
    };
    let rule = inner.as_rule();
    let children: Vec<Pair<'_, Rule>> = inner.clone().into_inner().collect();
    let element = || {
        children
            .iter()
            .find(|p| p.as_rule() == Rule::type_ref)
            .map_or(empty_type(span), |p| build_type(p.clone(), base))
    };
    let bound = || {
        children
            .iter()
            .find(|p| p.as_rule() == Rule::bound)
            .and_then(|b| b.clone().into_inner().next())
            .map_or(
                Bound::Int(IntLit {
                    text: "0".to_owned(),
                    span,
                }),
                |b| {
                    if b.as_rule() == Rule::int_lit {
                        Bound::Int(build_int(&b, base))
                    } else {
                        Bound::Const(build_path(&b, base))
                    }
                },
            )
    };
    let kind = match rule {
        Rule::array_type => TypeExprKind::Array(Box::new(element()), bound()),
        Rule::string_type => TypeExprKind::String(bound()),
        Rule::bytes_type => TypeExprKind::Bytes(bound()),
        Rule::sequence_type => TypeExprKind::Sequence(Box::new(element()), bound()),
        _ => TypeExprKind::Named(build_path(&inner, base)),
    };
    TypeExpr { kind, span }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_error(text: &str) -> SyntaxError {
        let (_, errors) = parse(text, 100);
        errors.into_iter().next().unwrap_or(SyntaxError {
            note: None,
            span: Span::default(),
            message: "no error".into(),
            help: None,
        })
    }

    #[test]
    fn parses_the_design_example() {
        let text = include_str!("../tests/fixtures/valid/robot_example/input.shmidl");
        let (file, errors) = parse(text, 100);
        assert_eq!(errors, []);
        assert_eq!(file.items.len(), 6);
        assert_eq!(file.items[0].docs, ["Robot arm state."]);
    }

    #[test]
    fn missing_semicolon_is_reported_after_the_previous_token() {
        let text = "const A: u32 = 5\nenum E: u8 { X }\n";
        let sut = first_error(text);
        assert_eq!(sut.message, "expected `;`, found keyword `enum`");
        assert_eq!(sut.span, Span::point(16));
    }

    #[test]
    fn an_unexpected_token_on_the_same_line_is_pointed_at() {
        let text = "message M { amount: u64 $, b: u8 }\n";
        let sut = first_error(text);
        assert_eq!(sut.message, "expected `,` or `}`, found `$`");
        assert_eq!(sut.span, Span::new(24, 25));
    }

    #[test]
    fn missing_comma_between_fields_names_both_choices() {
        let sut = first_error("struct A {\n    x: u8\n    y: u8\n}\n");
        assert_eq!(sut.message, "expected `,` or `}`, found `y`");
        assert_eq!(sut.span, Span::point(20));
    }

    #[test]
    fn errors_in_several_declarations_are_all_reported() {
        let text = "struct A { x u8 }\nstruct B { y: }\nstruct C { z: u8 }\n";
        let (file, errors) = parse(text, 100);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(file.items.len(), 1);
    }

    #[test]
    fn a_missing_closing_brace_points_at_the_open_one() {
        let text = "struct A {\n    x: u8, // {\n    /// doc {\n    y: u8,\n\nstruct B { y: u8 }\n";
        let sut = first_error(text);
        assert!(
            sut.message.ends_with("found keyword `struct`"),
            "{}",
            sut.message
        );
        assert_eq!(sut.note.map(|(span, _)| span), Some(Span::new(9, 10)));
    }

    #[test]
    fn garbage_at_top_level_asks_for_a_declaration() {
        let sut = first_error("hello world");
        assert!(
            sut.message.starts_with("expected a declaration"),
            "{}",
            sut.message
        );
        assert_eq!(sut.span, Span::new(0, 5));
    }
}
