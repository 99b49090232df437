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
