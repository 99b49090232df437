//! Per-participant stashes of free slots: the pool's fast path.
//!
//! Every participant row has, in the pool's memory, a stash of up to
//! [`STASH_SLOTS`] free slot indices on one cache line (followed by an
//! unused one). A process frees
//! into its own stash and allocates from it first, so a process that both
//! loans and drops touches only its own line. A process whose stash is
//! empty *steals* another's whole stash at once: a publisher fed by a
//! subscriber that frees takes the subscriber's freed slots a line at a
//! time instead of fighting over the shared free list's head for every
//! message. A full stash overflows to the shared free list.
//!
//! Stashed slots are free (`refs == 0`) and anyone can steal them, so a
//! stash never hides a slot: a pool is exhausted only when the free list
//! and every stash are empty. A stash outlives its owner's death (it is
//! shared memory); reclaiming the dead row empties it onto the free list.
//!
//! # Protocol
//! The line holds `word = tag << 32 | count` and `entries[0..count]`.
//!
//! - **push** (owner): read `word` `(t, c)`, `c < STASH_SLOTS`; write
//!   `entries[c]`; CAS `word` `(t, c) → (t + 1, c + 1)` (SeqCst).
//! - **pop** (owner): read `word` `(t, c)`, `c > 0` (Acquire); read
//!   `entries[c − 1]`; CAS `(t, c) → (t + 1, c − 1)`.
//! - **steal** (anyone): read `word` `(t, c)` (Acquire); read
//!   `entries[0..c]`; CAS `(t, c) → (t + 1, 0)`.
//!
//! "Owner" means one thread at a time: two pushes at once would both write
//! `entries[c]`, and the loser's retry would then stash its slot twice. A
//! process's threads share its row, so `PoolInner` lets one of them at a
//! time at its stash (a process-local try-lock); the others use the shared
//! free list meanwhile and never wait.
//!
//! Every change of `count` bumps the tag, and an entry below `count` is
//! written only by a push *before* its CAS makes it part of the stash, so
//! if a CAS on `(t, c)` succeeds, no entry the caller read below `c`
//! changed since it read `word`: each slot leaves a stash exactly once.
//! (A 32-bit tag would have to wrap within one caller's read–CAS window.)

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Slots a stash holds: one cache line with its word.
pub(crate) const STASH_SLOTS: usize = 14;

/// One participant's stash: one cache line, then an unused one, so that
/// the lines of two rows are never the pair the adjacent-line prefetcher
/// moves together.
#[repr(C, align(64))]
pub(crate) struct Stash {
    word: AtomicU64,
    entries: [AtomicU32; STASH_SLOTS],
    _gap: [u64; 8],
}

fn pack(tag: u32, count: u32) -> u64 {
    u64::from(tag) << 32 | u64::from(count)
}

fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

impl Stash {
    /// An empty stash.
    #[cfg(any(test, shmidl_loom))]
    pub(crate) fn new() -> Self {
        Self {
            word: AtomicU64::new(0),
            entries: std::array::from_fn(|_| AtomicU32::new(0)),
            _gap: [0; 8],
        }
    }

    /// Slots in the stash now.
    pub(crate) fn len(&self) -> u32 {
        unpack(self.word.load(Ordering::Acquire)).1
    }

    /// Adds `slot` (free, owned by the caller); returns how many slots the
    /// stash holds now, or `None` if it is full (the caller frees the slot
    /// elsewhere).
    pub(crate) fn push(&self, slot: u32) -> Option<u32> {
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            let (tag, count) = unpack(word);
            if count as usize >= STASH_SLOTS {
                return None;
            }
            self.entries[count as usize].store(slot, Ordering::Relaxed);
            // SYNC POINT: Release (SeqCst includes it) publishes the entry
            // and the slot's last contents to whoever takes it (Acquire in
            // `pop`/`steal`). SeqCst also orders it before the caller's
            // read of the pool's waiter count (see `free_list.rs`).
            match self.word.compare_exchange_weak(
                word,
                pack(tag.wrapping_add(1), count + 1),
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(count + 1),
                Err(now) => word = now,
            }
        }
    }

    /// The slot `pop` would take now, without taking it: a hint for
    /// prefetching only (a thief may take it at once).
    pub(crate) fn peek(&self) -> Option<u32> {
        let (_, count) = unpack(self.word.load(Ordering::Relaxed));
        let top = (count as usize).checked_sub(1)?;
        self.entries.get(top).map(|e| e.load(Ordering::Relaxed))
    }

    /// Takes the most recently stashed slot, if any.
    pub(crate) fn pop(&self) -> Option<u32> {
        // SYNC POINT: Acquire pairs with the Release CAS of `push`.
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            let (tag, count) = unpack(word);
            if count == 0 || count as usize > STASH_SLOTS {
                return None; // empty (or corrupt: treated as empty)
            }
            let slot = self.entries[count as usize - 1].load(Ordering::Relaxed);
            match self.word.compare_exchange_weak(
                word,
                pack(tag.wrapping_add(1), count - 1),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(slot),
                Err(now) => word = now,
            }
        }
    }

    /// Takes every stashed slot into `out` if there are at least `min`
    /// (≥ 1); returns how many.
    pub(crate) fn steal(&self, out: &mut [u32; STASH_SLOTS], min: u32) -> usize {
        // SYNC POINT: as in `pop`.
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            let (tag, count) = unpack(word);
            if count < min.max(1) || count as usize > STASH_SLOTS {
                return 0;
            }
            for (o, e) in out.iter_mut().zip(&self.entries[..count as usize]) {
                *o = e.load(Ordering::Relaxed);
            }
            match self.word.compare_exchange_weak(
                word,
                pack(tag.wrapping_add(1), 0),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return count as usize,
                Err(now) => word = now,
            }
        }
    }

    /// The slots in the stash now (for an audit of a quiescent pool).
    pub(crate) fn snapshot(&self) -> impl Iterator<Item = u32> + '_ {
        let count = (self.len() as usize).min(STASH_SLOTS);
        self.entries[..count]
            .iter()
            .map(|e| e.load(Ordering::Acquire))
    }
}

#[cfg(all(test, shmidl_loom))]
mod loom_tests {
    use loom::{sync::Arc, thread};

    use super::*;

    /// The owner pushes and pops while another thread steals: every slot
    /// comes out exactly once.
    #[test]
    fn each_slot_leaves_a_stash_once() {
        loom::model(|| {
            let s = Arc::new(Stash::new());
            assert!(s.push(1).is_some());
            assert!(s.push(2).is_some());
            let thief = {
                let s = s.clone();
                thread::spawn(move || {
                    let mut out = [0; STASH_SLOTS];
                    let n = s.steal(&mut out, 1);
                    out[..n].to_vec()
                })
            };
            let mut mine = Vec::new();
            assert!(s.push(3).is_some());
            if let Some(x) = s.pop() {
                mine.push(x);
            }
            let mut got = thief.join().unwrap();
            got.extend(mine);
            let mut out = [0; STASH_SLOTS];
            let n = s.steal(&mut out, 1);
            got.extend_from_slice(&out[..n]);
            got.sort_unstable();
            assert_eq!(got, vec![1, 2, 3]);
        });
    }

    /// Two stealers and a pusher: no slot is taken twice, none is lost.
    #[test]
    fn concurrent_steals_split_a_stash() {
        loom::model(|| {
            let s = Arc::new(Stash::new());
            assert!(s.push(1).is_some());
            let thieves: Vec<_> = (0..2)
                .map(|_| {
                    let s = s.clone();
                    thread::spawn(move || {
                        let mut out = [0; STASH_SLOTS];
                        let n = s.steal(&mut out, 1);
                        out[..n].to_vec()
                    })
                })
                .collect();
            assert!(s.push(2).is_some());
            let mut got: Vec<u32> = thieves
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect();
            while let Some(x) = s.pop() {
                got.push(x);
            }
            got.sort_unstable();
            assert_eq!(got, vec![1, 2]);
        });
    }
}

#[cfg(all(test, not(shmidl_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_stash_fills_overflows_and_empties() {
        let s = Stash::new();
        for i in 0..STASH_SLOTS as u32 {
            assert_eq!(s.push(i), Some(i + 1));
        }
        assert_eq!(s.push(99), None, "full");
        assert_eq!(s.pop(), Some(STASH_SLOTS as u32 - 1));
        let mut out = [0; STASH_SLOTS];
        assert_eq!(s.steal(&mut out, STASH_SLOTS as u32), 0, "too few");
        assert_eq!(s.steal(&mut out, 1), STASH_SLOTS - 1);
        assert_eq!(&out[..3], &[0, 1, 2]);
        assert_eq!(s.pop(), None);
        assert_eq!(s.steal(&mut out, 1), 0);
    }
}
