//! Segments and named objects shared by real processes.

use std::{
    collections::HashSet,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use shmidl::{ObjectError, Segment, SegmentCreateError, SegmentOpenError};
use shmidl_tests::{field, spawn_child, unique_name, wait_for, wait_with_deadline};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

#[test]
fn eight_processes_racing_find_or_create_run_init_exactly_once() {
    let control_name = unique_name("race-ctl");
    let target = unique_name("race-target");
    let ctl = Segment::builder(&control_name).create_exclusive().unwrap();
    let ready = ctl.find_or_create("ready", || AtomicU64::new(0)).unwrap();
    let go = ctl.find_or_create("go", || AtomicU64::new(0)).unwrap();
    let done = ctl.find_or_create("done", || AtomicU64::new(0)).unwrap();
    let inits = ctl.find_or_create("inits", || AtomicU64::new(0)).unwrap();

    let children: Vec<_> = (0..8)
        .map(|_| spawn_child(CHILD, &["race", &control_name, &target]))
        .collect();
    assert!(wait_for(Duration::from_secs(20), || ready
        .load(Ordering::SeqCst)
        == 8));
    go.store(1, Ordering::SeqCst);
    assert!(wait_for(Duration::from_secs(20), || done
        .load(Ordering::SeqCst)
        == 8));
    go.store(2, Ordering::SeqCst);

    let deadline = Instant::now() + Duration::from_secs(30);
    let outs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = wait_with_deadline(c, deadline);
            assert!(out.status.success(), "child failed: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        })
        .collect();
    assert_eq!(inits.load(Ordering::SeqCst), 1, "init ran more than once");
    for key in ["segment_id", "offset", "value"] {
        let seen: HashSet<&str> = outs.iter().map(|o| field(o, key).unwrap()).collect();
        assert_eq!(seen.len(), 1, "racers disagree on {key}: {seen:?}");
    }
    // All racers detached: the target segment was removed with the last one.
    assert!(matches!(
        Segment::open(&target),
        Err(SegmentOpenError::NotFound { .. })
    ));
}

#[test]
fn an_object_is_shared_with_another_process() {
    let name = unique_name("shared");
    let seg = Segment::builder(&name).create_exclusive().unwrap();
    let v = seg.find_or_create("v", || AtomicU64::new(41)).unwrap();
    let out = wait_with_deadline(
        spawn_child(CHILD, &["read", &name, "v"]),
        Instant::now() + Duration::from_secs(20),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        field(&String::from_utf8_lossy(&out.stdout), "value"),
        Some("41")
    );
    assert_eq!(
        v.load(Ordering::SeqCst),
        42,
        "the child's increment is visible"
    );
}

#[test]
fn another_process_asking_for_the_wrong_type_gets_type_mismatch() {
    let name = unique_name("wrongtype");
    let seg = Segment::builder(&name).create_exclusive().unwrap();
    let _v = seg.find_or_create("v", || AtomicU64::new(0)).unwrap();
    let out = wait_with_deadline(
        spawn_child(CHILD, &["find-wrong-type", &name, "v"]),
        Instant::now() + Duration::from_secs(20),
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(field(&stdout, "error"), Some("type_mismatch"));
    assert_eq!(field(&stdout, "expected_size"), Some("4"));
    assert_eq!(field(&stdout, "found_size"), Some("8"));
}

#[test]
fn opening_a_missing_segment_is_not_found() {
    let name = unique_name("missing");
    assert!(matches!(
        Segment::open(&name),
        Err(SegmentOpenError::NotFound { .. })
    ));
}

#[test]
fn opening_with_another_size_is_a_size_mismatch() {
    let name = unique_name("size");
    let _seg = Segment::builder(&name)
        .size(1 << 20)
        .create_exclusive()
        .unwrap();
    let err = Segment::builder(&name)
        .size(2 << 20)
        .open_or_create()
        .unwrap_err();
    assert!(
        matches!(
            err,
            SegmentCreateError::Open(SegmentOpenError::SizeMismatch {
                requested: 2097152,
                found: 1048576,
                ..
            })
        ),
        "{err}"
    );
    assert!(matches!(
        Segment::builder(&name).size(1 << 21).open_sized(),
        Err(SegmentOpenError::SizeMismatch { .. })
    ));
    assert!(Segment::builder(&name).size(1 << 20).open_sized().is_ok());
}

#[test]
fn create_exclusive_refuses_an_existing_segment() {
    let name = unique_name("excl");
    let _seg = Segment::builder(&name).create_exclusive().unwrap();
    assert!(matches!(
        Segment::builder(&name).create_exclusive(),
        Err(SegmentCreateError::AlreadyExists { .. })
    ));
}

#[test]
fn find_of_a_missing_object_is_not_found() {
    let name = unique_name("noobj");
    let seg = Segment::builder(&name).create_exclusive().unwrap();
    assert!(matches!(
        seg.find::<u64>("nothing"),
        Err(ObjectError::NotFound { .. })
    ));
}
