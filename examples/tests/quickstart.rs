//! The quickstart runs to completion as a user would run it.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[test]
fn quickstart_runs_two_processes_and_succeeds() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("quickstart did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "paced: 50000 messages",
        "lost 0",
        "burst: 1000000 messages",
        "256 of 256 slots free again",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in {stdout}"
        );
    }
}
