//! Cache-line prefetch hints for the streaming paths.
//!
//! Between a publisher and a subscriber in two processes on two cores,
//! every line of a message (its slot's control block, its payload, its
//! queue cell, the stash that returns the slot) was written last by the
//! other core, so each access is a cross-core transfer. Asking for the
//! *next* message's lines while the current one is handled overlaps those
//! transfers instead of waiting for them one after the other.
//!
//! Hints only: a prefetch reads nothing architecturally and never faults,
//! whatever the address, so callers pass addresses that may already be
//! stale (a queue entry another popper takes, a stash entry stolen).

/// Starts fetching the line at `p` for reading.
#[inline(always)]
pub(crate) fn read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unused_unsafe)]
    // SAFETY: `prefetcht0` is a hint: no architectural memory access, no
    // fault, whatever the address; SSE, which it needs, is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Starts fetching the line at `p` for writing (owned by this core, so the
/// write that follows needs no second transfer), where the CPU has
/// `prefetchw`; for reading elsewhere.
#[inline(always)]
pub(crate) fn write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    if has_prefetchw() {
        // SAFETY: `prefetchw` (present: checked above) is a hint like
        // `prefetcht0`: no architectural memory access, no fault, whatever
        // the address; the asm touches no register but its input, no
        // stack, no flags.
        unsafe {
            std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
        }
        return;
    }
    read(p);
}

/// Whether the CPU has `prefetchw` (CPUID 0x8000_0001, ECX bit 8), asked
/// once per process.
#[cfg(target_arch = "x86_64")]
fn has_prefetchw() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            #[allow(unused_unsafe)]
            // SAFETY: `cpuid` exists on every x86-64 CPU and only reads
            // identification registers; leaf 0x8000_0000 tells whether leaf
            // 0x8000_0001 exists before it is asked.
            let has = unsafe {
                std::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0001
                    && std::arch::x86_64::__cpuid(0x8000_0001).ecx & (1 << 8) != 0
            };
            KNOWN.store(if has { 1 } else { 2 }, Ordering::Relaxed);
            has
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hints_accept_any_address() {
        let line = [0u8; 64];
        super::read(line.as_ptr());
        super::write(line.as_ptr());
        // Never dereferenced: a hint on an address nothing maps.
        super::read(std::ptr::without_provenance(64));
        super::write(std::ptr::without_provenance(64));
        assert_eq!(line[0], 0);
    }
}
