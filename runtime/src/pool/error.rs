//! Errors of pool operations.

use std::fmt;

use thiserror::Error;

use crate::segment::ObjectError;

/// No free slot (within the timeout, for waiting forms). Hands back the value
/// that was to be stored, if any. The message names the setting that raises
/// the limit.
#[derive(Error)]
#[error("{}", exhausted_message(.pool, .topic.as_deref(), *.capacity))]
pub struct PoolExhausted<V = ()> {
    pool: String,
    topic: Option<String>,
    capacity: u32,
    value: V,
}

fn exhausted_message(pool: &str, topic: Option<&str>, capacity: u32) -> String {
    match topic {
        Some(topic) => format!(
            "the pool of topic `{topic}` is exhausted ({capacity} slots in use): raise \
             `TopicConfig::pool` (or let it grow with `pool_chunks`), or hold fewer samples \
             (queued ones count)"
        ),
        None => format!(
            "pool `{pool}` is exhausted ({capacity} slots in use): raise its capacity (or let \
             it grow with `growable`), or hold fewer samples"
        ),
    }
}

impl<V> PoolExhausted<V> {
    pub(crate) fn new(pool: &str, topic: Option<&str>, capacity: u32, value: V) -> Self {
        Self {
            pool: pool.to_owned(),
            topic: topic.map(str::to_owned),
            capacity,
            value,
        }
    }

    /// The topic whose pool it is, if a [`Node`](crate::Node) opened it.
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }

    /// The value that could not be stored.
    pub fn into_inner(self) -> V {
        self.value
    }

    /// Name of the pool.
    pub fn pool(&self) -> &str {
        &self.pool
    }
}

impl<V> fmt::Debug for PoolExhausted<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolExhausted")
            .field("pool", &self.pool)
            .field("topic", &self.topic)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Opening or creating a pool failed.
#[derive(Debug, Error)]
pub enum PoolOpenError {
    /// The segment directory refused the object (missing, wrong type, full …).
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The segment of a growable pool's chunk could not be opened or
    /// created.
    #[error("pool chunk segment: {0}")]
    ChunkSegment(#[from] crate::segment::SegmentCreateError),
    /// A capacity or element count of zero or too large.
    #[error("invalid pool geometry: {0}")]
    InvalidGeometry(&'static str),
    /// The pool exists with another capacity or element count than asked.
    #[error("pool `{name}` exists with {found_capacity} slots of {found_elements} elements, not {capacity} × {elements}")]
    GeometryMismatch {
        /// Pool name.
        name: String,
        /// Capacity asked for.
        capacity: u32,
        /// Elements per slot asked for.
        elements: u32,
        /// Capacity found.
        found_capacity: u32,
        /// Elements per slot found.
        found_elements: u32,
    },
    /// The pool exists with another growth limit than asked.
    #[error("pool `{name}` exists growing to {found_max_chunks} chunks, not {max_chunks}")]
    GrowthMismatch {
        /// Pool name.
        name: String,
        /// Growth limit asked for.
        max_chunks: u32,
        /// Growth limit found.
        found_max_chunks: u32,
    },
    /// The pool header in shared memory is inconsistent.
    #[error("pool `{name}` is corrupt: {what}")]
    Corrupt {
        /// Pool name.
        name: String,
        /// What is wrong.
        what: &'static str,
    },
}

/// A raw handle did not name a live object of this pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HandleError {
    /// The slot index is outside the pool.
    #[error("slot {slot} is outside the pool ({capacity} slots)")]
    OutOfRange {
        /// Slot in the handle.
        slot: u32,
        /// Pool capacity.
        capacity: u32,
    },
    /// The handle names a slot in a chunk of a growable pool that does not
    /// exist now (retired since), or whose segment cannot be opened (the
    /// log says why).
    #[error("slot {slot} lies in chunk {chunk}, which is not available")]
    ChunkUnavailable {
        /// Slot in the handle.
        slot: u32,
        /// The chunk it lies in.
        chunk: u32,
    },
    /// The slot was freed (and maybe reused) since the handle was made.
    #[error("stale handle: slot {slot} generation {generation}, now generation {current} with {refs} references")]
    Stale {
        /// Slot in the handle.
        slot: u32,
        /// Generation in the handle.
        generation: u32,
        /// Generation now.
        current: u32,
        /// References now.
        refs: u32,
    },
}

/// A sample of a `[T]` pool could not be loaned.
#[derive(Debug, Error)]
pub enum LoanError {
    /// No slot became free in time.
    #[error(transparent)]
    Exhausted(#[from] PoolExhausted),
    /// More elements were asked for than a slot holds.
    #[error(transparent)]
    TooLong(#[from] super::SliceTooLong),
}
