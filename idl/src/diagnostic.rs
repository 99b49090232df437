//! Errors and warnings with a location, rendered like a compiler would.

use std::{fmt, sync::Arc};

use crate::source::{FileId, SourceFile, SourceMap, Span};

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// A style or robustness problem; the schema is still usable.
    Warning,
    /// The schema is invalid.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A place in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: FileId,
    /// The byte range; empty for a point between two characters.
    pub span: Span,
}

/// A secondary message attached to a [`Diagnostic`], optionally with its own location
/// (for example "`Vec3` was first declared here").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The text of the note.
    pub message: String,
    /// Where the note points, if anywhere.
    pub location: Option<Location>,
}

/// One error or warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The main message, one line, starting in lower case, without a final period.
    pub message: String,
    /// Where the problem is; `None` for problems without a place (an unreadable file).
    pub location: Option<Location>,
    /// Further explanations, each rendered as `note:`.
    pub notes: Vec<Note>,
    /// A suggestion, rendered as `help:`.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span` of `file`.
    pub fn error(file: FileId, span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, Some(Location { file, span }), message)
    }

    /// A warning at `span` of `file`.
    pub fn warning(file: FileId, span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, Some(Location { file, span }), message)
    }

    /// A diagnostic of any severity and optional location.
    pub fn new(severity: Severity, location: Option<Location>, message: impl Into<String>) -> Self {
        Self {
            severity,
            message: message.into(),
            location,
            notes: Vec::new(),
            help: None,
        }
    }

    /// Adds a note that points at `span` in `file`.
    pub fn with_note_at(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.notes.push(Note {
            message: message.into(),
            location: Some(Location { file, span }),
        });
        self
    }

    /// Adds a note without a location.
    pub fn with_note(mut self, message: impl Into<String>) -> Self {
        self.notes.push(Note {
            message: message.into(),
            location: None,
        });
        self
    }

    /// Sets the `help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The most errors kept for one run; further errors are counted but not stored, so a
/// file with 50,000 mistakes is still reported in well under a second.
pub const MAX_ERRORS: usize = 200;
/// The most warnings kept for one run.
pub const MAX_WARNINGS: usize = 200;

/// The longest message rendered, in bytes; longer ones (quoting a huge name) are cut.
const MAX_MESSAGE_LEN: usize = 300;

/// Width (in characters) of the source excerpt shown under a message; longer lines are
/// cut around the caret and marked with `...`.
const EXCERPT_WIDTH: usize = 120;

/// All diagnostics of a load or check, with the source files they point into.
///
/// `Display` renders every diagnostic as
///
/// ```text
/// robot.shmidl:4:17: error: unknown type `Vec4`
///   |
/// 4 |     pose: Vec4,
///   |           ^^^^
///   = help: did you mean `Vec3`?
/// ```
///
/// followed by a summary line such as `2 errors, 1 warning`.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub(crate) sources: SourceMap,
    items: Vec<Diagnostic>,
    kept_errors: usize,
    dropped_errors: usize,
    dropped_warnings: usize,
}

impl Diagnostics {
    #[cfg(test)]
    pub(crate) fn new(sources: SourceMap) -> Self {
        Self {
            sources,
            ..Self::default()
        }
    }

    pub(crate) fn set_sources(&mut self, sources: SourceMap) {
        self.sources = sources;
    }

    /// Records `diagnostic`, unless the error or warning limit is reached (then it is
    /// only counted).
    pub fn push(&mut self, diagnostic: Diagnostic) {
        let is_error = diagnostic.severity == Severity::Error;
        if is_error && self.kept_errors >= MAX_ERRORS {
            self.dropped_errors += 1;
        } else if !is_error && self.warning_count_kept() >= MAX_WARNINGS {
            self.dropped_warnings += 1;
        } else {
            self.kept_errors += usize::from(is_error);
            self.items.push(diagnostic);
        }
    }

    /// Whether no more errors will be stored; expensive checks may stop early then.
    pub fn error_limit_reached(&self) -> bool {
        self.dropped_errors > 0 || self.error_count_kept() >= MAX_ERRORS
    }

    fn error_count_kept(&self) -> usize {
        self.kept_errors
    }

    fn warning_count_kept(&self) -> usize {
        self.items.len() - self.error_count_kept()
    }

    /// The stored diagnostics, in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Number of errors, including those past [`MAX_ERRORS`] that were not stored.
    pub fn error_count(&self) -> usize {
        self.error_count_kept() + self.dropped_errors
    }

    /// Number of warnings, including those past [`MAX_WARNINGS`] that were not stored.
    pub fn warning_count(&self) -> usize {
        self.warning_count_kept() + self.dropped_warnings
    }

    /// Whether there is at least one error.
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// Whether there are no diagnostics at all.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.dropped_errors == 0 && self.dropped_warnings == 0
    }

    /// The source file with id `file`, if this set knows it.
    pub fn source(&self, file: FileId) -> Option<&Arc<SourceFile>> {
        self.sources.get(file)
    }

    /// Sorts diagnostics by file and position (stable for equal positions), so the output
    /// reads top to bottom.
    pub(crate) fn sort(&mut self) {
        self.items
            .sort_by_key(|d| d.location.map(|l| (l.file, l.span.start)));
    }

    /// Renders one diagnostic (message, excerpt, caret, notes, help) into `out`.
    pub fn render_one(&self, diagnostic: &Diagnostic, out: &mut String) {
        self.render_message(
            diagnostic.severity.to_string().as_str(),
            &diagnostic.message,
            diagnostic.location,
            out,
        );
        for note in &diagnostic.notes {
            match note.location {
                Some(_) => self.render_message("note", &note.message, note.location, out),
                None => {
                    out.push_str("  = note: ");
                    out.push_str(&note.message);
                    out.push('\n');
                }
            }
        }
        if let Some(help) = &diagnostic.help {
            out.push_str("  = help: ");
            out.push_str(help);
            out.push('\n');
        }
    }

    fn render_message(
        &self,
        label: &str,
        message: &str,
        location: Option<Location>,
        out: &mut String,
    ) {
        use fmt::Write as _;
        // A message quotes user text (names); keep a pathological one readable.
        let cut;
        let message = if message.len() > MAX_MESSAGE_LEN {
            let end = crate::source::floor_char_boundary(message, MAX_MESSAGE_LEN);
            cut = format!("{}...", message.get(..end).unwrap_or(""));
            cut.as_str()
        } else {
            message
        };
        let file = location.and_then(|l| self.sources.get(l.file).map(|f| (l, f)));
        let Some((location, file)) = file else {
            let _ = writeln!(out, "{label}: {message}");
            return;
        };
        let (line_no, col) = file.line_col(location.span.start);
        let _ = writeln!(
            out,
            "{}:{line_no}:{col}: {label}: {message}",
            file.path().display()
        );
        let (line, line_start) = file.line_at(location.span.start);
        let caret_start = location
            .span
            .start
            .saturating_sub(line_start)
            .min(line.len());
        let caret_end = location
            .span
            .end
            .saturating_sub(line_start)
            .clamp(caret_start, line.len());
        let (excerpt, caret_col, caret_len) = excerpt(line, caret_start, caret_end);
        let gutter = line_no.to_string();
        let pad = " ".repeat(gutter.len());
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{gutter} | {excerpt}");
        let _ = writeln!(
            out,
            "{pad} | {}{}",
            " ".repeat(caret_col),
            "^".repeat(caret_len.max(1))
        );
    }
}

/// Cuts `line` to at most [`EXCERPT_WIDTH`] characters around the byte range
/// `start..end`, and returns the shown text, the caret column and the caret width (both
/// in characters). Tabs become single spaces so the caret lines up.
fn excerpt(line: &str, start: usize, end: usize) -> (String, usize, usize) {
    let start = crate::source::floor_char_boundary(line, start);
    let end = crate::source::floor_char_boundary(line, end);
    let before = line.get(..start).unwrap_or("");
    let marked = line.get(start..end).unwrap_or("");
    let after = line.get(end..).unwrap_or("");
    let before_chars: Vec<char> = before.chars().rev().take(EXCERPT_WIDTH / 2 + 1).collect();
    let cut_before = before_chars.len() > EXCERPT_WIDTH / 2;
    let mut shown = String::new();
    if cut_before {
        shown.push_str("...");
        shown.extend(before_chars.iter().take(EXCERPT_WIDTH / 2 - 3).rev());
    } else {
        shown.extend(before_chars.iter().rev());
    }
    let caret_col = shown.chars().count();
    let room = EXCERPT_WIDTH.saturating_sub(caret_col);
    let marked_shown: String = marked.chars().take(room).collect();
    let caret_len = marked_shown.chars().count();
    shown.push_str(&marked_shown);
    let room = room.saturating_sub(caret_len);
    let mut after_chars = after.chars();
    let after_shown: String = after_chars.by_ref().take(room).collect();
    shown.push_str(&after_shown);
    if after_chars.next().is_some() || marked.chars().count() > caret_len {
        shown.push_str("...");
    }
    (shown.replace('\t', " "), caret_col, caret_len)
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for d in &self.items {
            self.render_one(d, &mut out);
            out.push('\n');
        }
        if self.dropped_errors > 0 {
            out.push_str(&format!(
                "error: {} more errors not shown (only the first {MAX_ERRORS} are reported)\n",
                self.dropped_errors
            ));
        }
        if self.dropped_warnings > 0 {
            out.push_str(&format!(
                "warning: {} more warnings not shown (only the first {MAX_WARNINGS} are reported)\n",
                self.dropped_warnings
            ));
        }
        out.push_str(&summary(self.error_count(), self.warning_count()));
        f.write_str(&out)
    }
}

fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => "no problems found".to_owned(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_file(text: &str) -> (Diagnostics, FileId) {
        let mut map = SourceMap::default();
        let id = map.add(SourceFile::new("t.shmidl", text));
        (Diagnostics::new(map), id)
    }

    #[test]
    fn renders_path_line_col_excerpt_and_caret() {
        let (mut sut, id) = one_file("struct A {\n    x: Vec4,\n}\n");
        sut.push(
            Diagnostic::error(id, Span::new(18, 22), "unknown type `Vec4`")
                .with_help("did you mean `Vec3`?"),
        );
        let text = sut.to_string();
        assert_eq!(
            text,
            "t.shmidl:2:8: error: unknown type `Vec4`\n  |\n2 |     x: Vec4,\n  |        ^^^^\n  = help: did you mean `Vec3`?\n\n1 error"
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let line = format!("{}BAD{}", "a".repeat(5000), "b".repeat(5000));
        let (mut sut, id) = one_file(&line);
        sut.push(Diagnostic::warning(id, Span::new(5000, 5003), "bad"));
        let text = sut.to_string();
        let excerpt_line = text.lines().nth(2).unwrap_or_default();
        assert!(excerpt_line.len() < 140, "{excerpt_line}");
        assert!(excerpt_line.contains("...aaaa"));
        assert!(excerpt_line.contains("BADbbb"));
        assert!(text.starts_with("t.shmidl:1:5001: warning: bad"));
    }

    #[test]
    fn errors_past_the_limit_are_counted_not_stored() {
        let (mut sut, id) = one_file("x");
        for _ in 0..MAX_ERRORS + 7 {
            sut.push(Diagnostic::error(id, Span::point(0), "e"));
        }
        assert_eq!(sut.iter().count(), MAX_ERRORS);
        assert_eq!(sut.error_count(), MAX_ERRORS + 7);
        assert!(sut.error_limit_reached());
        assert!(sut.to_string().contains("7 more errors not shown"));
    }
}
