//! Process-shared futex waits and wakes on 32-bit words in shared memory.
//!
//! These are *shared* futexes (no `FUTEX_PRIVATE_FLAG`): the kernel keys them
//! by the physical page, so a waiter and a waker in different processes that
//! map the same segment at different addresses meet.

use std::{
    num::NonZeroU32,
    time::{Duration, Instant},
};

use rustix::{
    io::Errno,
    thread::futex::{self, Flags},
    time::Timespec,
};

use crate::sync::AtomicU32;

/// Why a wait returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken, the word changed before sleeping, or a spurious wake-up: the
    /// caller re-checks its condition.
    Maybe,
    /// The deadline passed.
    TimedOut,
}

/// Sleeps while `*word == expected`, until woken or until `deadline`.
///
/// `None` waits without a deadline.
pub(crate) fn wait_until(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
    let timeout = match deadline {
        None => None,
        Some(d) => match d.checked_duration_since(Instant::now()) {
            None => return Wake::TimedOut,
            Some(left) if left.is_zero() => return Wake::TimedOut,
            Some(left) => Some(timespec(left)),
        },
    };
    match futex::wait(word, Flags::empty(), expected, timeout.as_ref()) {
        Ok(()) => Wake::Maybe,
        Err(Errno::TIMEDOUT) => Wake::TimedOut,
        // AGAIN: the word no longer held `expected`; INTR: a signal arrived.
        // Both mean "look again".
        Err(_) => Wake::Maybe,
    }
}

/// Wakes up to `n` waiters on `word`. Returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    futex::wake(word, Flags::empty(), n).unwrap_or(0)
}

/// Wakes every waiter on `word`.
pub(crate) fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX as u32)
}

/// Sleeps while `*word == expected`, until a wake-up whose bits share one
/// with `bits` ([`wake_bits`]), or until `deadline`: many sleepers on one
/// word, each woken only for what concerns it.
pub(crate) fn wait_bits_until(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
    bits: NonZeroU32,
) -> Wake {
    // FUTEX_WAIT_BITSET takes an absolute time on CLOCK_MONOTONIC (the
    // clock `Instant` reads).
    let timeout = match deadline {
        None => None,
        Some(d) => match d.checked_duration_since(Instant::now()) {
            None => return Wake::TimedOut,
            Some(left) if left.is_zero() => return Wake::TimedOut,
            Some(left) => {
                let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
                let now = Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec as u32);
                Some(timespec(now.saturating_add(left)))
            }
        },
    };
    match futex::wait_bitset(word, Flags::empty(), expected, timeout.as_ref(), bits) {
        Ok(()) => Wake::Maybe,
        Err(Errno::TIMEDOUT) => Wake::TimedOut,
        // As in `wait_until`: the word changed, or a signal; look again.
        Err(_) => Wake::Maybe,
    }
}

/// Wakes every waiter on `word` whose `bits` share one with `bits`, with
/// one system call. Returns how many were woken.
pub(crate) fn wake_bits(word: &AtomicU32, bits: NonZeroU32) -> usize {
    futex::wake_bitset(word, Flags::empty(), i32::MAX as u32, bits).unwrap_or(0)
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        num::NonZeroU32,
        sync::atomic::{AtomicBool, Ordering},
        time::{Duration, Instant},
    };

    use super::*;

    fn bit(b: u32) -> NonZeroU32 {
        NonZeroU32::new(1 << b).unwrap()
    }

    /// Whether thread `tid` of this process is asleep (state `S`).
    fn sleeping(tid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
            .ok()
            .and_then(|stat| {
                let after = &stat[stat.rfind(')')? + 1..];
                Some(after.trim_start().starts_with('S'))
            })
            .unwrap_or(false)
    }

    #[test]
    fn a_bitset_wake_reaches_only_its_bits() {
        let word = AtomicU32::new(0);
        let woken = AtomicBool::new(false);
        let tid = AtomicU32::new(0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut asleep, mut others_woke, mut own_woke) = (false, 0, 0);
        std::thread::scope(|s| {
            s.spawn(|| {
                tid.store(
                    rustix::thread::gettid().as_raw_nonzero().get() as u32,
                    Ordering::SeqCst,
                );
                loop {
                    let wake = wait_bits_until(&word, 0, Some(deadline), bit(4));
                    if woken.load(Ordering::SeqCst) || wake == Wake::TimedOut {
                        break;
                    }
                }
            });
            // Once the waiter sleeps in the futex, other bits never wake
            // it.
            while !asleep && Instant::now() < deadline {
                let t = tid.load(Ordering::SeqCst);
                asleep = t != 0 && sleeping(t);
                std::thread::sleep(Duration::from_millis(1));
            }
            for _ in 0..20 {
                others_woke += wake_bits(&word, bit(3));
                others_woke += wake_bits(&word, NonZeroU32::new(!(1 << 4)).unwrap());
                std::thread::sleep(Duration::from_millis(2));
            }
            // Its bit does, among others. Done whatever happened above, so
            // that the waiter never outlives a failure.
            woken.store(true, Ordering::SeqCst);
            while own_woke == 0 && Instant::now() < deadline {
                own_woke = wake_bits(&word, bit(4) | bit(9));
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        assert!(asleep, "the waiter never slept");
        assert_eq!(others_woke, 0, "a wake of other bits woke the waiter");
        assert_eq!(own_woke, 1, "a wake of its bit missed the waiter");
    }

    #[test]
    fn a_bitset_wait_ends_at_its_deadline_and_not_before() {
        let word = AtomicU32::new(7);
        let start = Instant::now();
        let deadline = start + Duration::from_millis(30);
        let mut calls = 0;
        loop {
            calls += 1;
            // A spurious return (a signal) looks again, as callers do.
            if wait_bits_until(&word, 7, Some(deadline), bit(0)) == Wake::TimedOut {
                break;
            }
            assert!(calls < 10, "the wait keeps returning early");
        }
        assert!(Instant::now() >= deadline);
        // A deadline too far ahead would show here (long before any hang).
        assert!(start.elapsed() < Duration::from_secs(5));
        // A changed word returns at once, asking the caller to look again.
        assert_eq!(
            wait_bits_until(
                &word,
                8,
                Some(Instant::now() + Duration::from_secs(5)),
                bit(0)
            ),
            Wake::Maybe
        );
    }
}
