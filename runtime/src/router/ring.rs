//! One connection's queue: a bounded ring of raw sample handles with a
//! single producer (the publisher) and competing poppers (the subscriber,
//! and the publisher itself when it overwrites the oldest entry or drains a
//! ring whose subscriber left). Written against `crate::sync` so the loom
//! model checks this exact code.
//!
//! ```text
//! head: u64  — position of the oldest entry; advanced only by CAS (any popper)
//! tail: u64  — position after the newest entry; written only by the producer
//! entries[pos % depth]
//! ```
//!
//! Positions only grow (64 bits do not wrap), so a CAS on `head` can never
//! succeed on a stale value (no ABA). A popper reads the entry at `head`
//! *before* its CAS and owns it only if the CAS succeeds; the producer
//! writes `entries[t % depth]` only when `t < head + depth`, i.e. after the
//! entry that used that cell was popped by someone whose CAS succeeded —
//! and that popper read it before its CAS. Every entry is therefore owned
//! by exactly one popper.
//!
//! Each entry owns one reference to its sample: the producer counts it
//! before pushing, the popper takes it over.

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// The shared words of a ring. Entries follow it in memory.
#[repr(C, align(64))]
pub(crate) struct RingHead {
    /// Oldest entry's position. Popped by CAS.
    pub head: AtomicU64,
    /// Futex word the producer sleeps on when the ring is full; bumped by
    /// a popper that sees `space_waiters > 0`.
    pub space_seq: AtomicU32,
    /// 1 while the producer waits for space.
    pub space_waiters: AtomicU32,
    _pad: [u64; 6],
    /// Next position to write. Written only by the producer.
    pub tail: AtomicU64,
    _pad2: [u64; 7],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RingHead>() == 128);

impl RingHead {
    /// A fresh, empty ring (shared-memory rings start as zero bytes, which
    /// is the same value; the loom model builds them with this).
    #[cfg_attr(not(loom), allow(dead_code))]
    pub(crate) fn new() -> Self {
        Self {
            head: AtomicU64::new(0),
            space_seq: AtomicU32::new(0),
            space_waiters: AtomicU32::new(0),
            _pad: [0; 6],
            tail: AtomicU64::new(0),
            _pad2: [0; 7],
        }
    }
}

/// Outcome of a pop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pop {
    /// An entry; the caller now owns its reference.
    Entry(u64),
    Empty,
    /// `tail - head` exceeds the depth: the ring's words are corrupt.
    Corrupt,
}

/// A ring view: its shared words and its entries.
pub(crate) struct Ring<'a> {
    pub words: &'a RingHead,
    pub entries: &'a [AtomicU64],
}

impl Ring<'_> {
    fn depth(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Entries in the ring now.
    pub(crate) fn len(&self) -> u64 {
        let head = self.words.head.load(Ordering::Acquire);
        let tail = self.words.tail.load(Ordering::Acquire);
        tail.saturating_sub(head)
    }

    /// Whether the producer may push (producer only).
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.depth()
    }

    /// Pushes an entry (producer only); `false` if the ring is full.
    pub(crate) fn push(&self, entry: u64) -> bool {
        // Only the producer writes `tail`.
        let tail = self.words.tail.load(Ordering::Relaxed);
        // SYNC POINT: Acquire pairs with the popper's successful CAS on
        // `head`: its read of the cell we are about to reuse happened before.
        let head = self.words.head.load(Ordering::Acquire);
        if tail.wrapping_sub(head) >= self.depth() {
            return false;
        }
        self.entries[(tail % self.depth()) as usize].store(entry, Ordering::Relaxed);
        // SYNC POINT: SeqCst (a Release) publishes the entry to poppers that
        // load `tail` with Acquire; SeqCst also orders it before the
        // caller's load of the subscriber's waiter count (see router docs).
        self.words.tail.store(tail + 1, Ordering::SeqCst);
        true
    }

    /// Pops the oldest entry (any popper).
    pub(crate) fn pop(&self) -> Pop {
        loop {
            let head = self.words.head.load(Ordering::Acquire);
            // SYNC POINT: pairs with the Release store of `tail` in `push`.
            let tail = self.words.tail.load(Ordering::Acquire);
            if head >= tail {
                return Pop::Empty;
            }
            if tail - head > self.depth() {
                return Pop::Corrupt;
            }
            let entry = self.entries[(head % self.depth()) as usize].load(Ordering::Relaxed);
            if self
                .words
                .head
                .compare_exchange(head, head + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Pop::Entry(entry);
            }
        }
    }

    /// After a pop: whether the producer sleeps waiting for space (then the
    /// caller bumps `space_seq` and wakes it).
    pub(crate) fn producer_waiting(&self) -> bool {
        self.words.space_waiters.load(Ordering::SeqCst) != 0
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use loom::{sync::Arc, thread};

    use super::*;

    struct Model {
        words: RingHead,
        entries: Vec<AtomicU64>,
    }

    impl Model {
        fn ring(&self) -> Ring<'_> {
            Ring {
                words: &self.words,
                entries: &self.entries,
            }
        }
    }

    /// A producer pushes 1..=3 into a ring of depth 2, overwriting the
    /// oldest when full, while a consumer pops: every value is taken by
    /// exactly one of them, and the consumer sees increasing values.
    #[test]
    fn each_entry_is_popped_exactly_once_under_overwrite() {
        loom::model(|| {
            let m = Arc::new(Model {
                words: RingHead::new(),
                entries: (0..2).map(|_| AtomicU64::new(0)).collect(),
            });
            let consumer = {
                let m = m.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..2 {
                        if let Pop::Entry(v) = m.ring().pop() {
                            got.push(v);
                        }
                    }
                    got
                })
            };
            let mut overwritten = Vec::new();
            for v in 1..=3u64 {
                while !m.ring().push(v) {
                    if let Pop::Entry(old) = m.ring().pop() {
                        overwritten.push(old);
                    }
                }
            }
            let got = consumer.join().unwrap();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "order kept: {got:?}");
            let mut rest = Vec::new();
            while let Pop::Entry(v) = m.ring().pop() {
                rest.push(v);
            }
            let mut all: Vec<u64> = got
                .iter()
                .chain(&overwritten)
                .chain(&rest)
                .copied()
                .collect();
            all.sort();
            assert_eq!(all, vec![1, 2, 3], "each entry exactly once");
        });
    }
}
