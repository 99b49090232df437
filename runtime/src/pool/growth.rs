//! Growable pools: later chunks in segments of their own.
//!
//! # Chunks
//! A pool built with `growable(m)` is the object users open by name
//! (chunk 0) plus up to `m - 1` later chunks with the same geometry, each
//! the only pool object (named `chunk`) of a segment of its own. Raw
//! handles carry a *global* slot index `k * capacity + i`, so queue
//! entries, the router and crash recovery need not know about chunks; a
//! pool that cannot grow has only chunk 0 and global = local.
//!
//! # The chunk table
//! Chunk 0's header holds one word per chunk: `epoch << 1 | live`. Growing
//! turns a dead word `(e, 0)` into `(e + 1, 1)` with one CAS, so a given
//! chunk index and epoch is started once. Then that process, and every
//! process that meets a slot of the chunk later, opens-or-creates the
//! segment named after (pool, k, e + 1) and finds-or-creates its object:
//! both are atomic across processes, so whoever comes first creates it, and
//! a grower killed in between leaves nothing half-made.
//!
//! # Retirement
//! When a later chunk becomes entirely free (its `in_use` hint drops to 0)
//! and a newer live chunk exists, the process that freed its last slot
//! *seals* it: it steals every stash of the chunk and pops its free list
//! until it holds all `capacity` slots. Holding all of them proves that no reference and no
//! allocation can exist; if it gets fewer, someone allocated meanwhile and
//! it pushes them back. A sealed chunk is marked dead (CAS on its table
//! word) and its segment unlinked; processes that still map it drop their
//! mapping the next time they look the chunk up. A new chunk's generations
//! start at a random value, so handles kept from an earlier epoch of the
//! same index are refused by `upgrade`.
//!
//! A process that opens a chunk just after it was retired and unlinked
//! creates an empty one under the same name; it sees the table changed on
//! re-reading it after the open and drops the segment, which removes the
//! file again (it was its only participant).
//!
//! A retirer killed while sealing leaves the popped slots off the list:
//! the chunk is then never retired (never wrongly freed) until
//! `Segment::audit` puts them back.
//!
//! # Crash recovery
//! Each chunk segment has its own participant table, so a process's
//! holdings in chunk k are recorded in its row there. Reclaiming a dead
//! participant of the first chunk's segment also runs `cleanup_dead` on
//! every chunk segment, and an audit audits every chunk.

use std::{
    ops::Deref,
    ptr::NonNull,
    sync::{Arc, Mutex},
};

use super::{
    free_list::NIL, init_pool_untyped, make_inner, stash::STASH_SLOTS, validate_header_untyped,
    Backing, HandleError, PoolHeader, PoolInner, PoolOpenError,
};
use crate::{
    crash::crash_point,
    fingerprint::Hasher,
    futex,
    name::MAX_SEGMENT_NAME_LEN,
    segment::{
        random_u64, ObjectKind, ObjectSpec, ObjectType, Segment, SegmentOpenError, MIN_SEGMENT_SIZE,
    },
    sync::{AtomicU64, Ordering},
};

/// Most chunks a pool can grow to, the first included.
pub const MAX_POOL_CHUNKS: u32 = 32;

/// Name of the pool object inside a chunk segment.
const CHUNK_OBJECT: &str = "chunk";

fn live(epoch: u64) -> u64 {
    epoch << 1 | 1
}

fn is_live(word: u64) -> bool {
    word & 1 != 0
}

fn epoch_of(word: u64) -> u64 {
    word >> 1
}

/// The first chunk's process-local record of a growable pool.
pub(crate) struct Growth {
    /// The first chunk's segment (its name and id name the chunks).
    segment: Segment,
    offset: u64,
    kind: ObjectKind,
    fingerprint: u64,
    /// Chunk `k`'s mapping in this process, if made (index 0 unused).
    cache: Box<[Mutex<Option<Arc<PoolInner>>>]>,
}

impl Growth {
    /// Growth state for the first chunk `root` of the pool at `offset` of
    /// `segment`; `None` if it cannot grow.
    pub(super) fn new(
        root: &PoolInner,
        segment: &Segment,
        offset: u64,
        kind: ObjectKind,
        fingerprint: u64,
    ) -> Option<Self> {
        (root.geom.max_chunks > 1 && root.geom.chunk == 0).then(|| Self {
            segment: segment.clone(),
            offset,
            kind,
            fingerprint,
            cache: (0..root.geom.max_chunks)
                .map(|_| Mutex::new(None))
                .collect(),
        })
    }
}

/// A later chunk's way back to the pool's first chunk.
pub(crate) struct RootLink {
    // INVARIANTS: `header` points to the first chunk's header inside the
    // mapping `_segment` keeps alive.
    _segment: Segment,
    header: NonNull<PoolHeader>,
    chunk: u32,
    epoch: u64,
}

// SAFETY: the header is shared memory accessed through atomics only (its
// plain fields are immutable after publication).
unsafe impl Send for RootLink {}
// SAFETY: as above.
unsafe impl Sync for RootLink {}

impl RootLink {
    fn header(&self) -> &PoolHeader {
        // SAFETY: struct invariant.
        unsafe { self.header.as_ref() }
    }

    fn table(&self) -> &[AtomicU64] {
        let h = self.header();
        &h.chunks.0[..h.max_chunks.min(MAX_POOL_CHUNKS) as usize]
    }

    /// Wakes a thread waiting for a slot of the pool (waiters sleep on the
    /// first chunk's futex). The caller just pushed a slot back.
    pub(super) fn wake_waiters(&self) {
        let free = &self.header().free.0;
        if free.notify() {
            futex::wake(&free.seq, 1);
        }
    }
}

/// The chunk table of a first chunk.
fn table(root: &PoolInner) -> &[AtomicU64] {
    &root.header().chunks.0[..root.geom.max_chunks as usize]
}

/// The segment name of chunk `k`, epoch `epoch`, of the pool at `offset` of
/// `root`. It names the first chunk's segment by name *and* id, so a pool
/// re-created under the same names never meets an older pool's chunks.
fn chunk_segment_name(root: &str, root_id: u64, offset: u64, k: u32, epoch: u64) -> String {
    let h = Hasher::new().str(root).u64(root_id).u64(offset).finish();
    let suffix = format!("chunk-{h:016x}-{k}-{epoch}");
    let full = format!("{root}.{suffix}");
    if full.len() <= MAX_SEGMENT_NAME_LEN {
        full
    } else {
        suffix
    }
}

/// A chunk: the first one (borrowed) or a later one (kept mapped).
pub(crate) enum ChunkRef<'a> {
    Root(&'a Arc<PoolInner>),
    Mapped(Arc<PoolInner>),
}

impl Deref for ChunkRef<'_> {
    type Target = Arc<PoolInner>;
    fn deref(&self) -> &Arc<PoolInner> {
        match self {
            Self::Root(r) => r,
            Self::Mapped(m) => m,
        }
    }
}

/// The chunk holding global slot `slot`, and the slot's index there.
pub(crate) fn resolve(
    root: &Arc<PoolInner>,
    slot: u32,
) -> Result<(ChunkRef<'_>, u32), HandleError> {
    let cap = root.geom.capacity;
    if slot < cap {
        return Ok((ChunkRef::Root(root), slot));
    }
    let k = slot / cap;
    if k >= root.geom.max_chunks {
        return Err(HandleError::OutOfRange {
            slot,
            capacity: cap * root.geom.max_chunks,
        });
    }
    chunk(root, k)
        .map(|c| (ChunkRef::Mapped(c), slot % cap))
        .ok_or(HandleError::ChunkUnavailable { slot, chunk: k })
}

/// Chunk `k` (≥ 1) of a growable pool, mapped in this process if it is
/// live; `None` if it is not, or cannot be opened (logged).
pub(crate) fn chunk(root: &PoolInner, k: u32) -> Option<Arc<PoolInner>> {
    let g = root.growth.as_ref()?;
    let word = table(root).get(k as usize)?.load(Ordering::Acquire);
    let mut cached = g.cache[k as usize]
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(c) = &*cached {
        if is_live(word) && c.link.as_ref().map(|l| l.epoch) == Some(epoch_of(word)) {
            return Some(c.clone());
        }
    }
    // Retired (or replaced by a newer epoch) since we mapped it.
    *cached = None;
    if !is_live(word) {
        return None;
    }
    match map_chunk(root, g, k, epoch_of(word)) {
        Ok(Some(c)) => {
            *cached = Some(c.clone());
            Some(c)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(pool = %root.name, chunk = k, error = %e, "cannot open a pool chunk");
            None
        }
    }
}

/// Opens (creating if needed) chunk `k` of epoch `epoch`. `None` if the
/// chunk was retired meanwhile.
fn map_chunk(
    root: &PoolInner,
    g: &Growth,
    k: u32,
    epoch: u64,
) -> Result<Option<Arc<PoolInner>>, PoolOpenError> {
    let geom = root.geom.growth(root.geom.max_chunks, k)?;
    let name = chunk_segment_name(g.segment.name(), g.segment.id(), g.offset, k, epoch);
    // The object sits at the start of the data area (its alignment, at most
    // a page, divides the data offset).
    let size = (crate::segment::layout::DATA_OFFSET + geom.total_size as u64).max(MIN_SEGMENT_SIZE);
    let segment = g
        .segment
        .dependent_builder(&name)
        .size(size)
        .timeout(root.timeout.max(std::time::Duration::from_secs(1)))
        .open_or_create()?;
    let spec = ObjectSpec {
        ty: ObjectType {
            kind: g.kind,
            fingerprint: g.fingerprint,
            size: geom.total_size as u64,
        },
        align: geom.align as u64,
        any_size: false,
    };
    let elem = (
        root.header().elem_size as usize,
        root.header().elem_align as usize,
    );
    let seed = random_u64() as u32;
    let placed = segment.find_or_create_raw(CHUNK_OBJECT, spec, |ptr| {
        // SAFETY: the directory reserved `geom.total_size` bytes at `ptr`,
        // aligned to `geom.align`, for us alone.
        unsafe { init_pool_untyped(ptr, &geom, elem, g.fingerprint, seed) }
    })?;
    let corrupt = |what| PoolOpenError::Corrupt {
        name: name.clone(),
        what,
    };
    if placed.size < std::mem::size_of::<PoolHeader>() as u64 {
        return Err(corrupt("object smaller than a pool header"));
    }
    let ptr = segment.ptr_at(placed.offset);
    // SAFETY: a READY directory entry at least a header long, 64-aligned;
    // the plain header fields are immutable after publication.
    let header = unsafe { ptr.cast::<PoolHeader>().as_ref() };
    if validate_header_untyped(header, placed.size) != Some(geom) {
        return Err(corrupt("chunk header does not match the pool"));
    }
    if table(root)[k as usize].load(Ordering::Acquire) != live(epoch) {
        // Retired while we opened it: what we opened may be an empty
        // re-creation. The name must not exist any more either way.
        unlink_quietly(&name);
        return Ok(None);
    }
    let root_segment = root
        .segment()
        .ok_or_else(|| corrupt("a heap pool has no chunks"))?
        .clone();
    let inner = segment.local_view(placed.offset, || {
        let mut inner = make_inner::<()>(
            ptr,
            geom,
            format!("{}#{k}", root.name),
            root.timeout,
            Backing::Segment(segment.clone()),
        );
        inner.drop_slot = root.drop_slot;
        inner.identity = root.identity;
        inner.row = Some(segment.participant_row());
        inner.stash_row = inner.row;
        inner.base = k * geom.capacity;
        inner.link = Some(RootLink {
            _segment: root_segment,
            header: root.header,
            chunk: k,
            epoch,
        });
        Ok::<_, PoolOpenError>(Arc::new(inner))
    })?;
    tracing::debug!(pool = %root.name, chunk = k, epoch, segment = %name, "mapped a pool chunk");
    Ok(Some(inner))
}

/// Every live later chunk of a growable pool, mapped.
pub(crate) fn mapped_chunks(root: &PoolInner) -> Vec<Arc<PoolInner>> {
    if root.growth.is_none() {
        return Vec::new();
    }
    (1..root.geom.max_chunks)
        .filter_map(|k| chunk(root, k))
        .collect()
}

/// Live chunks, the first included.
pub(crate) fn live_chunks(root: &PoolInner) -> u32 {
    if root.growth.is_none() {
        return 1;
    }
    1 + table(root)[1..]
        .iter()
        .filter(|w| is_live(w.load(Ordering::Acquire)))
        .count() as u32
}

/// Free slots over every live chunk.
pub(crate) fn free_count(root: &PoolInner) -> u32 {
    use super::free_list::FreeList;
    FreeList::count_free(root.ctl())
        + mapped_chunks(root)
            .iter()
            .map(|c| FreeList::count_free(c.ctl()))
            .sum::<u32>()
}

/// Allocates a slot: from the first chunk if it has one free, else from
/// the first live later chunk that has, else from a new chunk. Returns the
/// chunk, the slot's index there and its generation.
pub(crate) fn alloc_any(root: &Arc<PoolInner>) -> Option<(Arc<PoolInner>, u32, u32)> {
    if let Some((i, generation)) = root.try_alloc() {
        return Some((root.clone(), i, generation));
    }
    let g = root.growth.as_ref()?;
    let table = table(root);
    for k in 1..root.geom.max_chunks {
        if is_live(table[k as usize].load(Ordering::Acquire)) {
            if let Some(c) = chunk(root, k) {
                if let Some((i, generation)) = c.try_alloc() {
                    return Some((c, i, generation));
                }
            }
        }
    }
    // Every live chunk is exhausted: start the lowest dead one (or use
    // the one another process just started).
    for k in 1..root.geom.max_chunks {
        let word = table[k as usize].load(Ordering::Acquire);
        if !is_live(word) {
            let started = table[k as usize]
                .compare_exchange(
                    word,
                    live(epoch_of(word) + 1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
            if started {
                tracing::debug!(pool = %root.name, chunk = k, "pool exhausted; growing");
                if epoch_of(word) > 0 {
                    // The retired epoch's file, if its retirer died before
                    // unlinking it.
                    let (name, id) = (g.segment.name(), g.segment.id());
                    unlink_quietly(&chunk_segment_name(name, id, g.offset, k, epoch_of(word)));
                }
            }
        }
        if let Some(c) = chunk(root, k) {
            if let Some((i, generation)) = c.try_alloc() {
                return Some((c, i, generation));
            }
        }
    }
    None
}

/// Retires `chunk` if it is entirely free and a newer chunk is live (see
/// the module docs). Called when its `in_use` hint drops to zero.
pub(super) fn maybe_retire(chunk: &PoolInner, link: &RootLink) {
    let table = link.table();
    let k = link.chunk as usize;
    let me = live(link.epoch);
    if table.get(k).map(|w| w.load(Ordering::Acquire)) != Some(me) {
        return;
    }
    if !table[k + 1..]
        .iter()
        .any(|w| is_live(w.load(Ordering::Acquire)))
    {
        return; // the newest chunk stays
    }
    let ctl = chunk.ctl();
    let free = chunk.free_list();
    let cap = chunk.geom.capacity;
    // Seal: take every slot off the stashes and the free list, chaining
    // them through `next` (ours now) so that they can be given back without
    // allocating.
    let mut sealed = NIL;
    let mut n = 0;
    let mut take = |s: u32| {
        ctl[s as usize].next.store(sealed, Ordering::Relaxed);
        sealed = s;
        n += 1;
        crash_point!("pool.retire.sealing");
    };
    let mut stolen = [0u32; STASH_SLOTS];
    for r in 0..super::PARTICIPANT_ROWS as u32 {
        let got = chunk.stash(r).steal(&mut stolen, 1);
        stolen[..got]
            .iter()
            .copied()
            .filter(|&s| s < cap)
            .for_each(&mut take);
    }
    while let Some(s) = free.pop(ctl) {
        take(s);
    }
    if n == cap
        && table[k]
            .compare_exchange(me, me & !1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        crash_point!("pool.retire.after_mark");
        if let Some(segment) = chunk.segment() {
            unlink_quietly(segment.name());
        }
        tracing::debug!(pool = %chunk.name, epoch = link.epoch, "retired an entirely free chunk");
        return;
    }
    // Someone allocated meanwhile: give the slots back.
    while sealed != NIL {
        let next = ctl[sealed as usize].next.load(Ordering::Relaxed);
        if free.push(ctl, sealed) {
            futex::wake(&free.seq, 1);
        }
        link.wake_waiters();
        sealed = next;
    }
}

/// Removes a chunk segment's name; one already gone is fine.
fn unlink_quietly(name: &str) {
    match Segment::unlink(name) {
        Ok(()) | Err(SegmentOpenError::NotFound { .. }) => {}
        Err(e) => tracing::warn!(segment = name, error = %e, "removing a pool chunk failed"),
    }
}

/// Removes the chunk segments of the pool object at `ptr` (`size` bytes,
/// at `offset` of the segment `root` with id `root_id`), whose segment was
/// just removed: every live chunk, and the last epoch of each retired one
/// (in case its retirer died before unlinking it). Nothing for a pool that
/// cannot grow or an invalid header.
pub(crate) fn remove_chunks(ptr: *mut u8, size: u64, root: &str, root_id: u64, offset: u64) {
    let Some(ptr) = NonNull::new(ptr) else { return };
    if size < std::mem::size_of::<PoolHeader>() as u64 {
        return;
    }
    // SAFETY: the caller passes a READY pool entry inside a mapped segment,
    // at least a header long and 64-aligned; plain header fields are
    // immutable after publication, the table is atomics.
    let header = unsafe { ptr.cast::<PoolHeader>().as_ref() };
    let Some(geom) = validate_header_untyped(header, size) else {
        return;
    };
    if geom.chunk != 0 {
        return;
    }
    for k in 1..geom.max_chunks {
        let word = header.chunks.0[k as usize].load(Ordering::Acquire);
        if epoch_of(word) > 0 {
            unlink_quietly(&chunk_segment_name(
                root,
                root_id,
                offset,
                k,
                epoch_of(word),
            ));
        }
    }
}
