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
//! - **Rate.** Per thread, measured against the monotonic clock from an
//!   origin (the thread's first reading), once at least [`CALIBRATE_AFTER`]
//!   has passed since it; it gets more exact as the baseline grows, and the
//!   baseline restarts every [`RATE_WINDOW`] (the old rate stays in use
//!   meanwhile), so a slow slew of the clocks is followed. No busy-wait at
//!   start-up: a thread that sends nothing pays nothing.
//! - **Anchor.** Per thread, renewed from the wall clock every
//!   [`REANCHOR_EVERY`] of TSC time, so a step of the wall clock (NTP, an
//!   administrator) shows within that period, and an error in the rate
//!   never adds up beyond it.
//! - **Self-check.** At each renewal, however long since the last, the TSC
//!   time since the last anchor is compared with the monotonic clock's. If
//!   they differ by more than [`MAX_ERROR`] plus 0.1% (a suspend, during
//!   which the monotonic clock stops; a fast slew; a broken TSC), the rate
//!   is measured again from a new origin, with `SystemTime::now` meanwhile.
//!   After [`MAX_FAILURES`] disagreements in a row the TSC is given up for
//!   the rest of the process.
//!
//! A reading is ordered only loosely (`rdtsc` without a fence): the
//! timestamps measure latency across processes and hosts, where a few
//! nanoseconds do not matter.

use std::{
    cell::Cell,
    sync::atomic::{AtomicU8, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// How long after a thread's first reading (or a restart of its baseline)
/// the rate is measured.
const CALIBRATE_AFTER: Duration = Duration::from_millis(10);
/// How long a rate's baseline grows before it restarts.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Disagreements with the monotonic clock in a row after which the TSC is
/// given up.
const MAX_FAILURES: u8 = 3;
/// How often a thread takes a new anchor from the wall clock.
const REANCHOR_EVERY: Duration = Duration::from_millis(10);
/// The largest disagreement (plus 0.1% of the interval) between the TSC
/// and the monotonic clock over the time since the last anchor that is not
/// taken as a failure. (A disagreement with the wall clock alone is a step
/// of the wall clock, and is simply followed.)
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
        /// The monotonic clock at `tsc`, as nanoseconds since `origin`.
        mono_ns: u64,
        /// Nanoseconds per tick, as a 32.32 fixed-point number (0: no
        /// rate yet).
        ns_per_tick: u64,
        /// The TSC after which the anchor is renewed.
        until: u64,
        /// Where the rate's baseline starts: the TSC and the monotonic
        /// clock at one moment (`None` before the first reading).
        origin: Option<(u64, Instant)>,
        /// Disagreements with the monotonic clock in a row.
        failures: u8,
    }

    const NONE: Anchor = Anchor {
        tsc: 0,
        wall_ns: 0,
        mono_ns: 0,
        ns_per_tick: 0,
        until: 0,
        origin: None,
        failures: 0,
    };

    thread_local! {
        static ANCHOR: Cell<Anchor> = const { Cell::new(NONE) };
    }

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

    /// Takes a new anchor for this thread (checking the old one's rate
    /// against the monotonic clock); returns the wall clock.
    fn reanchor(old: Anchor) -> u64 {
        let Some((wall, mono, tsc)) = sample() else {
            return system_ns();
        };
        match next_anchor(old, wall, mono, tsc) {
            Some(anchor) => ANCHOR.with(|c| c.set(anchor)),
            None => {
                STATE.store(OFF, Ordering::Relaxed);
                ANCHOR.with(|c| c.set(NONE));
            }
        }
        wall
    }

    /// The anchor after `old` for a sample (`wall`, `mono`, `tsc`) taken at
    /// one moment; `None` when the TSC is to be given up (no I/O: time is
    /// passed in).
    fn next_anchor(old: Anchor, wall: u64, mono: Instant, tsc: u64) -> Option<Anchor> {
        let (mut origin_tsc, mut origin) = old.origin.unwrap_or((tsc, mono));
        let mut failures = old.failures;
        let mut rate = old.ns_per_tick;
        if rate != 0 && tsc > old.tsc {
            // The TSC's and the monotonic clock's time since the last anchor
            // (both since the same origin), however long ago it was.
            let ticks = u128::from(tsc - old.tsc);
            let by_tsc = u64::try_from((ticks * u128::from(rate)) >> 32).unwrap_or(u64::MAX);
            let mono_now = u64::try_from(mono.saturating_duration_since(origin).as_nanos())
                .unwrap_or(u64::MAX);
            let by_mono = mono_now.saturating_sub(old.mono_ns);
            let tolerance = MAX_ERROR.as_nanos() as u64 + by_mono / 1000;
            let off = by_tsc.abs_diff(by_mono);
            if off > tolerance {
                failures += 1;
                if failures >= MAX_FAILURES {
                    tracing::warn!(
                        off_ns = off,
                        "the TSC keeps disagreeing with the monotonic clock; timestamps now use the system clock"
                    );
                    return None;
                }
                // A suspend, a fast slew or a glitch: measure the rate again.
                tracing::debug!(
                    off_ns = off,
                    "the TSC disagrees with the monotonic clock; measuring its rate again"
                );
                (origin_tsc, origin) = (tsc, mono);
                rate = 0;
            } else {
                failures = 0;
            }
        }
        let since = mono.saturating_duration_since(origin);
        if since >= CALIBRATE_AFTER && tsc > origin_tsc {
            let since_ns = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
            // 32.32 fixed point: (ns << 32) / ticks.
            rate = u64::try_from((u128::from(since_ns) << 32) / u128::from(tsc - origin_tsc))
                .unwrap_or(0);
            if since >= RATE_WINDOW {
                // A fresh baseline; this rate serves until it has grown.
                (origin_tsc, origin) = (tsc, mono);
            }
        }
        let until = if rate == 0 {
            0
        } else {
            let period = u128::from(REANCHOR_EVERY.as_nanos() as u64) << 32;
            tsc.saturating_add(u64::try_from(period / u128::from(rate)).unwrap_or(0))
        };
        let mono_ns =
            u64::try_from(mono.saturating_duration_since(origin).as_nanos()).unwrap_or(u64::MAX);
        Some(Anchor {
            tsc,
            wall_ns: wall,
            mono_ns,
            ns_per_tick: rate,
            until,
            origin: Some((origin_tsc, origin)),
            failures,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A clock of exactly 3 ticks per nanosecond from `t0`, `ms`
        /// milliseconds in: (wall, mono, tsc).
        fn at(t0: Instant, ms: u64) -> (u64, Instant, u64) {
            let ns = ms * 1_000_000;
            (
                1_700_000_000_000_000_000 + ns,
                t0 + Duration::from_nanos(ns),
                1_000 + 3 * ns,
            )
        }

        fn step(a: Anchor, (wall, mono, tsc): (u64, Instant, u64)) -> Option<Anchor> {
            next_anchor(a, wall, mono, tsc)
        }

        #[test]
        fn the_rate_is_measured_after_ten_ms_and_a_suspend_makes_it_measured_again() {
            let t0 = Instant::now();
            let a = step(NONE, at(t0, 0)).unwrap();
            assert_eq!(a.ns_per_tick, 0, "no rate before 10 ms");
            let a = step(a, at(t0, 5)).unwrap();
            assert_eq!(a.ns_per_tick, 0);
            let a = step(a, at(t0, 12)).unwrap();
            // 1/3 ns per tick in 32.32 fixed point.
            assert_eq!(a.ns_per_tick, (1u64 << 32) / 3);
            let a = step(a, at(t0, 22)).unwrap();
            assert_eq!(a.failures, 0);
            // A suspend: the TSC ran one second the monotonic clock (and so
            // the wall clock here) did not see.
            let (wall, mono, tsc) = at(t0, 32);
            let a = step(a, (wall, mono, tsc + 3_000_000_000)).unwrap();
            assert_eq!((a.ns_per_tick, a.failures), (0, 1), "measured again");
            // Ten milliseconds later the new rate is the true one again, and
            // the next agreeing renewal clears the failure.
            let shifted = |ms| {
                let (w, m, t) = at(t0, ms);
                (w, m, t + 3_000_000_000)
            };
            let a = step(a, shifted(44)).unwrap();
            assert_eq!(a.ns_per_tick, (1u64 << 32) / 3);
            let a = step(a, shifted(54)).unwrap();
            assert_eq!(a.failures, 0);
        }

        #[test]
        fn three_disagreements_in_a_row_give_the_tsc_up() {
            let t0 = Instant::now();
            let mut a = step(step(NONE, at(t0, 0)).unwrap(), at(t0, 12)).unwrap();
            let mut jump = 0;
            for k in 1..=3u64 {
                // Calibrated again, then a jump again.
                let (w, m, t) = at(t0, 12 + 30 * k);
                jump += 3_000_000_000;
                let next = step(a, (w, m, t + jump));
                if k == 3 {
                    assert!(next.is_none(), "given up after three");
                    return;
                }
                a = next.unwrap();
                assert_eq!(a.failures, k as u8);
                let (w, m, t) = at(t0, 12 + 30 * k + 12);
                a = step(a, (w, m, t + jump)).unwrap();
                assert_ne!(a.ns_per_tick, 0, "measured again");
            }
        }

        #[test]
        fn a_wall_clock_step_is_followed_and_a_long_baseline_restarts_keeping_its_rate() {
            let t0 = Instant::now();
            let a = step(step(NONE, at(t0, 0)).unwrap(), at(t0, 12)).unwrap();
            // The wall clock steps back a second: only the anchor follows.
            let (w, m, t) = at(t0, 22);
            let a = step(a, (w - 1_000_000_000, m, t)).unwrap();
            assert_eq!((a.failures, a.wall_ns), (0, w - 1_000_000_000));
            assert_eq!(a.ns_per_tick, (1u64 << 32) / 3);
            // After the rate window, a new baseline starts and the rate
            // stays in use.
            let a = step(a, at(t0, 61_000)).unwrap();
            assert_eq!((a.failures, a.ns_per_tick), (0, (1u64 << 32) / 3));
            assert_eq!(a.mono_ns, 0, "a fresh origin");
            let a = step(a, at(t0, 61_005)).unwrap();
            assert_eq!((a.failures, a.ns_per_tick), (0, (1u64 << 32) / 3));
        }
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
            // And the readings were the TSC's, where the kernel uses it (a
            // self-check that always failed would pass the above on
            // `SystemTime`).
            if kernel_uses_tsc() {
                assert!(uses_tsc(), "the TSC was given up");
            }
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

    /// Whether this test machine's kernel reads time through the TSC.
    fn kernel_uses_tsc() -> bool {
        cfg!(all(target_arch = "x86_64", target_os = "linux"))
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
    }

    #[test]
    fn on_a_tsc_clocksource_the_tsc_is_used() {
        let _ = now_ns();
        if kernel_uses_tsc() {
            assert!(uses_tsc());
        } else {
            assert!(!uses_tsc());
        }
    }
}
