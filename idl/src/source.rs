//! Source files, byte spans and line/column lookup.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

/// A half-open byte range `start..end` in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// An empty span at `offset`.
    pub const fn point(offset: usize) -> Self {
        Self {
            start: offset,
            end: offset,
        }
    }

    /// The smallest span that covers both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Number of bytes covered.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Identifies one source file within a [`Schema`](crate::Schema) or [`Diagnostics`].
///
/// [`Diagnostics`]: crate::Diagnostics
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub(crate) u32);

impl FileId {
    /// The index of the file in [`Schema::files`](crate::Schema::files).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Distance in bytes between two column checkpoints.
const CHECKPOINT_STRIDE: usize = 1024;

/// One loaded schema file: its path (as given or as resolved), and its text.
///
/// Line and column lookups are `O(log lines + 1 KiB)`, so rendering thousands of
/// diagnostics in a file with a multi-megabyte line stays cheap.
pub struct SourceFile {
    path: PathBuf,
    text: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// `char_checkpoints[k]` = number of chars before byte `k * CHECKPOINT_STRIDE`
    /// (rounded down to a char boundary). Empty for pure-ASCII text.
    char_checkpoints: Vec<usize>,
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile")
            .field("path", &self.path)
            .field("len", &self.text.len())
            .finish_non_exhaustive()
    }
}

impl SourceFile {
    /// Wraps `text`, read from (or named) `path`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let char_checkpoints = if text.is_ascii() {
            Vec::new()
        } else {
            let mut checkpoints = Vec::with_capacity(text.len() / CHECKPOINT_STRIDE + 1);
            let mut chars = 0usize;
            let mut prev = 0usize;
            let mut k = 0usize;
            while k * CHECKPOINT_STRIDE <= text.len() {
                let at = floor_char_boundary(&text, k * CHECKPOINT_STRIDE);
                chars += text.get(prev..at).map_or(0, |s| s.chars().count());
                checkpoints.push(chars);
                prev = at;
                k += 1;
            }
            checkpoints
        };
        Self {
            path: path.into(),
            text,
            line_starts,
            char_checkpoints,
        }
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The full text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text covered by `span` (empty if the span is out of range).
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let line = self.line_index(offset);
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let col = self.char_index(offset) - self.char_index(start);
        (line + 1, col + 1)
    }

    /// The text of the line that contains `offset`, without its line terminator, and the
    /// byte offset at which that line starts.
    pub fn line_at(&self, offset: usize) -> (&str, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_index(offset);
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let end = self
            .line_starts
            .get(line + 1)
            .map_or(self.text.len(), |&next| next - 1);
        let text = self.text.get(start..end).unwrap_or("");
        (text.strip_suffix('\r').unwrap_or(text), start)
    }

    fn line_index(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// Number of chars before byte `offset` (which must be a char boundary).
    fn char_index(&self, offset: usize) -> usize {
        if self.char_checkpoints.is_empty() {
            return offset;
        }
        let k = offset / CHECKPOINT_STRIDE;
        let base_chars = self.char_checkpoints.get(k).copied().unwrap_or(0);
        let base = floor_char_boundary(&self.text, k * CHECKPOINT_STRIDE);
        base_chars + self.text.get(base..offset).map_or(0, |s| s.chars().count())
    }
}

/// The largest char boundary `<= index` in `text`.
pub(crate) fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    let mut i = index;
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The set of files that diagnostics and a [`Schema`](crate::Schema) refer to.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceMap {
    pub(crate) files: Vec<Arc<SourceFile>>,
}

impl SourceMap {
    pub(crate) fn add(&mut self, file: SourceFile) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(Arc::new(file));
        id
    }

    pub(crate) fn get(&self, id: FileId) -> Option<&Arc<SourceFile>> {
        self.files.get(id.index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_chars_from_one() {
        let sut = SourceFile::new("a.shmidl", "ab\ncd\n\nxé y");
        assert_eq!(sut.line_col(0), (1, 1));
        assert_eq!(sut.line_col(1), (1, 2));
        assert_eq!(sut.line_col(3), (2, 1));
        assert_eq!(sut.line_col(7), (4, 1));
        // `é` is two bytes but one column.
        assert_eq!(sut.line_col(11), (4, 4));
        assert_eq!(sut.line_at(4), ("cd", 3));
        assert_eq!(sut.line_at(6), ("", 6));
    }

    #[test]
    fn char_columns_are_exact_past_many_checkpoints() {
        let line = "é".repeat(5000);
        let text = format!("x\n{line}!");
        let sut = SourceFile::new("a", text.clone());
        let bang = text.len() - 1;
        assert_eq!(sut.line_col(bang), (2, 5001));
        // An offset inside a multi-byte char rounds down to its start.
        assert_eq!(sut.line_col(3), (2, 1));
    }
}
