//! Random clone/drop/hand-over churn on one pool from four processes.

use shmidl_tests::run_churn;

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

// `Counted` counts drops through one per-process handle, so each test that
// checks drop counts lives in its own test binary (its own process).

#[test]
fn four_processes_churning_a_64_slot_pool_lose_and_double_free_nothing() {
    let o = run_churn(CHILD, 64, 1, 4, 100_000);
    assert!(o.makes > 1000, "the churn made objects: {o:?}");
    assert_eq!((o.free, o.capacity), (64, 64), "every slot is free again");
    assert_eq!(o.drops, o.makes, "every object was dropped exactly once");
}
