//! Named shared-memory segments and the named objects inside them.
//!
//! A segment is a file `/dev/shm/shmidl.<name>` mapped into every process
//! that uses it. It starts with a header (see [`layout`] and
//! `docs/segment-format.md`) that holds a directory of named objects; objects
//! are placed in the data area by offset, never by pointer.
//!
//! Creation is atomic: the creator builds and initialises the header in a
//! file under a private temporary name, then gives it its public name with
//! `renameat2(RENAME_NOREPLACE)`. A segment is therefore never visible half
//! built, and of several racing creators exactly one wins; the others open
//! the winner's segment.

mod directory;
mod error;
pub(crate) mod hooks;
mod inspect;
pub(crate) mod layout;
mod lock;
mod membership;
mod open;
mod participants;

use std::{
    any::Any,
    collections::HashMap,
    fmt,
    fs::File,
    io,
    marker::PhantomData,
    ops::Deref,
    os::fd::AsRawFd,
    ptr::NonNull,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant, SystemTime},
};

use memmap2::MmapRaw;
use rustix::{
    fs::{Mode, RenameFlags, CWD},
    io::Errno,
    shm::{self, OFlags as ShmOFlags},
};

pub use self::directory::ShmRef;
pub(crate) use self::inspect::ObjectStats;
use self::layout::{
    DirEntry, HeaderControl, HeaderFault, HeaderInfo, CONTROL_OFFSET, DATA_OFFSET, DIR_CAPACITY,
    DIR_OFFSET, ENTRY_EMPTY, ENTRY_INITIALIZING, ENTRY_READY, MAX_SEGMENT_SIZE, OBJECT_ALIGN,
    STATE_READY,
};
pub use self::open::SegmentBuilder;
pub(crate) use self::open::{open_file, random_u64, Trust};
use self::participants::Row;
use self::{directory::*, membership::*, open::*};
pub use self::{
    error::{ObjectError, ObjectType, SegmentCreateError, SegmentOpenError},
    inspect::{CleanOutcome, ObjectReport, PoolStats, PortStats, RouterStats, SegmentReport},
    participants::ParticipantInfo,
};
use crate::{
    name::{validate_object_name, SegmentName},
    shm_safe::ShmSafe,
    sync::Ordering,
};

/// Directory where POSIX shared memory lives on Linux.
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// Default time `open` and `find_or_create` wait for another process (a
/// segment being removed, the directory lock) before giving up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

const PAGE: u64 = 4096;

/// Smallest segment: the header plus one page of data.
pub const MIN_SEGMENT_SIZE: u64 = DATA_OFFSET + PAGE;

/// What an object in a directory is. Pools and routers register their own
/// kinds; plain `find_or_create::<T>` objects are [`ObjectKind::PLAIN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectKind(pub u32);

impl ObjectKind {
    /// A plain `T: ShmSafe` value.
    pub const PLAIN: Self = Self(1);
    /// A domain's topic registry.
    pub const TOPIC_REGISTRY: Self = Self(5);
    /// A [`Pool`](crate::Pool).
    pub const POOL: Self = Self(2);
    /// An array pool.
    pub const ARRAY_POOL: Self = Self(3);
    /// A router.
    pub const ROUTER: Self = Self(4);

    fn name(self) -> &'static str {
        match self {
            Self::PLAIN => "plain object",
            Self::POOL => "pool",
            Self::ARRAY_POOL => "array pool",
            Self::ROUTER => "router",
            Self::TOPIC_REGISTRY => "topic registry",
            _ => "object of unknown kind",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{}", self.name(), self.0)
    }
}

/// Layout and identity of an object to find or create (the untyped form of
/// `find_or_create::<T>`, used by pools and routers whose size is chosen at
/// run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjectSpec {
    pub ty: ObjectType,
    pub align: u64,
    /// Accept an existing object of any size (its layout is then read from
    /// the object's own header, e.g. a pool opened without knowing its
    /// capacity). `ty.size` is still the size used when creating.
    pub any_size: bool,
}

/// Where a found or created object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    pub offset: u64,
    pub size: u64,
}

/// A mapped segment. Cheap to clone (a reference count); the mapping stays
/// alive while any clone, or anything obtained from the segment, lives.
///
/// When the last handle in the last process is dropped, the segment file is
/// unlinked (as the seed library's segments were destroyed once every process
/// was done with them).
#[derive(Clone)]
pub struct Segment {
    inner: Arc<Inner>,
}

/// A [`Segment`] that does not keep its mapping alive.
#[derive(Clone)]
pub(crate) struct WeakSegment(std::sync::Weak<Inner>);

impl WeakSegment {
    /// The segment, if a handle to it still lives in this process.
    pub(crate) fn upgrade(&self) -> Option<Segment> {
        self.0.upgrade().map(|inner| Segment { inner })
    }
}

struct Inner {
    name: SegmentName,
    /// Holds this participant's liveness lock (OFD lock on its row byte).
    file: File,
    map: MmapRaw,
    info: HeaderInfo,
    dir_local: Mutex<()>,
    timeout: Duration,
    /// This handle's participant row, and its generation when claimed.
    row: u32,
    row_generation: u32,
    /// Random participant id.
    id: u64,
    /// Process-local views of shared objects opened through this handle
    /// (one per object, so per-row bookkeeping has a single writer).
    registry: Mutex<HashMap<u64, Weak<dyn Any + Send + Sync>>>,
    /// Whose files this handle accepted, passed on to dependent segments.
    trust: Trust,
}

// SAFETY: `Inner` only hands out shared references into the mapping whose
// shared fields are atomics, and everything else in it is `Send + Sync`.
unsafe impl Send for Inner {}
// SAFETY: as above; all mutation of shared memory goes through atomics or
// is serialised by the directory lock.
unsafe impl Sync for Inner {}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.inner.name.as_str())
            .field("size", &self.inner.info.total_size)
            .field("id", &format_args!("{:#018x}", self.inner.info.segment_id))
            .finish()
    }
}

fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to).saturating_mul(to)
}

fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Segment {
    /// The segment's name.
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// Total size in bytes, header included.
    pub fn size(&self) -> u64 {
        self.inner.info.total_size
    }

    /// Random identity chosen when the segment was created.
    pub fn id(&self) -> u64 {
        self.inner.info.segment_id
    }

    /// Bytes still free in the data area.
    pub fn free_bytes(&self) -> u64 {
        self.size()
            .saturating_sub(self.inner.control().alloc_next.load(Ordering::Relaxed))
    }

    /// This handle's participant row.
    pub fn participant_row(&self) -> u32 {
        self.inner.row
    }

    /// This handle's random participant id.
    pub fn participant_id(&self) -> u64 {
        self.inner.id
    }
}

impl Inner {
    fn control(&self) -> &HeaderControl {
        control_of(&self.map)
    }

    fn row(&self, row: u32) -> &Row {
        row_of(&self.map, row)
    }
}

impl Inner {
    fn entry(&self, index: u32) -> &DirEntry {
        entry_of(&self.map, index)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Everything this handle held (pool references, ports) was released
        // by the objects that kept this handle alive.
        leave(self);
    }
}
