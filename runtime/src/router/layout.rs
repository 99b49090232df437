//! A router object's bytes: header, port slots and rings, their geometry,
//! and the untyped view every handle reads them through
//! (`docs/segment-format.md`).

use std::num::NonZeroU32;

use super::*;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct RouterHeader {
    pub(super) magic: u32,
    pub(super) max_publishers: u32,
    pub(super) max_subscribers: u32,
    pub(super) depth: u32,
    pub(super) default_mode: u32,
    pub(super) pool_name_len: u32,
    pub(super) default_timeout_ns: u64,
    pub(super) pool_offset: u64,
    pub(super) payload_fingerprint: u64,
    pub(super) ports_offset: u64,
    pub(super) rings_offset: u64,
    pub(super) ring_stride: u64,
    pub(super) total_size: u64,
    pub(super) pool_name: [u8; 64],
}

// The sizes `docs/segment-format.md` gives: a header of 192 bytes (80 of
// fields, the pool's name, padding to three lines), a wake line and ports
// of one line each (loom's atomics are larger).
const _: () = assert!(std::mem::size_of::<RouterHeader>() == 192);
#[cfg(not(shmidl_loom))]
const _: () = assert!(std::mem::size_of::<WakeLine>() == 64);
#[cfg(not(shmidl_loom))]
const _: () = assert!(std::mem::size_of::<PortSlot>() == 64);

/// The cache line after the header: the futex word every sleeping
/// subscriber of the router waits on, each for its own bit
/// ([`wake_bit`]), so that a publisher wakes all the
/// sleepers a message reaches with one system call.
#[repr(C, align(64))]
pub(super) struct WakeLine {
    /// Bumped before every wake-up.
    pub(super) notify: AtomicU32,
}

/// A publisher or subscriber slot, one cache line.
#[repr(C, align(64))]
pub(super) struct PortSlot {
    /// `generation << 32 | state`.
    pub(super) state: AtomicU64,
    pub(super) pid: AtomicU32,
    /// Subscriber: 1 from just before a receiver sleeps until the first
    /// publisher to see it takes it (swap to 0) and wakes the receiver: one
    /// wake-up per sleep, however many messages arrive before it runs.
    pub(super) asleep: AtomicU32,
    /// Random id of the owning participant (for crash recovery).
    pub(super) owner: AtomicU64,
}

/// The futex bit subscriber `s` sleeps on in the router's [`WakeLine`]:
/// subscribers 32 apart share one, which costs a spurious wake-up at most.
pub(super) fn wake_bit(s: u32) -> NonZeroU32 {
    // A shift below 32 of a 1 is never zero.
    NonZeroU32::new(1 << (s % 32)).unwrap_or(NonZeroU32::MIN)
}

pub(super) fn pack(generation: u32, state: u32) -> u64 {
    u64::from(generation) << 32 | u64::from(state)
}

pub(super) fn state_of(word: u64) -> u32 {
    word as u32
}

pub(super) fn generation_of(word: u64) -> u32 {
    (word >> 32) as u32
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) ports_offset: usize,
    pub(super) rings_offset: usize,
    pub(super) ring_stride: usize,
    pub(super) total_size: usize,
}

impl Geometry {
    pub(super) fn new(c: &RouterConfig) -> Result<Self, RouterOpenError> {
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
        let ports_offset = std::mem::size_of::<RouterHeader>() + std::mem::size_of::<WakeLine>();
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
pub(super) struct RouterView {
    // INVARIANTS: `base` points to an initialised router object of
    // `geom.total_size` bytes whose mapping outlives the view (kept by the
    // owner of the view: a `Pool` or a `Segment` handle).
    pub(super) base: NonNull<u8>,
    pub(super) config: RouterConfig,
    pub(super) geom: Geometry,
}

impl RouterView {
    /// Reads and checks the header of the router object at `base`, of
    /// `size` bytes (from its directory entry).
    pub(super) fn from_object(
        base: NonNull<u8>,
        size: u64,
    ) -> Result<(Self, RouterHeader), &'static str> {
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

    pub(super) fn port(&self, index: usize) -> &PortSlot {
        debug_assert!(index < (self.config.max_publishers + self.config.max_subscribers) as usize);
        let p = self
            .base
            .as_ptr()
            .wrapping_add(self.geom.ports_offset + index * std::mem::size_of::<PortSlot>());
        // SAFETY: inside the object (index bounded by the port count, which
        // `Geometry` sized), 64-aligned, all atomics; alive while `self` is.
        unsafe { &*p.cast::<PortSlot>() }
    }

    pub(super) fn wake_line(&self) -> &WakeLine {
        let p = self
            .base
            .as_ptr()
            .wrapping_add(std::mem::size_of::<RouterHeader>());
        // SAFETY: the wake line follows the header inside the object
        // (`Geometry` puts the ports after it), 64-aligned, atomics only;
        // alive while `self` is.
        unsafe { &*p.cast::<WakeLine>() }
    }

    /// Wakes the sleeping subscribers among `bits` ([`wake_bit`]).
    pub(super) fn wake_subscribers(&self, bits: NonZeroU32) {
        let line = self.wake_line();
        line.notify.fetch_add(1, Ordering::SeqCst);
        futex::wake_bits(&line.notify, bits);
    }

    pub(super) fn publisher_port(&self, p: u32) -> &PortSlot {
        self.port(p as usize)
    }

    pub(super) fn subscriber_port(&self, s: u32) -> &PortSlot {
        self.port((self.config.max_publishers + s) as usize)
    }

    pub(super) fn ring(&self, p: u32, s: u32) -> Ring<'_> {
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

    pub(super) fn publishers(&self) -> u32 {
        (0..self.config.max_publishers)
            .filter(|&p| state_of(self.publisher_port(p).state.load(Ordering::Acquire)) == ACTIVE)
            .count() as u32
    }

    pub(super) fn subscribers(&self) -> u32 {
        (0..self.config.max_subscribers)
            .filter(|&s| state_of(self.subscriber_port(s).state.load(Ordering::Acquire)) == ACTIVE)
            .count() as u32
    }

    /// Claims a free port among `count` ports starting at `first`.
    pub(super) fn claim(
        &self,
        first: usize,
        count: u32,
        publisher: bool,
        owner: u64,
    ) -> Option<(u32, u32)> {
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
    pub(super) fn wake_all_subscribers(&self) {
        self.wake_subscribers(NonZeroU32::MAX);
    }
}

pub(super) fn wake_producer(ring: &Ring<'_>) {
    // The pop's stamp store (Release) must come before this load of the
    // producer's flag in the SeqCst order, or both sides can miss each
    // other: the popper reads no waiter while the producer, after setting
    // the flag and its fence, still reads the cell as full and sleeps (until
    // its 100 ms poll). The fence makes this the Dekker pattern the module
    // documents (on the message side the stamp store itself is SeqCst).
    fence(Ordering::SeqCst);
    // One wake-up per sleep: the first popper to see the producer waiting
    // takes the flag (a plain load first, so that pops write nothing while
    // it runs); the pops after it, before the producer runs again, make no
    // system call. The producer sets the flag anew before each sleep.
    if ring.producer_waiting() && ring.words.space_waiters.swap(0, Ordering::SeqCst) != 0 {
        ring.words.space_seq.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&ring.words.space_seq);
    }
}

/// Writes a fresh router at `ptr`, for payloads of `payload_fingerprint`.
///
/// # Safety
/// `ptr` must be valid for writes of `geom.total_size` bytes, 64-aligned,
/// and not accessed by anyone else during the call.
pub(super) unsafe fn init_router(
    ptr: NonNull<u8>,
    c: &RouterConfig,
    geom: &Geometry,
    (pool_offset, payload_fingerprint): (u64, u64),
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
        payload_fingerprint,
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
    let header = std::mem::size_of::<RouterHeader>();
    let rest = ptr.as_ptr().wrapping_add(header);
    // SAFETY: `header..total_size` lies inside the object; all-zero is a
    // valid value for the wake line and every port slot, ring head and
    // entry (all atomics).
    unsafe { std::ptr::write_bytes(rest, 0, geom.total_size - header) };
}
