//! A growable pool across processes: one process exhausts it (so it grows),
//! hands the objects over and exits; another maps the new chunks, reads
//! the objects, and sees emptied chunks retired and their segments removed.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use shmidl::{Pool, RawSample, Sample, Segment};
use shmidl_tests::{
    chunk_files, field, install_drop_counter, spawn_child, unique_name, wait_with_deadline, Counted,
};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

#[test]
fn objects_in_chunks_grown_by_an_exited_process_are_read_and_retired() {
    let name = unique_name("grow");
    let seg = Segment::builder(&name)
        .size(1 << 20)
        .create_exclusive()
        .unwrap();
    let _guard = install_drop_counter(&seg);
    let drops = seg.find::<AtomicU64>("drops").unwrap();
    let mailbox = seg
        .find_or_create("mailbox", || -> [AtomicU64; 16] {
            std::array::from_fn(|_| AtomicU64::new(0))
        })
        .unwrap();
    let pool = Pool::<Counted>::builder(&seg, "pool")
        .capacity(4)
        .growable(4)
        .open_or_create()
        .unwrap();

    // The child fills chunk 0 and grows two chunks, then exits.
    let out = wait_with_deadline(
        spawn_child(CHILD, &["grow-give", &name, "10"]),
        Instant::now() + Duration::from_secs(60),
    );
    assert!(out.status.success(), "child failed: {out:?}");
    let out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(field(&out, "chunks"), Some("3"));
    assert_eq!(pool.chunks(), 3);
    assert_eq!(
        chunk_files(&name).len(),
        2,
        "the chunks outlive the process that made them"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 0);

    // Take every object over: this process maps chunks 1 and 2 on first use.
    let taken: Vec<Sample<Counted>> = mailbox
        .iter()
        .take(10)
        .map(|m| {
            let raw = RawSample::from_u64(m.swap(0, Ordering::SeqCst));
            // SAFETY: the child detached these references with `into_raw`;
            // the swap makes this the only redemption.
            unsafe { pool.from_raw(raw) }.unwrap()
        })
        .collect();
    for (i, s) in taken.iter().enumerate() {
        assert_eq!(s.value, 0x1000 + i as u64);
        assert!(s.intact());
    }
    assert_eq!(pool.free_count(), 2);

    // Emptying chunk 1 (slots 4..8) retires it: chunk 2 is newer.
    let files = chunk_files(&name);
    let (chunk1, rest): (Vec<_>, Vec<_>) =
        taken.into_iter().partition(|s| (4..8).contains(&s.slot()));
    assert_eq!(chunk1.len(), 4);
    drop(chunk1);
    assert_eq!(pool.chunks(), 2);
    assert_eq!(
        chunk_files(&name),
        vec![files[1].clone()],
        "chunk 1's segment is gone"
    );

    drop(rest);
    assert_eq!(drops.load(Ordering::SeqCst), 10, "each object dropped once");
    assert_eq!(pool.free_count(), pool.capacity());
    drop(pool);
    drop(mailbox);
    drop(drops);
    drop(_guard);
    drop(seg);
    assert!(
        chunk_files(&name).is_empty(),
        "the last chunk goes with its pool's segment"
    );
}
