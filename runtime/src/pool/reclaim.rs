//! What crash recovery, audits and `shmidl ls` do to pool objects without
//! a typed handle: release a dead participant's references, put leaked
//! slots back, count free slots. Reached from the segment layer through the
//! hooks `register_hooks` installs, and from `recovery/`.

use super::*;

/// Releases every pool reference that participant `row` (now dead) held in
/// the pool at `offset` of `segment`: for each recorded slot, erase the
/// record, then release (so a reclaimer that dies mid-way can leak but
/// never release twice). Values whose last reference goes are dropped with
/// their destructor if this process has the pool open with its type, else
/// freed without running a destructor.
/// Registers what segments call back for pool objects when a participant
/// dies (`reclaim_row`) or a segment goes (`remove_chunks`): once per
/// process, before this process opens its first pool.
pub(crate) fn register_hooks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hooks = segment::hooks::ObjectHooks {
            reclaim: |segment, offset, size, row, _id| reclaim_row(segment, offset, size, row),
            phase: 1,
            remove_dependents: Some(remove_chunks),
        };
        segment::hooks::register(ObjectKind::POOL, hooks);
        segment::hooks::register(ObjectKind::ARRAY_POOL, hooks);
    });
}

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
pub(super) fn untyped_view(segment: &Segment, offset: u64) -> Option<Arc<PoolInner>> {
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
pub(super) fn reclaim_slot(pool: &PoolInner, slot: u32, row: u32) {
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
pub(super) fn audit_chunk(
    view: &PoolInner,
    auditor: u32,
    queued: impl Iterator<Item = u64>,
) -> PoolAudit {
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
