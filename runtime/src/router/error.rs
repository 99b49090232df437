//! Errors of router operations.

use thiserror::Error;

use crate::{pool::HandleError, segment::ObjectError};

/// Opening or creating a router failed.
#[derive(Debug, Error)]
pub enum RouterOpenError {
    /// The segment directory refused the object.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A zero or too large capacity.
    #[error("invalid router configuration: {0}")]
    InvalidConfig(&'static str),
    /// The router exists with another configuration than asked for.
    #[error("router `{name}` exists with {found}, not {asked}")]
    ConfigMismatch {
        /// Router name.
        name: String,
        /// Configuration asked for.
        asked: String,
        /// Configuration found.
        found: String,
    },
    /// The router belongs to another pool than the one given.
    #[error("router `{name}` routes pool `{found}`, not `{asked}`")]
    PoolMismatch {
        /// Router name.
        name: String,
        /// Pool given.
        asked: String,
        /// Pool the router was made for.
        found: String,
    },
    /// The router header in shared memory is inconsistent.
    #[error("router `{name}` is corrupt: {what}")]
    Corrupt {
        /// Router name.
        name: String,
        /// What is wrong.
        what: &'static str,
    },
}

/// No free publisher or subscriber slot.
#[derive(Debug, Clone, Error)]
#[error(
    "router `{router}` has no free {role} slot (all {capacity} in use); raise `max_{role}s` \
     in the topic's configuration (`TopicConfig::max_{role}s`, the schema's `max_{role}s:` \
     option or `RouterBuilder::max_{role}s`), up to 256"
)]
pub struct PortsExhausted {
    /// Router name.
    pub router: String,
    /// "publisher" or "subscriber".
    pub role: &'static str,
    /// Number of slots.
    pub capacity: u32,
}

/// Sending failed as a whole (per-pipe failures are counted in `Ok`).
#[derive(Debug, Clone, Error)]
pub enum SendError {
    /// The sample comes from another pool than the router's.
    #[error("the sample belongs to another pool than router `{router}`'s")]
    ForeignSample {
        /// Router name.
        router: String,
    },
}

/// Receiving failed.
#[derive(Debug, Clone, Error)]
pub enum RecvError {
    /// Nothing arrived before the deadline.
    #[error("no message within the timeout")]
    Timeout,
    /// No publisher is attached and nothing is queued.
    #[error("the pipe is closed: no publisher and nothing queued")]
    Closed,
    /// A queue entry did not name a live sample (corrupted shared memory).
    #[error("a queue entry is invalid: {0}")]
    BadEntry(#[from] HandleError),
    /// A queue's positions are inconsistent (corrupted shared memory).
    #[error("queue from publisher {publisher} is corrupt")]
    CorruptQueue {
        /// Publisher slot index.
        publisher: u32,
    },
}
