//! The bare baselines: what any shared-memory transport costs at least.
//!
//! - `cacheline`: the leader stores ping number `i` into one atomic, the follower busy-polls
//!   it and stores `i` into a second atomic in the same cache line, which the leader
//!   busy-polls. Two cache-line transfers per round trip: the floor of busy-poll messaging.
//! - `futex`: the same ping-pong on two 32-bit words, but each side sleeps in a *shared*
//!   futex wait (`FUTEX_WAIT` without `FUTEX_PRIVATE_FLAG`, keyed by the shared page) and the
//!   other side always calls `FUTEX_WAKE` after its store. One wake-up and one sleep per
//!   direction: the floor of any blocking wake-up between processes.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use rustix::{
    io::Errno,
    thread::futex::{self, Flags, Timespec},
};

use crate::{
    peer::{
        block_until, check_signals, spin_until, unique_name, Context, Follower, Other, Result,
        Slept, Watch, ITERATIONS_PER_SIGNAL_CHECK,
    },
    region::{Layout, Region},
    Bench, Plan, Wait,
};

/// Leader side of `cacheline` or `futex`: returns the measured round trips in nanoseconds.
pub fn lead(plan: &Plan, bench: Bench) -> Result<Vec<u64>> {
    if bench == Bench::Futex && plan.total() >= u64::from(u32::MAX) {
        return Err("futex: iterations + warmup must fit in a 32-bit futex word".into());
    }
    let name = unique_name();
    let mut region = Region::create(&name)?;
    let follower = Follower::spawn(&plan.follower_args(bench, &name, 0, Wait::BusyPoll))?;
    let mut watch = Watch::new(plan.timeout, Other::Follower(follower));
    let shared = region.get();
    block_until(
        &mut watch,
        "waiting for the follower to map the page",
        || Ok((shared.control.ready.load(Ordering::Acquire) == 1).then_some(())),
        |_| {
            std::thread::sleep(Duration::from_millis(1));
            Ok(Slept::SliceElapsed)
        },
    )?;
    // Both processes have it mapped: the name is no longer needed.
    region.unlink()?;
    let shared = region.get();

    let mut samples = Vec::with_capacity(plan.iterations as usize);
    for i in 1..=plan.total() {
        let t0 = Instant::now();
        match bench {
            Bench::Cacheline => {
                shared.line.ping.store(i, Ordering::Release);
                spin_until(&mut watch, "polling for pong", || {
                    Ok((shared.line.pong.load(Ordering::Acquire) == i).then_some(()))
                })?;
            }
            _ => {
                post(&shared.words.ping, i as u32)?;
                wait_for(&shared.words.pong, i as u32, &mut watch)?;
            }
        }
        let rtt = t0.elapsed();
        if i > plan.warmup {
            samples.push(rtt.as_nanos() as u64);
        }
        if i.is_multiple_of(ITERATIONS_PER_SIGNAL_CHECK) {
            check_signals()?;
        }
    }
    watch
        .into_follower()
        .ok_or("leader without follower")?
        .finish(plan.timeout)?;
    Ok(samples)
}

/// Follower side: maps the page, says it is ready, answers `total` pings.
pub fn follow(name: &str, total: u64, bench: Bench, mut watch: Watch) -> Result<()> {
    let region = Region::open(name)?;
    let shared: &Layout = region.get();
    shared.control.ready.store(1, Ordering::Release);
    for i in 1..=total {
        match bench {
            Bench::Cacheline => {
                spin_until(&mut watch, "polling for ping", || {
                    Ok((shared.line.ping.load(Ordering::Acquire) == i).then_some(()))
                })?;
                shared.line.pong.store(i, Ordering::Release);
            }
            _ => {
                wait_for(&shared.words.ping, i as u32, &mut watch)?;
                post(&shared.words.pong, i as u32)?;
            }
        }
        if i.is_multiple_of(ITERATIONS_PER_SIGNAL_CHECK) {
            check_signals()?;
        }
    }
    Ok(())
}

/// Publishes `value` and wakes one waiter (always: this baseline keeps no waiter count).
#[inline]
fn post(word: &AtomicU32, value: u32) -> Result<()> {
    word.store(value, Ordering::Release);
    futex::wake(word, Flags::empty(), 1).context("FUTEX_WAKE")?;
    Ok(())
}

/// Sleeps on `word` until it holds `value` (the previous value is `value - 1`).
#[inline]
fn wait_for(word: &AtomicU32, value: u32, watch: &mut Watch) -> Result<()> {
    block_until(
        watch,
        "waiting on the futex",
        || Ok((word.load(Ordering::Acquire) == value).then_some(())),
        |slice| {
            let timeout = Timespec {
                tv_sec: slice.as_secs() as i64,
                tv_nsec: i64::from(slice.subsec_nanos()),
            };
            match futex::wait(word, Flags::empty(), value.wrapping_sub(1), Some(&timeout)) {
                // Woken, or the word already changed (AGAIN), or a signal (INTR): look again.
                Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(Slept::Woken),
                Err(Errno::TIMEDOUT) => Ok(Slept::SliceElapsed),
                Err(e) => Err(format!("FUTEX_WAIT: {e}").into()),
            }
        },
    )
}
