//! # shmidl
//!
//! Zero-copy messaging between processes. This crate is the runtime that
//! generated code and users depend on. It owns:
//!
//! - **segments**: named shared-memory files in `/dev/shm`, mapped into each
//!   process, with a directory of named objects that processes find or create
//!   atomically ([`Segment`], [`Segment::find_or_create`]);
//! - **pools** of fixed-size slots in a segment ([`Pool`], [`ArrayPool`]) or
//!   on the heap ([`LocalPool`]), whose pointers ([`Sample`]) count
//!   references across every process and allocate nothing per pointer;
//! - the **type fingerprints** that stop two processes from reading one
//!   object as two different types ([`ShmSafe`], [`fingerprint`]).
//! - with the `net` feature (on by default), **network discovery**: UDP
//!   announcements of topics and a live registry of what others announce
//!   (module `net`). Without it the crate compiles no socket2 and no tokio.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use shmidl::Segment;
//!
//! # let name = format!("doc-lib-{}", std::process::id());
//! // Every process runs the same two lines and gets the same counter.
//! let segment = Segment::builder(&name).size(1 << 20).open_or_create()?;
//! let counter = segment.find_or_create("counter", || AtomicU64::new(0))?;
//! counter.fetch_add(1, Ordering::Relaxed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Segments are removed from `/dev/shm` when the last handle in the last
//! process is dropped. The byte layout is documented in
//! `docs/segment-format.md`.
//!
//! Linux only: segments rely on `/dev/shm`, shared futexes and
//! open-file-description locks.

// Under the loom model only the lock-free parts are compiled and used.
#![cfg_attr(shmidl_loom, allow(dead_code, unused_imports))]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
#[cfg(not(shmidl_loom))]
mod bounded;
mod crash;
#[cfg(not(shmidl_loom))]
mod dynamic;
pub mod fingerprint;
#[cfg(not(shmidl_loom))]
mod futex;
#[doc(hidden)]
#[cfg(not(shmidl_loom))]
pub mod fuzzing;
/// The topic registry decoder's fuzz harness (`topic/fuzzing.rs`).
#[doc(hidden)]
#[cfg(not(shmidl_loom))]
pub use topic::fuzzing as registry_fuzzing;
pub mod layout;
#[cfg(not(shmidl_loom))]
mod message;
mod name;
#[cfg(all(feature = "net", not(shmidl_loom)))]
pub mod net;
#[cfg(not(shmidl_loom))]
mod node;
#[cfg(not(shmidl_loom))]
mod pool;
#[cfg(shmidl_loom)]
#[path = "pool/free_list.rs"]
mod pool_free_list_model;
#[cfg(shmidl_loom)]
#[path = "pool/stash.rs"]
mod pool_stash_model;
mod prefetch;
#[cfg(not(shmidl_loom))]
mod recovery;
#[cfg(not(shmidl_loom))]
mod router;
#[cfg(shmidl_loom)]
#[path = "router/ring.rs"]
mod router_ring_model;
mod scalar;
#[cfg(not(shmidl_loom))]
mod segment;
mod shm_safe;
mod sync;
#[cfg(not(shmidl_loom))]
mod topic;
#[cfg(not(shmidl_loom))]
pub mod wire;

#[cfg(not(shmidl_loom))]
pub use crate::bounded::{CapacityError, FixedSizeBytes, FixedSizeString, FixedSizeVec};
#[cfg(not(shmidl_loom))]
pub use crate::dynamic::{DynType, DynTypeError, MAX_DYN_SIZE};
#[cfg(not(shmidl_loom))]
pub use crate::message::ShmMessage;
#[cfg(not(shmidl_loom))]
pub use crate::node::{
    Join, Node, NodeBuilder, NodeOpenError, TopicConfig, TopicError, TopicInfo, TopicRequest,
    DEFAULT_MAX_TOPICS, MAX_TOPIC_LEN,
};
#[cfg(not(shmidl_loom))]
pub use crate::pool::{
    ArrayPool, ArrayPoolBuilder, DynMessage, DynPool, HandleError, LoanError, LocalPool, Pool,
    PoolBuilder, PoolExhausted, PoolOpenError, RawSample, RouterPool, Sample, SampleMut,
    SliceTooLong, SlotView, UninitSample, MAX_POOL_CAPACITY, MAX_POOL_CHUNKS,
};
#[cfg(not(shmidl_loom))]
pub use crate::recovery::{AuditError, AuditReport};
#[cfg(not(shmidl_loom))]
pub use crate::router::{
    AsyncSubscriber, PortsExhausted, Publisher, RecvError, Router, RouterBuilder, RouterConfig,
    RouterOpenError, SendError, SendMode, Subscriber, DEFAULT_SPIN_COUNT, MAX_DEPTH, MAX_PORTS,
};
#[cfg(not(shmidl_loom))]
pub use crate::segment::{
    CleanOutcome, ObjectError, ObjectKind, ObjectReport, ObjectType, ParticipantInfo, PoolStats,
    PortStats, RouterStats, Segment, SegmentBuilder, SegmentCreateError, SegmentOpenError,
    SegmentReport, ShmRef, DEFAULT_TIMEOUT, MIN_SEGMENT_SIZE,
};
pub use crate::{
    name::{NameError, SegmentName, MAX_OBJECT_NAME_LEN, MAX_SEGMENT_NAME_LEN},
    scalar::{Bool, Enum, EnumRepr, ShmEnum, UndeclaredValue},
    shm_safe::ShmSafe,
};
pub use shmidl_macros::{include_schema, ShmMessage};
