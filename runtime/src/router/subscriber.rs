//! [`Subscriber`]: takes references from its queues, busy-polling then
//! sleeping on its futex word.

use super::*;

/// Receives samples from every publisher of a router.
pub struct Subscriber<V: ?Sized + SlotView> {
    pub(super) router: Router<V>,
    pub(super) index: u32,
    /// Publisher to look at first (round robin for fairness).
    pub(super) next: u32,
    /// Polls before sleeping in a blocking receive.
    pub(super) spins: u32,
    /// The publisher port of the last message received.
    pub(super) last: Option<u32>,
    pub(super) _not_sync: PhantomData<std::cell::Cell<()>>,
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
        // Round robin from `next` without a division per poll.
        let mut p = self.next.min(n.saturating_sub(1));
        for _ in 0..n {
            let ring = inner.ring(p, self.index);
            match ring.pop() {
                Pop::Empty => {}
                Pop::Corrupt => return Err(RecvError::CorruptQueue { publisher: p }),
                Pop::Entry(e) => {
                    crash_point!("router.recv.after_pop");
                    // The next message's lines were written by the
                    // publisher's core: start fetching them while this one
                    // is handled (a stream then waits for one line
                    // transfer at a time, not three in a row).
                    if let Some(next) = ring.peek() {
                        inner.pool.core().prefetch(RawSample::from_u64(next));
                    }
                    wake_producer(&ring);
                    self.next = if p + 1 == n { 0 } else { p + 1 };
                    self.last = Some(p);
                    // SAFETY: a queue entry owns one reference, and our
                    // successful pop made us its only redeemer.
                    let sample = unsafe { inner.pool.core().adopt(RawSample::from_u64(e)) }?;
                    return Ok(Some(sample));
                }
            }
            p = if p + 1 == n { 0 } else { p + 1 };
        }
        Ok(None)
    }

    /// The port of the publisher that sent the last message received
    /// ([`Publisher::port`](crate::Publisher::port)), `None` before the
    /// first: how a bridge tells the messages it injected itself from the
    /// others.
    pub fn last_publisher(&self) -> Option<u32> {
        self.last
    }

    /// How many times a blocking receive polls before it sleeps (default
    /// [`DEFAULT_SPIN_COUNT`]: 7–15 µs on a 2-vCPU VM, longer with more
    /// publisher ports, since each poll looks at every publisher's queue).
    /// Spinning catches
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

    pub(super) fn recv_within(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Sample<V>, RecvError> {
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
        let line = inner.wake_line();
        let bit = wake_bit(self.index);
        loop {
            // Announce the sleep before reading `notify` and checking the
            // rings once more: a publisher that pushed before seeing
            // `asleep` is seen by that check, one that sees it wakes us.
            port.asleep.store(1, Ordering::SeqCst);
            let seq = line.notify.load(Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let got = match self.try_recv() {
                Ok(None) => None,
                Ok(Some(s)) => Some(Ok(s)),
                Err(e) => Some(Err(e)),
            };
            if let Some(result) = got {
                port.asleep.store(0, Ordering::Relaxed);
                return result;
            }
            if deadline.is_none() && inner.publishers() == 0 {
                port.asleep.store(0, Ordering::Relaxed);
                return Err(RecvError::Closed);
            }
            let cap = Instant::now() + POLL;
            let until = deadline.map_or(cap, |d| d.min(cap));
            let woke = futex::wait_bits_until(&line.notify, seq, Some(until), bit);
            port.asleep.store(0, Ordering::Relaxed);
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
