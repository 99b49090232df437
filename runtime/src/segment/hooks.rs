//! What the layers above segments do for their objects when a participant
//! dies or a segment goes away.
//!
//! A pool or a router keeps per-participant state in its object (holdings
//! bitmaps, port owners, queued references). Only its own module can
//! release a dead participant's share of it, and only its own module knows
//! which segments depend on it (a growable pool's chunks). Segments sit
//! *below* pools and routers and never import them: those layers register
//! their hooks here, once per process, when they first open an object
//! (`pool::register_hooks`, `router::register_hooks`), and
//! `recovery::install` registers all of them for the entry points that
//! reclaim without opening anything (`Node`, `audit`, `shmidl clean`).
//!
//! A dead participant's row is reclaimed only when every object kind of the
//! segment that holds per-participant state has its hooks here; otherwise
//! it is left for a process that has them (leaking nothing, freeing
//! nothing twice: reclaiming later is the same as reclaiming now).

use std::sync::RwLock;

use super::{ObjectKind, Segment};

/// Releases what the dead participant of row `row`, with random id `id`,
/// held in the object at `offset` (`size` bytes) of `segment`.
pub(crate) type ReclaimFn = fn(segment: &Segment, offset: u64, size: u64, row: u32, id: u64);

/// Removes the segments that depend on the object at `ptr` (`size` bytes,
/// at `offset` of the segment `name` with id `segment_id`), which was just
/// unlinked.
pub(crate) type RemoveDependentsFn =
    fn(ptr: *mut u8, size: u64, name: &str, segment_id: u64, offset: u64);

/// An object kind's part in crash recovery.
#[derive(Clone, Copy)]
pub(crate) struct ObjectHooks {
    /// Reclaims a dead participant's share of an object.
    pub reclaim: ReclaimFn,
    /// Objects of lower phases are reclaimed first (routers before pools:
    /// their queues hold pool references).
    pub phase: u8,
    /// Removes the segments that depend on an object, if any can.
    pub remove_dependents: Option<RemoveDependentsFn>,
}

static HOOKS: RwLock<Vec<(ObjectKind, ObjectHooks)>> = RwLock::new(Vec::new());

/// Registers `hooks` for `kind` (again: no effect).
pub(crate) fn register(kind: ObjectKind, hooks: ObjectHooks) {
    let mut all = HOOKS.write().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|(k, _)| *k == kind) {
        all.push((kind, hooks));
    }
}

/// The hooks registered for `kind`.
pub(crate) fn get(kind: ObjectKind) -> Option<ObjectHooks> {
    let all = HOOKS.read().unwrap_or_else(|p| p.into_inner());
    all.iter().find(|(k, _)| *k == kind).map(|&(_, h)| h)
}

/// Whether objects of `kind` hold per-participant state that only their
/// own layer's hooks can release.
pub(crate) fn needs_hooks(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::POOL | ObjectKind::ARRAY_POOL | ObjectKind::ROUTER
    )
}
