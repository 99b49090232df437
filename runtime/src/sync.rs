//! The one place atomics and cells come from.
//!
//! Under `--cfg shmidl_loom` these are loom's model-checked types; otherwise they are
//! `std`'s. Everything else in the crate imports from here, so that a loom
//! model exercises exactly the code that runs in production
//! (`clippy.toml` bans the raw `std::sync::atomic` paths elsewhere).

#[cfg(not(shmidl_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(shmidl_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// A pause inside a retry loop that waits for another thread's progress:
/// a CPU spin hint normally, a yield to the model checker under loom (which
/// would otherwise explore the spinning thread forever).
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(shmidl_loom)]
    loom::thread::yield_now();
    #[cfg(not(shmidl_loom))]
    std::hint::spin_loop();
}
