//! A pool object handed from one process to another.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use shmidl::{Pool, Segment};
use shmidl_tests::{
    field, install_drop_counter, spawn_child, unique_name, wait_with_deadline, Counted,
};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

fn run(args: &[&str]) -> String {
    let out = wait_with_deadline(
        spawn_child(CHILD, args),
        Instant::now() + Duration::from_secs(60),
    );
    assert!(out.status.success(), "child {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

// `Counted` counts drops through one per-process handle, so each test that
// checks drop counts lives in its own test binary (its own process).

#[test]
fn an_object_outlives_its_creator_and_is_dropped_once_by_the_last_holder() {
    let name = unique_name("handover");
    let seg = Segment::builder(&name)
        .size(1 << 20)
        .create_exclusive()
        .unwrap();
    let _guard = install_drop_counter(&seg);
    let drops = seg.find::<AtomicU64>("drops").unwrap();
    let _handoff = seg.find_or_create("handoff", || AtomicU64::new(0)).unwrap();
    let pool = Pool::<Counted>::builder(&seg, "pool")
        .capacity(4)
        .open_or_create()
        .unwrap();

    run(&["handover-give", &name]);
    assert_eq!(
        pool.free_count(),
        3,
        "the creator exited; its object lives on"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 0);

    let out = run(&["handover-take", &name]);
    assert_eq!(field(&out, "value"), Some("feed"));
    assert_eq!(field(&out, "intact"), Some("true"));
    assert_eq!(pool.free_count(), 4, "the last holder freed the slot");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
}
