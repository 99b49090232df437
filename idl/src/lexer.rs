//! A cheap lexical pre-scan that runs before pest.
//!
//! It finds the comments (the formatter keeps them, the parser skips them), rejects
//! unterminated comments and strings with a precise message, and bounds bracket nesting
//! so that pest's recursive descent can never overflow the stack on input such as
//! 10,000 `[`.

use crate::source::Span;

/// The deepest bracket nesting (`{`, `[`, `<`, `(` together) a file may use. Real schemas
/// need 4 or 5 levels; the limit keeps every recursive pass shallow.
pub const MAX_NESTING: usize = 32;

/// A problem found by the pre-scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    pub(crate) span: Span,
    pub(crate) message: String,
}

/// What the pre-scan learned about a file.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Plain comments (`//`, `/* */`, but not `///` docs), in order.
    pub(crate) comments: Vec<Span>,
    /// Problems that stop the file from being parsed.
    pub(crate) errors: Vec<LexError>,
}

/// Scans `text` once, in linear time.
pub(crate) fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut out = Scan::default();
    let mut depth = 0usize;
    let mut too_deep_reported = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = memchr_newline(bytes, i);
                let is_doc = bytes.get(i + 2) == Some(&b'/') && bytes.get(i + 3) != Some(&b'/');
                if !is_doc {
                    out.comments.push(Span::new(i, end));
                }
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => match find(bytes, i + 2, b"*/") {
                Some(close) => {
                    out.comments.push(Span::new(i, close + 2));
                    i = close + 2;
                }
                None => {
                    out.errors.push(LexError {
                        span: Span::new(i, i + 2),
                        message: "unterminated block comment: `/*` has no matching `*/`".to_owned(),
                    });
                    return out;
                }
            },
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && !matches!(bytes[j], b'"' | b'\n') {
                    j += 1;
                }
                if bytes.get(j) == Some(&b'"') {
                    i = j + 1;
                } else {
                    out.errors.push(LexError {
                        span: Span::new(i, i + 1),
                        message:
                            "unterminated string literal: a `\"` must close it on the same line"
                                .to_owned(),
                    });
                    i = j;
                }
            }
            b'{' | b'[' | b'<' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING && !too_deep_reported {
                    too_deep_reported = true;
                    out.errors.push(LexError {
                        span: Span::new(i, i + 1),
                        message: format!(
                            "brackets are nested too deeply (more than {MAX_NESTING} levels)"
                        ),
                    });
                }
                i += 1;
            }
            b'}' | b']' | b'>' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        .map_or(bytes.len(), |p| from + p)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// Skips whitespace and plain comments (not doc comments) starting at `pos`.
pub(crate) fn skip_trivia(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    loop {
        let start = pos;
        while pos < bytes.len() && matches!(bytes[pos], b' ' | b'\t' | b'\r' | b'\n') {
            pos += 1;
        }
        if text
            .get(pos..)
            .is_some_and(|rest| rest.starts_with('\u{FEFF}'))
        {
            pos += '\u{FEFF}'.len_utf8();
        }
        let rest = bytes.get(pos..).unwrap_or(&[]);
        let is_doc = rest.starts_with(b"///") && !rest.starts_with(b"////");
        if rest.starts_with(b"//") && !is_doc {
            pos = memchr_newline(bytes, pos);
        } else if rest.starts_with(b"/*") {
            pos = find(bytes, pos + 2, b"*/").map_or(bytes.len(), |c| c + 2);
        }
        if pos == start {
            return pos;
        }
    }
}

/// The end of the last token before `pos`: walks back over whitespace and over the
/// comments in `comments` (sorted spans of plain comments).
pub(crate) fn prev_token_end(text: &str, mut pos: usize, floor: usize, comments: &[Span]) -> usize {
    let bytes = text.as_bytes();
    loop {
        while pos > floor && matches!(bytes.get(pos - 1), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            pos -= 1;
        }
        match comments.binary_search_by_key(&pos, |c| c.end) {
            Ok(i) if comments[i].start >= floor && comments[i].start < pos => {
                pos = comments[i].start
            }
            _ => return pos,
        }
    }
}

/// A short description of the token that starts at `pos`, for "found ..." messages.
pub(crate) fn describe_token_at(text: &str, pos: usize) -> String {
    let rest = text.get(pos..).unwrap_or("");
    let Some(first) = rest.chars().next() else {
        return "end of file".to_owned();
    };
    if first.is_ascii_alphabetic() || first == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        let keyword = matches!(
            word.as_str(),
            "package" | "import" | "const" | "enum" | "struct" | "message" | "topic"
        );
        return if keyword {
            format!("keyword `{word}`")
        } else {
            format!("`{word}`")
        };
    }
    if first.is_ascii_digit()
        || (first == '-' && rest[1..].starts_with(|c: char| c.is_ascii_digit()))
    {
        let number: String = rest
            .chars()
            .enumerate()
            .take_while(|&(i, c)| {
                c.is_ascii_alphanumeric() || c == '_' || c == '.' || (i == 0 && c == '-')
            })
            .map(|(_, c)| c)
            .take(40)
            .collect();
        return format!("`{number}`");
    }
    if rest.starts_with("///") {
        return "a doc comment".to_owned();
    }
    if first == '"' {
        return "a string".to_owned();
    }
    format!("`{first}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plain_comments_but_not_doc_comments() {
        let text = "// a\n/// doc\n//// not doc\n/* b */ x";
        let sut = scan(text);
        let found: Vec<&str> = sut.comments.iter().map(|s| &text[s.start..s.end]).collect();
        assert_eq!(found, ["// a", "//// not doc", "/* b */"]);
        assert!(sut.errors.is_empty());
    }

    #[test]
    fn comment_markers_inside_strings_are_not_comments() {
        let sut = scan("topic \"a//b\": T;");
        assert!(sut.comments.is_empty());
    }

    #[test]
    fn reports_unterminated_comment_and_string() {
        assert_eq!(scan("x /* y").errors[0].span, Span::new(2, 4));
        let sut = scan("import \"a.shmidl;\nstruct");
        assert_eq!(sut.errors[0].span, Span::new(7, 8));
        assert!(sut.errors[0].message.contains("unterminated string"));
    }

    #[test]
    fn deep_nesting_is_reported_once_at_the_first_bracket_too_deep() {
        let text = "[".repeat(10_000);
        let sut = scan(&text);
        assert_eq!(sut.errors.len(), 1);
        assert_eq!(sut.errors[0].span, Span::new(MAX_NESTING, MAX_NESTING + 1));
    }

    #[test]
    fn skips_whitespace_and_comments_but_stops_at_docs() {
        let text = "  // c\n /* d */ /// doc";
        assert_eq!(skip_trivia(text, 0), text.find("///").unwrap_or_default());
    }

    #[test]
    fn previous_token_end_skips_back_over_comments() {
        let text = "const X: u8 = 5 // five\n  /* more */\nenum";
        let comments = scan(text).comments;
        let enum_pos = text.find("enum").unwrap_or_default();
        assert_eq!(
            prev_token_end(text, enum_pos, 0, &comments),
            text.find(" //").unwrap_or_default()
        );
    }

    #[test]
    fn describes_tokens_in_words() {
        assert_eq!(describe_token_at("enum X", 0), "keyword `enum`");
        assert_eq!(describe_token_at("foo;", 0), "`foo`");
        assert_eq!(describe_token_at("}", 0), "`}`");
        assert_eq!(describe_token_at("", 0), "end of file");
        assert_eq!(describe_token_at("-12;", 0), "`-12`");
    }
}
