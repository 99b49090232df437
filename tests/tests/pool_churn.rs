//! Random clone/drop/hand-over churn on one pool from four processes.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use shmidl::{Pool, RawSample, Segment};
use shmidl_tests::{install_drop_counter, spawn_child, unique_name, wait_with_deadline, Counted};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

// `Counted` counts drops through one per-process handle, so each test that
// checks drop counts lives in its own test binary (its own process).

#[test]
fn four_processes_churning_a_64_slot_pool_lose_and_double_free_nothing() {
    let name = unique_name("churn");
    let seg = Segment::builder(&name)
        .size(1 << 20)
        .create_exclusive()
        .unwrap();
    let _guard = install_drop_counter(&seg);
    let drops = seg.find::<AtomicU64>("drops").unwrap();
    let makes = seg.find_or_create("makes", || AtomicU64::new(0)).unwrap();
    let mailbox = seg
        .find_or_create("mailbox", <[AtomicU64; 16]>::default)
        .unwrap();
    let pool = Pool::<Counted>::builder(&seg, "pool")
        .capacity(64)
        .open_or_create()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    let children: Vec<_> = (1..=4u64)
        .map(|i| {
            let seed = (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i)).to_string();
            spawn_child(CHILD, &["churn", &name, &seed, "100000"])
        })
        .collect();
    for c in children {
        let out = wait_with_deadline(c, deadline);
        assert!(out.status.success(), "churn child failed: {out:?}");
    }
    // Handles still parked in the mailbox own a reference each.
    for slot in mailbox.iter() {
        let raw = slot.swap(0, Ordering::SeqCst);
        if raw != 0 {
            // SAFETY: a parked handle owns one reference and nobody else
            // can take it any more.
            let s = unsafe { pool.from_raw(RawSample::from_u64(raw)) }.unwrap();
            assert!(s.intact());
        }
    }
    assert!(
        makes.load(Ordering::SeqCst) > 1000,
        "the churn made objects"
    );
    assert_eq!(pool.free_count(), 64, "every slot is free again");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        makes.load(Ordering::SeqCst),
        "every object was dropped exactly once"
    );
}
