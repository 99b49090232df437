//! Errors of segment operations, one enum per operation.

use std::{fmt, io};

use thiserror::Error;

use super::ObjectKind;
use crate::name::NameError;

/// Opening an existing segment failed.
#[derive(Debug, Error)]
pub enum SegmentOpenError {
    /// The segment name is not valid.
    #[error("invalid segment name: {0}")]
    InvalidName(#[from] NameError),
    /// No segment of that name exists.
    #[error("segment `{name}` does not exist")]
    NotFound {
        /// The segment name.
        name: String,
    },
    /// The file is shorter than its header or than its recorded size.
    #[error("segment `{name}` is truncated ({size} bytes)")]
    Truncated {
        /// The segment name.
        name: String,
        /// Size of the file found.
        size: u64,
    },
    /// The file does not start with shmidl's magic: it is not a shmidl segment.
    #[error("`{name}` is not a shmidl segment (bad magic)")]
    NotASegment {
        /// The segment name.
        name: String,
    },
    /// The segment was written by an incompatible format version.
    #[error("segment `{name}` has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The segment name.
        name: String,
        /// Version in the file.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// The segment was made on another architecture (endianness, pointer width).
    #[error("segment `{name}` was made for another architecture (tag {found:#x}, ours {ours:#x})")]
    ArchMismatch {
        /// The segment name.
        name: String,
        /// Tag in the file.
        found: u32,
        /// Tag of this build.
        ours: u32,
    },
    /// A header field holds an impossible value.
    #[error("segment `{name}` is corrupt: header field `{field}` = {value:#x}")]
    Corrupt {
        /// The segment name.
        name: String,
        /// The offending field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The segment exists with another size than requested.
    #[error("segment `{name}` has {found} bytes, but {requested} were requested")]
    SizeMismatch {
        /// The segment name.
        name: String,
        /// Size requested (rounded up to a page).
        requested: u64,
        /// Size of the existing segment.
        found: u64,
    },
    /// The last handle is leaving and the segment is being removed; it stayed
    /// so beyond the open timeout.
    #[error("segment `{name}` is being removed")]
    Closing {
        /// The segment name.
        name: String,
    },
    /// The name is a symbolic link. shmidl never follows one: another local
    /// user could point it at any file the victim can write.
    #[error(
        "`/dev/shm/shmidl.{name}` is a symbolic link, which shmidl refuses to follow \
         (another local user may have planted it); remove it if it is not yours"
    )]
    SymbolicLink {
        /// The segment name.
        name: String,
    },
    /// The name is not a regular file (a FIFO, a directory, a device).
    #[error("`/dev/shm/shmidl.{name}` is not a regular file")]
    NotAFile {
        /// The segment name.
        name: String,
    },
    /// The file belongs to another user, and the builder did not allow that
    /// user or the file's group.
    #[error(
        "segment `{name}` belongs to uid {owner} (group {group}), not to this user \
         (uid {ours}): another local user may have created it to squat the name. If \
         sharing with them is intended, allow it with `.allow_owner({owner})` or \
         `.allow_group({group})` on the segment or node builder"
    )]
    ForeignOwner {
        /// The segment name.
        name: String,
        /// The file's owner.
        owner: u32,
        /// The file's group.
        group: u32,
        /// This process's effective uid.
        ours: u32,
    },
    /// Every participant row is taken by a live participant.
    #[error(
        "segment `{name}` has {capacity} live participants already: the segment format's \
         fixed limit of {capacity} processes per domain and per topic (no setting raises it; \
         each process needs one row, however many ports it opens)"
    )]
    TooManyParticipants {
        /// The segment name.
        name: String,
        /// Rows in the participant table.
        capacity: u32,
    },
    /// An operating-system call failed.
    #[error("segment `{name}`: {op} failed: {source}{}", descriptor_hint(.source))]
    Io {
        /// The segment name.
        name: String,
        /// The call that failed.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// What to do when a call failed for want of file descriptors: every open
/// segment (the domain of a `Node`, and each topic it has open) keeps one.
fn descriptor_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EMFILE) => {
            "; each open segment (a domain, each topic of a `Node`, each pool chunk) keeps a \
             file descriptor: raise this process's limit (`ulimit -n`, RLIMIT_NOFILE)"
        }
        Some(libc::ENFILE) => "; the system's table of open files is full (`fs.file-max`)",
        _ => "",
    }
}

/// Creating a segment failed.
#[derive(Debug, Error)]
pub enum SegmentCreateError {
    /// The segment name is not valid.
    #[error("invalid segment name: {0}")]
    InvalidName(#[from] NameError),
    /// The requested size is below the header size or above the maximum.
    #[error("segment size {requested} is out of range ({min}..={max} bytes)")]
    InvalidSize {
        /// Size requested.
        requested: u64,
        /// Smallest accepted size.
        min: u64,
        /// Largest accepted size.
        max: u64,
    },
    /// `create_exclusive` found a segment of that name.
    #[error("segment `{name}` already exists")]
    AlreadyExists {
        /// The segment name.
        name: String,
    },
    /// `/dev/shm` has not enough free space for the segment.
    #[error("not enough shared memory for segment `{name}` ({size} bytes): {source}")]
    NoSpace {
        /// The segment name.
        name: String,
        /// Size requested.
        size: u64,
        /// The OS error.
        source: io::Error,
    },
    /// An existing segment could not be opened (`open_or_create`).
    #[error(transparent)]
    Open(#[from] SegmentOpenError),
    /// An operating-system call failed.
    #[error("segment `{name}`: {op} failed: {source}{}", descriptor_hint(.source))]
    Io {
        /// The segment name.
        name: String,
        /// The call that failed.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// What an object in a segment's directory is: kind, type fingerprint, size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectType {
    /// The kind of object.
    pub kind: ObjectKind,
    /// Fingerprint of the type (for pools and routers: of the payload type,
    /// mixed with the object's own layout).
    pub fingerprint: u64,
    /// Size in bytes.
    pub size: u64,
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (fingerprint {:#018x}, {} bytes)",
            self.kind, self.fingerprint, self.size
        )
    }
}

/// Finding or creating a named object in a segment failed.
#[derive(Debug, Error)]
pub enum ObjectError {
    /// The object name is not valid.
    #[error("invalid object name: {0}")]
    InvalidName(#[from] NameError),
    /// `find` found no object of that name.
    #[error("no object `{name}` in segment `{segment}`")]
    NotFound {
        /// Segment name.
        segment: String,
        /// Object name.
        name: String,
    },
    /// An object of that name exists with another kind, type or size.
    #[error("object `{name}` in segment `{segment}` is {found}, expected {expected}")]
    TypeMismatch {
        /// Segment name.
        segment: String,
        /// Object name.
        name: String,
        /// What the caller asked for.
        expected: ObjectType,
        /// What the directory holds.
        found: ObjectType,
    },
    /// The directory has no free entry.
    #[error("segment `{segment}` directory is full ({capacity} objects)")]
    DirectoryFull {
        /// Segment name.
        segment: String,
        /// Directory capacity.
        capacity: u32,
    },
    /// The segment's data area has not enough room left.
    #[error("segment `{segment}` has {available} bytes left, object `{name}` needs {requested}")]
    OutOfSpace {
        /// Segment name.
        segment: String,
        /// Object name.
        name: String,
        /// Bytes needed (with alignment).
        requested: u64,
        /// Bytes left.
        available: u64,
    },
    /// Another process held the directory lock for longer than the timeout.
    #[error("timed out waiting for the directory of segment `{segment}`")]
    Timeout {
        /// Segment name.
        segment: String,
    },
    /// A directory entry holds impossible values.
    #[error("segment `{segment}` directory entry {index} is corrupt: {what}")]
    Corrupt {
        /// Segment name.
        segment: String,
        /// Entry index.
        index: u32,
        /// What is wrong.
        what: &'static str,
    },
    /// The lock call failed.
    #[error("segment `{segment}`: locking the directory failed: {source}")]
    Io {
        /// Segment name.
        segment: String,
        /// The OS error.
        source: io::Error,
    },
}
