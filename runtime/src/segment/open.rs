//! Creating, opening and attaching to segments: the builder, the trust
//! check on every file opened (`docs/security.md`), publication by rename,
//! and taking a participant row.

use super::*;

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
    pub(super) name: String,
    pub(super) size: u64,
    pub(super) mode: u32,
    pub(super) timeout: Duration,
    /// Id of the owning segment, for a dependent one; 0 otherwise.
    pub(super) owner: u64,
    /// Owners other than this user whose segments may be opened.
    pub(super) trust: Trust,
}

/// Whose segment files this process accepts besides its own (local security:
/// `/dev/shm` is writable by every local user; `docs/security.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Trust {
    pub(super) owners: Vec<u32>,
    pub(super) groups: Vec<u32>,
}

impl Trust {
    /// Checks the owner and group of a segment file.
    pub(super) fn check(
        &self,
        name: &SegmentName,
        owner: u32,
        group: u32,
    ) -> Result<(), SegmentOpenError> {
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
            Some((file, probe)) => Ok(Segment::attach_file(
                name,
                file,
                Some(probe),
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
            if let Some((file, probe)) = create_published(&name, size, self.mode, self.owner)? {
                return Ok(Segment::attach_file(
                    name,
                    file,
                    Some(probe),
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

    pub(super) fn checked_size(&self) -> Result<u64, SegmentCreateError> {
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
/// it under `name`; returns its file and a second open file description of
/// it (the probe `attach_file` needs, made before publishing). `Ok(None)`:
/// a segment of that name already exists.
pub(super) fn create_published(
    name: &SegmentName,
    size: u64,
    mode: u32,
    owner: u64,
) -> Result<Option<(File, File)>, SegmentCreateError> {
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
        // Attaching needs a second open file description (to probe
        // participants). Make it now, while the file is ours alone, and
        // keep it until the attach: a published file nobody could attach
        // to would stay in /dev/shm (nobody would know it is unused).
        super::membership::reopen(&file).map_err(|source| SegmentCreateError::Io {
            name: name.to_string(),
            op: "reopen for probing",
            source,
        })
    })();
    let probe = match result {
        Ok(probe) => probe,
        Err(e) => {
            remove_tmp();
            return Err(e);
        }
    };
    crate::crash::crash_point!("segment.create.before_publish");
    let from = format!("{SHM_DIR}/{tmp}");
    let to = format!("{SHM_DIR}/{}", name.file_name());
    match rustix::fs::renameat_with(CWD, from.as_str(), CWD, to.as_str(), RenameFlags::NOREPLACE) {
        Ok(()) => {
            tracing::debug!(segment = %name, size, "created segment");
            Ok(Some((file, probe)))
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

    pub(super) fn open_waiting(
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

    pub(super) fn open_once(
        name: &SegmentName,
        size: Option<u64>,
        timeout: Duration,
        trust: &Trust,
    ) -> Result<Self, SegmentOpenError> {
        Self::attach_file(
            name.clone(),
            open_file(name, trust)?,
            None,
            size,
            timeout,
            trust,
        )
    }

    /// Maps an open segment file, validates its header and attaches.
    /// `probe` is a second open file description of it that the creator
    /// made before publishing it (see `create_published`).
    pub(super) fn attach_file(
        name: SegmentName,
        file: File,
        probe: Option<File>,
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
        // cannot be made (no /proc), rather than on the first probe. A
        // creator made one before publishing the file and held it until
        // now, so its attach cannot fail for want of a descriptor.
        match probe {
            Some(probe) => drop(probe),
            None => drop(reopen(&file).map_err(|e| io("reopen for probing", e))?),
        }
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
pub(super) fn map_validated(
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
