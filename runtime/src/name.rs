//! Validated names for segments and for objects inside them.

use std::fmt;

use thiserror::Error;

/// Longest segment name accepted, in bytes.
///
/// The file in `/dev/shm` is `shmidl.<name>`, plus suffixes for growth chunks,
/// so this stays well below the 255-byte `NAME_MAX` of Linux file systems.
pub const MAX_SEGMENT_NAME_LEN: usize = 128;

/// Longest object name accepted inside a segment's directory, in bytes.
pub const MAX_OBJECT_NAME_LEN: usize = 64;

/// Prefix of every file shmidl creates in `/dev/shm`.
pub(crate) const FILE_PREFIX: &str = "shmidl.";

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The name is longer than allowed.
    #[error("name is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Length of the refused name in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name contains a byte outside `[A-Za-z0-9._-]`.
    #[error("name contains {found:?} at byte {index}; only ASCII letters, digits, '.', '_' and '-' are allowed")]
    InvalidChar {
        /// The refused character.
        found: char,
        /// Its byte index.
        index: usize,
    },
    /// The name is `.`/`..`, starts with a dot, or contains `..`.
    #[error("name must not start with '.' or contain \"..\"")]
    DotPath,
}

fn validate(name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            len: name.len(),
            max,
        });
    }
    if name.starts_with('.') || name.contains("..") {
        return Err(NameError::DotPath);
    }
    if let Some((index, found)) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError::InvalidChar { found, index });
    }
    Ok(())
}

/// A validated segment name: 1 to [`MAX_SEGMENT_NAME_LEN`] bytes of
/// `[A-Za-z0-9._-]`, not starting with `.` and without `..`.
///
/// The segment lives in `/dev/shm/shmidl.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentName(String);

impl SegmentName {
    /// Validates `name`.
    ///
    /// ```
    /// use shmidl::SegmentName;
    /// assert!(SegmentName::new("robot.arm-1").is_ok());
    /// assert!(SegmentName::new("../etc").is_err());
    /// assert!(SegmentName::new("a/b").is_err());
    /// ```
    pub fn new(name: &str) -> Result<Self, NameError> {
        validate(name, MAX_SEGMENT_NAME_LEN)?;
        Ok(Self(name.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file name inside `/dev/shm`.
    pub(crate) fn file_name(&self) -> String {
        format!("{FILE_PREFIX}{}", self.0)
    }

    /// The name given to `shm_open` (a leading `/` and the file name).
    pub(crate) fn shm_path(&self) -> String {
        format!("/{}", self.file_name())
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates an object name used in a segment's directory.
pub(crate) fn validate_object_name(name: &str) -> Result<(), NameError> {
    validate(name, MAX_OBJECT_NAME_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "a",
            "robot.v1",
            "cam_0-left",
            &"x".repeat(MAX_SEGMENT_NAME_LEN),
        ] {
            assert_eq!(SegmentName::new(ok).map(|n| n.0), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn refuses_paths_empty_and_long_names() {
        assert_eq!(SegmentName::new(""), Err(NameError::Empty));
        assert_eq!(SegmentName::new("../x"), Err(NameError::DotPath));
        assert_eq!(SegmentName::new("a..b"), Err(NameError::DotPath));
        assert_eq!(SegmentName::new(".hidden"), Err(NameError::DotPath));
        assert!(matches!(
            SegmentName::new("a/b"),
            Err(NameError::InvalidChar {
                found: '/',
                index: 1
            })
        ));
        assert!(matches!(
            SegmentName::new("é"),
            Err(NameError::InvalidChar {
                found: 'é',
                index: 0
            })
        ));
        assert!(matches!(
            SegmentName::new(&"x".repeat(MAX_SEGMENT_NAME_LEN + 1)),
            Err(NameError::TooLong { .. })
        ));
    }
}
