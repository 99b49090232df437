//! [`Publisher`]: loans from the topic's pool and delivers references to
//! every subscriber's queue under the chosen [`SendMode`].

use std::num::NonZeroU32;

use super::*;

/// Sends samples to every subscriber of a router. One per thread of use:
/// `send` takes `&mut self`, which keeps each queue single-producer.
pub struct Publisher<V: ?Sized + SlotView> {
    pub(super) router: Router<V>,
    pub(super) index: u32,
    /// A subscriber this publisher never sends to: its port and the state
    /// word it joined with (a later occupant of the port has another).
    pub(super) except: Option<(u32, u64)>,
    pub(super) _not_sync: PhantomData<std::cell::Cell<()>>,
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
    /// without writing it (see [`Pool::loan_recycled`](crate::Pool::loan_recycled)): for large payloads
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

impl Publisher<crate::DynMessage> {
    /// The type of the topic's messages.
    pub fn dyn_type(&self) -> &crate::DynType {
        self.router.inner.pool.dyn_type()
    }

    /// A message of zero bytes (a valid value of every type), waiting up to
    /// the pool's timeout: write its bytes, then [`publish`](Self::publish).
    pub fn loan_zeroed(&self) -> Result<SampleMut<crate::DynMessage>, crate::PoolExhausted> {
        self.router.inner.pool.loan_zeroed()
    }

    /// An uninitialised slot, waiting up to the pool's timeout: decode a
    /// message into it with [`wire::decode_dyn_into`](crate::wire::decode_dyn_into).
    pub fn loan_uninit(
        &self,
    ) -> Result<crate::UninitSample<crate::DynMessage>, crate::PoolExhausted> {
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
    /// This publisher's port in its router, unique among the publishers
    /// attached now ([`Subscriber::last_publisher`](crate::Subscriber::last_publisher)
    /// names the same ports).
    pub fn port(&self) -> u32 {
        self.index
    }

    /// The router this publisher sends through (its pool, its counts).
    pub fn router(&self) -> &Router<V> {
        &self.router
    }

    /// Leaves `subscriber` out of everything this publisher sends from now
    /// on: for a process that both receives a topic and publishes on it,
    /// such as a bridge, whose out side must not get back what its in side
    /// publishes (nor wait for room in its queue). Returns `false`, and
    /// changes nothing, if `subscriber` is not of this publisher's router.
    /// The exclusion ends with that subscriber: a later subscriber on the
    /// same port receives everything.
    #[must_use]
    pub fn exclude(&mut self, subscriber: &Subscriber<V>) -> bool {
        let (mine, theirs) = (&*self.router.inner, &*subscriber.router.inner);
        let same = mine.name == theirs.name
            && mine.pool.home().id() == theirs.pool.home().id()
            && mine.config == theirs.config;
        if !same {
            return false;
        }
        let state = mine
            .subscriber_port(subscriber.index)
            .state
            .load(Ordering::SeqCst);
        self.except = Some((subscriber.index, state));
        true
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
    pub(super) fn deliver(&self, raw: RawSample, owned: bool, mode: SendMode) -> usize {
        let inner = &*self.router.inner;
        let mut deadline = LazyDeadline::new(match mode {
            SendMode::WaitIfFull(d) => Some(d),
            _ => None,
        });
        // Every subscriber found asleep is woken by one system call at the
        // end (or before this send waits for room).
        let mut wakes = PendingWakes::new(inner);
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
            if state_of(seen) != ACTIVE || self.except == Some((s, seen)) {
                continue;
            }
            if let Some((ps, pseen)) = pending.replace((s, seen)) {
                if owned && !held {
                    inner.pool.core().hold_raw(raw);
                    held = true;
                }
                failed +=
                    usize::from(!self.push_one((ps, pseen), raw, mode, &mut deadline, &mut wakes));
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
            if self.push_now((ps, pseen), raw, &mut wakes) {
                return failed;
            }
            inner.pool.core().hold_raw(raw);
        }
        failed += usize::from(!self.push_one((ps, pseen), raw, mode, &mut deadline, &mut wakes));
        if owned {
            inner.pool.core().unhold_raw(raw);
            inner.release_entry(raw.to_u64());
        }
        failed
    }

    /// Pushes the entry `raw` (whose reference the caller hands over) into
    /// the pipe to `s` if it has room right now.
    pub(super) fn push_now(
        &self,
        (s, seen): (u32, u64),
        raw: RawSample,
        wakes: &mut PendingWakes<'_>,
    ) -> bool {
        let inner = &*self.router.inner;
        let ring = inner.ring(self.index, s);
        if !ring.push(raw.to_u64()) {
            return false;
        }
        self.after_push(s, seen, &ring, wakes);
        true
    }

    /// Notes subscriber `s` in `wakes` if it sleeps, and drains the ring if
    /// it left while we pushed.
    pub(super) fn after_push(
        &self,
        s: u32,
        seen: u64,
        ring: &Ring<'_>,
        wakes: &mut PendingWakes<'_>,
    ) {
        let inner = &*self.router.inner;
        let port = inner.subscriber_port(s);
        // Only the first publisher to see the receiver asleep wakes it (a
        // plain load first: no write to the receiver's line while it runs).
        if port.asleep.load(Ordering::SeqCst) != 0 && port.asleep.swap(0, Ordering::SeqCst) != 0 {
            wakes.add(wake_bit(s));
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
    pub(super) fn push_one(
        &self,
        (s, seen): (u32, u64),
        raw: RawSample,
        mode: SendMode,
        deadline: &mut LazyDeadline,
        wakes: &mut PendingWakes<'_>,
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
                    // Those already reached must not wait with us.
                    wakes.flush();
                    if !wait_for_space(&ring, port, seen, deadline.get(), inner.pool.home()) {
                        break false;
                    }
                }
            }
        };
        if pushed {
            self.after_push(s, seen, &ring, wakes);
        }
        pushed
    }

    /// Whether every subscriber's queue from this publisher has room for
    /// one more message now. Only this publisher adds to those queues, so
    /// the next send then never waits for room (a subscriber joining in
    /// between starts with an empty queue). For callers that must not
    /// block, such as a task on an async runtime: publish inline when this
    /// holds, hand the send to a thread that may block otherwise.
    pub fn queues_have_room(&self) -> bool {
        let inner = &*self.router.inner;
        (0..inner.config.max_subscribers).all(|s| {
            let seen = inner.subscriber_port(s).state.load(Ordering::SeqCst);
            state_of(seen) != ACTIVE
                || self.except == Some((s, seen))
                || !inner.ring(self.index, s).is_full()
        })
    }

    /// Subscribers attached now.
    pub fn subscriber_count(&self) -> u32 {
        self.router.inner.subscribers()
    }
}

/// The subscribers a send found asleep ([`wake_bit`]s), woken together by
/// one system call when it is flushed or dropped.
pub(super) struct PendingWakes<'a> {
    view: &'a RouterView,
    bits: u32,
}

impl<'a> PendingWakes<'a> {
    pub(super) fn new(view: &'a RouterView) -> Self {
        Self { view, bits: 0 }
    }

    pub(super) fn add(&mut self, bit: NonZeroU32) {
        self.bits |= bit.get();
    }

    pub(super) fn flush(&mut self) {
        if let Some(bits) = NonZeroU32::new(std::mem::take(&mut self.bits)) {
            self.view.wake_subscribers(bits);
        }
    }
}

impl Drop for PendingWakes<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A deadline `timeout` from the first time it is asked for: the send path
/// reads the clock only if it has to wait.
pub(super) struct LazyDeadline {
    pub(super) timeout: Option<Duration>,
    pub(super) at: Option<Instant>,
}

impl LazyDeadline {
    pub(super) fn new(timeout: Option<Duration>) -> Self {
        Self { timeout, at: None }
    }

    pub(super) fn get(&mut self) -> Option<Instant> {
        let timeout = self.timeout?;
        Some(*self.at.get_or_insert_with(|| Instant::now() + timeout))
    }
}

/// Waits until `ring` has space, the subscriber changes, or `deadline`.
pub(super) fn wait_for_space(
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
