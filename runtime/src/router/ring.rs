//! One connection's queue: a bounded ring of raw sample handles with a
//! single producer (the publisher) and competing poppers (the subscriber,
//! and the publisher itself when it overwrites the oldest entry or drains a
//! ring whose subscriber left). Written against `crate::sync` so the loom
//! model checks this exact code.
//!
//! The design follows the stamped cells of crossbeam's `ArrayQueue`
//! (D. Vyukov's bounded MPMC queue), reduced to one producer:
//!
//! ```text
//! head: u64   next position to pop; advanced only by CAS (any popper)
//! tail: u64   next position to push; written only by the producer
//! cell[pos % depth] = { stamp, value }, with lap = pos / depth:
//!     stamp == 2·lap       empty, ready for position pos
//!     stamp == 2·lap + 1   holds the value of position pos
//! ```
//!
//! Shared memory starts zeroed, which is "every cell empty, lap 0". A push
//! writes the value, then the stamp `2·lap + 1` (Release). A pop reads the
//! stamp (Acquire) and the value, then claims the position by CAS on `head`
//! and only then marks the cell empty for the next lap (`2·lap + 2`). So:
//!
//! - the producer never overwrites a value that no popper has claimed (it
//!   waits for the stamp of the next lap), and
//! - every value is claimed by exactly one popper: positions only grow (64
//!   bits never wrap), so a CAS from a stale `head` cannot succeed.
//!
//! In the common case each side touches one shared cache line per message
//! (the cell); `head` stays in the subscriber's cache and `tail` in the
//! publisher's. Each value owns one reference to its sample: the producer
//! counts it before pushing, the popper takes it over.
//!
//! A popper that dies between its CAS and its stamp store leaves that cell
//! "full" forever: the producer sees a full ring there (a `WaitIfFull` send
//! times out, `SoftFailIfFull` fails, `OverwriteOldest` fails the pipe
//! rather than spin). Nothing is released twice; `docs/crash-safety.md`
//! covers how the ring is reset.

use crate::sync::{spin_hint, AtomicU32, AtomicU64, Ordering};

/// How often `push_overwrite` finds the ring full with nothing to pop
/// before it gives up: a popper is between its claim and its stamp store
/// (a few instructions), or died there.
const STALL_LIMIT: u32 = if cfg!(shmidl_loom) { 3 } else { 100_000 };

/// Stamp of a cell that is empty, ready for a position of lap `lap`.
/// Positions come from shared memory, so all arithmetic on them wraps
/// instead of panicking on a corrupted value.
fn empty(lap: u64) -> u64 {
    lap.wrapping_mul(2)
}

/// Stamp of a cell that holds the value of a position of lap `lap`.
fn full(lap: u64) -> u64 {
    empty(lap).wrapping_add(1)
}

/// How many cells ahead of the tail a push prefetches (two lines of four
/// 16-byte cells).
const PREFETCH_AHEAD: u64 = 8;

/// The shared words of a ring. Cells follow it in memory.
#[repr(C, align(64))]
pub(crate) struct RingHead {
    /// Next position to pop. Advanced by CAS.
    pub head: AtomicU64,
    /// Futex word the producer sleeps on when the ring is full; bumped by
    /// the popper that takes `space_waiters`.
    pub space_seq: AtomicU32,
    /// 1 from just before the producer sleeps for space until it wakes or
    /// the first popper to see it swaps it to 0 (and wakes it).
    pub space_waiters: AtomicU32,
    _pad: [u64; 6],
    /// Next position to push. Written only by the producer.
    pub tail: AtomicU64,
    _pad2: [u64; 7],
}

#[cfg(not(shmidl_loom))]
const _: () = assert!(std::mem::size_of::<RingHead>() == 128);

/// One stamped cell.
#[repr(C)]
pub(crate) struct Cell {
    pub stamp: AtomicU64,
    pub value: AtomicU64,
}

#[cfg(not(shmidl_loom))]
const _: () = assert!(std::mem::size_of::<Cell>() == 16);

impl RingHead {
    /// A fresh, empty ring (shared-memory rings start as zero bytes, which
    /// is the same value; the loom model builds them with this).
    #[cfg_attr(not(shmidl_loom), allow(dead_code))]
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
    /// A value; the caller now owns its reference.
    Entry(u64),
    Empty,
    /// Stamps and positions disagree: the ring's memory is corrupt.
    Corrupt,
}

/// A ring view: its shared words and its cells.
pub(crate) struct Ring<'a> {
    pub words: &'a RingHead,
    pub cells: &'a [Cell],
}

impl Ring<'_> {
    fn depth(&self) -> u64 {
        self.cells.len() as u64
    }

    /// The cell of position `pos`, and its lap. For a power-of-two depth
    /// (the defaults and most configurations) a mask and a shift: a 64-bit
    /// division costs tens of cycles, and a message takes several of these
    /// on each side.
    #[inline]
    fn cell(&self, pos: u64) -> (&Cell, u64) {
        let depth = self.depth();
        let (index, lap) = if depth.is_power_of_two() {
            (pos & (depth - 1), pos >> depth.trailing_zeros())
        } else {
            (pos % depth, pos / depth)
        };
        (&self.cells[index as usize], lap)
    }

    /// Values in the ring now (exact when quiescent).
    /// `(head, tail)`: positions popped (or overwritten) and pushed since
    /// the ring was made; both only grow.
    pub(crate) fn counters(&self) -> (u64, u64) {
        (
            self.words.head.load(Ordering::Acquire),
            self.words.tail.load(Ordering::Acquire),
        )
    }

    pub(crate) fn len(&self) -> u64 {
        let head = self.words.head.load(Ordering::Acquire);
        let tail = self.words.tail.load(Ordering::Acquire);
        tail.saturating_sub(head)
    }

    /// Whether the next push would fail (producer only).
    pub(crate) fn is_full(&self) -> bool {
        let tail = self.words.tail.load(Ordering::Relaxed);
        let (cell, lap) = self.cell(tail);
        cell.stamp.load(Ordering::Acquire) != empty(lap)
    }

    /// Pushes a value (producer only); `false` if the ring is full.
    pub(crate) fn push(&self, value: u64) -> bool {
        // Only the producer writes `tail`.
        let tail = self.words.tail.load(Ordering::Relaxed);
        let (cell, lap) = self.cell(tail);
        // SYNC POINT: Acquire pairs with the Release stamp store of the
        // popper that emptied this cell: its read of the old value happened
        // before we overwrite it.
        if cell.stamp.load(Ordering::Acquire) != empty(lap) {
            return false;
        }
        cell.value.store(value, Ordering::Relaxed);
        crate::crash::crash_point!("ring.push.after_value");
        // SYNC POINT: SeqCst (a Release) publishes the value to poppers
        // that load the stamp with Acquire; SeqCst also orders it before the
        // caller's load of the subscriber's waiter count (see router docs).
        cell.stamp.store(full(lap), Ordering::SeqCst);
        crate::crash::crash_point!("ring.push.after_stamp");
        self.words
            .tail
            .store(tail.wrapping_add(1), Ordering::Release);
        // The cells a few pushes ahead were last written by the popper
        // (their stamps): start moving their line here. Not in a short
        // ring, where that line may be the one the popper reads next.
        if self.depth() >= 4 * PREFETCH_AHEAD {
            let (ahead, _) = self.cell(tail.wrapping_add(PREFETCH_AHEAD));
            crate::prefetch::write(std::ptr::from_ref(ahead).cast::<u8>());
        }
        true
    }

    /// The oldest value if one is queued now, without taking it: a hint
    /// for prefetching only (another popper may take it at once, and a
    /// producer overwrite it).
    pub(crate) fn peek(&self) -> Option<u64> {
        let head = self.words.head.load(Ordering::Relaxed);
        let (cell, lap) = self.cell(head);
        (cell.stamp.load(Ordering::Relaxed) == full(lap))
            .then(|| cell.value.load(Ordering::Relaxed))
    }

    /// Pops the oldest value (any popper).
    pub(crate) fn pop(&self) -> Pop {
        let mut head = self.words.head.load(Ordering::Acquire);
        loop {
            let (cell, lap) = self.cell(head);
            // SYNC POINT: pairs with the Release stamp store in `push`.
            let stamp = cell.stamp.load(Ordering::Acquire);
            if stamp == full(lap) {
                let value = cell.value.load(Ordering::Relaxed);
                match self.words.head.compare_exchange(
                    head,
                    head.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        crate::crash::crash_point!("ring.pop.after_claim");
                        // SYNC POINT: Release: our read of `value` happens
                        // before the producer reuses the cell.
                        cell.stamp
                            .store(empty(lap.wrapping_add(1)), Ordering::Release);
                        return Pop::Entry(value);
                    }
                    Err(now) => head = now,
                }
            } else if stamp == empty(lap) {
                return Pop::Empty;
            } else {
                // Another popper took `head` and the cell moved on; look
                // again from the new head. If `head` did not move, the
                // stamp is impossible.
                let now = self.words.head.load(Ordering::Acquire);
                if now == head {
                    return Pop::Corrupt;
                }
                head = now;
            }
        }
    }

    /// Pushes `value` (producer only), popping the oldest values to make
    /// room; each displaced value goes to `displaced`, which now owns it.
    /// Fails only if the ring stays full with nothing to pop: a popper that
    /// claimed a cell has not finished (or died doing so).
    pub(crate) fn push_overwrite(&self, value: u64, mut displaced: impl FnMut(u64)) -> bool {
        let mut stalls = 0;
        loop {
            if self.push(value) {
                return true;
            }
            match self.pop() {
                Pop::Entry(old) => displaced(old),
                Pop::Empty if stalls < STALL_LIMIT => {
                    stalls += 1;
                    spin_hint();
                }
                Pop::Empty | Pop::Corrupt => return false,
            }
        }
    }

    /// Resets `tail` after a producer died (producer only, before its first
    /// push): the cells are the truth. Skips positions already popped and
    /// every full cell of the current lap that a dead producer filled
    /// without advancing `tail`.
    pub(crate) fn resync_tail(&self) {
        let head = self.words.head.load(Ordering::Acquire);
        let mut tail = self.words.tail.load(Ordering::Acquire).max(head);
        while tail.wrapping_sub(head) < self.depth() {
            let (cell, lap) = self.cell(tail);
            if cell.stamp.load(Ordering::Acquire) != full(lap) {
                break;
            }
            tail = tail.wrapping_add(1);
        }
        self.words.tail.store(tail, Ordering::Release);
    }

    /// Hands back cells that a popper claimed (advanced `head` past) but
    /// never marked empty because it died in between. Call only when that
    /// popper is known dead: a live popper stores the same value, so the
    /// CAS is harmless, but a dead one never will.
    pub(crate) fn release_abandoned_cells(&self) {
        let head = self.words.head.load(Ordering::Acquire);
        let depth = self.depth();
        for (i, cell) in self.cells.iter().enumerate() {
            let stamp = cell.stamp.load(Ordering::Acquire);
            if stamp % 2 == 1 {
                let lap = stamp / 2;
                let pos = lap.wrapping_mul(depth).wrapping_add(i as u64);
                if pos < head {
                    let _ = cell.stamp.compare_exchange(
                        stamp,
                        stamp.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                }
            }
        }
    }

    /// The values queued now, oldest first (exact when quiescent).
    pub(crate) fn queued(&self) -> Vec<u64> {
        let head = self.words.head.load(Ordering::Acquire);
        (0..self.depth())
            .map(|k| head.wrapping_add(k))
            .map_while(|pos| {
                let (cell, lap) = self.cell(pos);
                (cell.stamp.load(Ordering::Acquire) == full(lap))
                    .then(|| cell.value.load(Ordering::Relaxed))
            })
            .collect()
    }

    /// After a pop: whether the producer sleeps waiting for space (then the
    /// caller bumps `space_seq` and wakes it).
    pub(crate) fn producer_waiting(&self) -> bool {
        self.words.space_waiters.load(Ordering::SeqCst) != 0
    }
}

#[cfg(all(test, shmidl_loom))]
mod loom_tests {
    use loom::{sync::Arc, thread};

    use super::*;

    struct Model {
        words: RingHead,
        cells: Vec<Cell>,
    }

    impl Model {
        fn ring(&self) -> Ring<'_> {
            Ring {
                words: &self.words,
                cells: &self.cells,
            }
        }
    }

    fn model(depth: usize) -> Arc<Model> {
        Arc::new(Model {
            words: RingHead::new(),
            cells: (0..depth)
                .map(|_| Cell {
                    stamp: AtomicU64::new(0),
                    value: AtomicU64::new(0),
                })
                .collect(),
        })
    }

    /// A producer pushes 1..=3 into a ring of depth 2, overwriting the
    /// oldest when full, while a consumer pops: every value is taken by
    /// exactly one of them, and the consumer sees increasing values.
    #[test]
    fn each_entry_is_popped_exactly_once_under_overwrite() {
        loom::model(|| {
            let m = model(2);
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
                if !m.ring().push_overwrite(v, |old| overwritten.push(old)) {
                    // Gave up on a stalled popper: the value never entered.
                    overwritten.push(v);
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

    /// Two poppers race for the values of a full ring: each value goes to
    /// exactly one of them.
    #[test]
    fn competing_poppers_never_share_a_value() {
        loom::model(|| {
            let m = model(2);
            assert!(m.ring().push(1) && m.ring().push(2));
            let other = {
                let m = m.clone();
                thread::spawn(move || match m.ring().pop() {
                    Pop::Entry(v) => Some(v),
                    _ => None,
                })
            };
            let mine = match m.ring().pop() {
                Pop::Entry(v) => Some(v),
                _ => None,
            };
            let theirs = other.join().unwrap();
            let mut all: Vec<u64> = mine.into_iter().chain(theirs).collect();
            while let Pop::Entry(v) = m.ring().pop() {
                all.push(v);
            }
            all.sort();
            assert_eq!(all, vec![1, 2]);
            assert!(m.ring().push(3), "cells were handed back");
        });
    }
}

#[cfg(all(test, not(shmidl_loom)))]
mod tests {
    use super::*;

    fn empty_cells(depth: usize) -> Vec<Cell> {
        (0..depth)
            .map(|_| Cell {
                stamp: AtomicU64::new(0),
                value: AtomicU64::new(0),
            })
            .collect()
    }

    /// The mask-and-shift path for power-of-two depths finds the cell and
    /// lap the division does, at every depth and position, the largest
    /// included.
    #[test]
    fn cells_and_laps_match_the_division_at_every_depth() {
        let head = RingHead::new();
        for depth in [1usize, 2, 3, 5, 8, 100, 128, 4096, 65535, 65536] {
            let cells = empty_cells(depth);
            let ring = Ring {
                words: &head,
                cells: &cells,
            };
            let d = depth as u64;
            let positions =
                (0..3 * d.min(300)).chain([d - 1, d, d + 1, u64::MAX / 2, u64::MAX - 1, u64::MAX]);
            for pos in positions {
                let (cell, lap) = ring.cell(pos);
                let index = (cell as *const Cell as usize - cells.as_ptr() as usize)
                    / std::mem::size_of::<Cell>();
                assert_eq!(
                    (index as u64, lap),
                    (pos % d, pos / d),
                    "depth {depth}, pos {pos}"
                );
            }
        }
    }

    /// A ring of a depth that is not a power of two fills, refuses one
    /// more, and hands its values back in order over many laps.
    #[test]
    fn a_ring_of_any_depth_keeps_order_over_many_laps() {
        for depth in [1usize, 3, 5, 8] {
            let head = RingHead::new();
            let cells = empty_cells(depth);
            let ring = Ring {
                words: &head,
                cells: &cells,
            };
            let mut next_out = 0u64;
            for round in 0..50u64 {
                for k in 0..depth as u64 {
                    assert!(ring.push(round * 100 + k), "depth {depth}");
                }
                assert!(!ring.push(u64::MAX), "full at depth {depth}");
                for k in 0..depth as u64 {
                    assert!(matches!(ring.pop(), Pop::Entry(v) if v == round * 100 + k));
                    next_out += 1;
                }
                assert!(matches!(ring.pop(), Pop::Empty));
            }
            assert_eq!(next_out, 50 * depth as u64);
        }
    }
}
