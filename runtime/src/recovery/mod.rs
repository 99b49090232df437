//! Crash recovery and inspection: the layer above segments, pools and
//! routers that knows all three.
//!
//! Segments find dead participants and free their rows; what a dead
//! participant held *inside* objects (pool references, router ports and
//! queued messages) is released by hooks that the pool and router layers
//! register with the segment layer (`segment/hooks.rs`), so segments never
//! import the layers above them. [`install`] registers every hook, for the
//! entry points that reclaim or inspect without having opened a pool or a
//! router in this process: `Node`, [`Segment::audit`](crate::Segment::audit),
//! [`Segment::inspect`](crate::Segment::inspect) and
//! [`Segment::remove_if_abandoned`](crate::Segment::remove_if_abandoned)
//! (`shmidl ls`, `shmidl clean`).

mod audit;
mod inspect;

pub use self::audit::{AuditError, AuditReport};

/// Registers the recovery hooks of every object kind (once per process).
pub(crate) fn install() {
    crate::pool::register_hooks();
    crate::router::register_hooks();
}
