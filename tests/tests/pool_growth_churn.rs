//! The churn of `pool_churn.rs` on a growable pool of small chunks, so that
//! chunks are added, mapped by other processes and retired while four
//! processes allocate, clone, hand over and free.

use shmidl_tests::run_churn;

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

#[test]
fn four_processes_churning_a_growable_pool_lose_and_double_free_nothing() {
    let o = run_churn(CHILD, 4, 16, 4, 50_000);
    eprintln!("{o:?}");
    assert!(o.makes > 1000, "the churn made objects: {o:?}");
    assert!(o.chunks_seen > 1, "the pool grew: {o:?}");
    assert_eq!(o.free, o.capacity, "every slot is free again: {o:?}");
    assert_eq!(
        o.drops, o.makes,
        "every object was dropped exactly once: {o:?}"
    );
}
