//! `shmidl ls` and `shmidl clean` against segments left by killed processes.

#![allow(clippy::print_stdout)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use shmidl::Segment;

const SHMIDL: &str = env!("CARGO_BIN_EXE_shmidl");

/// This test has its own `main` (`harness = false`): run with
/// `SHMIDL_HOLD=<segment>`, the same binary is the holder process the test
/// spawns — it attaches to the segment with a pool and waits to be killed.
fn main() {
    if let Ok(name) = std::env::var("SHMIDL_HOLD") {
        let seg = Segment::builder(&name).open_or_create().unwrap();
        let _pool = shmidl::Pool::<u64>::builder(&seg, "p")
            .capacity(8)
            .open_or_create()
            .unwrap();
        println!("ready");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    clean_removes_a_segment_left_by_a_killed_process_and_keeps_a_live_one();
    println!("test clean_removes_a_segment_left_by_a_killed_process_and_keeps_a_live_one ... ok");
}

fn hold(name: &str) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("SHMIDL_HOLD", name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.trim() == "ready" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("holder ready");
    child
}

fn shmidl(args: &[&str]) -> String {
    let out = Command::new(SHMIDL).args(args).output().unwrap();
    assert!(out.status.success(), "shmidl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn unique(tag: &str) -> String {
    format!("t-cli-{tag}-{}", std::process::id())
}

fn clean_removes_a_segment_left_by_a_killed_process_and_keeps_a_live_one() {
    let dead = unique("dead");
    let live = unique("live");
    let mut killed = hold(&dead);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let mut alive = hold(&live);

    let listing = shmidl(&["ls"]);
    assert!(listing.contains(&format!("{dead}  ")), "{listing}");
    assert!(listing.contains("0 alive, 1 dead"), "{listing}");
    assert!(listing.contains("8 of 8 slots free"), "{listing}");

    let dry = shmidl(&["clean", "--dry-run"]);
    assert!(dry.contains(&format!("would remove {dead}")), "{dry}");
    assert!(dry.contains(&format!("kept {live}")), "{dry}");
    assert!(Segment::inspect(&dead).is_ok(), "a dry run removes nothing");

    let done = shmidl(&["clean"]);
    assert!(done.contains(&format!("removed {dead}")), "{done}");
    assert!(done.contains(&format!("kept {live}")), "{done}");
    assert!(Segment::inspect(&dead).is_err());
    assert!(Segment::inspect(&live).is_ok());

    alive.kill().unwrap();
    alive.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Segment::inspect(&live).is_ok() && Instant::now() < deadline {
        shmidl(&["clean"]);
    }
    assert!(
        Segment::inspect(&live).is_err(),
        "removed once its holder died"
    );
}
