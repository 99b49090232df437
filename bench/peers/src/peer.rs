//! The two processes: spawning the follower (this binary re-executed with the hidden `__peer`
//! subcommand), watching each other, and waits that always end.
//!
//! Every wait in this crate goes through [`spin_until`] or [`block_until`]. Neither reads the
//! clock on its fast path: the deadline is only computed the first time a wait turns out to
//! be slow (after [`SPINS_PER_CHECK`] polls, or one [`SLEEP_SLICE`] of sleeping), so a wait
//! lasts at most about `timeout` + one slice, and the timed region of the benchmarks contains
//! no extra clock reads.

use std::{
    fmt::{Debug, Display},
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

/// Errors are strings with context; the binary prints them on stderr and exits with 1.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a description of what failed to any error that is `Debug` (iceoryx2's and rustix's
/// errors are; not all of them implement `std::error::Error`).
pub trait Context<T> {
    fn context(self, what: impl Display) -> Result<T>;
}

impl<T, E: Debug> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Display) -> Result<T> {
        self.map_err(|e| format!("{what}: {e:?}").into())
    }
}

/// Iterations between two checks for Ctrl-C / SIGTERM in the ping-pong loops (outside the
/// timed region).
pub const ITERATIONS_PER_SIGNAL_CHECK: u64 = 1 << 10;

/// Installs iceoryx2's SIGINT/SIGTERM handler in this process (iceoryx2 nodes install it
/// anyway; doing it first makes every bench react to Ctrl-C the same way: the run stops at
/// its next check, fails, and cleans up, instead of being killed mid-way).
pub fn install_signal_handler() {
    let _ = iceoryx2_bb_posix::signal::SignalHandler::termination_requested();
}

/// Fails if SIGINT or SIGTERM arrived since the last check.
pub fn check_signals() -> Result<()> {
    if iceoryx2_bb_posix::signal::SignalHandler::termination_requested() {
        Err("interrupted by SIGINT/SIGTERM".into())
    } else {
        Ok(())
    }
}

/// Polls between two liveness checks in a busy wait.
pub const SPINS_PER_CHECK: u32 = 1 << 12;
/// Longest single sleep in a blocking wait before liveness is checked.
pub const SLEEP_SLICE: Duration = Duration::from_millis(100);

/// A name no other run uses: `shmidl-peers-<pid>-<n>`, `n` counting runs in this process.
pub fn unique_name() -> String {
    static RUN: AtomicU32 = AtomicU32::new(0);
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    format!("shmidl-peers-{}-{n}", std::process::id())
}

/// Who is on the other side, and how to tell that it is gone.
pub enum Other {
    /// The leader watches its child process.
    Follower(Follower),
    /// The follower watches its parent: if the parent dies, the follower is re-parented.
    Leader { pid: u32 },
}

/// Liveness checks and the per-wait timeout.
pub struct Watch {
    timeout: Duration,
    other: Other,
}

impl Watch {
    pub fn new(timeout: Duration, other: Other) -> Self {
        Self { timeout, other }
    }

    /// The leader's handle on its follower, to finish it at the end.
    pub fn into_follower(self) -> Option<Follower> {
        match self.other {
            Other::Follower(f) => Some(f),
            Other::Leader { .. } => None,
        }
    }

    /// On the follower side: whether the leader has died (we were re-parented).
    pub fn leader_is_gone(&self) -> bool {
        match self.other {
            Other::Leader { pid } => std::os::unix::process::parent_id() != pid,
            Other::Follower(_) => false,
        }
    }

    /// The slow path of every wait: fails if the deadline (set on the first call) has passed
    /// or the other process is gone.
    fn check(&mut self, deadline: &mut Option<Instant>, what: &str) -> Result<()> {
        check_signals()?;
        let now = Instant::now();
        let deadline = *deadline.get_or_insert(now + self.timeout);
        match &mut self.other {
            Other::Follower(f) => {
                if let Some(status) = f.child.try_wait().context("waitpid on follower")? {
                    f.reaped = true;
                    return Err(format!("follower exited ({status}) while {what}").into());
                }
            }
            Other::Leader { pid } => {
                if std::os::unix::process::parent_id() != *pid {
                    return Err(format!("leader (pid {pid}) died while {what}").into());
                }
            }
        }
        if now >= deadline {
            return Err(format!("timed out after {:?} while {what}", self.timeout).into());
        }
        Ok(())
    }
}

/// Busy-polls `poll` until it yields a value. Only every [`SPINS_PER_CHECK`]th poll checks
/// the deadline and the other process.
#[inline]
pub fn spin_until<T>(
    watch: &mut Watch,
    what: &str,
    mut poll: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let mut spins: u32 = 0;
    let mut deadline = None;
    loop {
        if let Some(v) = poll()? {
            return Ok(v);
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(SPINS_PER_CHECK) {
            watch.check(&mut deadline, what)?;
        }
    }
}

/// What a sleep in [`block_until`] ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slept {
    /// Woken, or there was nothing to sleep for: poll again.
    Woken,
    /// The slice ran out without a wake-up: check liveness, then poll again.
    SliceElapsed,
}

/// Polls `poll`; while it yields nothing, calls `sleep(SLEEP_SLICE)`, which blocks until a
/// wake-up or the end of the slice. Liveness and the deadline are checked only after a slice
/// elapsed without a wake-up.
#[inline]
pub fn block_until<T>(
    watch: &mut Watch,
    what: &str,
    mut poll: impl FnMut() -> Result<Option<T>>,
    mut sleep: impl FnMut(Duration) -> Result<Slept>,
) -> Result<T> {
    let mut deadline = None;
    loop {
        if let Some(v) = poll()? {
            return Ok(v);
        }
        if sleep(SLEEP_SLICE)? == Slept::SliceElapsed {
            watch.check(&mut deadline, what)?;
        }
    }
}

/// The follower process, from the leader's side. Dropping it before [`Follower::finish`]
/// kills it (SIGKILL to this child's pid only) and reaps it.
pub struct Follower {
    child: Child,
    reaped: bool,
}

impl Follower {
    /// Re-executes this binary as `shmidl-peers __peer <args>`. The follower's stdout is
    /// discarded (the leader's stdout carries the results); its stderr is inherited.
    pub fn spawn(args: &[String]) -> Result<Self> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let child = Command::new(exe)
            .arg("__peer")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning the follower process")?;
        Ok(Self {
            child,
            reaped: false,
        })
    }

    /// Waits until the follower exits successfully, for at most `timeout`.
    pub fn finish(mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context("waitpid on follower")? {
                self.reaped = true;
                return check_status(status);
            }
            if Instant::now() >= deadline {
                return Err(format!("follower did not exit within {timeout:?}").into());
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
}

fn check_status(status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(format!("follower failed ({status})").into())
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if !self.reaped {
            // Our own child, by its pid; it may already have exited, which is fine.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Where the two processes run.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// No affinity: the scheduler decides (and may change its mind between runs).
    Free,
    /// Both processes on one CPU: every wake-up is local (a context switch, no IPI).
    Same,
    /// Leader and follower on two different CPUs: every wake-up crosses CPUs.
    Split,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Free => "free",
            Placement::Same => "same-cpu",
            Placement::Split => "split-cpu",
        }
    }
}

/// The CPUs this process may use when it starts, to place runs on and to return to.
pub struct Cpus {
    original: CpuSet,
    /// The first two CPUs of `original`.
    first: usize,
    second: Option<usize>,
}

impl Cpus {
    pub fn capture() -> Result<Self> {
        let original = sched_getaffinity(None).context("sched_getaffinity")?;
        let mut allowed = (0..CpuSet::MAX_CPU).filter(|&cpu| original.is_set(cpu));
        let first = allowed
            .next()
            .ok_or("no CPU in this process's affinity mask")?;
        Ok(Self {
            original,
            first,
            second: allowed.next(),
        })
    }

    /// Sets this (the leader's) affinity for `placement`; returns the follower's CPU.
    pub fn place_leader(&self, placement: Placement) -> Result<Option<usize>> {
        match placement {
            Placement::Free => {
                sched_setaffinity(None, &self.original).context("restoring the CPU affinity")?;
                Ok(None)
            }
            Placement::Same => {
                pin_to_cpu(self.first)?;
                Ok(Some(self.first))
            }
            Placement::Split => {
                let second = self
                    .second
                    .ok_or("--placement split needs two CPUs in the affinity mask")?;
                pin_to_cpu(self.first)?;
                Ok(Some(second))
            }
        }
    }
}

/// Pins the calling process to one CPU.
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).context(format!("pinning to CPU {cpu}"))
}
