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

mod dynamic;
mod error;
pub(crate) mod free_list;
mod geometry;
mod growth;
mod handles;
mod reclaim;
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
use self::geometry::*;
use self::growth::remove_chunks;
use self::growth::{Growth, RootLink};
pub use self::handles::*;
pub(crate) use self::reclaim::*;
use self::stash::{Stash, STASH_SLOTS};
pub use self::{
    dynamic::DynPool,
    error::{HandleError, LoanError, PoolExhausted, PoolOpenError},
    growth::MAX_POOL_CHUNKS,
    sample::{DynMessage, RawSample, Sample, SampleMut, SliceTooLong, SlotView, UninitSample},
};
use crate::{
    crash::crash_point,
    fingerprint::Hasher,
    futex,
    segment::{self, ObjectKind, ObjectSpec, ObjectType, Segment},
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
    /// Held (process-locally) by the thread working on `stash_row`'s
    /// stash. The stash protocol allows one owner at a time (two
    /// concurrent pushes would write the same entry); threads of this
    /// process that find it taken use the shared free list instead, so no
    /// one ever waits for it.
    stash_busy: atomic::AtomicBool,
    name: String,
    /// The topic whose pool this is, when a `Node` opened it (its object
    /// is then named `pool`, so errors name the topic instead).
    topic: Option<String>,
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

    /// Bytes of one element of the pool (`size_of::<T>()`).
    pub(crate) fn elem_size(&self) -> usize {
        self.geom.elem_size
    }

    /// (segment id, offset) of a shared pool; `None` for a `LocalPool`.
    pub(crate) fn identity(&self) -> Option<(u64, u64)> {
        self.identity
    }

    /// Values a sample of slot `index` is seen with: for an array slot, the
    /// length stored with it, at most the slot's elements (another process
    /// may have written anything there); the whole slot otherwise.
    #[inline]
    pub(crate) fn view_len<V: ?Sized + SlotView>(&self, index: u32) -> usize {
        if V::SLICE {
            let len = self.ctl()[index as usize].len.load(Ordering::Relaxed);
            len.min(self.geom.elements) as usize
        } else {
            self.full_len::<V>()
        }
    }

    /// Values of a whole slot: its elements (1 for a `T`), or its bytes
    /// for a [`DynMessage`](crate::DynMessage).
    #[inline]
    pub(crate) fn full_len<V: ?Sized + SlotView>(&self) -> usize {
        if V::DYNAMIC {
            self.geom.elements as usize * self.geom.elem_size
        } else {
            self.geom.elements as usize
        }
    }

    /// Stores the length of the sample in slot `index` (its exclusive
    /// owner only; readers get it through the release that shares the
    /// slot).
    pub(crate) fn set_len(&self, index: u32, len: u32) {
        self.ctl()[index as usize].len.store(len, Ordering::Relaxed);
    }

    /// Asks the CPU to start fetching slot `index`'s control block and the
    /// first line of its payload, which another process's core wrote last
    /// (`crate::prefetch`). The control block is fetched for writing
    /// (whoever takes the slot next changes its count); the payload for
    /// writing when `payload_write` (a publisher's next loan), else for
    /// reading (a subscriber's next message). A hint: nothing is read,
    /// nothing can fail; an index out of range is ignored.
    pub(crate) fn prefetch(&self, index: u32, payload_write: bool) {
        if let Some(ctl) = self.ctl().get(index as usize) {
            crate::prefetch::write(std::ptr::from_ref(ctl).cast::<u8>());
            let payload = self.slot_ptr(index).as_ptr().cast_const();
            if payload_write {
                crate::prefetch::write(payload);
            } else {
                crate::prefetch::read(payload);
            }
        }
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
        if let Some(i) = own.and_then(|r| self.with_own_stash(|| self.stash(r).pop()).flatten()) {
            // The next loan's slot: its lines, last written by whoever
            // freed it, move here while this one is used.
            if let Some(next) = own.and_then(|r| self.stash(r).peek()) {
                self.prefetch(next, true);
            }
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
        let stashed = self.stash_row.and_then(|r| {
            let count = self
                .with_own_stash(|| self.stash(r).push(index))
                .flatten()?;
            Some((r, count))
        });
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

    /// Runs `f` on this view's own stash if no other thread of this process
    /// is working on it; `None` (and `f` not run) if one is.
    fn with_own_stash<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        if self.stash_busy.swap(true, atomic::Ordering::Acquire) {
            return None;
        }
        let r = f();
        self.stash_busy.store(false, atomic::Ordering::Release);
        Some(r)
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
        stash_busy: atomic::AtomicBool::new(false),
        drop_slot: drop_elements::<T>,
        identity: None,
        row: None,
        name,
        topic: None,
        timeout,
        _backing: backing,
    }
}

#[allow(dead_code)]
const _: () = assert!(NIL == u32::MAX && MAX_POOL_CAPACITY < NIL);
