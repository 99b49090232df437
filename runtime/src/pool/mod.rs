//! Memory pools whose shared pointers count references across processes.
//!
//! A pool is a fixed number of equally sized slots plus a control block per
//! slot, all in one object: in a segment ([`Pool`], [`ArrayPool`]) or on the
//! heap ([`LocalPool`]). Pointers into it ([`Sample`], [`SampleMut`]) keep the
//! object alive until the last reference in every process is gone, like the
//! seed library's pooled `shared_ptr` and like `Arc` inside one process.
//!
//! # Reference counting in two levels
//! Each process (more exactly: each opened pool handle) keeps a
//! process-local count per slot. Cloning a `Sample` touches only that local
//! count. The shared count in the slot's control block changes only when a
//! process gets its first reference to a slot (local 0 → 1: +1) or drops its
//! last (local 1 → 0: −1), and once per raw handle in flight (a queue entry).
//! Nothing is allocated per pointer: the local counts are one array made
//! when the pool is opened, the shared counts live in the pool's memory.
//!
//! The layout is documented in `docs/segment-format.md`.

mod error;
pub(crate) mod free_list;
mod growth;
mod sample;
pub(crate) mod stash;

use std::{
    alloc::Layout,
    marker::PhantomData,
    mem::{align_of, size_of},
    ptr::NonNull,
    sync::{atomic, Arc},
    time::{Duration, Instant},
};

use self::free_list::{linked_ctl, FreeList, SlotCtl, NIL};
pub(crate) use self::growth::remove_chunks;
use self::growth::{Growth, RootLink};
use self::stash::{Stash, STASH_SLOTS};
pub use self::{
    error::{HandleError, LoanError, PoolExhausted, PoolOpenError},
    growth::MAX_POOL_CHUNKS,
    sample::{RawSample, Sample, SampleMut, SliceTooLong, SlotView, UninitSample},
};
use crate::{
    crash::crash_point,
    fingerprint::Hasher,
    futex,
    segment::{ObjectKind, ObjectSpec, ObjectType, Segment},
    shm_safe::ShmSafe,
    sync::{AtomicU64, Ordering},
};

/// "POOL", little-endian.
const POOL_MAGIC: u32 = 0x4c4f_4f50;
/// Largest capacity: slot indices stay below the free list's "none" marker, and
/// reference counts fit 31 bits.
pub const MAX_POOL_CAPACITY: u32 = 1 << 30;
const CACHE_LINE: usize = 64;
/// Rows of the segment's participant table (one holdings bitmap each).
const PARTICIPANT_ROWS: usize = crate::segment::layout::PARTICIPANT_CAPACITY as usize;

/// Header at the start of a pool object.
///
/// INVARIANTS: the fields before `free` are written once, by the creator,
/// before the object is published, and never change; `ctl_offset`,
/// `slots_offset` and `stride` describe arrays that lie inside the object.
#[repr(C, align(64))]
pub(crate) struct PoolHeader {
    magic: u32,
    capacity: u32,
    elements: u32,
    elem_size: u32,
    elem_align: u32,
    _pad0: u32,
    stride: u64,
    ctl_offset: u64,
    slots_offset: u64,
    total_size: u64,
    /// The pool's type fingerprint (as in its directory entry), so that a
    /// chunk can be opened without knowing the element type.
    elem_fingerprint: u64,
    /// Chunks the pool may grow to, the first included (1: fixed size).
    /// The same in every chunk.
    max_chunks: u32,
    /// Which chunk this object is: 0 for the object users open by name.
    chunk_index: u32,
    /// On its own cache line: the hot free list.
    free: CacheLine<FreeList>,
    /// First chunk only: per chunk `k`, `epoch << 1 | live`
    /// (see `growth.rs`). Read-mostly, on lines of its own.
    chunks: CacheLine<[AtomicU64; MAX_POOL_CHUNKS as usize]>,
    /// Bit `r`: participant row `r` has stashed slots at some point (see
    /// `stash.rs`); where thieves look first. Read-mostly.
    stash_hint: CacheLine<AtomicU64>,
}

#[repr(C, align(64))]
struct CacheLine<T>(T);

// The layout `docs/segment-format.md` documents (loom's atomics are larger).
#[cfg(not(shmidl_loom))]
const _: () = {
    assert!(std::mem::offset_of!(PoolHeader, elem_fingerprint) == 56);
    assert!(std::mem::offset_of!(PoolHeader, max_chunks) == 64);
    assert!(std::mem::offset_of!(PoolHeader, free) == 128);
    assert!(std::mem::offset_of!(PoolHeader, chunks) == 192);
    assert!(std::mem::offset_of!(PoolHeader, stash_hint) == 448);
    assert!(size_of::<PoolHeader>() == 512);
    assert!(size_of::<Stash>() == 2 * CACHE_LINE);
};

/// Sizes and offsets of a pool object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    capacity: u32,
    elements: u32,
    stride: usize,
    ctl_offset: usize,
    slots_offset: usize,
    /// Per-participant holdings bitmaps: `PARTICIPANT_ROWS` rows of
    /// `holdings_row` bytes.
    holdings_offset: usize,
    holdings_row: usize,
    /// Per-participant stashes of free slots: `PARTICIPANT_ROWS` lines.
    stash_offset: usize,
    total_size: usize,
    align: usize,
    /// Chunks the pool may grow to (1: fixed size).
    max_chunks: u32,
    /// Which chunk this object is.
    chunk: u32,
}

impl Geometry {
    /// Sets the growth limit and chunk index, checking that every global
    /// slot index (`chunk * capacity + slot`) fits below
    /// [`MAX_POOL_CAPACITY`].
    fn growth(mut self, max_chunks: u32, chunk: u32) -> Result<Self, PoolOpenError> {
        if max_chunks == 0 || max_chunks > MAX_POOL_CHUNKS {
            return Err(PoolOpenError::InvalidGeometry(
                "a pool grows to 1 ..= MAX_POOL_CHUNKS chunks",
            ));
        }
        if chunk >= max_chunks {
            return Err(PoolOpenError::InvalidGeometry(
                "chunk index beyond the growth limit",
            ));
        }
        if u64::from(self.capacity) * u64::from(max_chunks) > u64::from(MAX_POOL_CAPACITY) {
            return Err(PoolOpenError::InvalidGeometry(
                "capacity × chunks must not exceed 2^30 slots",
            ));
        }
        self.max_chunks = max_chunks;
        self.chunk = chunk;
        Ok(self)
    }

    fn new<T>(capacity: u32, elements: u32) -> Result<Self, PoolOpenError> {
        Self::with(size_of::<T>(), align_of::<T>(), capacity, elements)
    }

    fn with(
        elem_size: usize,
        elem_align: usize,
        capacity: u32,
        elements: u32,
    ) -> Result<Self, PoolOpenError> {
        if capacity == 0 || capacity > MAX_POOL_CAPACITY {
            return Err(PoolOpenError::InvalidGeometry(
                "capacity must be 1 ..= 2^30 slots",
            ));
        }
        if elements == 0 {
            return Err(PoolOpenError::InvalidGeometry(
                "elements per slot must be at least 1",
            ));
        }
        let too_big = PoolOpenError::InvalidGeometry("pool does not fit in the address space");
        if !elem_align.is_power_of_two() || elem_align > 4096 {
            return Err(PoolOpenError::InvalidGeometry(
                "impossible element alignment",
            ));
        }
        let align = elem_align.max(CACHE_LINE);
        let payload = elem_size
            .checked_mul(elements as usize)
            .ok_or_else(|| too_big.clone_geom())?;
        // Slots of at least one cache line, aligned for T: neighbours never
        // share a line (no false sharing between two writers).
        let stride = payload
            .max(1)
            .checked_next_multiple_of(align)
            .ok_or_else(|| too_big.clone_geom())?;
        let ctl_offset = size_of::<PoolHeader>();
        let ctl_bytes = (capacity as usize)
            .checked_mul(size_of::<SlotCtl>())
            .ok_or_else(|| too_big.clone_geom())?;
        let slots_offset = (ctl_offset + ctl_bytes)
            .checked_next_multiple_of(align)
            .ok_or_else(|| too_big.clone_geom())?;
        let holdings_offset = stride
            .checked_mul(capacity as usize)
            .and_then(|b| b.checked_add(slots_offset))
            .and_then(|b| b.checked_next_multiple_of(CACHE_LINE))
            .ok_or_else(|| too_big.clone_geom())?;
        // One bit per slot per participant row, each row on its own lines.
        let holdings_row = (capacity as usize).div_ceil(64) * 8;
        let holdings_row = holdings_row.next_multiple_of(CACHE_LINE);
        let stash_offset = holdings_row
            .checked_mul(PARTICIPANT_ROWS)
            .and_then(|b| b.checked_add(holdings_offset))
            .ok_or_else(|| too_big.clone_geom())?;
        let total_size = (PARTICIPANT_ROWS * size_of::<Stash>())
            .checked_add(stash_offset)
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or(too_big)?;
        Ok(Self {
            capacity,
            elements,
            stride,
            ctl_offset,
            slots_offset,
            holdings_offset,
            holdings_row,
            stash_offset,
            total_size,
            align,
            max_chunks: 1,
            chunk: 0,
        })
    }
}

impl PoolOpenError {
    fn clone_geom(&self) -> Self {
        match self {
            Self::InvalidGeometry(s) => Self::InvalidGeometry(s),
            _ => Self::InvalidGeometry("invalid geometry"),
        }
    }
}

/// What keeps a pool's memory alive in this process.
enum Backing {
    Segment(Segment),
    Heap { ptr: NonNull<u8>, layout: Layout },
}

impl Drop for Backing {
    fn drop(&mut self) {
        if let Self::Heap { ptr, layout } = *self {
            // SAFETY: `ptr` was returned by `alloc_zeroed(layout)` in
            // `LocalPool::new` and is freed only here, once.
            unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
        }
    }
}

/// One process's view of a pool. Shared (`Arc`) by the pool handle and
/// every live pointer into it.
pub(crate) struct PoolInner {
    // INVARIANTS: `header`, `ctl` and `slots` point into memory kept alive by
    // `backing`; `ctl` has `geom.capacity` entries; slot `i` starts at
    // `slots + i * geom.stride` and holds `geom.elements` values of the
    // pool's element type while its refcount is non-zero.
    header: NonNull<PoolHeader>,
    ctl: NonNull<SlotCtl>,
    slots: NonNull<u8>,
    geom: Geometry,
    /// Process-local reference counts, one per slot.
    local: Box<[atomic::AtomicU32]>,
    /// Global index of this chunk's slot 0 (`chunk * capacity`): what raw
    /// handles carry.
    base: u32,
    /// First chunk of a growable pool: the chunks mapped in this process.
    growth: Option<Growth>,
    /// Later chunks: the way back to the first chunk (its chunk table and
    /// waiters).
    link: Option<RootLink>,
    /// Drops the `elements` values of a slot in place.
    drop_slot: unsafe fn(NonNull<u8>, usize),
    /// Which pool this is, across processes: (segment id, offset), or
    /// `None` for a heap pool.
    identity: Option<(u64, u64)>,
    /// This process's participant row (its holdings bitmap), `None` for a
    /// heap pool.
    row: Option<u32>,
    /// The stash this view frees into and allocates from first: its
    /// participant row's (row 0 for a heap pool); `None` for a view made
    /// only to reclaim or audit, which frees to the shared list.
    stash_row: Option<u32>,
    name: String,
    timeout: Duration,
    _backing: Backing,
}

// SAFETY: the pointers refer to shared memory (or a heap block) that every
// thread may access; all shared mutation goes through atomics, and element
// access is governed by the `Sample` types, which require `T: Send + Sync`.
unsafe impl Send for PoolInner {}
// SAFETY: as above.
unsafe impl Sync for PoolInner {}

/// Drops `n` values of `T` starting at `ptr`.
///
/// # Safety
/// `ptr` must point to `n` initialised `T`s that nobody uses any more.
unsafe fn drop_elements<T>(ptr: NonNull<u8>, n: usize) {
    if std::mem::needs_drop::<T>() {
        let slice = std::ptr::slice_from_raw_parts_mut(ptr.cast::<T>().as_ptr(), n);
        // SAFETY: guaranteed by the caller.
        unsafe { std::ptr::drop_in_place(slice) };
    }
}

impl PoolInner {
    fn header(&self) -> &PoolHeader {
        // SAFETY: by the struct invariant `header` is valid while `self` is.
        unsafe { self.header.as_ref() }
    }

    /// Word `index / 64` of participant `row`'s holdings bitmap.
    fn holdings_word(&self, row: u32, index: u32) -> &AtomicU64 {
        debug_assert!((row as usize) < PARTICIPANT_ROWS && index < self.geom.capacity);
        let off = self.geom.holdings_offset
            + row as usize * self.geom.holdings_row
            + (index as usize / 64) * 8;
        let p = self.header.as_ptr().cast::<u8>().wrapping_add(off);
        // SAFETY: `row < PARTICIPANT_ROWS` and `index < capacity`, so the
        // word lies inside the object (`Geometry` sized the bitmaps),
        // 8-aligned (rows and the bitmap start are 64-aligned); an atomic.
        unsafe { &*p.cast::<AtomicU64>() }
    }

    /// Records that this process holds a reference to slot `index`. Called
    /// *after* the reference is counted: a crash in between leaks, never
    /// double-frees.
    pub(crate) fn hold(&self, index: u32) {
        if let Some(row) = self.row {
            self.holdings_word(row, index)
                .fetch_or(1 << (index % 64), Ordering::Release);
        }
    }

    /// Erases the record of [`hold`](Self::hold). Called *before* the
    /// reference is released or handed to a queue.
    pub(crate) fn unhold(&self, index: u32) {
        if let Some(row) = self.row {
            self.holdings_word(row, index)
                .fetch_and(!(1 << (index % 64)), Ordering::Release);
        }
    }

    /// The segment this chunk lives in; `None` for a `LocalPool`.
    pub(crate) fn segment(&self) -> Option<&Segment> {
        match &self._backing {
            Backing::Segment(s) => Some(s),
            Backing::Heap { .. } => None,
        }
    }

    /// (segment id, offset) of a shared pool; `None` for a `LocalPool`.
    pub(crate) fn identity(&self) -> Option<(u64, u64)> {
        self.identity
    }

    /// Values a sample of slot `index` is seen with: for an array slot, the
    /// length stored with it, at most the slot's elements (another process
    /// may have written anything there); 1 otherwise.
    #[inline]
    pub(crate) fn view_len<V: ?Sized + SlotView>(&self, index: u32) -> usize {
        if V::SLICE {
            let len = self.ctl()[index as usize].len.load(Ordering::Relaxed);
            len.min(self.geom.elements) as usize
        } else {
            1
        }
    }

    /// Stores the length of the sample in slot `index` (its exclusive
    /// owner only; readers get it through the release that shares the
    /// slot).
    pub(crate) fn set_len(&self, index: u32, len: u32) {
        self.ctl()[index as usize].len.store(len, Ordering::Relaxed);
    }

    pub(crate) fn ctl(&self) -> &[SlotCtl] {
        // SAFETY: by the struct invariant `ctl` points to `capacity`
        // initialised control blocks kept alive by `backing`.
        unsafe { std::slice::from_raw_parts(self.ctl.as_ptr(), self.geom.capacity as usize) }
    }

    pub(crate) fn slot_ptr(&self, index: u32) -> NonNull<u8> {
        debug_assert!(index < self.geom.capacity);
        // SAFETY: `index < capacity`, so the offset stays inside the slots
        // array (struct invariant); the result is non-null.
        unsafe { self.slots.add(index as usize * self.geom.stride) }
    }

    pub(crate) fn free_list(&self) -> &FreeList {
        &self.header().free.0
    }

    /// The owner tag this handle's exclusive slots carry: row + 1, or 0
    /// for a heap pool.
    fn owner_tag(&self) -> u32 {
        self.row.map_or(0, |r| r + 1)
    }

    /// Pops a free slot and marks it allocated to this process (the
    /// allocation names the owner: no separate record); returns (index,
    /// generation).
    fn try_alloc(&self) -> Option<(u32, u32)> {
        let index = self.take_free()?;
        crash_point!("pool.alloc.after_pop");
        if self.geom.chunk > 0 {
            // A hint for retirement, not a count anything depends on.
            self.free_list().in_use.fetch_add(1, Ordering::Relaxed);
        }
        let generation = self.ctl()[index as usize].allocate(self.owner_tag());
        Some((index, generation))
    }

    /// Participant row `row`'s stash.
    fn stash(&self, row: u32) -> &Stash {
        debug_assert!((row as usize) < PARTICIPANT_ROWS);
        let off = self.geom.stash_offset + row as usize * size_of::<Stash>();
        let p = self.header.as_ptr().cast::<u8>().wrapping_add(off);
        // SAFETY: `row < PARTICIPANT_ROWS`, so the line lies inside the
        // object (`Geometry` sized the stashes), 64-aligned; all atomics.
        unsafe { &*p.cast::<Stash>() }
    }

    /// Takes a free slot off its list: this view's stash; else another
    /// participant's stash if it is at least half full (taken whole, the
    /// rest kept in ours: one cache line moves for many slots); else the
    /// shared free list; else any stash with a slot at all (hinted rows
    /// first; the hint may be stale). The slot is the caller's, with
    /// `refs == 0`.
    ///
    /// Preferring the shared list to a nearly empty stash lets a stash
    /// fill up between steals, so that a process fed by another steals
    /// rarely and in bulk, and mostly allocates from its own line.
    fn take_free(&self) -> Option<u32> {
        let own = self.stash_row;
        if let Some(i) = own.and_then(|r| self.stash(r).pop()) {
            return Some(i);
        }
        let hint = self.header().stash_hint.0.load(Ordering::Relaxed);
        if !self.free_list().is_empty() {
            if let Some(i) = self.steal_from(hint, own, STASH_SLOTS as u32 / 2) {
                return Some(i);
            }
            if let Some(i) = self.free_list().pop(self.ctl()) {
                return Some(i);
            }
        }
        self.steal_from(hint, own, 1)
            .or_else(|| self.steal_from(!hint, own, 1))
            .or_else(|| self.free_list().pop(self.ctl()))
    }

    /// Steals the stash of the first row in `rows` (a bitmap; never
    /// `own`) that has at least `min` slots: returns one, keeps the others
    /// in our stash (or, if it is full, on the free list).
    fn steal_from(&self, rows: u64, own: Option<u32>, min: u32) -> Option<u32> {
        let mut rows = rows & !own.map_or(0, |r| 1u64 << r);
        let mut got = [0u32; STASH_SLOTS];
        while rows != 0 {
            let r = rows.trailing_zeros();
            rows &= rows - 1;
            if r as usize >= PARTICIPANT_ROWS {
                break;
            }
            let n = self.stash(r).steal(&mut got, min);
            if n == 0 {
                continue;
            }
            crash_point!("pool.steal.after_claim");
            let cap = self.geom.capacity;
            let valid = got[..n].iter().copied().filter(|&i| i < cap);
            let mut first = None;
            for i in valid {
                if first.is_none() {
                    first = Some(i);
                } else if self.stash_or_list(i) {
                    futex::wake(&self.free_list().seq, 1);
                }
            }
            if first.is_some() {
                return first;
            }
        }
        None
    }

    /// Puts a free slot (refs == 0, ours) in this view's stash, or on the
    /// shared free list if the stash is full or this view has none. Returns
    /// whether someone waits for a slot (the caller wakes one).
    #[must_use]
    fn stash_or_list(&self, index: u32) -> bool {
        let free = self.free_list();
        let stashed = self
            .stash_row
            .and_then(|r| Some((r, self.stash(r).push(index)?)));
        match stashed {
            Some((r, count)) => {
                if count == 1 {
                    let bit = 1u64 << r;
                    let hint = &self.header().stash_hint.0;
                    if hint.load(Ordering::Relaxed) & bit == 0 {
                        hint.fetch_or(bit, Ordering::Relaxed);
                    }
                }
                // The push's CAS is SeqCst: ordered before this read of the
                // waiter count, as the free list's push is.
                free.notify()
            }
            None => free.push(self.ctl(), index),
        }
    }

    /// Empties participant `row`'s stash onto the shared free list (the row
    /// died) and forgets it in the hint.
    fn flush_stash(&self, row: u32) {
        let mut got = [0u32; STASH_SLOTS];
        let n = self.stash(row).steal(&mut got, 1);
        let free = self.free_list();
        for &i in got[..n].iter().filter(|&&i| i < self.geom.capacity) {
            if free.push(self.ctl(), i) {
                futex::wake(&free.seq, 1);
            }
        }
        self.header()
            .stash_hint
            .0
            .fetch_and(!(1u64 << row), Ordering::Relaxed);
    }

    /// Like [`alloc_any`](growth::alloc_any), sleeping on the (first
    /// chunk's) free-list futex until `deadline`. Pushes to later chunks
    /// wake it too.
    fn alloc_until(
        self: &Arc<Self>,
        deadline: Option<Instant>,
    ) -> Option<(Arc<PoolInner>, u32, u32)> {
        loop {
            if let Some(s) = growth::alloc_any(self) {
                return Some(s);
            }
            let free = self.free_list();
            let seq = free.begin_wait();
            // Re-check after announcing ourselves: a push between our failed
            // pop and the announcement would otherwise be missed.
            let got = growth::alloc_any(self);
            let woke = if got.is_none() {
                futex::wait_until(&free.seq, seq, deadline)
            } else {
                futex::Wake::Maybe
            };
            free.end_wait();
            if got.is_some() {
                return got;
            }
            if woke == futex::Wake::TimedOut {
                return growth::alloc_any(self);
            }
        }
    }

    /// Frees slot `index`, whose last reference the caller just released:
    /// drops the values and pushes the slot back.
    fn free_slot(&self, index: u32) {
        // SAFETY: the caller released the last reference in any process, so
        // the slot holds initialised values that nobody else can reach.
        unsafe { (self.drop_slot)(self.slot_ptr(index), self.geom.elements as usize) };
        self.push_free(index);
    }

    /// Pushes a slot with no references (contents already dropped or never
    /// initialised) back, waking one waiter if any.
    pub(crate) fn push_free(&self, index: u32) {
        crash_point!("pool.free.before_push");
        let free = self.free_list();
        if self.stash_or_list(index) {
            futex::wake(&free.seq, 1);
        }
        if self.geom.chunk > 0 {
            if let Some(link) = &self.link {
                link.wake_waiters();
            }
            if free.in_use.fetch_sub(1, Ordering::AcqRel) == 1 {
                if let Some(link) = &self.link {
                    growth::maybe_retire(self, link);
                }
            }
        }
    }

    /// Frees an exclusive slot of a dead owner whose record was already
    /// erased. Its contents may be half-written, so no destructor runs.
    fn free_exclusive_unrecorded(&self, index: u32) {
        self.ctl()[index as usize].release_exclusive();
        self.push_free(index);
    }

    /// Frees an exclusively held slot (a `SampleMut` or `UninitSample`
    /// that was never shared); `drop_values` says whether it is initialised.
    pub(crate) fn free_exclusive(&self, index: u32, drop_values: bool) {
        if drop_values {
            // SAFETY: the slot is initialised and ours alone (EXCLUSIVE).
            unsafe { (self.drop_slot)(self.slot_ptr(index), self.geom.elements as usize) };
        }
        // SYNC POINT: the push's SeqCst CAS publishes the slot's last
        // contents to the next popper.
        self.ctl()[index as usize].release_exclusive();
        self.push_free(index);
    }

    /// Releases one shared reference to `index`; frees it if it was the last.
    pub(crate) fn release_shared(&self, index: u32) {
        if self.ctl()[index as usize].release() {
            self.free_slot(index);
        }
    }

    /// The control block of `local` (this chunk's index of `raw`'s slot).
    fn check_handle(&self, raw: RawSample, local: u32) -> Result<&SlotCtl, HandleError> {
        self.ctl()
            .get(local as usize)
            .ok_or(HandleError::OutOfRange {
                slot: raw.slot,
                capacity: self.geom.capacity,
            })
    }

    /// Releases the reference a queue entry owned, if it names a live,
    /// shared slot of this chunk (`local` is its index here).
    fn release_raw_local(&self, raw: RawSample, local: u32) -> Result<(), HandleError> {
        let ctl = self.check_handle(raw, local)?;
        let (generation, refs) = ctl.snapshot();
        if generation != raw.generation || refs == 0 || refs & free_list::EXCLUSIVE != 0 {
            return Err(self.stale(raw, local));
        }
        self.release_shared(local);
        Ok(())
    }

    fn stale(&self, raw: RawSample, local: u32) -> HandleError {
        let (current, refs) = self.ctl()[local as usize].snapshot();
        HandleError::Stale {
            slot: raw.slot,
            generation: raw.generation,
            current,
            refs,
        }
    }
}

/// Shared implementation of the three pool handles.
#[doc(hidden)]
pub struct PoolCore<V: ?Sized> {
    inner: Arc<PoolInner>,
    _v: PhantomData<fn() -> Box<V>>,
}

impl<V: ?Sized> Clone for PoolCore<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _v: PhantomData,
        }
    }
}

impl<V: ?Sized + SlotView> PoolCore<V> {
    pub(crate) fn inner(&self) -> &Arc<PoolInner> {
        &self.inner
    }

    pub(crate) fn name(&self) -> &str {
        &self.inner.name
    }

    /// Takes over one reference owned by a raw handle (a queue entry).
    ///
    /// # Safety
    /// As [`Pool::from_raw`]: the handle owns a reference, redeemed once.
    pub(crate) unsafe fn adopt(&self, raw: RawSample) -> Result<Sample<V>, HandleError> {
        // SAFETY: forwarded to the caller.
        unsafe { self.adopt_raw(raw) }
    }

    /// Whether `sample` points into this pool (the same pool object, even
    /// if opened through another handle).
    pub(crate) fn owns(&self, sample: &Sample<V>) -> bool {
        let id = self.inner.identity();
        id.is_some() && sample.pool().identity() == id
    }

    /// Counts one more reference to the live sample `raw` names, for a
    /// queue entry. The caller holds a reference to it, so it is alive and
    /// its chunk is mapped; `false` (nothing counted) only if that does not
    /// hold.
    pub(crate) fn retain_raw(&self, raw: RawSample) -> bool {
        match growth::resolve(&self.inner, raw.slot) {
            Ok((chunk, local)) => {
                chunk.ctl()[local as usize].retain();
                true
            }
            Err(e) => {
                tracing::error!(pool = %self.inner.name, error = %e, "cannot count a queue reference");
                false
            }
        }
    }

    /// Records that this process holds the reference `raw` owns (again).
    pub(crate) fn hold_raw(&self, raw: RawSample) {
        if let Ok((chunk, local)) = growth::resolve(&self.inner, raw.slot) {
            chunk.hold(local);
        }
    }

    /// Erases the record of the reference `raw` owns, just before it is
    /// handed to a queue or released.
    pub(crate) fn unhold_raw(&self, raw: RawSample) {
        if let Ok((chunk, local)) = growth::resolve(&self.inner, raw.slot) {
            chunk.unhold(local);
        }
    }

    /// Releases the reference a queue entry owned. An entry that does not
    /// name a live slot (corrupted memory) is refused: nothing is released,
    /// so it can leak but never be released twice.
    pub(crate) fn release_raw(&self, raw: RawSample) -> Result<(), HandleError> {
        let (chunk, local) = growth::resolve(&self.inner, raw.slot)?;
        chunk.release_raw_local(raw, local)
    }

    fn try_slot(&self) -> Option<UninitSample<V>> {
        let (chunk, index, generation) = growth::alloc_any(&self.inner)?;
        Some(UninitSample::new(chunk, index, generation))
    }

    /// A free slot, waiting up to `timeout` (the clock is read only if the
    /// pool is exhausted).
    fn slot_within(&self, timeout: Duration) -> Option<UninitSample<V>> {
        if let Some(s) = self.try_slot() {
            return Some(s);
        }
        let (chunk, index, generation) = self.inner.alloc_until(Some(Instant::now() + timeout))?;
        Some(UninitSample::new(chunk, index, generation))
    }

    fn exhausted<X>(&self, value: X) -> PoolExhausted<X> {
        let capacity = self.inner.geom.capacity * growth::live_chunks(&self.inner);
        PoolExhausted::new(&self.inner.name, capacity, value)
    }

    fn upgrade(&self, raw: RawSample) -> Result<Sample<V>, HandleError> {
        let (chunk, local) = growth::resolve(&self.inner, raw.slot)?;
        let ctl = chunk.check_handle(raw, local)?;
        if !ctl.upgrade(raw.generation) {
            return Err(chunk.stale(raw, local));
        }
        Ok(Sample::adopt_shared(&chunk, local))
    }

    /// # Safety
    /// See [`Pool::from_raw`].
    unsafe fn adopt_raw(&self, raw: RawSample) -> Result<Sample<V>, HandleError> {
        let (chunk, local) = growth::resolve(&self.inner, raw.slot)?;
        let ctl = chunk.check_handle(raw, local)?;
        let (generation, refs) = ctl.snapshot();
        if generation != raw.generation || refs == 0 {
            return Err(chunk.stale(raw, local));
        }
        Ok(Sample::adopt_shared(&chunk, local))
    }
}

macro_rules! pool_common {
    ($view:ty) => {
        /// Number of slots in the chunks that exist now: the capacity the
        /// pool was created with, times [`chunks`](Self::chunks).
        pub fn capacity(&self) -> u32 {
            self.core.inner.geom.capacity * self.chunks()
        }

        /// Slots per chunk: the capacity the pool was created with.
        pub fn chunk_capacity(&self) -> u32 {
            self.core.inner.geom.capacity
        }

        /// Chunks that exist now, the first included (always 1 for a pool
        /// that cannot grow).
        pub fn chunks(&self) -> u32 {
            growth::live_chunks(&self.core.inner)
        }

        /// Chunks this pool may grow to, the first included (1: fixed
        /// size).
        pub fn max_chunks(&self) -> u32 {
            self.core.inner.geom.max_chunks
        }

        /// Number of free slots now, over every chunk (exact when no one is
        /// allocating or freeing concurrently).
        pub fn free_count(&self) -> u32 {
            growth::free_count(&self.core.inner)
        }

        /// The pool's name (its object name, or the `LocalPool` label).
        pub fn name(&self) -> &str {
            &self.core.inner.name
        }

        /// A new reference to the live object a raw handle names, like
        /// `Weak::upgrade`: fails if the slot was freed or reused since. Safe
        /// with any value, even a forged one: it never revives a dead slot.
        pub fn upgrade(&self, raw: RawSample) -> Result<Sample<$view>, HandleError> {
            self.core.upgrade(raw)
        }

        /// Takes over the reference that [`Sample::into_raw`] detached,
        /// after checking that the handle is not stale.
        ///
        /// # Safety
        /// `raw` must come from `into_raw` on a sample of this pool, and
        /// each such handle must be passed to `from_raw` (or released) at
        /// most once across all processes: redeeming one twice releases a
        /// reference that does not exist.
        pub unsafe fn from_raw(&self, raw: RawSample) -> Result<Sample<$view>, HandleError> {
            // SAFETY: forwarded to the caller.
            unsafe { self.core.adopt_raw(raw) }
        }

        /// A slot with uninitialised contents, without waiting.
        pub fn try_loan_uninit(&self) -> Result<UninitSample<$view>, PoolExhausted> {
            self.core.try_slot().ok_or_else(|| self.core.exhausted(()))
        }

        /// A slot with uninitialised contents, waiting up to `timeout`.
        pub fn loan_uninit_timeout(
            &self,
            timeout: Duration,
        ) -> Result<UninitSample<$view>, PoolExhausted> {
            self.core
                .slot_within(timeout)
                .ok_or_else(|| self.core.exhausted(()))
        }
    };
}

/// `try_make` and `make_timeout`, shared by [`Pool`] and [`LocalPool`].
macro_rules! pool_make {
    () => {
        /// Stores `value` in a free slot without waiting.
        pub fn try_make(&self, value: T) -> Result<SampleMut<T>, PoolExhausted<T>> {
            match self.core.try_slot() {
                Some(s) => Ok(s.write(value)),
                None => Err(self.core.exhausted(value)),
            }
        }

        /// Stores `value` in a free slot, waiting up to `timeout` for another
        /// thread or process to free one.
        pub fn make_timeout(
            &self,
            value: T,
            timeout: Duration,
        ) -> Result<SampleMut<T>, PoolExhausted<T>> {
            match self.core.slot_within(timeout) {
                Some(s) => Ok(s.write(value)),
                None => Err(self.core.exhausted(value)),
            }
        }
    };
}

/// Bytes and alignment of a pool object of `capacity` slots of `elements`
/// values of `T` (one chunk): what a segment needs to hold it.
pub(crate) fn pool_object_bytes<T>(
    capacity: u32,
    elements: u32,
) -> Result<(u64, u64), PoolOpenError> {
    let geom = Geometry::new::<T>(capacity, elements)?;
    Ok((geom.total_size as u64, geom.align as u64))
}

/// Builds a pool in a segment. The finishing method names the policy.
#[derive(Debug)]
pub struct PoolBuilder<'s, T> {
    segment: &'s Segment,
    name: String,
    capacity: u32,
    elements: u32,
    max_chunks: u32,
    timeout: Duration,
    _t: PhantomData<fn() -> T>,
}

impl<'s, T: ShmSafe> PoolBuilder<'s, T> {
    fn new(segment: &'s Segment, name: &str) -> Self {
        Self {
            segment,
            name: name.to_owned(),
            capacity: 64,
            elements: 1,
            max_chunks: 1,
            timeout: Duration::from_secs(1),
            _t: PhantomData,
        }
    }

    /// Number of slots (default 64).
    #[must_use]
    pub fn capacity(mut self, slots: u32) -> Self {
        self.capacity = slots;
        self
    }

    /// How long `make_pooled` and `loan` wait for a free slot (default 1 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Lets the pool grow, up to `max_chunks` chunks of `capacity` slots
    /// each, the first included (default 1: fixed size; at most
    /// [`MAX_POOL_CHUNKS`]). When every chunk is exhausted, an allocation
    /// adds a chunk in a segment of its own, which other processes map
    /// when they first meet one of its slots; a chunk that becomes
    /// entirely free while a newer one exists is retired and its segment
    /// unlinked. Only when `max_chunks` chunks exist does an allocation
    /// wait or fail.
    #[must_use]
    pub fn growable(mut self, max_chunks: u32) -> Self {
        self.max_chunks = max_chunks;
        self
    }

    fn spec(&self, kind: ObjectKind, fingerprint: u64, geom: &Geometry, any: bool) -> ObjectSpec {
        ObjectSpec {
            ty: ObjectType {
                kind,
                fingerprint,
                size: geom.total_size as u64,
            },
            align: geom.align as u64,
            any_size: any,
        }
    }

    fn build(self, kind: ObjectKind, create: bool) -> Result<Arc<PoolInner>, PoolOpenError> {
        let fingerprint = pool_fingerprint::<T>(kind);
        let asked = if create {
            Some(Geometry::new::<T>(self.capacity, self.elements)?.growth(self.max_chunks, 0)?)
        } else {
            None
        };
        let placed = match &asked {
            Some(geom) => self.segment.find_or_create_raw(
                &self.name,
                self.spec(kind, fingerprint, geom, true),
                |ptr| {
                    // SAFETY: the directory reserved `geom.total_size` bytes
                    // at `ptr`, aligned to `geom.align`, for us alone.
                    unsafe { init_pool::<T>(ptr, geom, fingerprint, 0) }
                },
            )?,
            None => {
                let probe = Geometry::new::<T>(1, 1)?;
                self.segment
                    .find_raw(&self.name, self.spec(kind, fingerprint, &probe, true))?
            }
        };
        let ptr = self.segment.ptr_at(placed.offset);
        let corrupt = |what| PoolOpenError::Corrupt {
            name: self.name.clone(),
            what,
        };
        if placed.size < size_of::<PoolHeader>() as u64 {
            return Err(corrupt("object smaller than a pool header"));
        }
        // SAFETY: the object is at least a header long, 64-aligned (objects
        // are placed at cache-line boundaries) and initialised; the plain
        // fields are immutable after publication.
        let header = unsafe { ptr.cast::<PoolHeader>().as_ref() };
        let found = validate_header::<T>(header, placed.size)
            .ok_or_else(|| corrupt("header does not match its object"))?;
        if found.chunk != 0 {
            return Err(corrupt("the object is a later chunk of a pool"));
        }
        if let Some(geom) = asked {
            if (geom.capacity, geom.elements) != (found.capacity, found.elements) {
                return Err(PoolOpenError::GeometryMismatch {
                    name: self.name,
                    capacity: geom.capacity,
                    elements: geom.elements,
                    found_capacity: found.capacity,
                    found_elements: found.elements,
                });
            }
            if geom.max_chunks != found.max_chunks {
                return Err(PoolOpenError::GrowthMismatch {
                    name: self.name,
                    max_chunks: geom.max_chunks,
                    found_max_chunks: found.max_chunks,
                });
            }
            debug_assert_eq!(geom, found);
        }
        // One view per pool per segment handle: the holdings bitmap of this
        // handle's participant row then has a single writer.
        self.segment.local_view(placed.offset, || {
            let mut inner = make_inner::<T>(
                ptr,
                found,
                self.name.clone(),
                self.timeout,
                Backing::Segment(self.segment.clone()),
            );
            inner.identity = Some((self.segment.id(), placed.offset));
            inner.row = Some(self.segment.participant_row());
            inner.stash_row = inner.row;
            inner.growth = Growth::new(&inner, self.segment, placed.offset, kind, fingerprint);
            Ok(Arc::new(inner))
        })
    }

    /// Finds the pool, or creates it with the configured capacity. An
    /// existing pool with another capacity is a `GeometryMismatch`.
    pub fn open_or_create(self) -> Result<Pool<T>, PoolOpenError> {
        let segment = self.segment.clone();
        Ok(Pool {
            core: PoolCore {
                inner: self.build(ObjectKind::POOL, true)?,
                _v: PhantomData,
            },
            segment,
        })
    }

    /// Opens an existing pool, whatever its capacity.
    pub fn open(self) -> Result<Pool<T>, PoolOpenError> {
        let segment = self.segment.clone();
        Ok(Pool {
            core: PoolCore {
                inner: self.build(ObjectKind::POOL, false)?,
                _v: PhantomData,
            },
            segment,
        })
    }
}

/// The same builder for array pools: also needs the element count.
#[derive(Debug)]
pub struct ArrayPoolBuilder<'s, T>(PoolBuilder<'s, T>);

impl<T: ShmSafe> ArrayPoolBuilder<'_, T> {
    /// Number of slots (default 64).
    #[must_use]
    pub fn capacity(mut self, slots: u32) -> Self {
        self.0.capacity = slots;
        self
    }

    /// Elements per slot (default 1), e.g. pixels per image.
    #[must_use]
    pub fn elements(mut self, n: u32) -> Self {
        self.0.elements = n;
        self
    }

    /// How long waiting loans wait for a free slot (default 1 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.0.timeout = timeout;
        self
    }

    /// Lets the pool grow to `max_chunks` chunks, as
    /// [`PoolBuilder::growable`].
    #[must_use]
    pub fn growable(mut self, max_chunks: u32) -> Self {
        self.0.max_chunks = max_chunks;
        self
    }

    /// Finds the pool, or creates it with the configured geometry.
    pub fn open_or_create(self) -> Result<ArrayPool<T>, PoolOpenError> {
        let segment = self.0.segment.clone();
        Ok(ArrayPool {
            core: PoolCore {
                inner: self.0.build(ObjectKind::ARRAY_POOL, true)?,
                _v: PhantomData,
            },
            segment,
        })
    }

    /// Opens an existing array pool, whatever its geometry.
    pub fn open(self) -> Result<ArrayPool<T>, PoolOpenError> {
        let segment = self.0.segment.clone();
        Ok(ArrayPool {
            core: PoolCore {
                inner: self.0.build(ObjectKind::ARRAY_POOL, false)?,
                _v: PhantomData,
            },
            segment,
        })
    }
}

fn pool_fingerprint<T: ShmSafe>(kind: ObjectKind) -> u64 {
    Hasher::new()
        .str("pool")
        .u64(u64::from(kind.0))
        .u64(u64::from(POOL_MAGIC))
        .u64(T::FINGERPRINT)
        .u64(size_of::<T>() as u64)
        .finish()
}

/// Writes a fresh pool (header, linked free list) at `ptr`, for elements
/// of `T`.
///
/// # Safety
/// As [`init_pool_untyped`].
unsafe fn init_pool<T>(ptr: NonNull<u8>, geom: &Geometry, fingerprint: u64, seed: u32) {
    // SAFETY: forwarded to the caller.
    unsafe {
        init_pool_untyped(
            ptr,
            geom,
            (size_of::<T>(), align_of::<T>()),
            fingerprint,
            seed,
        )
    }
}

/// Writes a fresh pool at `ptr`: header, free list linking every slot,
/// and every slot's generation set to `seed`.
///
/// # Safety
/// `ptr` must be valid for writes of `geom.total_size` bytes, aligned to
/// `geom.align`, and not accessed by anyone else during the call.
unsafe fn init_pool_untyped(
    ptr: NonNull<u8>,
    geom: &Geometry,
    (elem_size, elem_align): (usize, usize),
    fingerprint: u64,
    seed: u32,
) {
    let header = PoolHeader {
        magic: POOL_MAGIC,
        capacity: geom.capacity,
        elements: geom.elements,
        elem_size: elem_size as u32,
        elem_align: elem_align as u32,
        _pad0: 0,
        stride: geom.stride as u64,
        ctl_offset: geom.ctl_offset as u64,
        slots_offset: geom.slots_offset as u64,
        total_size: geom.total_size as u64,
        elem_fingerprint: fingerprint,
        max_chunks: geom.max_chunks,
        chunk_index: geom.chunk,
        free: CacheLine(FreeList::new(geom.capacity)),
        chunks: CacheLine(std::array::from_fn(|_| AtomicU64::new(0))),
        stash_hint: CacheLine(AtomicU64::new(0)),
    };
    // SAFETY: `ptr` is valid and aligned for a header (caller; the header
    // is 64-aligned and geom.align >= 64).
    unsafe { ptr.cast::<PoolHeader>().as_ptr().write(header) };
    for (i, ctl) in linked_ctl(geom.capacity).enumerate() {
        // SAFETY: control block `i < capacity` lies inside the object
        // (`Geometry::new` sized it), 64-aligned within a 64-aligned object.
        let p = ptr
            .as_ptr()
            .wrapping_add(geom.ctl_offset + i * size_of::<SlotCtl>())
            .cast::<SlotCtl>();
        ctl.word.store(u64::from(seed) << 32, Ordering::Relaxed);
        // SAFETY: see above.
        unsafe { p.write(ctl) };
    }
}

/// Reads the geometry back from a header and checks it against the
/// directory entry's size and against `T`. `None` if anything disagrees.
fn validate_header<T>(h: &PoolHeader, object_size: u64) -> Option<Geometry> {
    if h.elem_size as usize != size_of::<T>() || h.elem_align as usize != align_of::<T>() {
        return None;
    }
    validate_header_untyped(h, object_size)
}

/// [`validate_header`] without knowing the element type: trusts the
/// header's element size and alignment, checks everything derived from them.
fn validate_header_untyped(h: &PoolHeader, object_size: u64) -> Option<Geometry> {
    if h.magic != POOL_MAGIC {
        return None;
    }
    let geom = Geometry::with(
        h.elem_size as usize,
        h.elem_align as usize,
        h.capacity,
        h.elements,
    )
    .ok()?
    .growth(h.max_chunks, h.chunk_index)
    .ok()?;
    let agrees = geom.stride as u64 == h.stride
        && geom.ctl_offset as u64 == h.ctl_offset
        && geom.slots_offset as u64 == h.slots_offset
        && geom.total_size as u64 == h.total_size
        && h.total_size == object_size;
    agrees.then_some(geom)
}

/// Releases every pool reference that participant `row` (now dead) held in
/// the pool at `offset` of `segment`: for each recorded slot, erase the
/// record, then release (so a reclaimer that dies mid-way can leak but
/// never release twice). Values whose last reference goes are dropped with
/// their destructor if this process has the pool open with its type, else
/// freed without running a destructor.
pub(crate) fn reclaim_row(segment: &Segment, offset: u64, size: u64, row: u32) {
    if row as usize >= PARTICIPANT_ROWS {
        return;
    }
    let _ = size;
    let Some(view) = untyped_view(segment, offset) else {
        tracing::error!(segment = %segment.name(), offset, "cannot reclaim from a corrupt pool");
        return;
    };
    let words = view.geom.capacity.div_ceil(64);
    for w in 0..words {
        let word = view.holdings_word(row, w * 64);
        let bits = word.swap(0, Ordering::AcqRel);
        if bits != 0 {
            crash_point!("reclaim.pool.after_erase");
        }
        for b in 0..64 {
            if bits & (1 << b) != 0 {
                let slot = w * 64 + b;
                if slot < view.geom.capacity {
                    reclaim_slot(&view, slot, row);
                }
            }
        }
    }
    // Its stash of free slots: back to the shared list.
    view.flush_stash(row);
    // Slots it held exclusively (loaned, never shared) name it in their
    // control word. Only their owner could change such a word, and it is
    // dead: the CAS frees each exactly once, even against a second
    // reclaimer.
    let tag = u64::from(free_list::EXCLUSIVE | (row + 1));
    for (slot, ctl) in view.ctl().iter().enumerate() {
        let w = ctl.word.load(Ordering::Acquire);
        if w & 0xffff_ffff == tag
            && ctl
                .word
                .compare_exchange(w, w & !0xffff_ffff, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            // Its contents may be half-written: no destructor runs.
            view.push_free(slot as u32);
        }
    }
    // A growable pool's later chunks live in segments of their own, with
    // participant tables of their own: reclaim the dead there too.
    for chunk in growth::mapped_chunks(&view) {
        if let Err(e) = chunk.segment().map(Segment::cleanup_dead).transpose() {
            tracing::error!(pool = %view.name, error = %e, "reclaiming in a pool chunk failed");
        }
    }
}

/// Releases the reference a queue entry owned, in the pool at `offset` of
/// `segment`, when the caller has no typed handle (reclaiming a dead
/// participant's router ports). `false` if the entry or the pool is invalid
/// (nothing is released).
pub(crate) fn release_raw_at(segment: &Segment, offset: u64, raw: RawSample) -> bool {
    let Some(view) = untyped_view(segment, offset) else {
        return false;
    };
    let Ok((chunk, local)) = growth::resolve(&view, raw.slot) else {
        return false;
    };
    chunk.release_raw_local(raw, local).is_ok()
}

/// This handle's view of the pool at `offset`, or an untyped one (values
/// freed through it run no destructor). `None` if it is not a valid pool.
fn untyped_view(segment: &Segment, offset: u64) -> Option<Arc<PoolInner>> {
    if let Some(v) = segment.existing_view::<PoolInner>(offset) {
        return Some(v);
    }
    let (kind, _, size) = segment.objects_raw().into_iter().find(|&(kind, off, _)| {
        off == offset && (kind == ObjectKind::POOL || kind == ObjectKind::ARRAY_POOL)
    })?;
    if size < size_of::<PoolHeader>() as u64 {
        return None;
    }
    let ptr = segment.ptr_at(offset);
    // SAFETY: `offset` is a READY pool entry of the directory, in bounds,
    // at least a header long and 64-aligned; the plain header fields are
    // immutable after publication.
    let header = unsafe { ptr.cast::<PoolHeader>().as_ref() };
    let geom = validate_header_untyped(header, size)?;
    let mut inner = make_inner::<()>(
        ptr,
        geom,
        format!("pool@{offset}"),
        Duration::ZERO,
        Backing::Segment(segment.clone()),
    );
    inner.identity = Some((segment.id(), offset));
    inner.base = geom.chunk * geom.capacity;
    if geom.chunk == 0 {
        let fingerprint = header.elem_fingerprint;
        inner.growth = Growth::new(&inner, segment, offset, kind, fingerprint);
    }
    Some(Arc::new(inner))
}

/// Releases the one reference dead participant `row` held on `slot`.
fn reclaim_slot(pool: &PoolInner, slot: u32, row: u32) {
    let ctl = &pool.ctl()[slot as usize];
    let (_, refs) = ctl.snapshot();
    if refs == 0 {
        tracing::error!(pool = %pool.name, slot, "holdings record names a free slot; ignoring it");
    } else if let Some(owner) = free_list::exclusive_owner(refs) {
        if owner == row + 1 {
            // It died freezing the sample (recorded, not yet shared): it
            // was the only holder.
            pool.free_exclusive_unrecorded(slot);
        } else {
            tracing::error!(pool = %pool.name, slot, "holdings record names another owner's loan; ignoring it");
        }
    } else {
        pool.release_shared(slot);
    }
}

fn make_inner<T>(
    ptr: NonNull<u8>,
    geom: Geometry,
    name: String,
    timeout: Duration,
    backing: Backing,
) -> PoolInner {
    // SAFETY: offsets validated against the object size.
    let ctl = unsafe { ptr.add(geom.ctl_offset) }.cast();
    // SAFETY: as above.
    let slots = unsafe { ptr.add(geom.slots_offset) };
    PoolInner {
        header: ptr.cast(),
        ctl,
        slots,
        geom,
        local: (0..geom.capacity)
            .map(|_| atomic::AtomicU32::new(0))
            .collect(),
        base: 0,
        growth: None,
        link: None,
        stash_row: None,
        drop_slot: drop_elements::<T>,
        identity: None,
        row: None,
        name,
        timeout,
        _backing: backing,
    }
}

/// A pool of `T` in a shared-memory segment.
///
/// ```
/// use shmidl::{Pool, Segment};
/// # let name = format!("doc-pool-{}", std::process::id());
/// let segment = Segment::builder(&name).size(1 << 20).open_or_create()?;
/// let pool = Pool::<[f32; 16]>::builder(&segment, "poses").capacity(8).open_or_create()?;
/// let mut s = pool.make_pooled([0.0; 16])?;   // unique and mutable
/// s[3] = 1.5;
/// let shared = s.freeze();                     // shared, read-only, clonable
/// let again = shared.clone();
/// assert_eq!(again[3], 1.5);
/// assert_eq!(pool.free_count(), 7);
/// drop((shared, again));
/// assert_eq!(pool.free_count(), 8);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool<T: ShmSafe> {
    core: PoolCore<T>,
    segment: Segment,
}

impl<T: ShmSafe> Clone for Pool<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            segment: self.segment.clone(),
        }
    }
}

impl<T: ShmSafe> Pool<T> {
    /// The segment the pool lives in.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// Starts building the pool `name` in `segment`.
    pub fn builder<'s>(segment: &'s Segment, name: &str) -> PoolBuilder<'s, T> {
        PoolBuilder::new(segment, name)
    }

    pool_common!(T);

    /// Stores `value` in a free slot, waiting up to the pool's timeout.
    pub fn make_pooled(&self, value: T) -> Result<SampleMut<T>, PoolExhausted<T>> {
        self.make_timeout(value, self.core.inner.timeout)
    }

    pool_make!();

    /// A slot with whatever bytes it held (zero if never used), waiting up
    /// to the pool's timeout: nothing is written, so loaning a multi-megabyte
    /// slot costs the same as a small one. Any bytes are a valid `T`
    /// (`ShmSafe`), but they may be a previous message's.
    pub fn loan_recycled(&self) -> Result<SampleMut<T>, PoolExhausted> {
        let slot = self.loan_uninit()?;
        // SAFETY: pool memory always holds initialised bytes (zero-filled
        // segment or heap pages, or a previous value's bytes, which have no
        // padding), and any bytes are a valid `T` ("every byte pattern is a
        // valid value", `ShmSafe`).
        Ok(unsafe { slot.assume_init() })
    }

    /// Like [`loan_recycled`](Self::loan_recycled), without waiting.
    pub fn try_loan_recycled(&self) -> Result<SampleMut<T>, PoolExhausted> {
        let slot = self.try_loan_uninit()?;
        // SAFETY: as in `loan_recycled`.
        Ok(unsafe { slot.assume_init() })
    }

    /// A slot with uninitialised contents, waiting up to the pool's
    /// timeout: write it with [`UninitSample::write`], or through
    /// [`UninitSample::as_mut_ptr`] then `assume_init`.
    pub fn loan_uninit(&self) -> Result<UninitSample<T>, PoolExhausted> {
        self.loan_uninit_timeout(self.core.inner.timeout)
    }

    /// A slot whose bytes are all zero, waiting up to the pool's timeout;
    /// no `Default` needed, whatever the size of `T`.
    pub fn loan_zeroed(&self) -> Result<SampleMut<T>, PoolExhausted> {
        Ok(self.loan_uninit()?.zeroed())
    }

    /// Like [`loan_zeroed`](Self::loan_zeroed), without waiting.
    pub fn try_loan_zeroed(&self) -> Result<SampleMut<T>, PoolExhausted> {
        Ok(self.try_loan_uninit()?.zeroed())
    }

    /// A slot holding `T::default()`, waiting up to the pool's timeout.
    pub fn loan(&self) -> Result<SampleMut<T>, PoolExhausted>
    where
        T: Default,
    {
        self.make_pooled(T::default())
            .map_err(|_| self.core.exhausted(()))
    }

    /// A slot holding `T::default()`, without waiting.
    pub fn try_loan(&self) -> Result<SampleMut<T>, PoolExhausted>
    where
        T: Default,
    {
        self.try_make(T::default())
            .map_err(|_| self.core.exhausted(()))
    }
}

/// A pool whose slots hold `n` elements of `T` each (`n` fixed when the
/// pool is created): images, point clouds. Pointers deref to `[T]`.
///
/// ```
/// use shmidl::{ArrayPool, Segment};
/// # let name = format!("doc-apool-{}", std::process::id());
/// let segment = Segment::builder(&name).size(4 << 20).open_or_create()?;
/// let images = ArrayPool::<u8>::builder(&segment, "frames")
///     .capacity(4)
///     .elements(640 * 480)
///     .open_or_create()?;
/// let mut frame = images.try_loan_filled(0)?;
/// frame[0] = 255;
/// assert_eq!(frame.len(), 640 * 480);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ArrayPool<T: ShmSafe> {
    core: PoolCore<[T]>,
    segment: Segment,
}

impl<T: ShmSafe> Clone for ArrayPool<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            segment: self.segment.clone(),
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl<T: crate::ShmSafe> Sealed for super::Pool<T> {}
    impl<T: crate::ShmSafe> Sealed for super::ArrayPool<T> {}
}

/// A pool in shared memory whose samples a [`Router`](crate::Router)
/// carries: [`Pool<T>`] (samples of `T`) or [`ArrayPool<T>`] (samples of
/// `[T]`, each with its own length). Sealed.
pub trait RouterPool: sealed::Sealed + Clone + Send + Sync + 'static {
    /// What a sample of the pool is seen as.
    type View: ?Sized + SlotView<Pool = Self>;

    /// The untyped pool behind the handle.
    #[doc(hidden)]
    fn core(&self) -> &PoolCore<Self::View>;

    /// The segment the pool lives in.
    #[doc(hidden)]
    fn home(&self) -> &Segment;

    /// Opens or creates the pool `name` in `segment`; `elements` is the
    /// slot length of an array pool (ignored otherwise).
    #[doc(hidden)]
    fn open_in(
        segment: &Segment,
        name: &str,
        capacity: u32,
        elements: u32,
        max_chunks: u32,
    ) -> Result<Self, PoolOpenError>;

    /// Bytes and alignment of one chunk of such a pool.
    #[doc(hidden)]
    fn object_bytes(capacity: u32, elements: u32) -> Result<(u64, u64), PoolOpenError>;
}

impl<T: ShmSafe> RouterPool for Pool<T> {
    type View = T;

    fn core(&self) -> &PoolCore<T> {
        &self.core
    }

    fn home(&self) -> &Segment {
        &self.segment
    }

    fn open_in(
        segment: &Segment,
        name: &str,
        capacity: u32,
        _elements: u32,
        max_chunks: u32,
    ) -> Result<Self, PoolOpenError> {
        Pool::builder(segment, name)
            .capacity(capacity)
            .growable(max_chunks)
            .open_or_create()
    }

    fn object_bytes(capacity: u32, _elements: u32) -> Result<(u64, u64), PoolOpenError> {
        pool_object_bytes::<T>(capacity, 1)
    }
}

impl<T: ShmSafe> RouterPool for ArrayPool<T> {
    type View = [T];

    fn core(&self) -> &PoolCore<[T]> {
        &self.core
    }

    fn home(&self) -> &Segment {
        &self.segment
    }

    fn open_in(
        segment: &Segment,
        name: &str,
        capacity: u32,
        elements: u32,
        max_chunks: u32,
    ) -> Result<Self, PoolOpenError> {
        ArrayPool::builder(segment, name)
            .capacity(capacity)
            .elements(elements)
            .growable(max_chunks)
            .open_or_create()
    }

    fn object_bytes(capacity: u32, elements: u32) -> Result<(u64, u64), PoolOpenError> {
        pool_object_bytes::<T>(capacity, elements)
    }
}

impl<T: ShmSafe> ArrayPool<T> {
    /// Starts building the array pool `name` in `segment`.
    pub fn builder<'s>(segment: &'s Segment, name: &str) -> ArrayPoolBuilder<'s, T> {
        ArrayPoolBuilder(PoolBuilder::new(segment, name))
    }

    pool_common!([T]);

    /// Elements per slot: the longest sample.
    pub fn elements(&self) -> u32 {
        self.core.inner.geom.elements
    }

    /// The segment the pool lives in.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// A sample of `len` elements (at most [`elements`](Self::elements)),
    /// waiting up to the pool's timeout, holding whatever the slot held
    /// (zero bytes or an earlier sample's elements, valid `T`s either way):
    /// nothing is written, so a 4 MiB sample costs what a 64-byte one does.
    /// Fill it, then freeze or publish it; readers see `len` elements.
    pub fn loan_slice(&self, len: usize) -> Result<SampleMut<[T]>, LoanError> {
        self.check_len(len)?;
        let slot = self.loan_uninit_timeout(self.core.inner.timeout)?;
        Ok(Self::recycled(slot, len))
    }

    /// Like [`loan_slice`](Self::loan_slice), without waiting.
    pub fn try_loan_slice(&self, len: usize) -> Result<SampleMut<[T]>, LoanError> {
        self.check_len(len)?;
        let slot = self.try_loan_uninit()?;
        Ok(Self::recycled(slot, len))
    }

    /// A sample holding a copy of `items` (at most
    /// [`elements`](Self::elements) of them), waiting up to the pool's
    /// timeout.
    pub fn loan_copy(&self, items: &[T]) -> Result<SampleMut<[T]>, LoanError>
    where
        T: Copy,
    {
        let mut sample = self.loan_slice(items.len())?;
        sample.copy_from_slice(items);
        Ok(sample)
    }

    fn check_len(&self, len: usize) -> Result<(), SliceTooLong> {
        let capacity = self.elements() as usize;
        if len > capacity {
            return Err(SliceTooLong {
                requested: len,
                capacity,
            });
        }
        Ok(())
    }

    /// `slot` as a sample of `len <= elements` elements, with the bytes it
    /// holds.
    fn recycled(slot: UninitSample<[T]>, len: usize) -> SampleMut<[T]> {
        // SAFETY: pool memory always holds initialised bytes (zero-filled
        // segment pages, or an earlier sample's elements, which have no
        // padding), and any bytes are a valid `T` (`ShmSafe`).
        let mut sample = unsafe { slot.assume_init() };
        sample.truncate(len);
        sample
    }

    /// A slot with every element set to `value`, without waiting.
    pub fn try_loan_filled(&self, value: T) -> Result<SampleMut<[T]>, PoolExhausted>
    where
        T: Clone,
    {
        let s = self.try_loan_uninit()?;
        Ok(s.fill_with(|_| value.clone()))
    }

    /// A slot with a copy of `items` (which must have exactly
    /// [`elements`](Self::elements) items), without waiting.
    pub fn try_loan_copy(&self, items: &[T]) -> Result<SampleMut<[T]>, PoolExhausted>
    where
        T: Copy,
    {
        assert_eq!(
            items.len(),
            self.elements() as usize,
            "slice length differs from the pool's element count"
        );
        let s = self.try_loan_uninit()?;
        Ok(s.fill_with(|i| items[i]))
    }

    /// A slot whose element `i` is `f(i)`, waiting up to the pool's timeout.
    pub fn loan_with(&self, f: impl FnMut(usize) -> T) -> Result<SampleMut<[T]>, PoolExhausted> {
        let s = self.loan_uninit_timeout(self.core.inner.timeout)?;
        Ok(s.fill_with(f))
    }
}

/// The same pool on the heap, for one process: no segment, same pointers.
///
/// ```
/// use shmidl::LocalPool;
/// let pool = LocalPool::<u64>::new(4)?;
/// let a = pool.try_make(7).map_err(|e| e.to_string())?.freeze();
/// assert_eq!(*a.clone(), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LocalPool<T: ShmSafe> {
    core: PoolCore<T>,
}

impl<T: ShmSafe> Clone for LocalPool<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
        }
    }
}

impl<T: ShmSafe> LocalPool<T> {
    /// A heap pool of `capacity` slots.
    pub fn new(capacity: u32) -> Result<Self, PoolOpenError> {
        let geom = Geometry::new::<T>(capacity, 1)?;
        let layout = Layout::from_size_align(geom.total_size, geom.align).map_err(|_| {
            PoolOpenError::InvalidGeometry("pool does not fit in the address space")
        })?;
        // SAFETY: `layout` has non-zero size (at least a header).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        // SAFETY: freshly allocated with the geometry's size and alignment.
        unsafe { init_pool::<T>(ptr, &geom, pool_fingerprint::<T>(ObjectKind::POOL), 0) };
        let mut inner = make_inner::<T>(
            ptr,
            geom,
            "local".to_owned(),
            Duration::from_secs(1),
            Backing::Heap { ptr, layout },
        );
        inner.stash_row = Some(0);
        Ok(Self {
            core: PoolCore {
                inner: Arc::new(inner),
                _v: PhantomData,
            },
        })
    }

    pool_common!(T);

    pool_make!();
}

#[allow(dead_code)]
const _: () = assert!(NIL == u32::MAX && MAX_POOL_CAPACITY < NIL);

/// What an audit changed in one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolAudit {
    /// Slots whose reference count disagreed with the holders found, and
    /// was corrected.
    pub counts_fixed: u32,
    /// Slots found with no holder and returned to the free list.
    pub slots_freed: u32,
}

/// Audits the pool at `offset` of a quiescent segment: every reference must
/// be accounted for by a participant's holdings record or by one of the
/// `queued` values (raw handles in router queues). Leaked references are
/// released, and slots lost off the free list are put back.
///
/// A growable pool's later chunks are audited too (their segments must be
/// quiescent as well): dead participants there are reclaimed first, and
/// each queued handle is counted in the chunk it names.
pub(crate) fn audit_pool(segment: &Segment, offset: u64, queued: &[u64]) -> Option<PoolAudit> {
    let view = untyped_view(segment, offset)?;
    let cap = view.geom.capacity;
    let mut report = audit_chunk(
        &view,
        segment.participant_row(),
        queued.iter().copied().filter(|&q| (q as u32) < cap),
    );
    for chunk in growth::mapped_chunks(&view) {
        if let Some(Err(e)) = chunk.segment().map(Segment::cleanup_dead) {
            tracing::error!(pool = %view.name, error = %e, "reclaiming in a pool chunk failed");
        }
        let base = chunk.base;
        let mine = queued.iter().copied().filter_map(|q| {
            let raw = RawSample::from_u64(q);
            let local = raw.slot.checked_sub(base).filter(|&l| l < cap)?;
            Some(
                RawSample {
                    slot: local,
                    generation: raw.generation,
                }
                .to_u64(),
            )
        });
        let auditor = chunk.segment().map_or(u32::MAX, Segment::participant_row);
        let r = audit_chunk(&chunk, auditor, mine);
        report.counts_fixed += r.counts_fixed;
        report.slots_freed += r.slots_freed;
        // The retirement hint, recounted now that it is exact.
        let in_use = cap - FreeList::count_free(chunk.ctl());
        chunk.free_list().in_use.store(in_use, Ordering::Release);
    }
    Some(report)
}

/// [`audit_pool`] for one chunk; `queued` holds handles with this chunk's
/// slot indices.
/// `auditor` is the auditing handle's participant row in the chunk's
/// segment.
fn audit_chunk(view: &PoolInner, auditor: u32, queued: impl Iterator<Item = u64>) -> PoolAudit {
    let cap = view.geom.capacity;
    let mut holders = vec![0u32; cap as usize];
    for row in 0..PARTICIPANT_ROWS as u32 {
        for w in 0..cap.div_ceil(64) {
            let bits = view.holdings_word(row, w * 64).load(Ordering::Acquire);
            for b in 0..64 {
                let slot = w * 64 + b;
                if bits & (1 << b) != 0 && slot < cap {
                    holders[slot as usize] += 1;
                }
            }
        }
    }
    for q in queued {
        let raw = RawSample::from_u64(q);
        if let Some(ctl) = view.ctl().get(raw.slot as usize) {
            if ctl.snapshot().0 == raw.generation {
                holders[raw.slot as usize] += 1;
            }
        }
    }
    // Walk the free list (bounded: a cycle in a corrupt list ends it) and
    // the stashes: slots on either are free and reachable.
    let mut on_list = vec![false; cap as usize];
    for r in 0..PARTICIPANT_ROWS as u32 {
        for i in view.stash(r).snapshot() {
            if let Some(b) = on_list.get_mut(i as usize) {
                *b = true;
            }
        }
    }
    let mut at = view.free_list().head.load(Ordering::Acquire) as u32;
    for _ in 0..cap {
        match view.ctl().get(at as usize) {
            Some(c) if !on_list[at as usize] => {
                on_list[at as usize] = true;
                at = c.next.load(Ordering::Acquire);
            }
            _ => break,
        }
    }
    let mut report = PoolAudit::default();
    for slot in 0..cap {
        let ctl = &view.ctl()[slot as usize];
        let (generation, refs) = ctl.snapshot();
        let (counted, expected) = match free_list::exclusive_owner(refs) {
            // Loaned to the auditor itself: held.
            Some(owner) if owner.checked_sub(1) == Some(auditor) => continue,
            // Loaned to anyone else: the audit runs with no other live
            // participant, so its owner is dead and it leaked.
            Some(_) => (1, 0),
            None => (refs, holders[slot as usize]),
        };
        if counted == expected && (counted > 0 || on_list[slot as usize]) {
            continue;
        }
        if expected == 0 {
            if counted > 0 {
                // Leaked: no one can reach it. Contents may be half
                // written by a dead owner: free without a destructor.
                ctl.word
                    .store(u64::from(generation) << 32, Ordering::Release);
                report.counts_fixed += 1;
            }
            if !on_list[slot as usize] {
                view.push_free(slot);
                report.slots_freed += 1;
            }
        } else {
            ctl.word.store(
                u64::from(generation) << 32 | u64::from(expected),
                Ordering::Release,
            );
            report.counts_fixed += 1;
        }
    }
    report
}

/// Slot usage of the pool object at `ptr` of `size` bytes, read without a
/// handle (for `shmidl ls`). `None` if the header is invalid.
pub(crate) fn stats_at(ptr: *mut u8, size: u64) -> Option<crate::segment::PoolStats> {
    let ptr = NonNull::new(ptr)?;
    if size < size_of::<PoolHeader>() as u64 {
        return None;
    }
    // SAFETY: the caller passes a READY pool entry inside a mapped segment,
    // at least a header long and 64-aligned; plain header fields are
    // immutable after publication.
    let header = unsafe { ptr.cast::<PoolHeader>().as_ref() };
    let geom = validate_header_untyped(header, size)?;
    let ctl_at = ptr.as_ptr().wrapping_add(geom.ctl_offset).cast::<SlotCtl>();
    // SAFETY: `capacity` control blocks lie inside the object at
    // `ctl_offset` (validated geometry), 64-aligned; all atomics.
    let ctl = unsafe { std::slice::from_raw_parts(ctl_at, geom.capacity as usize) };
    Some(crate::segment::PoolStats {
        capacity: geom.capacity,
        free: FreeList::count_free(ctl),
    })
}
