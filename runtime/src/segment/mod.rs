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

mod error;
mod inspect;
pub(crate) mod layout;
mod lock;
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

use self::layout::{
    DirEntry, HeaderControl, HeaderFault, HeaderInfo, CONTROL_OFFSET, DATA_OFFSET, DIR_CAPACITY,
    DIR_OFFSET, ENTRY_EMPTY, ENTRY_INITIALIZING, ENTRY_READY, MAX_SEGMENT_SIZE, OBJECT_ALIGN,
    STATE_READY,
};
use self::participants::Row;
pub use self::{
    error::{ObjectError, ObjectType, SegmentCreateError, SegmentOpenError},
    inspect::{CleanOutcome, ObjectReport, PoolStats, SegmentReport},
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

/// Builds a [`Segment`]; the method that finishes it names the creation policy.
///
/// ```
/// use shmidl::Segment;
/// # let name = format!("doc-builder-{}", std::process::id());
/// let seg = Segment::builder(&name).size(1 << 20).open_or_create()?;
/// assert_eq!(seg.size(), 1 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentBuilder {
    name: String,
    size: u64,
    mode: u32,
    timeout: Duration,
    /// Id of the owning segment, for a dependent one; 0 otherwise.
    owner: u64,
    /// Owners other than this user whose segments may be opened.
    trust: Trust,
}

/// Whose segment files this process accepts besides its own (local security:
/// `/dev/shm` is writable by every local user; `docs/security.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Trust {
    owners: Vec<u32>,
    groups: Vec<u32>,
}

impl Trust {
    /// Checks the owner and group of a segment file.
    fn check(&self, name: &SegmentName, owner: u32, group: u32) -> Result<(), SegmentOpenError> {
        let ours = rustix::process::geteuid().as_raw();
        if owner == ours || self.owners.contains(&owner) || self.groups.contains(&group) {
            return Ok(());
        }
        Err(SegmentOpenError::ForeignOwner {
            name: name.to_string(),
            owner,
            group,
            ours,
        })
    }
}

impl SegmentBuilder {
    /// Total size of the segment in bytes, header included; rounded up to a
    /// page. Default 1 MiB.
    #[must_use]
    pub fn size(mut self, bytes: u64) -> Self {
        self.size = bytes;
        self
    }

    /// File permission bits (default `0o600`: owner only).
    #[must_use]
    pub fn permissions(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// How long to wait for other processes (a segment being removed, the
    /// directory lock); default [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also accepts an existing segment owned by the user `uid` (by default
    /// only this process's own user's segments are opened: another user could
    /// have created the file first to read or corrupt what is written to it).
    /// Pair it with [`permissions`](Self::permissions) for the creating side.
    #[must_use]
    pub fn allow_owner(mut self, uid: u32) -> Self {
        self.trust.owners.push(uid);
        self
    }

    /// Also accepts an existing segment whose file belongs to the group
    /// `gid`, whoever owns it: for a domain shared by the members of a group
    /// (create it with `permissions(0o660)`).
    #[must_use]
    pub fn allow_group(mut self, gid: u32) -> Self {
        self.trust.groups.push(gid);
        self
    }

    /// The segment name this builder was made for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes a segment created by this builder dependent on the segment
    /// with id `owner` (a growable pool's chunk): it is not removed when its
    /// last participant leaves, but when its owner is removed.
    pub(crate) fn owned_by(mut self, owner: u64) -> Self {
        self.owner = owner;
        self
    }

    /// Creates the segment; fails with `AlreadyExists` if it exists.
    pub fn create_exclusive(self) -> Result<Segment, SegmentCreateError> {
        let name = SegmentName::new(&self.name)?;
        let size = self.checked_size()?;
        match create_published(&name, size, self.mode, self.owner)? {
            Some(file) => Ok(Segment::attach_file(
                name,
                file,
                None,
                self.timeout,
                &self.trust,
            )?),
            None => Err(SegmentCreateError::AlreadyExists {
                name: name.to_string(),
            }),
        }
    }

    /// Opens the segment if it exists (its size must match), else creates it.
    /// Safe to race from many processes: all end up with the same segment.
    pub fn open_or_create(self) -> Result<Segment, SegmentCreateError> {
        let name = SegmentName::new(&self.name)?;
        let size = self.checked_size()?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match Segment::open_once(&name, Some(size), self.timeout, &self.trust) {
                Ok(seg) => return Ok(seg),
                Err(SegmentOpenError::NotFound { .. }) => {}
                Err(SegmentOpenError::Closing { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            if let Some(file) = create_published(&name, size, self.mode, self.owner)? {
                return Ok(Segment::attach_file(
                    name,
                    file,
                    None,
                    self.timeout,
                    &self.trust,
                )?);
            }
            // Lost the race to another creator: open theirs — unless it keeps
            // vanishing before we can (created and removed faster than we
            // open it), in which case give up at the deadline.
            if Instant::now() >= deadline {
                return Err(SegmentOpenError::Closing {
                    name: name.to_string(),
                }
                .into());
            }
        }
    }

    /// Removes any segment of that name, then creates a new one. Processes
    /// still attached to the old one keep their (now nameless) mapping.
    pub fn purge_and_create(self) -> Result<Segment, SegmentCreateError> {
        let name = SegmentName::new(&self.name)?;
        match shm::unlink(name.shm_path()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => {
                return Err(SegmentCreateError::Io {
                    name: name.to_string(),
                    op: "shm_unlink",
                    source: e.into(),
                })
            }
        }
        self.create_exclusive()
    }

    /// Opens an existing segment of any size.
    pub fn open(self) -> Result<Segment, SegmentOpenError> {
        let name = SegmentName::new(&self.name)?;
        Segment::open_waiting(&name, None, self.timeout, &self.trust)
    }

    /// Opens an existing segment and checks its size.
    pub fn open_sized(self) -> Result<Segment, SegmentOpenError> {
        let name = SegmentName::new(&self.name)?;
        let size = round_up(self.size, PAGE);
        Segment::open_waiting(&name, Some(size), self.timeout, &self.trust)
    }

    fn checked_size(&self) -> Result<u64, SegmentCreateError> {
        let size = round_up(self.size, PAGE);
        if self.size < MIN_SEGMENT_SIZE || size > MAX_SEGMENT_SIZE {
            return Err(SegmentCreateError::InvalidSize {
                requested: self.size,
                min: MIN_SEGMENT_SIZE,
                max: MAX_SEGMENT_SIZE,
            });
        }
        Ok(size)
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

pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    match rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()) {
        Ok(8) => u64::from_le_bytes(b),
        // getrandom never fails for 8 bytes on a supported kernel; fall back
        // to time and pid, which still tells segments apart in practice.
        _ => now_unix_ns() ^ (u64::from(std::process::id()) << 32),
    }
}

/// Creates a fully initialised segment under a temporary name and publishes
/// it under `name`. `Ok(None)`: a segment of that name already exists.
fn create_published(
    name: &SegmentName,
    size: u64,
    mode: u32,
    owner: u64,
) -> Result<Option<File>, SegmentCreateError> {
    let io_err = |op: &'static str| {
        let n = name.to_string();
        move |e: Errno| SegmentCreateError::Io {
            name: n,
            op,
            source: e.into(),
        }
    };
    // `~` is not allowed in segment names, so temporary names never collide
    // with a published one.
    let tmp = format!(
        "shmidl~{}-{:016x}.{}",
        std::process::id(),
        random_u64(),
        name.as_str()
    );
    let fd = shm::open(
        format!("/{tmp}").as_str(),
        ShmOFlags::CREATE | ShmOFlags::EXCL | ShmOFlags::RDWR,
        Mode::from_raw_mode(mode),
    )
    .map_err(io_err("shm_open"))?;
    let file = File::from(fd);
    let remove_tmp = || {
        let _ = shm::unlink(format!("/{tmp}").as_str());
    };
    let result = (|| {
        // The umask may have narrowed the mode; set exactly what was asked.
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(io_err("fchmod"))?;
        rustix::fs::ftruncate(&file, size).map_err(io_err("ftruncate"))?;
        // Reserve the pages now so a full /dev/shm is an error here rather
        // than a SIGBUS on first touch later.
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, size).map_err(
            |e| SegmentCreateError::NoSpace {
                name: name.to_string(),
                size,
                source: e.into(),
            },
        )?;
        let map = MmapRaw::map_raw(&file).map_err(|e| SegmentCreateError::Io {
            name: name.to_string(),
            op: "mmap",
            source: e,
        })?;
        let mut info = HeaderInfo::new(size, random_u64(), mode, now_unix_ns());
        info.owner_id = owner;
        // SAFETY: the mapping is `size >= DATA_OFFSET` bytes long, writable,
        // and no other process can see this file yet (it has a private
        // temporary name), so nothing else accesses these bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr(), DATA_OFFSET as usize) };
        zerocopy::IntoBytes::write_to_prefix(&info, bytes).map_err(|_| SegmentCreateError::Io {
            name: name.to_string(),
            op: "write header",
            source: io::Error::other("header does not fit"),
        })?;
        // SAFETY: CONTROL_OFFSET is inside the mapping and 8-aligned (the
        // mapping is page-aligned), and `HeaderControl` is made of atomics
        // for which the file's zero bytes are valid values.
        let control = unsafe {
            &*map
                .as_mut_ptr()
                .wrapping_add(CONTROL_OFFSET as usize)
                .cast::<HeaderControl>()
        };
        control.alloc_next.store(DATA_OFFSET, Ordering::Relaxed);
        control.state.store(STATE_READY, Ordering::Release);
        map.flush().ok();
        Ok(())
    })();
    if let Err(e) = result {
        remove_tmp();
        return Err(e);
    }
    crate::crash::crash_point!("segment.create.before_publish");
    let from = format!("{SHM_DIR}/{tmp}");
    let to = format!("{SHM_DIR}/{}", name.file_name());
    match rustix::fs::renameat_with(CWD, from.as_str(), CWD, to.as_str(), RenameFlags::NOREPLACE) {
        Ok(()) => {
            tracing::debug!(segment = %name, size, "created segment");
            Ok(Some(file))
        }
        Err(Errno::EXIST) => {
            remove_tmp();
            Ok(None)
        }
        Err(e) => {
            remove_tmp();
            Err(io_err("renameat2")(e))
        }
    }
}

impl Segment {
    /// Starts building a segment named `name` (validated when it is built).
    pub fn builder(name: &str) -> SegmentBuilder {
        SegmentBuilder {
            name: name.to_owned(),
            size: 1 << 20,
            mode: 0o600,
            timeout: DEFAULT_TIMEOUT,
            owner: 0,
            trust: Trust::default(),
        }
    }

    /// A builder for an independent segment with this segment's permission
    /// bits and accepted owners (a domain's topic segments).
    pub(crate) fn sibling_builder(&self, name: &str) -> SegmentBuilder {
        let mut builder = self.dependent_builder(name);
        builder.owner = 0;
        builder
    }

    /// Whether a file of that segment name exists in `/dev/shm` (of any
    /// kind: a symbolic link counts).
    pub(crate) fn exists(name: &str) -> bool {
        SegmentName::new(name)
            .map(|n| std::fs::symlink_metadata(format!("{SHM_DIR}{}", n.shm_path())).is_ok())
            .unwrap_or(false)
    }

    /// A handle that does not keep the segment mapped.
    pub(crate) fn downgrade(&self) -> WeakSegment {
        WeakSegment(Arc::downgrade(&self.inner))
    }

    /// A builder for a segment that depends on this one (a pool chunk):
    /// owned by it, with this segment's permission bits and accepted owners,
    /// so a domain shared by a group stays shared as its pools grow.
    pub(crate) fn dependent_builder(&self, name: &str) -> SegmentBuilder {
        use std::os::unix::fs::PermissionsExt;
        let mode = self
            .inner
            .file
            .metadata()
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0o600);
        let mut builder = Segment::builder(name).owned_by(self.id()).permissions(mode);
        builder.trust = self.inner.trust.clone();
        builder
    }

    /// Opens an existing segment of any size, with the default timeout.
    pub fn open(name: &str) -> Result<Self, SegmentOpenError> {
        Self::builder(name).open()
    }

    /// Removes the segment's name from `/dev/shm`. Processes that have it
    /// mapped keep using it; new opens fail with `NotFound`.
    pub fn unlink(name: &str) -> Result<(), SegmentOpenError> {
        let name = SegmentName::new(name)?;
        shm::unlink(name.shm_path()).map_err(|e| match e {
            Errno::NOENT => SegmentOpenError::NotFound {
                name: name.to_string(),
            },
            e => SegmentOpenError::Io {
                name: name.to_string(),
                op: "shm_unlink",
                source: e.into(),
            },
        })
    }

    fn open_waiting(
        name: &SegmentName,
        size: Option<u64>,
        timeout: Duration,
        trust: &Trust,
    ) -> Result<Self, SegmentOpenError> {
        let deadline = Instant::now() + timeout;
        loop {
            match Self::open_once(name, size, timeout, trust) {
                Err(SegmentOpenError::Closing { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                other => return other,
            }
        }
    }

    fn open_once(
        name: &SegmentName,
        size: Option<u64>,
        timeout: Duration,
        trust: &Trust,
    ) -> Result<Self, SegmentOpenError> {
        Self::attach_file(name.clone(), open_file(name, trust)?, size, timeout, trust)
    }

    /// Maps an open segment file, validates its header and attaches.
    fn attach_file(
        name: SegmentName,
        file: File,
        expect_size: Option<u64>,
        timeout: Duration,
        trust: &Trust,
    ) -> Result<Self, SegmentOpenError> {
        let io = |op: &'static str, source: io::Error| SegmentOpenError::Io {
            name: name.to_string(),
            op,
            source,
        };
        let (map, info) = map_validated(&name, &file)?;
        if let Some(want) = expect_size {
            if want != info.total_size {
                return Err(SegmentOpenError::SizeMismatch {
                    name: name.to_string(),
                    requested: want,
                    found: info.total_size,
                });
            }
        }
        let control = control_of(&map);
        // Probing needs a second open file description; fail early if it
        // cannot be made (no /proc), rather than on the first probe.
        reopen(&file).map_err(|e| io("reopen for probing", e))?;
        let id = random_u64() | 1;
        // A full table stays full only while its participants live: every
        // attach, and every wait that times out, frees dead rows.
        let (row, row_generation) = match claim_row(&map, &file, id) {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Err(SegmentOpenError::TooManyParticipants {
                    name: name.to_string(),
                    capacity: layout::PARTICIPANT_CAPACITY,
                })
            }
            Err(e) => return Err(io("locking a participant row", e)),
        };
        // SYNC POINT: SeqCst after our row's SeqCst CAS to ALIVE; pairs with
        // the last leaver's SeqCst CAS of `closing` and its scan of the rows
        // (see `leave`): either it sees us, or we see it closing.
        if control.closing.load(Ordering::SeqCst) != 0 {
            release_row(&map, &file, row, row_generation);
            return Err(SegmentOpenError::Closing {
                name: name.to_string(),
            });
        }
        let seg = Inner {
            name,
            file,
            map,
            info,
            dir_local: Mutex::new(()),
            timeout,
            row,
            row_generation,
            id,
            registry: Mutex::new(HashMap::new()),
            trust: trust.clone(),
        };
        let segment = Self {
            inner: Arc::new(seg),
        };
        // Reclaim what dead participants left, now that we are one of the
        // survivors (detection runs on attach: no daemon needed).
        if let Err(e) = segment.cleanup_dead() {
            tracing::warn!(segment = %segment.name(), error = %e, "probing participants failed");
        }
        Ok(segment)
    }

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

    /// Number of live participants (attached handles) across all
    /// processes, probed now; participants that died are not counted.
    pub fn attached(&self) -> u32 {
        match reopen(&self.inner.file) {
            Ok(probe) => live_rows(&self.inner.map, &probe, None),
            // Without a probe every row in use counts as alive.
            Err(_) => rows_in_use(&self.inner.map),
        }
    }

    /// This handle's participant row.
    pub fn participant_row(&self) -> u32 {
        self.inner.row
    }

    /// This handle's random participant id.
    pub fn participant_id(&self) -> u64 {
        self.inner.id
    }

    /// Every participant row in use, with its liveness probed now.
    pub fn participants(&self) -> Vec<ParticipantInfo> {
        // Without a probe, liveness reads as alive (as for a probe error).
        // Never probe through `file`: it holds our own row's lock, and
        // locking and unlocking that byte through it would release it.
        let probe = reopen(&self.inner.file).ok();
        inspect::participants_of(&self.inner.map, probe.as_ref())
    }

    /// Finds participants that died without leaving and reclaims everything
    /// they held: router ports and queued messages, pool references, their
    /// attachment and their row. Returns how many were reclaimed.
    ///
    /// Runs automatically on attach and when a blocking wait times out;
    /// costs one `fcntl` per participant row, and nothing on the send or
    /// receive path.
    pub fn cleanup_dead(&self) -> io::Result<usize> {
        use participants::{generation_of, pack, state_of, ALIVE, FREE, RECLAIMING};
        let probe = reopen(&self.inner.file)?;
        let mut reclaimed = 0;
        for r in 0..layout::PARTICIPANT_CAPACITY {
            if r == self.inner.row {
                continue;
            }
            let row = self.inner.row(r);
            let cur = row.state.load(Ordering::Acquire);
            let takeover = match state_of(cur) {
                ALIVE => false,
                // Another survivor is reclaiming it; take over only if that
                // survivor died too (each reclaim step is safe to repeat).
                RECLAIMING => {
                    let by = row.reclaimer.load(Ordering::Acquire);
                    if by >= layout::PARTICIPANT_CAPACITY || participants::is_alive(&probe, by)? {
                        continue;
                    }
                    true
                }
                _ => continue,
            };
            if participants::is_alive(&probe, r)? {
                continue;
            }
            row.reclaimer.store(self.inner.row, Ordering::Release);
            let generation = generation_of(cur);
            if !takeover
                && row
                    .state
                    .compare_exchange(
                        cur,
                        pack(generation, RECLAIMING),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                continue; // another survivor won
            }
            crate::crash::crash_point!("reclaim.after_claim");
            tracing::warn!(
                segment = %self.name(),
                row = r,
                pid = row.pid.load(Ordering::Relaxed),
                "reclaiming what a dead participant held"
            );
            self.reclaim_row(r);
            row.state.store(pack(generation, FREE), Ordering::Release);
            reclaimed += 1;
        }
        Ok(reclaimed)
    }

    /// Releases everything participant row `row` held in this segment's
    /// objects: routers first (their queues hold pool references), then
    /// pools.
    fn reclaim_row(&self, row: u32) {
        let dead_id = self.inner.row(row).id.load(Ordering::Acquire);
        let entries = self.objects_raw();
        for &(kind, offset, size) in &entries {
            if kind == ObjectKind::ROUTER {
                crate::router::reclaim_owner(self, offset, size, dead_id);
            }
        }
        for &(kind, offset, size) in &entries {
            if kind == ObjectKind::POOL || kind == ObjectKind::ARRAY_POOL {
                crate::pool::reclaim_row(self, offset, size, row);
            }
        }
    }

    /// (kind, offset, size) of every ready directory entry that lies inside
    /// the data area.
    pub(crate) fn objects_raw(&self) -> Vec<(ObjectKind, u64, u64)> {
        objects_of(&self.inner.map, self.size())
    }

    /// The process-local view of the shared object at `offset`, made by
    /// `make` the first time it is asked for through this handle.
    pub(crate) fn local_view<V: Any + Send + Sync, E>(
        &self,
        offset: u64,
        make: impl FnOnce() -> Result<Arc<V>, E>,
    ) -> Result<Arc<V>, E> {
        let mut reg = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(v) = reg.get(&offset).and_then(Weak::upgrade) {
            if let Ok(v) = v.downcast::<V>() {
                return Ok(v);
            }
        }
        let v = make()?;
        let weak: Weak<dyn Any + Send + Sync> =
            Arc::downgrade(&(v.clone() as Arc<dyn Any + Send + Sync>));
        reg.insert(offset, weak);
        Ok(v)
    }

    /// The live process-local view at `offset`, if this handle has one.
    pub(crate) fn existing_view<V: Any + Send + Sync>(&self, offset: u64) -> Option<Arc<V>> {
        let reg = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        reg.get(&offset)?.upgrade()?.downcast::<V>().ok()
    }

    /// The objects in the directory (name and type), in creation order.
    /// Entries still being initialised are skipped.
    pub fn objects(&self) -> Vec<(String, ObjectType)> {
        (0..DIR_CAPACITY)
            .map(|i| self.inner.entry(i))
            .take_while(|e| e.state.load(Ordering::Acquire) != ENTRY_EMPTY)
            .filter(|e| e.state.load(Ordering::Acquire) == ENTRY_READY)
            .filter_map(|e| Some((entry_name(e)?, entry_type(e))))
            .collect()
    }

    /// Finds the object `name` of type `T`, or creates it with `init`.
    ///
    /// Atomic across processes: exactly one caller runs `init` (while the
    /// directory is locked); every other caller, in any process, gets the
    /// same object. An existing object of another kind, type or size is a
    /// [`ObjectError::TypeMismatch`], never a reinterpretation. If a creator
    /// dies while running `init`, the next caller runs `init` again in place.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use shmidl::Segment;
    /// # let name = format!("doc-foc-{}", std::process::id());
    /// let seg = Segment::builder(&name).open_or_create()?;
    /// let counter = seg.find_or_create("hits", || AtomicU64::new(0))?;
    /// counter.fetch_add(1, Ordering::Relaxed);
    /// let again = seg.find::<AtomicU64>("hits")?;
    /// assert_eq!(again.load(Ordering::Relaxed), 1);
    /// assert!(seg.find::<u32>("hits").is_err()); // another type
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find_or_create<T: ShmSafe>(
        &self,
        name: &str,
        init: impl FnOnce() -> T,
    ) -> Result<ShmRef<T>, ObjectError> {
        let placed = self.find_or_create_raw(name, plain_spec::<T>(), |ptr| {
            // SAFETY: `ptr` is valid for writes of `size_of::<T>()` bytes and
            // aligned to `align_of::<T>()` (the spec asked for both), and
            // nobody else reads the object before it is marked ready.
            unsafe { ptr.cast::<T>().as_ptr().write(init()) }
        })?;
        // SAFETY: the entry was created for exactly `T` (kind, fingerprint
        // and size match), and is initialised.
        Ok(unsafe { self.object_at(placed.offset) })
    }

    /// Finds an existing object `name` of type `T`. Waits (up to the timeout)
    /// if another process is creating it right now.
    pub fn find<T: ShmSafe>(&self, name: &str) -> Result<ShmRef<T>, ObjectError> {
        let placed = self.find_raw(name, plain_spec::<T>())?;
        // SAFETY: as in `find_or_create`.
        Ok(unsafe { self.object_at(placed.offset) })
    }

    /// A typed handle to an initialised object at `offset`.
    ///
    /// # Safety
    /// A `T` must be initialised at `offset`, which must be in bounds and
    /// aligned for `T`.
    pub(crate) unsafe fn object_at<T: ShmSafe>(&self, offset: u64) -> ShmRef<T> {
        debug_assert!(offset + std::mem::size_of::<T>() as u64 <= self.size());
        ShmRef {
            ptr: self.ptr_at(offset).cast(),
            segment: self.clone(),
            _t: PhantomData,
        }
    }

    /// The address of `offset` in this process's mapping.
    pub(crate) fn ptr_at(&self, offset: u64) -> NonNull<u8> {
        assert!(offset <= self.size(), "offset {offset} outside the segment");
        // SAFETY: `offset <= size`, so the result is inside the mapping or
        // one past its end; the mapping pointer is never null.
        unsafe { NonNull::new_unchecked(self.inner.map.as_mut_ptr().wrapping_add(offset as usize)) }
    }

    /// Finds or creates an object from a run-time spec; returns its offset.
    pub(crate) fn find_or_create_raw(
        &self,
        name: &str,
        spec: ObjectSpec,
        init: impl FnOnce(NonNull<u8>),
    ) -> Result<Placed, ObjectError> {
        validate_object_name(name)?;
        if let Some(off) = self.scan_ready(name, spec)? {
            return Ok(off);
        }
        let _guard = self.lock_dir()?;
        let control = self.inner.control();
        let mut first_empty = None;
        for i in 0..DIR_CAPACITY {
            let e = self.inner.entry(i);
            match e.state.load(Ordering::Acquire) {
                ENTRY_EMPTY => {
                    first_empty = Some(i);
                    break;
                }
                ENTRY_READY if entry_is(e, name) => return self.check_entry(i, e, name, spec),
                ENTRY_INITIALIZING if entry_is(e, name) => {
                    // We hold the lock, so its creator died during `init`:
                    // the object was never visible; run `init` again in place.
                    let placed = self.check_entry(i, e, name, spec)?;
                    tracing::warn!(segment = %self.name(), object = name, "re-initialising an object whose creator died");
                    init(self.ptr_at(placed.offset));
                    // SYNC POINT: pairs with the Acquire loads of `state`.
                    e.state.store(ENTRY_READY, Ordering::Release);
                    return Ok(placed);
                }
                ENTRY_READY | ENTRY_INITIALIZING => {}
                _ => return Err(self.corrupt(i, "unknown entry state")),
            }
        }
        let Some(index) = first_empty else {
            return Err(ObjectError::DirectoryFull {
                segment: self.name().to_owned(),
                capacity: DIR_CAPACITY,
            });
        };
        let next = control.alloc_next.load(Ordering::Relaxed);
        let align = spec.align.max(OBJECT_ALIGN);
        let start = round_up(next, align);
        let end = start
            .checked_add(spec.ty.size)
            .filter(|&e| e <= self.size());
        let Some(end) = end else {
            return Err(ObjectError::OutOfSpace {
                segment: self.name().to_owned(),
                name: name.to_owned(),
                requested: spec.ty.size + (start - next),
                available: self.size().saturating_sub(next),
            });
        };
        let e = self.inner.entry(index);
        e.kind.store(spec.ty.kind.0, Ordering::Relaxed);
        e.fingerprint.store(spec.ty.fingerprint, Ordering::Relaxed);
        e.offset.store(start, Ordering::Relaxed);
        e.size.store(spec.ty.size, Ordering::Relaxed);
        e.align.store(align, Ordering::Relaxed);
        e.name_len.store(name.len() as u32, Ordering::Relaxed);
        for (w, v) in e.name.iter().zip(layout::name_words(name)) {
            w.store(v, Ordering::Relaxed);
        }
        e.state.store(ENTRY_INITIALIZING, Ordering::Release);
        control.alloc_next.store(end, Ordering::Release);
        crate::crash::crash_point!("directory.before_ready");
        init(self.ptr_at(start));
        // SYNC POINT: pairs with the Acquire loads of `state` in `scan_ready`:
        // whoever sees READY sees the initialised object.
        e.state.store(ENTRY_READY, Ordering::Release);
        tracing::debug!(segment = %self.name(), object = name, offset = start, "created object");
        Ok(Placed {
            offset: start,
            size: spec.ty.size,
        })
    }

    /// Finds an existing object from a run-time spec; returns its offset.
    pub(crate) fn find_raw(&self, name: &str, spec: ObjectSpec) -> Result<Placed, ObjectError> {
        validate_object_name(name)?;
        if let Some(off) = self.scan_ready(name, spec)? {
            return Ok(off);
        }
        // Maybe it is being created right now: its creator holds the lock,
        // so taking it waits for the creator to finish.
        let being_made = (0..DIR_CAPACITY)
            .map(|i| self.inner.entry(i))
            .any(|e| e.state.load(Ordering::Acquire) == ENTRY_INITIALIZING && entry_is(e, name));
        if being_made {
            let _guard = self.lock_dir()?;
            if let Some(off) = self.scan_ready(name, spec)? {
                return Ok(off);
            }
        }
        Err(ObjectError::NotFound {
            segment: self.name().to_owned(),
            name: name.to_owned(),
        })
    }

    /// Lock-free scan of ready entries.
    fn scan_ready(&self, name: &str, spec: ObjectSpec) -> Result<Option<Placed>, ObjectError> {
        for i in 0..DIR_CAPACITY {
            let e = self.inner.entry(i);
            match e.state.load(Ordering::Acquire) {
                ENTRY_EMPTY => return Ok(None),
                ENTRY_READY if entry_is(e, name) => {
                    return self.check_entry(i, e, name, spec).map(Some)
                }
                ENTRY_READY | ENTRY_INITIALIZING => {}
                _ => return Err(self.corrupt(i, "unknown entry state")),
            }
        }
        Ok(None)
    }

    /// Checks a matching entry against the spec and the segment bounds.
    fn check_entry(
        &self,
        index: u32,
        e: &DirEntry,
        name: &str,
        spec: ObjectSpec,
    ) -> Result<Placed, ObjectError> {
        let found = entry_type(e);
        let same = found.kind == spec.ty.kind
            && found.fingerprint == spec.ty.fingerprint
            && (spec.any_size || found.size == spec.ty.size);
        if !same {
            return Err(ObjectError::TypeMismatch {
                segment: self.name().to_owned(),
                name: name.to_owned(),
                expected: spec.ty,
                found,
            });
        }
        let off = e.offset.load(Ordering::Relaxed);
        let in_bounds = off >= DATA_OFFSET
            && off
                .checked_add(found.size)
                .is_some_and(|end| end <= self.size());
        if !in_bounds {
            return Err(self.corrupt(index, "object lies outside the data area"));
        }
        if off % spec.align.max(1) != 0 {
            return Err(self.corrupt(index, "object offset is misaligned"));
        }
        Ok(Placed {
            offset: off,
            size: found.size,
        })
    }

    fn corrupt(&self, index: u32, what: &'static str) -> ObjectError {
        ObjectError::Corrupt {
            segment: self.name().to_owned(),
            index,
            what,
        }
    }

    /// Runs `f` holding the segment's directory lock (the kernel releases it
    /// if this process dies inside `f`).
    pub(crate) fn with_directory_lock<R>(&self, f: impl FnOnce() -> R) -> Result<R, ObjectError> {
        let _guard = self.lock_dir()?;
        Ok(f())
    }

    fn lock_dir(&self) -> Result<lock::DirLockGuard<'_>, ObjectError> {
        let c = self.inner.control();
        lock::lock_dir(
            &self.inner.dir_local,
            &self.inner.file,
            &c.dir_seq,
            &c.dir_waiters,
            Instant::now() + self.inner.timeout,
        )
        .map_err(|e| match e {
            lock::DirLockError::TimedOut => ObjectError::Timeout {
                segment: self.name().to_owned(),
            },
            lock::DirLockError::Io(source) => ObjectError::Io {
                segment: self.name().to_owned(),
                source,
            },
        })
    }
}

fn plain_spec<T: ShmSafe>() -> ObjectSpec {
    ObjectSpec {
        ty: ObjectType {
            kind: ObjectKind::PLAIN,
            fingerprint: T::FINGERPRINT,
            size: std::mem::size_of::<T>() as u64,
        },
        align: std::mem::align_of::<T>() as u64,
        any_size: false,
    }
}

fn entry_type(e: &DirEntry) -> ObjectType {
    ObjectType {
        kind: ObjectKind(e.kind.load(Ordering::Relaxed)),
        fingerprint: e.fingerprint.load(Ordering::Relaxed),
        size: e.size.load(Ordering::Relaxed),
    }
}

fn entry_is(e: &DirEntry, name: &str) -> bool {
    e.name_len.load(Ordering::Relaxed) as usize == name.len()
        && e.name
            .iter()
            .zip(layout::name_words(name))
            .all(|(w, v)| w.load(Ordering::Relaxed) == v)
}

fn entry_name(e: &DirEntry) -> Option<String> {
    let len = e.name_len.load(Ordering::Relaxed) as usize;
    let bytes: Vec<u8> = e
        .name
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
        .take(len.min(64))
        .collect();
    String::from_utf8(bytes).ok()
}

/// Opens the existing segment file `name` for reading and writing, if it
/// is a regular file (never through a symbolic link, never blocking on a
/// FIFO) owned by this user or one `trust` allows.
///
/// `shm_open` would follow a symbolic link (rustix's raw backend, like the
/// kernel, does unless told not to), so this opens the file under `/dev/shm`
/// itself, as glibc's `shm_open` does, with `O_NOFOLLOW`.
pub(crate) fn open_file(name: &SegmentName, trust: &Trust) -> Result<File, SegmentOpenError> {
    use rustix::fs::{FileType, OFlags};
    let io = |op: &'static str, e: Errno| SegmentOpenError::Io {
        name: name.to_string(),
        op,
        source: e.into(),
    };
    let path = format!("{SHM_DIR}{}", name.shm_path());
    let fd = rustix::fs::open(
        path.as_str(),
        OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT => SegmentOpenError::NotFound {
            name: name.to_string(),
        },
        Errno::LOOP => SegmentOpenError::SymbolicLink {
            name: name.to_string(),
        },
        e => io("open", e),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| io("fstat", e))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(SegmentOpenError::NotAFile {
            name: name.to_string(),
        });
    }
    trust.check(name, stat.st_uid, stat.st_gid)?;
    // Back to blocking mode for everything after the open (it never
    // matters for a regular file, but say what we mean).
    rustix::fs::fcntl_setfl(&fd, OFlags::RDWR).map_err(|e| io("fcntl", e))?;
    Ok(File::from(fd))
}

/// Maps a segment file and validates its header and control block.
fn map_validated(
    name: &SegmentName,
    file: &File,
) -> Result<(MmapRaw, HeaderInfo), SegmentOpenError> {
    let io = |op: &'static str, source: io::Error| SegmentOpenError::Io {
        name: name.to_string(),
        op,
        source,
    };
    let file_size = file.metadata().map_err(|e| io("fstat", e))?.len();
    if file_size < DATA_OFFSET {
        return Err(SegmentOpenError::Truncated {
            name: name.to_string(),
            size: file_size,
        });
    }
    if file_size > MAX_SEGMENT_SIZE {
        return Err(SegmentOpenError::Corrupt {
            name: name.to_string(),
            field: "file size",
            value: file_size,
        });
    }
    let map = MmapRaw::map_raw(file).map_err(|e| io("mmap", e))?;
    let mut head = [0u8; 256];
    // SAFETY: the mapping is at least DATA_OFFSET (> 256) bytes long.
    // The first 256 bytes are only written by a creator before the file
    // gets its public name, so nothing writes them while we copy.
    unsafe { std::ptr::copy_nonoverlapping(map.as_ptr(), head.as_mut_ptr(), head.len()) };
    let info = HeaderInfo::parse(&head, file_size).map_err(|f| match f {
        HeaderFault::Truncated { size } => SegmentOpenError::Truncated {
            name: name.to_string(),
            size,
        },
        HeaderFault::BadMagic => SegmentOpenError::NotASegment {
            name: name.to_string(),
        },
        HeaderFault::UnsupportedVersion { found } => SegmentOpenError::UnsupportedVersion {
            name: name.to_string(),
            found,
            supported: layout::FORMAT_VERSION,
        },
        HeaderFault::ArchMismatch { found } => SegmentOpenError::ArchMismatch {
            name: name.to_string(),
            found,
            ours: layout::arch_tag(),
        },
        HeaderFault::Corrupt { field, value } => SegmentOpenError::Corrupt {
            name: name.to_string(),
            field,
            value,
        },
    })?;
    let corrupt = |field, value| SegmentOpenError::Corrupt {
        name: name.to_string(),
        field,
        value,
    };
    let control = control_of(&map);
    let state = control.state.load(Ordering::Acquire);
    if state != STATE_READY {
        return Err(corrupt("state", state.into()));
    }
    let next = control.alloc_next.load(Ordering::Acquire);
    if next < DATA_OFFSET || next > info.total_size {
        return Err(corrupt("alloc_next", next));
    }
    Ok((map, info))
}

/// Directory entry `index` of a validated mapping.
fn entry_of(map: &MmapRaw, index: u32) -> &DirEntry {
    debug_assert!(index < DIR_CAPACITY);
    let off = DIR_OFFSET as usize + index as usize * layout::DIR_ENTRY_SIZE as usize;
    // SAFETY: `index < DIR_CAPACITY`, so the entry lies inside the
    // validated header area (checked by a const assertion in `layout`),
    // 8-aligned; `DirEntry` is all atomics, valid for any bit pattern.
    unsafe { &*map.as_ptr().wrapping_add(off).cast::<DirEntry>() }
}

/// The control block of a validated mapping.
fn control_of(map: &MmapRaw) -> &HeaderControl {
    // SAFETY: the header was validated, so the mapping holds at least
    // DATA_OFFSET bytes and CONTROL_OFFSET (256) is inside it and suitably
    // aligned (mappings are page-aligned). `HeaderControl` is all atomics,
    // valid for any bit pattern, and lives as long as the mapping.
    unsafe {
        &*map
            .as_ptr()
            .wrapping_add(CONTROL_OFFSET as usize)
            .cast::<HeaderControl>()
    }
}

/// Participant row `row` of a validated mapping.
fn row_of(map: &MmapRaw, row: u32) -> &Row {
    debug_assert!(row < layout::PARTICIPANT_CAPACITY);
    let off =
        layout::PARTICIPANT_OFFSET as usize + row as usize * layout::PARTICIPANT_ROW_SIZE as usize;
    // SAFETY: `row < PARTICIPANT_CAPACITY`, so the row lies inside the
    // validated header area (const assertions in `layout`), 64-aligned;
    // `Row` is all atomics, valid for any bit pattern.
    unsafe { &*map.as_ptr().wrapping_add(off).cast::<Row>() }
}

/// Claims a free participant row: locks its byte first, then marks it
/// alive, so no prober can ever see it alive without the lock held.
/// `Ok(None)` if every row is taken.
fn claim_row(map: &MmapRaw, file: &File, id: u64) -> io::Result<Option<(u32, u32)>> {
    use participants::{lock_byte, pack, state_of, ALIVE, FREE};
    for r in 0..layout::PARTICIPANT_CAPACITY {
        let row = row_of(map, r);
        let cur = row.state.load(Ordering::Acquire);
        if state_of(cur) != FREE {
            continue;
        }
        if !lock::ofd_lock(file, lock_byte(r), libc::F_WRLCK as libc::c_short)? {
            continue;
        }
        crate::crash::crash_point!("segment.attach.after_lock");
        let generation = participants::generation_of(cur).wrapping_add(1);
        row.pid.store(std::process::id(), Ordering::Relaxed);
        row.id.store(id, Ordering::Relaxed);
        row.start_time
            .store(participants::own_start_time(), Ordering::Relaxed);
        row.since_unix_ns.store(now_unix_ns(), Ordering::Relaxed);
        if row
            .state
            .compare_exchange(
                cur,
                pack(generation, ALIVE),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            return Ok(Some((r, generation)));
        }
        lock::ofd_lock(file, lock_byte(r), libc::F_UNLCK as libc::c_short)?;
    }
    Ok(None)
}

/// Frees our row and then its liveness lock.
fn release_row(map: &MmapRaw, file: &File, row: u32, generation: u32) {
    use participants::{pack, ALIVE, FREE};
    let _ = row_of(map, row).state.compare_exchange(
        pack(generation, ALIVE),
        pack(generation, FREE),
        Ordering::SeqCst,
        Ordering::Relaxed,
    );
    let _ = lock::ofd_lock(
        file,
        participants::lock_byte(row),
        libc::F_UNLCK as libc::c_short,
    );
}

/// A second open file description of the segment file, holding no lock:
/// what liveness probes lock through (one of our own would not conflict
/// with our own locks). Opened for each probing operation and closed after
/// (taking no lock of its own, closing releases nothing), so an attached
/// segment costs one descriptor, not two: a process with a thousand topics
/// open holds a thousand. `/proc/self/fd` reaches the file even after it
/// was unlinked.
fn reopen(file: &File) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Rows in state ALIVE or RECLAIMING, without probing their locks.
fn rows_in_use(map: &MmapRaw) -> u32 {
    use participants::{state_of, ALIVE, RECLAIMING};
    (0..layout::PARTICIPANT_CAPACITY)
        .filter(|&r| {
            let st = state_of(row_of(map, r).state.load(Ordering::SeqCst));
            st == ALIVE || st == RECLAIMING
        })
        .count() as u32
}

/// Rows (other than `except`) held by a live participant: state ALIVE or
/// RECLAIMING and its lock held. An unreadable probe counts as alive.
fn live_rows(map: &MmapRaw, probe: &File, except: Option<u32>) -> u32 {
    use participants::{state_of, ALIVE, RECLAIMING};
    (0..layout::PARTICIPANT_CAPACITY)
        .filter(|&r| Some(r) != except)
        .filter(|&r| {
            let st = state_of(row_of(map, r).state.load(Ordering::SeqCst));
            (st == ALIVE || st == RECLAIMING) && participants::is_alive(probe, r).unwrap_or(true)
        })
        .count() as u32
}

/// Leaves: frees our row, and if no live participant remains, removes the
/// segment. Participants that died count as gone: their objects die with
/// the file.
///
/// The last leaver sets `closing` (SeqCst CAS) and then scans the rows
/// (SeqCst); a joiner marks its row ALIVE (SeqCst CAS) and then reads
/// `closing` (SeqCst). In the single order of SeqCst operations either the
/// leaver's scan sees the joiner (it clears `closing` and keeps the file) or
/// the joiner sees `closing` (it backs off and retries the open, finding
/// the file gone or kept).
fn leave(inner: &Inner) {
    release_row(&inner.map, &inner.file, inner.row, inner.row_generation);
    if inner.info.owner_id != 0 {
        // A dependent segment: its owner (or retirement) removes it.
        return;
    }
    // Without a probe, stay conservative: keep the file (a leak that
    // `shmidl clean` removes), never remove one a live process uses.
    let Ok(probe) = reopen(&inner.file) else {
        return;
    };
    if live_rows(&inner.map, &probe, None) > 0 {
        return;
    }
    let closing = &inner.control().closing;
    if closing
        .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return; // someone else is closing it
    }
    if live_rows(&inner.map, &probe, None) > 0 {
        closing.store(0, Ordering::SeqCst);
        return;
    }
    match shm::unlink(inner.name.shm_path()) {
        Ok(()) => {
            tracing::debug!(segment = %inner.name, "last participant left; segment removed");
            remove_dependents(&inner.map, &inner.name, &inner.info);
        }
        // Unlinked already (`purge_and_create`, `unlink`): what depends on
        // it (named after its id) is ours to remove all the same.
        Err(Errno::NOENT) => remove_dependents(&inner.map, &inner.name, &inner.info),
        Err(e) => tracing::warn!(segment = %inner.name, error = %e, "removing segment failed"),
    }
}

/// (kind, offset, size) of every ready directory entry of the segment
/// mapped at `map` (`size` bytes) that lies inside the data area.
pub(crate) fn objects_of(map: &MmapRaw, size: u64) -> Vec<(ObjectKind, u64, u64)> {
    (0..DIR_CAPACITY)
        .map(|i| entry_of(map, i))
        .take_while(|e| e.state.load(Ordering::Acquire) != ENTRY_EMPTY)
        .filter(|e| e.state.load(Ordering::Acquire) == ENTRY_READY)
        .map(|e| {
            let t = entry_type(e);
            (t.kind, e.offset.load(Ordering::Relaxed), t.size)
        })
        .filter(|&(_, off, len)| {
            off >= DATA_OFFSET && off.checked_add(len).is_some_and(|end| end <= size)
        })
        .collect()
}

/// Removes the segments that depend on the segment mapped at `map`, which
/// was just unlinked: the chunks of its growable pools.
pub(crate) fn remove_dependents(map: &MmapRaw, name: &SegmentName, info: &HeaderInfo) {
    for (kind, offset, size) in objects_of(map, info.total_size) {
        if kind == ObjectKind::POOL || kind == ObjectKind::ARRAY_POOL {
            let ptr = map.as_mut_ptr().wrapping_add(offset as usize);
            crate::pool::remove_chunks(ptr, size, name.as_str(), info.segment_id, offset);
        }
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

/// A handle to a `T` in a segment. Keeps the segment mapped.
///
/// Shared memory is shared: the handle gives `&T` only, so mutation goes
/// through atomics (or other `Sync` interior mutability made for shared
/// memory).
pub struct ShmRef<T: ShmSafe> {
    // INVARIANTS: `ptr` points to an initialised `T` inside `segment`'s
    // mapping, which `segment` keeps alive.
    ptr: NonNull<T>,
    segment: Segment,
    _t: PhantomData<T>,
}

// SAFETY: a `ShmRef<T>` only gives `&T`; `T: ShmSafe` is `Sync + Send`, so
// sharing or sending the handle is sharing `&T` across threads.
unsafe impl<T: ShmSafe> Send for ShmRef<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for ShmRef<T> {}

impl<T: ShmSafe> ShmRef<T> {
    /// The segment the object lives in.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// Offset of the object in its segment.
    pub fn offset(&self) -> u64 {
        self.ptr.as_ptr() as u64 - self.segment.inner.map.as_ptr() as u64
    }
}

impl<T: ShmSafe> Clone for ShmRef<T> {
    fn clone(&self) -> Self {
        Self {
            ptr: self.ptr,
            segment: self.segment.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: ShmSafe> Deref for ShmRef<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: by the struct invariant the pointee is an initialised `T`
        // kept mapped by `self.segment` for as long as `self` lives.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for ShmRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmRef")
            .field("segment", &self.segment.name())
            .field("offset", &self.offset())
            .field("value", &**self)
            .finish()
    }
}
