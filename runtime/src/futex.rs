//! Process-shared futex waits and wakes on 32-bit words in shared memory.
//!
//! These are *shared* futexes (no `FUTEX_PRIVATE_FLAG`): the kernel keys them
//! by the physical page, so a waiter and a waker in different processes that
//! map the same segment at different addresses meet.

use std::time::{Duration, Instant};

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

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}
