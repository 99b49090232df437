//! Looking at segments without joining them, and removing abandoned ones:
//! what `shmidl ls` and `shmidl clean` run on.

use std::{fs::File, io, time::SystemTime};

use memmap2::MmapRaw;
use rustix::shm;

use super::{
    control_of, entry_name, entry_of, entry_type, layout, map_validated, open_file, participants,
    row_of, HeaderInfo, ObjectKind, ObjectType, ParticipantInfo, Segment, SegmentOpenError,
    DATA_OFFSET, DIR_CAPACITY, ENTRY_EMPTY, ENTRY_READY, SHM_DIR,
};
use crate::{name::SegmentName, sync::Ordering};

/// Free and total slots of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Slots.
    pub capacity: u32,
    /// Slots free now.
    pub free: u32,
}

/// A router's attached port, as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortStats {
    /// Port index among the router's publishers or subscribers.
    pub index: u32,
    /// Pid of the process that attached it.
    pub pid: u32,
    /// Messages through the port since the router was made: a publisher's
    /// pushes into its fullest-used queue (each subscriber present all
    /// along gets every one), a subscriber's messages taken off its queues
    /// (received, or overwritten under `OverwriteOldest`). Sample it twice
    /// for a rate.
    pub messages: u64,
    /// Messages queued now: from a publisher, over every subscriber; for a
    /// subscriber, from every publisher.
    pub queued: u64,
}

/// The attached ports of a router.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Attached publishers.
    pub publishers: Vec<PortStats>,
    /// Attached subscribers.
    pub subscribers: Vec<PortStats>,
}

/// What `Segment::inspect` knows of an object beyond its directory entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ObjectStats {
    pub pool: Option<PoolStats>,
    pub router: Option<RouterStats>,
}

/// One object of a segment's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReport {
    /// Object name.
    pub name: String,
    /// Kind, fingerprint, size.
    pub ty: ObjectType,
    /// For pools: slot usage.
    pub pool: Option<PoolStats>,
    /// For routers: attached ports and their message counts.
    pub router: Option<RouterStats>,
}

/// What [`Segment::inspect`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReport {
    /// Segment name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Random identity.
    pub id: u64,
    /// Pid of the creator.
    pub creator_pid: u32,
    /// Creation time.
    pub created: SystemTime,
    /// The last participant left and is removing it.
    pub closing: bool,
    /// For a dependent segment (a growable pool's chunk), the id of the
    /// segment it belongs to and goes with.
    pub owner_id: Option<u64>,
    /// Directory objects.
    pub objects: Vec<ObjectReport>,
    /// Participant rows in use.
    pub participants: Vec<ParticipantInfo>,
}

impl SegmentReport {
    /// Participants whose liveness lock is held.
    pub fn live_participants(&self) -> usize {
        self.participants.iter().filter(|p| p.alive).count()
    }
}

/// What [`Segment::remove_if_abandoned`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanOutcome {
    /// Removed: no live participant was attached.
    Removed {
        /// Dead participants it still listed.
        dead_participants: usize,
    },
    /// Kept: live participants are attached.
    Kept {
        /// How many.
        live_participants: usize,
    },
    /// Kept: a dependent segment (a growable pool's chunk) whose owning
    /// segment still exists; it goes when its owner goes.
    KeptByOwner {
        /// The owning segment's name.
        owner: String,
    },
    /// Only reported (`dry_run`): it would be removed.
    WouldRemove {
        /// Dead participants it still lists.
        dead_participants: usize,
    },
}

struct Opened {
    name: SegmentName,
    file: File,
    map: MmapRaw,
    info: HeaderInfo,
}

fn open_raw(name: &str) -> Result<Opened, SegmentOpenError> {
    let name = SegmentName::new(name)?;
    let file = open_file(&name, &super::Trust::default())?;
    let (map, info) = map_validated(&name, &file)?;
    Ok(Opened {
        name,
        file,
        map,
        info,
    })
}

/// Participants of a mapping, probed from `probe` (a descriptor that
/// holds no participant lock); without one, every row in use reads alive.
pub(super) fn participants_of(map: &MmapRaw, probe: Option<&File>) -> Vec<ParticipantInfo> {
    use participants::{state_of, ALIVE, RECLAIMING};
    (0..layout::PARTICIPANT_CAPACITY)
        .filter_map(|r| {
            let row = row_of(map, r);
            let state = state_of(row.state.load(Ordering::Acquire));
            if state != ALIVE && state != RECLAIMING {
                return None;
            }
            Some(ParticipantInfo {
                row: r,
                pid: row.pid.load(Ordering::Relaxed),
                id: row.id.load(Ordering::Relaxed),
                start_time: row.start_time.load(Ordering::Relaxed),
                alive: probe.is_none_or(|p| participants::is_alive(p, r).unwrap_or(true)),
                reclaiming: state == RECLAIMING,
            })
        })
        .collect()
}

impl Segment {
    /// Names of the shmidl segments in `/dev/shm` (files `shmidl.<name>`).
    pub fn list() -> io::Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(SHM_DIR)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let f = e.file_name().into_string().ok()?;
                let n = f.strip_prefix(crate::name::FILE_PREFIX)?;
                SegmentName::new(n).ok().map(|_| n.to_owned())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// What `Segment::inspect` (in `recovery/inspect.rs`, which knows pool
    /// objects) reports; `stats(kind, object, size)` gives a pool's usage.
    pub(crate) fn inspect_with(
        name: &str,
        stats: impl Fn(ObjectKind, *mut u8, u64) -> ObjectStats,
    ) -> Result<SegmentReport, SegmentOpenError> {
        let o = open_raw(name)?;
        let mut objects = Vec::new();
        for i in 0..DIR_CAPACITY {
            let e = entry_of(&o.map, i);
            let state = e.state.load(Ordering::Acquire);
            if state == ENTRY_EMPTY {
                break;
            }
            if state != ENTRY_READY {
                continue;
            }
            let ty = entry_type(e);
            let offset = e.offset.load(Ordering::Relaxed);
            let in_bounds = offset >= DATA_OFFSET
                && offset
                    .checked_add(ty.size)
                    .is_some_and(|end| end <= o.info.total_size);
            let ObjectStats { pool, router } = if in_bounds {
                let ptr = o.map.as_mut_ptr().wrapping_add(offset as usize);
                stats(ty.kind, ptr, ty.size)
            } else {
                ObjectStats::default()
            };
            objects.push(ObjectReport {
                name: entry_name(e).unwrap_or_else(|| "<invalid name>".into()),
                ty,
                pool,
                router,
            });
        }
        Ok(SegmentReport {
            name: o.name.to_string(),
            size: o.info.total_size,
            id: o.info.segment_id,
            creator_pid: o.info.creator_pid,
            created: SystemTime::UNIX_EPOCH
                + std::time::Duration::from_nanos(o.info.created_unix_ns),
            closing: control_of(&o.map).closing.load(Ordering::Acquire) != 0,
            owner_id: (o.info.owner_id != 0).then_some(o.info.owner_id),
            objects,
            participants: participants_of(&o.map, Some(&o.file)),
        })
    }

    /// A copy of the bytes of object `object` of segment `name`, read
    /// without joining it (as `inspect` does), with its type; `None` if
    /// there is no such ready object. The bytes are read with relaxed
    /// atomic loads, 8 at a time: a snapshot, not a consistent one.
    pub(crate) fn read_object(
        name: &str,
        object: &str,
    ) -> Result<Option<(ObjectType, Vec<u8>)>, SegmentOpenError> {
        let o = open_raw(name)?;
        for i in 0..DIR_CAPACITY {
            let e = entry_of(&o.map, i);
            let state = e.state.load(Ordering::Acquire);
            if state == ENTRY_EMPTY {
                break;
            }
            if state != ENTRY_READY || entry_name(e).as_deref() != Some(object) {
                continue;
            }
            let ty = entry_type(e);
            let offset = e.offset.load(Ordering::Relaxed);
            let fits = offset >= DATA_OFFSET
                && offset % 8 == 0
                && ty.size % 8 == 0
                && offset
                    .checked_add(ty.size)
                    .is_some_and(|end| end <= o.info.total_size);
            if !fits {
                return Ok(None);
            }
            let mut bytes = Vec::with_capacity(ty.size as usize);
            for w in 0..ty.size / 8 {
                let ptr = o
                    .map
                    .as_mut_ptr()
                    .wrapping_add((offset + 8 * w) as usize)
                    .cast::<crate::sync::AtomicU64>();
                // SAFETY: `ptr` is inside the mapping (checked above: the
                // object lies within the segment, which the mapping covers
                // entirely), 8-aligned (offset and step are multiples of 8
                // from a page-aligned base), and every 8 bytes of shared
                // memory may be read as an `AtomicU64`, which has the size
                // and alignment of `u64` and any bit pattern is valid.
                let word = unsafe { &*ptr };
                bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            return Ok(Some((ty, bytes)));
        }
        Ok(None)
    }

    /// What `Segment::remove_if_abandoned` (in `recovery/inspect.rs`, which
    /// registers the hooks that remove a pool's chunks) does.
    pub(crate) fn remove_abandoned(
        name: &str,
        dry_run: bool,
    ) -> Result<CleanOutcome, SegmentOpenError> {
        let o = open_raw(name)?;
        if o.info.owner_id != 0 {
            if let Some(owner) = Self::list()
                .unwrap_or_default()
                .into_iter()
                .find(|n| open_raw(n).is_ok_and(|x| x.info.segment_id == o.info.owner_id))
            {
                return Ok(CleanOutcome::KeptByOwner { owner });
            }
        }
        let live = |o: &Opened| {
            participants_of(&o.map, Some(&o.file))
                .iter()
                .filter(|p| p.alive)
                .count()
        };
        let dead = participants_of(&o.map, Some(&o.file))
            .iter()
            .filter(|p| !p.alive)
            .count();
        let live_now = live(&o);
        if live_now > 0 {
            return Ok(CleanOutcome::Kept {
                live_participants: live_now,
            });
        }
        if dry_run {
            return Ok(CleanOutcome::WouldRemove {
                dead_participants: dead,
            });
        }
        let closing = &control_of(&o.map).closing;
        // Take the segment over from a crashed closer too: no one alive.
        closing.store(1, Ordering::SeqCst);
        let live_after = live(&o);
        if live_after > 0 {
            closing.store(0, Ordering::SeqCst);
            return Ok(CleanOutcome::Kept {
                live_participants: live_after,
            });
        }
        shm::unlink(o.name.shm_path()).map_err(|e| SegmentOpenError::Io {
            name: o.name.to_string(),
            op: "shm_unlink",
            source: e.into(),
        })?;
        tracing::info!(segment = %o.name, dead, "removed an abandoned segment");
        super::remove_dependents(&o.map, &o.name, &o.info);
        Ok(CleanOutcome::Removed {
            dead_participants: dead,
        })
    }

    /// Temporary files of segment creators (`shmidl~<pid>-…`) whose process
    /// is gone: a creator died before publishing its segment. Returns their
    /// file names; removes them unless `dry_run`.
    pub fn clean_stale_temporaries(dry_run: bool) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(SHM_DIR)?.flatten() {
            let Ok(f) = e.file_name().into_string() else {
                continue;
            };
            let Some(rest) = f.strip_prefix("shmidl~") else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if !dry_run {
                std::fs::remove_file(e.path())?;
            }
            out.push(f);
        }
        Ok(out)
    }
}
