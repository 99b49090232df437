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

/// Asks the CPU to bring the cache line holding `p` into this core's cache
/// for writing, ahead of a write that will need it. Only a hint: it never
/// faults (any address will do) and changes no memory; a no-op except on
/// x86-64.
#[inline]
pub(crate) fn prefetch_write(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(shmidl_loom)))]
    // SAFETY: `prefetchw` is a hint: it reads no memory the program can
    // observe, writes none, and does not fault on any address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_ET0 }>(p.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(shmidl_loom))))]
    let _ = p;
}

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
