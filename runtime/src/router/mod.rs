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
//! A subscriber about to sleep increments its `waiters` word, reads its
//! `notify` futex word, issues a SeqCst fence and checks its rings once
//! more. A publisher stores a ring's tail with SeqCst and then loads the
//! subscriber's `waiters` with SeqCst: it bumps `notify` and calls
//! `futex_wake` only if someone sleeps. In the SeqCst total order either the
//! publisher sees the waiter, or the waiter's last check sees the message.
//! Publishers waiting for space (`WaitIfFull`) use the same pattern on the
//! ring's `space_seq`/`space_waiters`.
//!
//! The layout is in `docs/segment-format.md`.

mod async_sub;
mod error;
pub(crate) mod ring;

use std::{
    fmt,
    marker::PhantomData,
    ptr::NonNull,
    sync::Arc,
    time::{Duration, Instant},
};

use self::ring::{Cell, Pop, Ring, RingHead};
pub use self::{
    async_sub::AsyncSubscriber,
    error::{PortsExhausted, RecvError, RouterOpenError, SendError},
};
use crate::{
    crash::crash_point,
    fingerprint::Hasher,
    futex,
    pool::{RawSample, RouterPool, Sample, SampleMut, SlotView},
    segment::{ObjectKind, ObjectSpec, ObjectType},
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

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct RouterHeader {
    magic: u32,
    max_publishers: u32,
    max_subscribers: u32,
    depth: u32,
    default_mode: u32,
    pool_name_len: u32,
    default_timeout_ns: u64,
    pool_offset: u64,
    payload_fingerprint: u64,
    ports_offset: u64,
    rings_offset: u64,
    ring_stride: u64,
    total_size: u64,
    pool_name: [u8; 64],
}

/// A publisher or subscriber slot, one cache line.
#[repr(C, align(64))]
struct PortSlot {
    /// `generation << 32 | state`.
    state: AtomicU64,
    pid: AtomicU32,
    /// Subscriber: futex word bumped when a message arrives for a sleeper.
    notify: AtomicU32,
    /// Subscriber: threads sleeping on `notify`.
    waiters: AtomicU32,
    _reserved: AtomicU32,
    /// Random id of the owning participant (for crash recovery).
    owner: AtomicU64,
}

fn pack(generation: u32, state: u32) -> u64 {
    u64::from(generation) << 32 | u64::from(state)
}

fn state_of(word: u64) -> u32 {
    word as u32
}

fn generation_of(word: u64) -> u32 {
    (word >> 32) as u32
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    ports_offset: usize,
    rings_offset: usize,
    ring_stride: usize,
    total_size: usize,
}

impl Geometry {
    fn new(c: &RouterConfig) -> Result<Self, RouterOpenError> {
        let bad = RouterOpenError::InvalidConfig;
        if c.max_publishers == 0 || c.max_publishers > MAX_PORTS {
            return Err(bad("max_publishers must be 1 ..= 256"));
        }
        if c.max_subscribers == 0 || c.max_subscribers > MAX_PORTS {
            return Err(bad("max_subscribers must be 1 ..= 256"));
        }
        if c.depth == 0 || c.depth > MAX_DEPTH {
            return Err(bad("depth must be 1 ..= 65536"));
        }
        let ports_offset = std::mem::size_of::<RouterHeader>();
        let ports = (c.max_publishers + c.max_subscribers) as usize;
        let rings_offset = ports_offset + ports * std::mem::size_of::<PortSlot>();
        let ring_stride = std::mem::size_of::<RingHead>()
            + (c.depth as usize * std::mem::size_of::<Cell>()).next_multiple_of(64);
        let rings = c.max_publishers as usize * c.max_subscribers as usize;
        Ok(Self {
            ports_offset,
            rings_offset,
            ring_stride,
            total_size: rings_offset + rings * ring_stride,
        })
    }
}

/// Bytes of a router object with `config`: what a segment needs to hold it.
pub(crate) fn router_object_bytes(config: &RouterConfig) -> Result<u64, RouterOpenError> {
    Ok(Geometry::new(config)?.total_size as u64)
}

/// Untyped access to a router object's ports and rings.
struct RouterView {
    // INVARIANTS: `base` points to an initialised router object of
    // `geom.total_size` bytes whose mapping outlives the view (kept by the
    // owner of the view: a `Pool` or a `Segment` handle).
    base: NonNull<u8>,
    config: RouterConfig,
    geom: Geometry,
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

impl RouterView {
    /// Reads and checks the header of the router object at `base`, of
    /// `size` bytes (from its directory entry).
    fn from_object(base: NonNull<u8>, size: u64) -> Result<(Self, RouterHeader), &'static str> {
        if size < std::mem::size_of::<RouterHeader>() as u64 {
            return Err("object smaller than a router header");
        }
        // SAFETY: the object is at least a header long (checked above),
        // 64-aligned (objects are placed at cache-line boundaries) and
        // initialised; the header is plain integers, written once before the
        // object was published, so copying it races with no writer.
        let h: RouterHeader = unsafe { base.cast::<RouterHeader>().as_ptr().read() };
        if h.magic != ROUTER_MAGIC {
            return Err("bad magic");
        }
        let config = RouterConfig {
            max_publishers: h.max_publishers,
            max_subscribers: h.max_subscribers,
            depth: h.depth,
            default_mode: SendMode::decode(h.default_mode, h.default_timeout_ns)
                .ok_or("unknown default mode")?,
        };
        let geom = Geometry::new(&config).map_err(|_| "impossible configuration")?;
        if geom.total_size as u64 != size
            || h.total_size != size
            || h.ports_offset != geom.ports_offset as u64
            || h.rings_offset != geom.rings_offset as u64
            || h.ring_stride != geom.ring_stride as u64
        {
            return Err("geometry does not match the object");
        }
        Ok((Self { base, config, geom }, h))
    }

    fn port(&self, index: usize) -> &PortSlot {
        debug_assert!(index < (self.config.max_publishers + self.config.max_subscribers) as usize);
        let p = self
            .base
            .as_ptr()
            .wrapping_add(self.geom.ports_offset + index * std::mem::size_of::<PortSlot>());
        // SAFETY: inside the object (index bounded by the port count, which
        // `Geometry` sized), 64-aligned, all atomics; alive while `self` is.
        unsafe { &*p.cast::<PortSlot>() }
    }

    fn publisher_port(&self, p: u32) -> &PortSlot {
        self.port(p as usize)
    }

    fn subscriber_port(&self, s: u32) -> &PortSlot {
        self.port((self.config.max_publishers + s) as usize)
    }

    fn ring(&self, p: u32, s: u32) -> Ring<'_> {
        debug_assert!(p < self.config.max_publishers && s < self.config.max_subscribers);
        let index = p as usize * self.config.max_subscribers as usize + s as usize;
        let at = self
            .base
            .as_ptr()
            .wrapping_add(self.geom.rings_offset + index * self.geom.ring_stride);
        // SAFETY: ring `index` lies inside the object (`Geometry` sized it),
        // 64-aligned; its head and `depth` cells are atomics.
        let words = unsafe { &*at.cast::<RingHead>() };
        let cells_at = at
            .wrapping_add(std::mem::size_of::<RingHead>())
            .cast::<Cell>();
        // SAFETY: `depth` cells follow the head inside the ring's stride.
        let cells = unsafe { std::slice::from_raw_parts(cells_at, self.config.depth as usize) };
        Ring { words, cells }
    }

    fn publishers(&self) -> u32 {
        (0..self.config.max_publishers)
            .filter(|&p| state_of(self.publisher_port(p).state.load(Ordering::Acquire)) == ACTIVE)
            .count() as u32
    }

    fn subscribers(&self) -> u32 {
        (0..self.config.max_subscribers)
            .filter(|&s| state_of(self.subscriber_port(s).state.load(Ordering::Acquire)) == ACTIVE)
            .count() as u32
    }

    /// Claims a free port among `count` ports starting at `first`.
    fn claim(&self, first: usize, count: u32, publisher: bool, owner: u64) -> Option<(u32, u32)> {
        for i in 0..count {
            let port = self.port(first + i as usize);
            let cur = port.state.load(Ordering::Acquire);
            if state_of(cur) != FREE {
                continue;
            }
            let generation = generation_of(cur).wrapping_add(1);
            let next = pack(generation, if publisher { ACTIVE } else { JOINING });
            if port
                .state
                .compare_exchange(cur, next, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                port.pid.store(std::process::id(), Ordering::Relaxed);
                port.owner.store(owner, Ordering::Relaxed);
                return Some((i, generation));
            }
        }
        None
    }

    /// Wakes every sleeping subscriber (a publisher left: pipes may close).
    fn wake_all_subscribers(&self) {
        for s in 0..self.config.max_subscribers {
            let port = self.subscriber_port(s);
            if port.waiters.load(Ordering::SeqCst) > 0 {
                port.notify.fetch_add(1, Ordering::SeqCst);
                futex::wake_all(&port.notify);
            }
        }
    }
}

fn wake_producer(ring: &Ring<'_>) {
    if ring.producer_waiting() {
        ring.words.space_seq.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&ring.words.space_seq);
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
        let geom = Geometry::new(&self.config)?;
        let segment = self.pool.home().clone();
        let Some((_, pool_offset)) = self.pool.core().inner().identity() else {
            return Err(RouterOpenError::InvalidConfig(
                "a router needs a pool in shared memory",
            ));
        };
        let spec = ObjectSpec {
            ty: ObjectType {
                kind: ObjectKind::ROUTER,
                fingerprint: Hasher::new()
                    .str("router")
                    .u64(u64::from(ROUTER_MAGIC))
                    .u64(V::FINGERPRINT)
                    .u64(V::slot_bytes(1) as u64)
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
                unsafe { init_router::<V>(ptr, &config, &geom, pool_offset, &pool_name) }
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
        if h.payload_fingerprint != V::FINGERPRINT {
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

/// Writes a fresh router at `ptr`.
///
/// # Safety
/// `ptr` must be valid for writes of `geom.total_size` bytes, 64-aligned,
/// and not accessed by anyone else during the call.
unsafe fn init_router<V: ?Sized + SlotView>(
    ptr: NonNull<u8>,
    c: &RouterConfig,
    geom: &Geometry,
    pool_offset: u64,
    pool_name: &str,
) {
    let (mode, timeout) = c.default_mode.encode();
    let mut name = [0u8; 64];
    let len = pool_name.len().min(64);
    name[..len].copy_from_slice(&pool_name.as_bytes()[..len]);
    let header = RouterHeader {
        magic: ROUTER_MAGIC,
        max_publishers: c.max_publishers,
        max_subscribers: c.max_subscribers,
        depth: c.depth,
        default_mode: mode,
        pool_name_len: len as u32,
        default_timeout_ns: timeout,
        pool_offset,
        payload_fingerprint: V::FINGERPRINT,
        ports_offset: geom.ports_offset as u64,
        rings_offset: geom.rings_offset as u64,
        ring_stride: geom.ring_stride as u64,
        total_size: geom.total_size as u64,
        pool_name: name,
    };
    // SAFETY: valid and aligned for the header (caller).
    unsafe { ptr.cast::<RouterHeader>().as_ptr().write(header) };
    // Port slots, ring heads and entries start as zero bytes (fresh segment
    // memory or a re-run after a creator died): write them explicitly.
    let rest = ptr.as_ptr().wrapping_add(geom.ports_offset);
    // SAFETY: `ports_offset..total_size` lies inside the object; all-zero is
    // a valid value for every port slot, ring head and entry (all atomics).
    unsafe { std::ptr::write_bytes(rest, 0, geom.total_size - geom.ports_offset) };
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
            _not_sync: PhantomData,
        })
    }
}

/// Sends samples to every subscriber of a router. One per thread of use:
/// `send` takes `&mut self`, which keeps each queue single-producer.
pub struct Publisher<V: ?Sized + SlotView> {
    router: Router<V>,
    index: u32,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl<V: ?Sized + SlotView> fmt::Debug for Publisher<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("router", &self.router.inner.name)
            .field("port", &self.index)
            .finish()
    }
}

impl<T: ShmSafe> Publisher<T> {
    /// A mutable sample from the router's pool, waiting up to the pool's
    /// timeout; write it in place, then [`publish`](Self::publish) it.
    pub fn loan(&self) -> Result<SampleMut<T>, crate::PoolExhausted>
    where
        T: Default,
    {
        self.router.inner.pool.loan()
    }

    /// A sample from the router's pool holding whatever bytes the slot held,
    /// without writing it (see [`Pool::loan_recycled`]): for large payloads
    /// that the caller overwrites anyway.
    pub fn loan_recycled(&self) -> Result<SampleMut<T>, crate::PoolExhausted> {
        self.router.inner.pool.loan_recycled()
    }

    /// A sample whose bytes are all zero (a valid value of every message
    /// type), waiting up to the pool's timeout: no `Default` needed, for a
    /// struct with a `[u8; 2000]` field or any other.
    pub fn loan_zeroed(&self) -> Result<SampleMut<T>, crate::PoolExhausted> {
        self.router.inner.pool.loan_zeroed()
    }

    /// An uninitialised slot from the router's pool, waiting up to the
    /// pool's timeout: [`write`](crate::UninitSample::write) a value into
    /// it (or write through `as_mut_ptr`, then `assume_init`), or decode
    /// into it with [`ShmMessage::decode_into`](crate::ShmMessage::decode_into).
    pub fn loan_uninit(&self) -> Result<crate::UninitSample<T>, crate::PoolExhausted> {
        self.router.inner.pool.loan_uninit()
    }
}

impl<T: ShmSafe> Publisher<[T]> {
    /// The most elements a sample of this topic holds (its pool's
    /// [`elements`](crate::ArrayPool::elements)).
    pub fn max_len(&self) -> usize {
        self.router.inner.pool.elements() as usize
    }

    /// A sample of `len` elements from the router's pool, waiting up to the
    /// pool's timeout, holding whatever the slot held (see
    /// [`ArrayPool::loan_slice`](crate::ArrayPool::loan_slice)): fill it,
    /// then [`publish`](Self::publish) it; subscribers see `len` elements.
    pub fn loan_slice(&self, len: usize) -> Result<SampleMut<[T]>, crate::LoanError> {
        self.router.inner.pool.loan_slice(len)
    }

    /// A sample holding a copy of `items`, waiting up to the pool's
    /// timeout.
    pub fn loan_copy(&self, items: &[T]) -> Result<SampleMut<[T]>, crate::LoanError>
    where
        T: Copy,
    {
        self.router.inner.pool.loan_copy(items)
    }
}

impl<V: ?Sized + SlotView> Publisher<V> {
    /// The router this publisher sends through (its pool, its counts).
    pub fn router(&self) -> &Router<V> {
        &self.router
    }

    /// Sends `sample` with the router's default mode. Its reference moves
    /// into the last queue it reaches (no extra count), so publishing a
    /// loaned sample costs one reference-count update per extra subscriber.
    pub fn publish(&mut self, sample: SampleMut<V>) -> Result<usize, SendError> {
        let inner = &*self.router.inner;
        if !sample.same_pool_as(inner.pool.core().inner()) {
            return Err(SendError::ForeignSample {
                router: inner.name.clone(),
            });
        }
        let mode = inner.config.default_mode;
        let raw = sample.into_owned_raw(0);
        Ok(self.deliver(raw, true, mode))
    }

    /// Delivers one reference to `sample` to every subscriber. Returns how
    /// many pipes failed (full queue under `WaitIfFull` timeout or
    /// `SoftFailIfFull`); `OverwriteOldest` never fails a pipe unless the
    /// queue is broken (see `docs/crash-safety.md`).
    pub fn send(&mut self, sample: &Sample<V>, mode: SendMode) -> Result<usize, SendError> {
        let inner = &*self.router.inner;
        if !inner.pool.core().owns(sample) {
            return Err(SendError::ForeignSample {
                router: inner.name.clone(),
            });
        }
        Ok(self.deliver(sample.raw(), false, mode))
    }

    /// Pushes `raw` to every active subscriber. With `owned`, the caller's
    /// reference (recorded in this process's holdings) goes to the last
    /// subscriber reached if it can take it at once, else it is released at
    /// the end; every other pipe gets a reference of its own.
    fn deliver(&self, raw: RawSample, owned: bool, mode: SendMode) -> usize {
        let inner = &*self.router.inner;
        let mut deadline = LazyDeadline::new(match mode {
            SendMode::WaitIfFull(d) => Some(d),
            _ => None,
        });
        let mut failed = 0;
        // An owned reference comes unrecorded (`into_owned_raw`); record it
        // before any push that may wait, so that a publisher killed while
        // waiting leaks nothing.
        let mut held = false;
        // Push to each active subscriber one step late, so that the last
        // one can take the owned reference.
        let mut pending: Option<(u32, u64)> = None;
        for s in 0..inner.config.max_subscribers {
            let seen = inner.subscriber_port(s).state.load(Ordering::SeqCst);
            if state_of(seen) != ACTIVE {
                continue;
            }
            if let Some((ps, pseen)) = pending.replace((s, seen)) {
                if owned && !held {
                    inner.pool.core().hold_raw(raw);
                    held = true;
                }
                failed += usize::from(!self.push_one(ps, pseen, raw, mode, &mut deadline));
            }
        }
        let Some((ps, pseen)) = pending else {
            if owned {
                inner.release_entry(raw.to_u64());
            }
            return failed;
        };
        if owned {
            // Move the reference into the last queue if it has room now
            // (erasing our record first, if any: a crash in between leaks
            // it, never frees it twice). Otherwise keep it recorded while
            // we wait, and give the queue a reference of its own.
            if held {
                inner.pool.core().unhold_raw(raw);
            }
            crash_point!("router.publish.before_push");
            if self.push_now(ps, pseen, raw) {
                return failed;
            }
            inner.pool.core().hold_raw(raw);
        }
        failed += usize::from(!self.push_one(ps, pseen, raw, mode, &mut deadline));
        if owned {
            inner.pool.core().unhold_raw(raw);
            inner.release_entry(raw.to_u64());
        }
        failed
    }

    /// Pushes the entry `raw` (whose reference the caller hands over) into
    /// the pipe to `s` if it has room right now.
    fn push_now(&self, s: u32, seen: u64, raw: RawSample) -> bool {
        let inner = &*self.router.inner;
        let ring = inner.ring(self.index, s);
        if !ring.push(raw.to_u64()) {
            return false;
        }
        self.after_push(s, seen, &ring);
        true
    }

    /// Wakes subscriber `s` if it sleeps, and drains the ring if it left
    /// while we pushed.
    fn after_push(&self, s: u32, seen: u64, ring: &Ring<'_>) {
        let inner = &*self.router.inner;
        let port = inner.subscriber_port(s);
        if port.waiters.load(Ordering::SeqCst) > 0 {
            port.notify.fetch_add(1, Ordering::SeqCst);
            futex::wake_all(&port.notify);
        }
        if port.state.load(Ordering::SeqCst) != seen {
            // The subscriber left (and maybe another joined) while we
            // pushed: what we queued is for no one.
            inner.drain(ring);
        }
    }

    /// Pushes a new reference to `raw` into the pipe to subscriber `s`
    /// (last seen as `seen`), waiting or overwriting as `mode` says. On
    /// failure the reference is released. Returns success.
    fn push_one(
        &self,
        s: u32,
        seen: u64,
        raw: RawSample,
        mode: SendMode,
        deadline: &mut LazyDeadline,
    ) -> bool {
        let inner = &*self.router.inner;
        let port = inner.subscriber_port(s);
        let ring = inner.ring(self.index, s);
        let entry = raw.to_u64();
        // Wait for room *before* counting the queue's reference, so that a
        // publisher killed while it waits holds nothing unrecorded. We are
        // the ring's only producer: once it has room, the push succeeds.
        let pushed = loop {
            if !ring.is_full() {
                if !inner.pool.core().retain_raw(raw) {
                    break false;
                }
                crash_point!("router.send.after_retain");
                if ring.push(entry) {
                    break true;
                }
                // Unreachable with one producer; never leak if it happens.
                inner.release_entry(entry);
                break false;
            }
            match mode {
                SendMode::SoftFailIfFull => break false,
                SendMode::OverwriteOldest => {
                    if !inner.pool.core().retain_raw(raw) {
                        break false;
                    }
                    if ring.push_overwrite(entry, |old| inner.release_entry(old)) {
                        break true;
                    }
                    inner.release_entry(entry);
                    break false;
                }
                SendMode::WaitIfFull(_) => {
                    if !wait_for_space(&ring, port, seen, deadline.get(), inner.pool.home()) {
                        break false;
                    }
                }
            }
        };
        if pushed {
            self.after_push(s, seen, &ring);
        }
        pushed
    }

    /// Subscribers attached now.
    pub fn subscriber_count(&self) -> u32 {
        self.router.inner.subscribers()
    }
}

/// A deadline `timeout` from the first time it is asked for: the send path
/// reads the clock only if it has to wait.
struct LazyDeadline {
    timeout: Option<Duration>,
    at: Option<Instant>,
}

impl LazyDeadline {
    fn new(timeout: Option<Duration>) -> Self {
        Self { timeout, at: None }
    }

    fn get(&mut self) -> Option<Instant> {
        let timeout = self.timeout?;
        Some(*self.at.get_or_insert_with(|| Instant::now() + timeout))
    }
}

/// Waits until `ring` has space, the subscriber changes, or `deadline`.
fn wait_for_space(
    ring: &Ring<'_>,
    port: &PortSlot,
    seen: u64,
    deadline: Option<Instant>,
    segment: &crate::Segment,
) -> bool {
    // A busy subscriber frees room within microseconds: poll a little
    // before sleeping, which spares both sides a system call (the
    // subscriber wakes us only if we announced ourselves).
    for _ in 0..DEFAULT_SPIN_COUNT {
        if !ring.is_full() {
            return true;
        }
        std::hint::spin_loop();
    }
    loop {
        ring.words.space_waiters.store(1, Ordering::SeqCst);
        let seq = ring.words.space_seq.load(Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // A subscriber that left (or was reclaimed) fails the pipe, even if
        // leaving emptied its queue.
        if port.state.load(Ordering::SeqCst) != seen {
            ring.words.space_waiters.store(0, Ordering::SeqCst);
            return false;
        }
        if !ring.is_full() {
            ring.words.space_waiters.store(0, Ordering::SeqCst);
            return true;
        }
        let cap = Instant::now() + POLL;
        let until = deadline.map_or(cap, |d| d.min(cap));
        let woke = futex::wait_until(&ring.words.space_seq, seq, Some(until));
        ring.words.space_waiters.store(0, Ordering::SeqCst);
        if woke == futex::Wake::TimedOut {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return !ring.is_full();
            }
            // Waiting long: maybe the subscriber died with a full queue.
            // Reclaiming it changes its port, which ends this wait.
            let _ = segment.cleanup_dead();
        }
    }
}

impl<V: ?Sized + SlotView> Drop for Publisher<V> {
    fn drop(&mut self) {
        let inner = &*self.router.inner;
        let port = inner.publisher_port(self.index);
        let cur = port.state.load(Ordering::Relaxed);
        // What we queued stays deliverable; the slot is free for reuse.
        port.state
            .store(pack(generation_of(cur), FREE), Ordering::SeqCst);
        inner.wake_all_subscribers();
    }
}

/// Receives samples from every publisher of a router.
pub struct Subscriber<V: ?Sized + SlotView> {
    router: Router<V>,
    index: u32,
    /// Publisher to look at first (round robin for fairness).
    next: u32,
    /// Polls before sleeping in a blocking receive.
    spins: u32,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl<V: ?Sized + SlotView> fmt::Debug for Subscriber<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("router", &self.router.inner.name)
            .field("port", &self.index)
            .finish()
    }
}

impl<V: ?Sized + SlotView> Subscriber<V> {
    /// Takes the next message if one is queued. Messages from one
    /// publisher arrive in the order sent.
    pub fn try_recv(&mut self) -> Result<Option<Sample<V>>, RecvError> {
        let inner = &*self.router.inner;
        let n = inner.config.max_publishers;
        for k in 0..n {
            let p = (self.next + k) % n;
            let ring = inner.ring(p, self.index);
            match ring.pop() {
                Pop::Empty => {}
                Pop::Corrupt => return Err(RecvError::CorruptQueue { publisher: p }),
                Pop::Entry(e) => {
                    crash_point!("router.recv.after_pop");
                    wake_producer(&ring);
                    self.next = (p + 1) % n;
                    // SAFETY: a queue entry owns one reference, and our
                    // successful pop made us its only redeemer.
                    let sample = unsafe { inner.pool.core().adopt(RawSample::from_u64(e)) }?;
                    return Ok(Some(sample));
                }
            }
        }
        Ok(None)
    }

    /// How many times a blocking receive polls before it sleeps (default
    /// [`DEFAULT_SPIN_COUNT`], a few microseconds). Spinning catches
    /// messages that arrive right away without a futex wake-up (which costs
    /// the sender a system call and the receiver a scheduler round trip);
    /// 0 sleeps at once and leaves the core to others.
    pub fn set_spin_count(&mut self, polls: u32) {
        self.spins = polls;
    }

    /// Waits up to `timeout` for a message.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Sample<V>, RecvError> {
        self.recv_within(Some(timeout))
    }

    /// Waits for a message; returns [`RecvError::Closed`] once no publisher
    /// is attached and nothing is queued (at once if there is none now).
    pub fn recv(&mut self) -> Result<Sample<V>, RecvError> {
        self.recv_within(None)
    }

    fn recv_within(&mut self, timeout: Option<Duration>) -> Result<Sample<V>, RecvError> {
        if let Some(s) = self.try_recv()? {
            return Ok(s);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        for _ in 0..self.spins {
            if let Some(s) = self.try_recv()? {
                return Ok(s);
            }
            std::hint::spin_loop();
        }
        let inner = self.router.inner.clone();
        let port = inner.subscriber_port(self.index);
        loop {
            port.waiters.fetch_add(1, Ordering::SeqCst);
            let seq = port.notify.load(Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let got = match self.try_recv() {
                Ok(None) => None,
                Ok(Some(s)) => Some(Ok(s)),
                Err(e) => Some(Err(e)),
            };
            if let Some(result) = got {
                port.waiters.fetch_sub(1, Ordering::SeqCst);
                return result;
            }
            if deadline.is_none() && inner.publishers() == 0 {
                port.waiters.fetch_sub(1, Ordering::SeqCst);
                return Err(RecvError::Closed);
            }
            let cap = Instant::now() + POLL;
            let until = deadline.map_or(cap, |d| d.min(cap));
            let woke = futex::wait_until(&port.notify, seq, Some(until));
            port.waiters.fetch_sub(1, Ordering::SeqCst);
            if woke == futex::Wake::TimedOut {
                // Quiet for a while: maybe publishers died. Reclaiming them
                // frees their ports, which a blocking `recv` sees as closed.
                let _ = inner.pool.home().cleanup_dead();
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.try_recv()?.ok_or(RecvError::Timeout);
            }
        }
    }

    /// Whether the pipe is open: a publisher is attached or a message is
    /// queued (the seed's `while (*pipe)`).
    pub fn is_open(&self) -> bool {
        let inner = &*self.router.inner;
        inner.publishers() > 0 || self.pending() > 0
    }

    /// Messages queued for this subscriber now.
    pub fn pending(&self) -> u64 {
        let inner = &*self.router.inner;
        (0..inner.config.max_publishers)
            .map(|p| inner.ring(p, self.index).len())
            .sum()
    }

    /// The router this subscriber receives from (its pool, its counts).
    pub fn router(&self) -> &Router<V> {
        &self.router
    }

    /// Publishers attached now.
    pub fn publisher_count(&self) -> u32 {
        self.router.inner.publishers()
    }
}

impl<V: ?Sized + SlotView> Drop for Subscriber<V> {
    fn drop(&mut self) {
        let inner = &*self.router.inner;
        let port = inner.subscriber_port(self.index);
        let cur = port.state.load(Ordering::Relaxed);
        let generation = generation_of(cur);
        port.state
            .store(pack(generation, LEAVING), Ordering::SeqCst);
        for p in 0..inner.config.max_publishers {
            inner.drain(&inner.ring(p, self.index));
        }
        port.state.store(pack(generation, FREE), Ordering::SeqCst);
    }
}

/// Releases what the dead participant `dead_id` held in the router object
/// at `offset` of `segment`: its publisher ports are freed (what they
/// queued stays deliverable) and its subscriber ports are emptied — queued
/// references released, cells a dead popper left claimed handed back — and
/// freed, waking publishers that wait on them.
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
