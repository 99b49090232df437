//! Shared helpers for shmidl's end-to-end tests: unique segment names, child
//! processes with deadlines, and the child binary's protocol.
//!
//! Tests spawn the `shmidl-test-child` binary (real processes, not threads),
//! pass it a scenario and names on the command line, and read its answers on
//! stdout, one `key=value` line each.

use std::{
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

/// A segment name no other test (or test run) uses: `t-<tag>-<pid>-<n>`.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts the child binary `exe` with `args`, stdout captured.
pub fn spawn_child(exe: &str, args: &[&str]) -> Child {
    Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {exe}: {e}"))
}

/// Waits for `child` until `deadline`; kills it and panics if it is late,
/// so a hung child fails the test instead of stalling CI.
pub fn wait_with_deadline(mut child: Child, deadline: Instant) -> Output {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().expect("collecting child output"),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let out = child.wait_with_output();
                panic!("child did not finish before its deadline: {out:?}");
            }
            Err(e) => panic!("waiting for child: {e}"),
        }
    }
}

/// The value of `key=` in a child's stdout.
pub fn field<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// Waits until the child prints a line `key=value` (or closes stdout, or
/// `timeout` passes) and returns the value. The child keeps running; the
/// rest of its output is read and discarded.
pub fn read_field(child: &mut Child, key: &str, timeout: Duration) -> Option<String> {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take()?;
    let key = key.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        // Keep reading to the end so the child never writes into a closed
        // pipe; only the first matching line is reported.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(v) = line.strip_prefix(&key).and_then(|r| r.strip_prefix('=')) {
                let _ = tx.send(v.to_owned());
            }
        }
    });
    rx.recv_timeout(timeout).ok()
}

/// Kills `child` with SIGKILL and reaps it.
pub fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_micros(200));
    }
    cond()
}

/// A pool payload whose destructor counts itself in shared memory, so a
/// test can prove an object was dropped exactly once across processes.
#[repr(C)]
#[derive(Debug, shmidl::ShmMessage)]
#[shm(name = "shmidl_tests.Counted")]
pub struct Counted {
    /// Payload.
    pub value: u64,
    /// `!value`, to detect torn or foreign contents.
    pub check: u64,
}

impl Counted {
    /// A value with its check word.
    pub fn new(value: u64) -> Self {
        Self {
            value,
            check: !value,
        }
    }

    /// Whether the check word matches.
    pub fn intact(&self) -> bool {
        self.check == !self.value
    }
}

static DROP_COUNTER: std::sync::Mutex<Option<shmidl::ShmRef<std::sync::atomic::AtomicU64>>> =
    std::sync::Mutex::new(None);

/// Uninstalls the drop counter when dropped, so the process detaches from
/// the segment (a handle in a static would keep it attached forever).
#[must_use = "the counter is uninstalled when the guard is dropped"]
pub struct DropCounterGuard(());

impl Drop for DropCounterGuard {
    fn drop(&mut self) {
        *DROP_COUNTER.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Makes `Counted`'s destructor count into the object `drops` of `segment`
/// (created if missing) until the guard is dropped.
pub fn install_drop_counter(segment: &shmidl::Segment) -> DropCounterGuard {
    let counter = segment
        .find_or_create("drops", || std::sync::atomic::AtomicU64::new(0))
        .expect("drop counter");
    *DROP_COUNTER.lock().unwrap_or_else(|p| p.into_inner()) = Some(counter);
    DropCounterGuard(())
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(c) = &*DROP_COUNTER.lock().unwrap_or_else(|p| p.into_inner()) {
            c.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A router test message: who sent it, its sequence number, and a checksum
/// over both and a payload, to catch torn or misrouted samples.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, shmidl::ShmMessage)]
#[shm(name = "shmidl_tests.Msg")]
pub struct Msg {
    /// Sending publisher's number.
    pub publisher: u64,
    /// Sequence number within that publisher.
    pub seq: u64,
    /// Filler derived from the sequence number.
    pub payload: [u64; 4],
    /// Checksum of the fields above.
    pub checksum: u64,
}

impl Msg {
    /// A message with a valid checksum.
    pub fn new(publisher: u64, seq: u64) -> Self {
        let payload = [
            seq ^ 0x5555,
            seq.rotate_left(7),
            !seq,
            publisher.wrapping_mul(31),
        ];
        let mut m = Self {
            publisher,
            seq,
            payload,
            checksum: 0,
        };
        m.checksum = m.compute();
        m
    }

    fn compute(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for w in [self.publisher, self.seq].iter().chain(&self.payload) {
            h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    /// Whether the checksum matches.
    pub fn intact(&self) -> bool {
        self.checksum == self.compute()
    }
}

/// The topic of the crash tests, and its settings (shared by the tests and
/// the child binary).
pub const CRASH_TOPIC: &str = "crash/topic";

/// Settings of [`CRASH_TOPIC`].
pub fn crash_config() -> shmidl::TopicConfig {
    shmidl::TopicConfig {
        pool: 16,
        depth: 4,
        overflow: shmidl::SendMode::SoftFailIfFull,
        max_publishers: 4,
        max_subscribers: 4,
    }
}

/// The soak test's topic.
pub const SOAK_TOPIC: &str = "soak/topic";

/// Settings of [`SOAK_TOPIC`].
pub fn soak_config() -> shmidl::TopicConfig {
    shmidl::TopicConfig {
        pool: 64,
        depth: 8,
        overflow: shmidl::SendMode::WaitIfFull(Duration::from_millis(200)),
        max_publishers: 4,
        max_subscribers: 4,
    }
}
