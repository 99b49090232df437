//! What crash recovery and audits do to router objects without a typed
//! handle: free a dead participant's ports and release what they queued,
//! list queued references. Reached from the segment layer through the
//! hooks `register_hooks` installs, and from `recovery/`.

use super::*;

/// Releases what the dead participant `dead_id` held in the router object
/// at `offset` of `segment`: its publisher ports are freed (what they
/// queued stays deliverable) and its subscriber ports are emptied — queued
/// references released, cells a dead popper left claimed handed back — and
/// freed, waking publishers that wait on them.
/// Registers what segments call back for router objects when a participant
/// dies (`reclaim_owner`): once per process, before this process opens its
/// first router.
pub(crate) fn register_hooks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        crate::pool::register_hooks();
        segment::hooks::register(
            ObjectKind::ROUTER,
            segment::hooks::ObjectHooks {
                reclaim: |segment, offset, size, _row, id| reclaim_owner(segment, offset, size, id),
                phase: 0,
                remove_dependents: None,
            },
        );
    });
}

pub(crate) fn reclaim_owner(segment: &crate::Segment, offset: u64, size: u64, dead_id: u64) {
    let Ok((view, h)) = RouterView::from_object(segment.ptr_at(offset), size) else {
        tracing::error!(segment = %segment.name(), offset, "cannot reclaim from a corrupt router");
        return;
    };
    let pool_offset = h.pool_offset;
    let release = |entry: u64| {
        if !crate::pool::release_raw_at(segment, pool_offset, RawSample::from_u64(entry)) {
            tracing::error!(segment = %segment.name(), entry, "dropping an invalid queue entry");
        }
    };
    let c = view.config;
    for p in 0..c.max_publishers {
        let port = view.publisher_port(p);
        let cur = port.state.load(Ordering::Acquire);
        if state_of(cur) == ACTIVE && port.owner.load(Ordering::Acquire) == dead_id {
            let freed = pack(generation_of(cur), FREE);
            if port
                .state
                .compare_exchange(cur, freed, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                view.wake_all_subscribers();
            }
        }
    }
    for s in 0..c.max_subscribers {
        let port = view.subscriber_port(s);
        let cur = port.state.load(Ordering::Acquire);
        if state_of(cur) == FREE || port.owner.load(Ordering::Acquire) != dead_id {
            continue;
        }
        let generation = generation_of(cur);
        // LEAVING makes publishers stop pushing to it (and drain what they
        // pushed concurrently).
        if port
            .state
            .compare_exchange(
                cur,
                pack(generation, LEAVING),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_err()
        {
            continue;
        }
        for p in 0..c.max_publishers {
            let ring = view.ring(p, s);
            while let Pop::Entry(e) = ring.pop() {
                release(e);
            }
            ring.release_abandoned_cells();
            wake_producer(&ring);
        }
        port.state.store(pack(generation, FREE), Ordering::SeqCst);
    }
}

/// For an audit of a quiescent segment: the values queued in the router at
/// `offset` (each owns one pool reference) and the offset of its pool.
/// Cells a dead popper left claimed are handed back first. `None` if the
/// router is corrupt.
pub(crate) fn audit_queues(
    segment: &crate::Segment,
    offset: u64,
    size: u64,
) -> Option<(u64, Vec<u64>)> {
    let (view, h) = RouterView::from_object(segment.ptr_at(offset), size).ok()?;
    let pool_offset = h.pool_offset;
    let c = view.config;
    let mut values = Vec::new();
    for p in 0..c.max_publishers {
        for s in 0..c.max_subscribers {
            let ring = view.ring(p, s);
            ring.release_abandoned_cells();
            ring.resync_tail();
            values.extend(ring.queued());
        }
    }
    Some((pool_offset, values))
}

/// The attached ports of the router object at `ptr` (`size` bytes), read
/// without a handle (for `shmidl ls`). `None` if the header is invalid.
pub(crate) fn stats_at(ptr: *mut u8, size: u64) -> Option<crate::segment::RouterStats> {
    use crate::segment::PortStats;
    let (view, _) = RouterView::from_object(NonNull::new(ptr)?, size).ok()?;
    let c = view.config;
    let active = |port: &PortSlot| state_of(port.state.load(Ordering::Acquire)) == ACTIVE;
    let mut out = crate::segment::RouterStats::default();
    for p in 0..c.max_publishers {
        let port = view.publisher_port(p);
        if !active(port) {
            continue;
        }
        let (mut messages, mut queued) = (0, 0);
        for s in 0..c.max_subscribers {
            let (head, tail) = view.ring(p, s).counters();
            messages = messages.max(tail);
            queued += tail.saturating_sub(head);
        }
        out.publishers.push(PortStats {
            index: p,
            pid: port.pid.load(Ordering::Relaxed),
            messages,
            queued,
        });
    }
    for s in 0..c.max_subscribers {
        let port = view.subscriber_port(s);
        if !active(port) {
            continue;
        }
        let (mut messages, mut queued) = (0u64, 0);
        for p in 0..c.max_publishers {
            let (head, tail) = view.ring(p, s).counters();
            messages = messages.wrapping_add(head);
            queued += tail.saturating_sub(head);
        }
        out.subscribers.push(PortStats {
            index: s,
            pid: port.pid.load(Ordering::Relaxed),
            messages,
            queued,
        });
    }
    Some(out)
}
