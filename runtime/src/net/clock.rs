//! Wall-clock nanoseconds at the cost of a time-stamp counter read.
//!
//! Every websocket frame carries its send time (`docs/wire-format.md`).
//! `SystemTime::now` costs about 50 ns here, a quarter of what sending a
//! 64-byte message costs in all; reading the CPU's time-stamp counter
//! (TSC) costs about 13 ns. [`now_ns`] reads the TSC and converts it to
//! wall-clock nanoseconds with an anchor (a wall-clock reading and the TSC
//! at that moment) and a rate (nanoseconds per tick).
//!
//! - **When the TSC is used.** On x86-64 Linux, only when the kernel's
//!   current clocksource is `tsc`: the kernel has then found the counter
//!   constant-rate and synchronised across CPUs, and keeps checking it.
//!   Anywhere else, and until the rate is known, `now_ns` is
//!   `SystemTime::now`.
//! - **Rate.** Measured against the monotonic clock from one origin per
//!   process (taken at the first call), once at least [`CALIBRATE_AFTER`]
//!   has passed since it; it only gets more exact as the baseline grows.
//!   No busy-wait at start-up: a process that sends nothing pays nothing.
//! - **Anchor.** Per thread, renewed from the wall clock every
//!   [`REANCHOR_EVERY`] of TSC time, so a step of the wall clock (NTP, an
//!   administrator) shows within that period, and an error in the rate
//!   never adds up beyond it.
//! - **Self-check.** At each renewal, the extrapolated value is compared
//!   with the wall clock; if they differ by more than [`MAX_ERROR`] without
//!   a clock step to explain it, the TSC is given up for the rest of the
//!   process and `now_ns` falls back to `SystemTime::now`.
//!
//! A reading is ordered only loosely (`rdtsc` without a fence): the
//! timestamps measure latency across processes and hosts, where a few
//! nanoseconds do not matter.

use std::{
    cell::Cell,
    sync::{
        atomic::{AtomicU8, Ordering},
        OnceLock,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// How long after the process's first reading the rate is measured.
const CALIBRATE_AFTER: Duration = Duration::from_millis(10);
/// How often a thread takes a new anchor from the wall clock.
const REANCHOR_EVERY: Duration = Duration::from_millis(10);
/// The largest disagreement with the wall clock at a renewal that is not
/// taken as a broken TSC (a larger one with the monotonic clock agreeing
/// is a step of the wall clock, and is simply followed).
const MAX_ERROR: Duration = Duration::from_micros(50);
/// The most TSC ticks between the reads around a wall-clock reading for
/// the pair to count as taken at one moment (a preempted reading is
/// taken again).
const MAX_SAMPLE_TICKS: u64 = 10_000;

/// Nanoseconds since the UNIX epoch now (0 if the clock is before 1970).
pub fn now_ns() -> u64 {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Some(ns) = tsc::now_ns() {
        return ns;
    }
    system_ns()
}

/// `SystemTime::now` as nanoseconds since the UNIX epoch.
fn system_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Whether the TSC is in use: unknown, yes, no (given up or unavailable).
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const IN_USE: u8 = 1;
const OFF: u8 = 2;

/// Whether [`now_ns`] reads the TSC in this process (after it first had
/// to decide). For tests and diagnostics.
#[cfg(test)]
fn uses_tsc() -> bool {
    STATE.load(Ordering::Relaxed) == IN_USE
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tsc {
    use super::*;

    /// A thread's conversion from TSC ticks to wall-clock nanoseconds.
    #[derive(Clone, Copy)]
    struct Anchor {
        /// The TSC at `wall_ns`.
        tsc: u64,
        wall_ns: u64,
        /// The monotonic clock at `tsc`, as nanoseconds since the origin.
        mono_ns: u64,
        /// Nanoseconds per tick, as a 32.32 fixed-point number (0: no
        /// rate yet).
        ns_per_tick: u64,
        /// The TSC after which the anchor is renewed.
        until: u64,
    }

    const NONE: Anchor = Anchor {
        tsc: 0,
        wall_ns: 0,
        mono_ns: 0,
        ns_per_tick: 0,
        until: 0,
    };

    thread_local! {
        static ANCHOR: Cell<Anchor> = const { Cell::new(NONE) };
    }

    /// The process's first reading: the TSC and the monotonic clock.
    static ORIGIN: OnceLock<(u64, Instant)> = OnceLock::new();

    fn rdtsc() -> u64 {
        // SAFETY: `rdtsc` reads a counter; it has no preconditions and
        // touches no memory (the intrinsic is `unsafe` only because it is
        // an intrinsic). x86-64 always has it.
        unsafe { std::arch::x86_64::_rdtsc() }
    }

    /// Whether the kernel's clocksource is the TSC (read once).
    fn kernel_trusts_tsc() -> bool {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
    }

    /// The wall clock, the monotonic clock and the TSC at one moment, or
    /// `None` if every try was interrupted between the reads.
    fn sample() -> Option<(u64, Instant, u64)> {
        for _ in 0..5 {
            let before = rdtsc();
            let wall = system_ns();
            let mono = Instant::now();
            let after = rdtsc();
            if after.wrapping_sub(before) <= MAX_SAMPLE_TICKS {
                return Some((wall, mono, before / 2 + after / 2));
            }
        }
        None
    }

    pub(super) fn now_ns() -> Option<u64> {
        let state = STATE.load(Ordering::Relaxed);
        if state == OFF {
            return None;
        }
        let now = rdtsc();
        let a = ANCHOR.with(Cell::get);
        if a.ns_per_tick != 0 && now >= a.tsc && now < a.until {
            let ticks = u128::from(now - a.tsc);
            // `until` bounds `ticks`, so this fits; saturate regardless.
            let ns = (ticks * u128::from(a.ns_per_tick)) >> 32;
            return Some(
                a.wall_ns
                    .saturating_add(u64::try_from(ns).unwrap_or(u64::MAX)),
            );
        }
        if state == UNKNOWN {
            let next = if kernel_trusts_tsc() { IN_USE } else { OFF };
            // Another thread may have decided (or given up) meanwhile.
            let _ = STATE.compare_exchange(UNKNOWN, next, Ordering::Relaxed, Ordering::Relaxed);
            if STATE.load(Ordering::Relaxed) == OFF {
                return None;
            }
        }
        Some(reanchor(a))
    }

    /// Takes a new anchor for this thread (checking the old one's
    /// extrapolation against it); returns the wall clock.
    fn reanchor(old: Anchor) -> u64 {
        let Some((wall, mono, tsc)) = sample() else {
            return system_ns();
        };
        let (origin_tsc, origin) = *ORIGIN.get_or_init(|| (tsc, mono));
        let since_origin = mono.saturating_duration_since(origin);
        let mono_ns = u64::try_from(since_origin.as_nanos()).unwrap_or(u64::MAX);
        // Checked only over a few periods: the rate of a young process is
        // exact to about 1e-4, which over a long sleep adds up to more than
        // MAX_ERROR (the new anchor corrects it anyway).
        if old.ns_per_tick != 0 && tsc > old.tsc && tsc - old.tsc < 4 * (old.until - old.tsc) {
            let ticks = u128::from(tsc - old.tsc);
            let guess = old.wall_ns as i128 + ((ticks * u128::from(old.ns_per_tick)) >> 32) as i128;
            let off = (guess - wall as i128).unsigned_abs();
            // The monotonic clock saw as much time pass as the TSC did: a
            // disagreement with the wall clock is a step of the wall clock.
            let mono_guess =
                old.mono_ns as i128 + ((ticks * u128::from(old.ns_per_tick)) >> 32) as i128;
            let mono_off = (mono_guess - mono_ns as i128).unsigned_abs();
            if off > MAX_ERROR.as_nanos() && mono_off > MAX_ERROR.as_nanos() {
                tracing::warn!(
                    off_ns = mono_off,
                    "the TSC disagrees with the monotonic clock; timestamps now use the system clock"
                );
                STATE.store(OFF, Ordering::Relaxed);
                ANCHOR.with(|c| c.set(NONE));
                return wall;
            }
        }
        let ticks = tsc.wrapping_sub(origin_tsc);
        let ns_per_tick = if since_origin >= CALIBRATE_AFTER && tsc > origin_tsc {
            // 32.32 fixed point: (ns << 32) / ticks.
            u64::try_from((u128::from(mono_ns) << 32) / u128::from(ticks)).unwrap_or(0)
        } else {
            0
        };
        let until = if ns_per_tick == 0 {
            0
        } else {
            let period = u128::from(REANCHOR_EVERY.as_nanos() as u64) << 32;
            tsc.saturating_add(u64::try_from(period / u128::from(ns_per_tick)).unwrap_or(0))
        };
        ANCHOR.with(|c| {
            c.set(Anchor {
                tsc,
                wall_ns: wall,
                mono_ns,
                ns_per_tick,
                until,
            });
        });
        wall
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `now_ns` against the system clock for `for_how_long`, in a
    /// fresh thread (its own anchor): every reading lies between the
    /// system clock read just before and just after it, within `slack`.
    fn agrees_with_system_clock(for_how_long: Duration, slack: u64) {
        std::thread::spawn(move || {
            let end = Instant::now() + for_how_long;
            let mut worst = 0u64;
            let mut n = 0u64;
            while Instant::now() < end {
                // A preemption anywhere here only widens the window.
                let before = system_ns();
                let t = now_ns();
                let after = system_ns();
                let off = before.saturating_sub(t).max(t.saturating_sub(after));
                worst = worst.max(off);
                n += 1;
            }
            assert!(n > 1000, "only {n} readings");
            assert!(
                worst <= slack,
                "a reading {worst} ns outside the system clock's"
            );
        })
        .join()
        .expect("clock thread");
    }

    #[test]
    fn readings_agree_with_the_system_clock_before_and_after_calibration() {
        // Long enough to pass calibration and several renewals. A reading
        // outside the window of the system clock reads around it is the
        // conversion's error: the anchor's and the rate's, under 1 µs here
        // (a rate 0.2% off would put readings 20 µs off by the renewal).
        agrees_with_system_clock(Duration::from_millis(60), 20_000);
    }

    #[test]
    fn readings_never_go_back_by_more_than_the_renewal_error() {
        std::thread::spawn(|| {
            let end = Instant::now() + Duration::from_millis(40);
            let mut last = now_ns();
            let mut worst_back = 0u64;
            while Instant::now() < end {
                let t = now_ns();
                worst_back = worst_back.max(last.saturating_sub(t));
                last = t;
            }
            assert!(
                worst_back <= MAX_ERROR.as_nanos() as u64,
                "went back by {worst_back} ns"
            );
        })
        .join()
        .expect("clock thread");
    }

    #[test]
    fn on_a_tsc_clocksource_the_tsc_is_used() {
        let kernel_tsc = std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|s| s.trim() == "tsc");
        let _ = now_ns();
        if cfg!(all(target_arch = "x86_64", target_os = "linux")) && kernel_tsc {
            assert!(uses_tsc());
        } else {
            assert!(!uses_tsc());
        }
    }
}
