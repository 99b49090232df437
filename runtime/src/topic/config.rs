//! A topic's configuration: what the domain's registry records of it.

use std::{fmt, time::Duration};

use crate::router::SendMode;

/// A topic's pool and router settings; the schema's `topic` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicConfig {
    /// Pool slots (`pool:`); per chunk if the pool can grow.
    pub pool: u32,
    /// Chunks of `pool` slots the topic's pool may grow to, the first
    /// included (1: fixed size; see [`PoolBuilder::growable`](crate::PoolBuilder::growable)).
    pub pool_chunks: u32,
    /// Queue depth per publisher–subscriber pair (`depth:`).
    pub depth: u32,
    /// What `publish` does when a queue is full (`overflow:`).
    pub overflow: SendMode,
    /// Publisher slots (`max_publishers:`).
    pub max_publishers: u32,
    /// Subscriber slots (`max_subscribers:`).
    pub max_subscribers: u32,
    /// A topic of `[T]` (runtime-sized samples, e.g. images): the elements
    /// a slot holds, the longest sample (see
    /// [`ArrayPool`](crate::ArrayPool)). 0 for a topic of `T`, and the
    /// default.
    pub elements: u32,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            pool: 64,
            pool_chunks: 1,
            depth: 8,
            overflow: SendMode::WaitIfFull(Duration::from_secs(1)),
            max_publishers: 8,
            max_subscribers: 8,
            elements: 0,
        }
    }
}

impl fmt::Display for TopicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool {} × {} chunk(s), depth {}, overflow {:?}, {} publishers, {} subscribers",
            self.pool,
            self.pool_chunks,
            self.depth,
            self.overflow,
            self.max_publishers,
            self.max_subscribers
        )?;
        if self.elements != 0 {
            write!(f, ", {} elements per sample", self.elements)?;
        }
        Ok(())
    }
}
