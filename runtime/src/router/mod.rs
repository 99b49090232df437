//! Routers: per-topic fan-out of pool samples from publishers to
//! subscribers in any process, with send modes and receive timeouts.
//!
//! A router is an object in the pool's segment. It has a table of publisher
//! slots, a table of subscriber slots, and one [ring](ring) per (publisher,
//! subscriber) pair holding raw handles of samples, each owning one
//! reference. No lock is ever taken, so a process that dies mid-operation
//! cannot block anyone.
//!
//! # Waking without system calls on the fast path
//! A subscriber about to sleep sets its port's `asleep` word, reads the
//! router's `notify` futex word, issues a SeqCst fence and checks its rings
//! once more. A publisher stores a ring cell's stamp with SeqCst and then loads
//! the subscriber's `asleep` with SeqCst: only if it is set (and this
//! publisher is the one to swap it back to 0) does the subscriber need a
//! wake-up. In the SeqCst total order either the publisher sees the
//! sleeper, or the sleeper's last check sees the message. A send collects
//! the sleepers it reached and wakes them all at the end with one
//! `FUTEX_WAKE_BITSET` on the router's word, each subscriber sleeping on
//! its own bit (before waiting for room, a send wakes those it reached so
//! far). Publishers waiting for space (`WaitIfFull`) use the same pattern
//! on the ring's `space_seq`/`space_waiters`.
//!
//! The layout is in `docs/segment-format.md`.

mod async_sub;
mod error;
mod layout;
mod publisher;
mod reclaim;
pub(crate) mod ring;
mod subscriber;

use std::{
    fmt,
    marker::PhantomData,
    ptr::NonNull,
    sync::Arc,
    time::{Duration, Instant},
};

pub(crate) use self::layout::router_object_bytes;
use self::layout::*;
pub use self::publisher::Publisher;
pub(crate) use self::reclaim::*;
use self::ring::{Cell, Pop, Ring, RingHead};
pub use self::subscriber::Subscriber;
pub use self::{
    async_sub::AsyncSubscriber,
    error::{PortsExhausted, RecvError, RouterOpenError, SendError},
};
use crate::{
    crash::crash_point,
    fingerprint::Hasher,
    futex,
    pool::{RawSample, RouterPool, Sample, SampleMut, SlotView},
    segment::{self, ObjectKind, ObjectSpec, ObjectType},
    shm_safe::ShmSafe,
    sync::{fence, AtomicU32, AtomicU64, Ordering},
};

/// "ROUT", little-endian.
const ROUTER_MAGIC: u32 = 0x5455_4f52;
/// Largest number of publishers or subscribers per router.
pub const MAX_PORTS: u32 = 256;
/// Largest queue depth.
pub const MAX_DEPTH: u32 = 1 << 16;
/// Longest single futex sleep in a blocking `recv` or a `WaitIfFull` send:
/// the interval at which they re-check that their peers still exist.
const POLL: Duration = Duration::from_millis(100);
/// Default number of polls before a blocking receive goes to sleep.
pub const DEFAULT_SPIN_COUNT: u32 = 200;

const FREE: u32 = 0;
const JOINING: u32 = 1;
const ACTIVE: u32 = 2;
const LEAVING: u32 = 3;

/// What `send` does when a subscriber's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// Wait up to the duration for space; the pipe fails if none comes.
    WaitIfFull(Duration),
    /// Give up on that subscriber at once (the pipe fails).
    SoftFailIfFull,
    /// Drop the oldest queued message (its reference is released) and queue
    /// the new one. Never fails.
    OverwriteOldest,
}

impl SendMode {
    pub(crate) fn encode(self) -> (u32, u64) {
        match self {
            Self::WaitIfFull(d) => (0, d.as_nanos().min(u128::from(u64::MAX)) as u64),
            Self::SoftFailIfFull => (1, 0),
            Self::OverwriteOldest => (2, 0),
        }
    }

    pub(crate) fn decode(kind: u32, nanos: u64) -> Option<Self> {
        match kind {
            0 => Some(Self::WaitIfFull(Duration::from_nanos(nanos))),
            1 => Some(Self::SoftFailIfFull),
            2 => Some(Self::OverwriteOldest),
            _ => None,
        }
    }
}

/// Router geometry and defaults, as stored in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterConfig {
    /// Publisher slots.
    pub max_publishers: u32,
    /// Subscriber slots.
    pub max_subscribers: u32,
    /// Queue depth per (publisher, subscriber) pair.
    pub depth: u32,
    /// Mode used by [`Publisher::publish`].
    pub default_mode: SendMode,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            max_publishers: 8,
            max_subscribers: 8,
            depth: 8,
            default_mode: SendMode::WaitIfFull(Duration::from_secs(1)),
        }
    }
}

impl fmt::Display for RouterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} publishers, {} subscribers, depth {}, default {:?}",
            self.max_publishers, self.max_subscribers, self.depth, self.default_mode
        )
    }
}

struct RouterInner<V: ?Sized + SlotView> {
    view: RouterView,
    pool: V::Pool,
    name: String,
}

// SAFETY: all shared state behind `base` is atomics; the rest is Send+Sync.
unsafe impl<V: ?Sized + SlotView> Send for RouterInner<V> {}
// SAFETY: as above.
unsafe impl<V: ?Sized + SlotView> Sync for RouterInner<V> {}

impl<V: ?Sized + SlotView> std::ops::Deref for RouterInner<V> {
    type Target = RouterView;
    fn deref(&self) -> &RouterView {
        &self.view
    }
}

impl<V: ?Sized + SlotView> RouterInner<V> {
    /// Releases the reference a popped entry owned. A corrupt entry is
    /// logged and leaked (never a double release).
    fn release_entry(&self, entry: u64) {
        if let Err(e) = self.pool.core().release_raw(RawSample::from_u64(entry)) {
            tracing::error!(router = %self.name, entry, error = %e, "dropping an invalid queue entry");
        }
    }

    /// Pops and releases every entry of a ring, waking its producer.
    fn drain(&self, ring: &Ring<'_>) {
        while let Pop::Entry(e) = ring.pop() {
            self.release_entry(e);
        }
        wake_producer(ring);
    }
}

/// A topic's router. Cheap to clone; keeps its pool and segment mapped.
///
/// ```
/// use std::time::Duration;
/// use shmidl::{Pool, Router, Segment, SendMode};
/// # let name = format!("doc-router-{}", std::process::id());
/// let segment = Segment::builder(&name).size(1 << 20).open_or_create()?;
/// let pool = Pool::<u64>::builder(&segment, "pool").capacity(16).open_or_create()?;
/// let router = Router::builder(&pool, "ticks").depth(4).open_or_create()?;
/// let mut subscriber = router.subscriber()?;
/// let mut publisher = router.publisher()?;
/// let sample = pool.make_pooled(42)?.freeze();
/// assert_eq!(publisher.send(&sample, SendMode::SoftFailIfFull)?, 0); // no pipe failed
/// assert_eq!(*subscriber.recv_timeout(Duration::from_secs(1))?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Router<V: ?Sized + SlotView> {
    inner: Arc<RouterInner<V>>,
}

impl<V: ?Sized + SlotView> Clone for Router<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// Builds a [`Router`] for a pool.
pub struct RouterBuilder<'p, V: ?Sized + SlotView> {
    pool: &'p V::Pool,
    name: String,
    config: RouterConfig,
}

impl<V: ?Sized + SlotView> RouterBuilder<'_, V> {
    /// Publisher slots (default 8).
    #[must_use]
    pub fn max_publishers(mut self, n: u32) -> Self {
        self.config.max_publishers = n;
        self
    }

    /// Subscriber slots (default 8).
    #[must_use]
    pub fn max_subscribers(mut self, n: u32) -> Self {
        self.config.max_subscribers = n;
        self
    }

    /// Queue depth per publisher–subscriber pair (default 8).
    #[must_use]
    pub fn depth(mut self, n: u32) -> Self {
        self.config.depth = n;
        self
    }

    /// Mode of [`Publisher::publish`] (default `WaitIfFull(1 s)`).
    #[must_use]
    pub fn default_mode(mut self, mode: SendMode) -> Self {
        self.config.default_mode = mode;
        self
    }

    /// Finds the router or creates it; an existing router must have the
    /// same configuration and pool.
    pub fn open_or_create(self) -> Result<Router<V>, RouterOpenError> {
        self.build(true)
    }

    /// Opens an existing router, whatever its configuration.
    pub fn open(self) -> Result<Router<V>, RouterOpenError> {
        self.build(false)
    }

    fn build(self, create: bool) -> Result<Router<V>, RouterOpenError> {
        register_hooks();
        let geom = Geometry::new(&self.config)?;
        let segment = self.pool.home().clone();
        let Some((_, pool_offset)) = self.pool.core().inner().identity() else {
            return Err(RouterOpenError::InvalidConfig(
                "a router needs a pool in shared memory",
            ));
        };
        let payload_fingerprint = self.pool.view_fingerprint();
        let spec = ObjectSpec {
            ty: ObjectType {
                kind: ObjectKind::ROUTER,
                fingerprint: Hasher::new()
                    .str("router")
                    .u64(u64::from(ROUTER_MAGIC))
                    .u64(payload_fingerprint)
                    .u64(self.pool.core().inner().elem_size() as u64)
                    .finish(),
                size: geom.total_size as u64,
            },
            align: 64,
            any_size: true,
        };
        let pool_name = self.pool.core().name().to_owned();
        let config = self.config;
        let placed = if create {
            segment.find_or_create_raw(&self.name, spec, |ptr| {
                // SAFETY: the directory reserved `geom.total_size` bytes at
                // `ptr`, 64-aligned, for us alone.
                unsafe {
                    init_router(
                        ptr,
                        &config,
                        &geom,
                        (pool_offset, payload_fingerprint),
                        &pool_name,
                    )
                }
            })?
        } else {
            segment.find_raw(&self.name, spec)?
        };
        let corrupt = |what| RouterOpenError::Corrupt {
            name: self.name.clone(),
            what,
        };
        let base = segment.ptr_at(placed.offset);
        let (view, h) = RouterView::from_object(base, placed.size).map_err(corrupt)?;
        if h.payload_fingerprint != payload_fingerprint {
            return Err(corrupt("payload fingerprint differs from the directory's"));
        }
        let found = view.config;
        if create && found != config {
            return Err(RouterOpenError::ConfigMismatch {
                name: self.name,
                asked: config.to_string(),
                found: found.to_string(),
            });
        }
        if h.pool_offset != pool_offset {
            let len = (h.pool_name_len as usize).min(64);
            return Err(RouterOpenError::PoolMismatch {
                name: self.name,
                asked: pool_name,
                found: String::from_utf8_lossy(&h.pool_name[..len]).into_owned(),
            });
        }
        Ok(Router {
            inner: Arc::new(RouterInner {
                view,
                pool: self.pool.clone(),
                name: self.name,
            }),
        })
    }
}

impl<V: ?Sized + SlotView> Router<V> {
    /// Starts building the router `name` for `pool` (in the pool's segment).
    pub fn builder<'p, P>(pool: &'p P, name: &str) -> RouterBuilder<'p, V>
    where
        P: RouterPool<View = V>,
        V: SlotView<Pool = P>,
    {
        RouterBuilder {
            pool,
            name: name.to_owned(),
            config: RouterConfig::default(),
        }
    }

    /// The router's configuration.
    pub fn config(&self) -> RouterConfig {
        self.inner.config
    }

    /// The pool whose samples this router carries.
    pub fn pool(&self) -> &V::Pool {
        &self.inner.pool
    }

    /// Publishers attached now, in all processes.
    pub fn publisher_count(&self) -> u32 {
        self.inner.publishers()
    }

    /// Subscribers attached now, in all processes.
    pub fn subscriber_count(&self) -> u32 {
        self.inner.subscribers()
    }

    fn exhausted(&self, role: &'static str, capacity: u32) -> PortsExhausted {
        PortsExhausted {
            router: self.inner.name.clone(),
            role,
            capacity,
        }
    }

    /// The participant id that ports of this handle are recorded under.
    fn owner(&self) -> u64 {
        self.inner.pool.home().participant_id()
    }

    /// Attaches a publisher.
    pub fn publisher(&self) -> Result<Publisher<V>, PortsExhausted> {
        let inner = &self.inner;
        let count = inner.config.max_publishers;
        let (index, _) = inner
            .claim(0, count, true, self.owner())
            .ok_or_else(|| self.exhausted("publisher", count))?;
        // A previous owner of this port may have died between writing a
        // cell's stamp and advancing `tail`: resynchronise each ring's tail
        // with its cells (we are now its only producer).
        for s in 0..inner.config.max_subscribers {
            inner.ring(index, s).resync_tail();
        }
        Ok(Publisher {
            router: self.clone(),
            index,
            except: None,
            _not_sync: PhantomData,
        })
    }

    /// Attaches a subscriber. It receives only what is sent after it joined.
    pub fn subscriber(&self) -> Result<Subscriber<V>, PortsExhausted> {
        let inner = &self.inner;
        let count = inner.config.max_subscribers;
        let (index, generation) = inner
            .claim(
                inner.config.max_publishers as usize,
                count,
                false,
                self.owner(),
            )
            .ok_or_else(|| self.exhausted("subscriber", count))?;
        // Whatever a previous occupant left queued is not ours.
        for p in 0..inner.config.max_publishers {
            inner.drain(&inner.ring(p, index));
        }
        inner
            .subscriber_port(index)
            .state
            .store(pack(generation, ACTIVE), Ordering::SeqCst);
        Ok(Subscriber {
            router: self.clone(),
            index,
            next: 0,
            spins: DEFAULT_SPIN_COUNT,
            last: None,
            _not_sync: PhantomData,
        })
    }
}
