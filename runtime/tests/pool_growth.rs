//! Growable pools in one process: chunks added on exhaustion, handles into
//! later chunks, retirement, limits. `tests/tests/pool_growth.rs` covers
//! the same across processes.

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    thread,
    time::Duration,
};

use shmidl::{
    ArrayPool, HandleError, Pool, PoolOpenError, RawSample, Router, Sample, Segment, SendMode,
    MAX_POOL_CHUNKS,
};

fn segment(tag: &str) -> Segment {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t-grow-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Segment::builder(&name)
        .size(1 << 20)
        .create_exclusive()
        .unwrap()
}

/// Chunk segments of the pools in `seg` present in `/dev/shm` now.
fn chunk_files(seg: &Segment) -> Vec<String> {
    let prefix = format!("shmidl.{}.chunk-", seg.name());
    let mut v: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    v.sort();
    v
}

#[test]
fn an_exhausted_growable_pool_adds_chunks_up_to_its_limit() {
    let seg = segment("limit");
    let pool = Pool::<u64>::builder(&seg, "p")
        .capacity(4)
        .growable(3)
        .timeout(Duration::from_millis(20))
        .open_or_create()
        .unwrap();
    assert_eq!(
        (pool.chunks(), pool.capacity(), pool.max_chunks()),
        (1, 4, 3)
    );
    assert!(chunk_files(&seg).is_empty());

    let mut held: Vec<Sample<u64>> = Vec::new();
    for i in 0..12 {
        held.push(pool.try_make(i).unwrap().freeze());
    }
    assert_eq!((pool.chunks(), pool.capacity()), (3, 12));
    assert_eq!(pool.free_count(), 0);
    assert_eq!(chunk_files(&seg).len(), 2, "one segment per later chunk");
    let mut slots: Vec<u32> = held.iter().map(Sample::slot).collect();
    slots.sort_unstable();
    assert_eq!(slots, (0..12).collect::<Vec<_>>(), "global slot indices");
    for (i, s) in held.iter().enumerate() {
        assert_eq!(**s, i as u64);
    }

    // At the limit: refused, and a timed wait ends.
    let e = pool.try_make(99).unwrap_err();
    assert_eq!(e.into_inner(), 99);
    assert!(pool.make_pooled(100).is_err());

    drop(held);
    assert_eq!(pool.free_count(), pool.capacity());
    drop(pool);
    drop(seg);
}

#[test]
fn an_entirely_free_chunk_that_is_not_the_newest_is_retired() {
    let seg = segment("retire");
    let pool = Pool::<u64>::builder(&seg, "p")
        .capacity(2)
        .growable(4)
        .open_or_create()
        .unwrap();
    let all: Vec<Sample<u64>> = (0..6).map(|i| pool.try_make(i).unwrap().freeze()).collect();
    assert_eq!(pool.chunks(), 3);
    let files = chunk_files(&seg);
    assert_eq!(files.len(), 2);

    // Free chunk 1 (slots 2 and 3): chunk 2 is newer, so chunk 1 goes.
    let (in_chunk_1, rest): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|s| (2..4).contains(&s.slot()));
    let stale = in_chunk_1[0].raw();
    drop(in_chunk_1);
    assert_eq!(pool.chunks(), 2, "chunk 1 retired");
    assert_eq!(
        chunk_files(&seg),
        vec![files[1].clone()],
        "its segment is gone"
    );
    assert!(matches!(
        pool.upgrade(stale),
        Err(HandleError::ChunkUnavailable { chunk: 1, .. })
    ));

    // Free chunk 2 too: it is the newest now, so it stays.
    let (in_chunk_2, rest): (Vec<_>, Vec<_>) = rest.into_iter().partition(|s| s.slot() >= 4);
    drop(in_chunk_2);
    assert_eq!(pool.chunks(), 2, "the newest chunk stays");
    assert_eq!(pool.free_count(), 2);

    // Exhaust again: chunk 2 is used first, then chunk 1 comes back (a new
    // epoch, a new segment).
    let again: Vec<Sample<u64>> = (0..4).map(|i| pool.try_make(i).unwrap().freeze()).collect();
    assert_eq!(pool.chunks(), 3);
    let new_files = chunk_files(&seg);
    assert_eq!(new_files.len(), 2);
    assert!(!new_files.contains(&files[0]), "chunk 1 has a new segment");
    assert!(matches!(
        pool.upgrade(stale),
        Err(HandleError::Stale { .. } | HandleError::ChunkUnavailable { .. })
    ));
    drop((rest, again));
    assert_eq!(pool.free_count(), pool.capacity());
    drop(pool);
    drop(seg);
}

#[test]
fn handles_into_later_chunks_round_trip() {
    let seg = segment("raw");
    let pool = Pool::<[u32; 8]>::builder(&seg, "p")
        .capacity(1)
        .growable(3)
        .open_or_create()
        .unwrap();
    let first = pool.try_make([1; 8]).unwrap().freeze();
    let second = pool.try_make([2; 8]).unwrap().freeze();
    assert_eq!(second.slot(), 1);
    let raw = second.clone().into_raw();
    assert_eq!(raw.slot, 1);
    assert_eq!(pool.upgrade(raw).unwrap()[0], 2);
    // SAFETY: `raw` came from `into_raw` and is redeemed once.
    let back = unsafe { pool.from_raw(raw) }.unwrap();
    assert_eq!(back[7], 2);
    assert_eq!(back.shared_count(), 1);
    assert!(matches!(
        pool.upgrade(RawSample {
            slot: 3,
            generation: 0
        }),
        Err(HandleError::OutOfRange { capacity: 3, .. })
    ));
    assert!(matches!(
        pool.upgrade(RawSample {
            slot: 2,
            generation: 0
        }),
        Err(HandleError::ChunkUnavailable { chunk: 2, .. })
    ));
    drop((first, second, back));
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn growth_limits_are_checked() {
    let seg = segment("limits");
    for bad in [0, MAX_POOL_CHUNKS + 1] {
        assert!(matches!(
            Pool::<u64>::builder(&seg, "bad")
                .growable(bad)
                .open_or_create(),
            Err(PoolOpenError::InvalidGeometry(_))
        ));
    }
    assert!(matches!(
        Pool::<u64>::builder(&seg, "huge")
            .capacity(1 << 29)
            .growable(4)
            .open_or_create(),
        Err(PoolOpenError::InvalidGeometry(_))
    ));
    let _p = Pool::<u64>::builder(&seg, "p")
        .capacity(4)
        .growable(2)
        .open_or_create()
        .unwrap();
    assert!(matches!(
        Pool::<u64>::builder(&seg, "p").capacity(4).open_or_create(),
        Err(PoolOpenError::GrowthMismatch {
            max_chunks: 1,
            found_max_chunks: 2,
            ..
        })
    ));
    let opened = Pool::<u64>::builder(&seg, "p").open().unwrap();
    assert_eq!(opened.max_chunks(), 2);
}

#[test]
fn a_waiter_is_woken_by_a_free_in_a_later_chunk() {
    let seg = segment("wake");
    let pool = Pool::<u64>::builder(&seg, "p")
        .capacity(1)
        .growable(2)
        .open_or_create()
        .unwrap();
    let a = pool.try_make(1).unwrap();
    let b = pool.try_make(2).unwrap();
    assert_eq!(b.slot(), 1, "the second lives in chunk 1");
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let pool = pool.clone();
        thread::spawn(move || {
            // Far longer than the test's own deadline below: only a wake-up
            // can end this wait in time.
            let got = pool.make_timeout(3, Duration::from_secs(120));
            tx.send(got.map(|s| s.slot()).map_err(|_| ())).unwrap();
        })
    };
    thread::sleep(Duration::from_millis(50));
    drop(b);
    let slot = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the waiter was not woken")
        .unwrap();
    assert_eq!(slot, 1);
    waiter.join().unwrap();
    drop(a);
}

#[test]
fn array_pools_grow_too() {
    let seg = segment("array");
    let pool = ArrayPool::<u16>::builder(&seg, "frames")
        .capacity(1)
        .elements(1000)
        .growable(2)
        .open_or_create()
        .unwrap();
    let a = pool.try_loan_filled(1).unwrap().freeze();
    let b = pool.try_loan_filled(2).unwrap().freeze();
    assert_eq!((a.len(), b.len(), b.slot()), (1000, 1000, 1));
    assert!(b.iter().all(|&x| x == 2));
    drop((a, b));
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn routers_carry_samples_from_later_chunks() {
    let seg = segment("router");
    let pool = Pool::<u64>::builder(&seg, "p")
        .capacity(2)
        .growable(5)
        .open_or_create()
        .unwrap();
    let router = Router::builder(&pool, "r")
        .depth(8)
        .open_or_create()
        .unwrap();
    let mut publisher = router.publisher().unwrap();
    let mut subscriber = router.subscriber().unwrap();
    for i in 0..8u64 {
        let s = pool.try_make(i).unwrap();
        assert_eq!(publisher.publish(s).unwrap(), 0);
    }
    assert_eq!(pool.chunks(), 4, "eight queued messages need four chunks");
    let extra = pool.try_make(8).unwrap().freeze();
    assert_eq!(
        publisher.send(&extra, SendMode::OverwriteOldest).unwrap(),
        0
    );
    drop(extra);
    let got: Vec<u64> = (0..8)
        .map(|_| *subscriber.try_recv().unwrap().unwrap())
        .collect();
    assert_eq!(
        got,
        (1..9).collect::<Vec<_>>(),
        "the oldest was overwritten"
    );
    assert!(subscriber.try_recv().unwrap().is_none());
    assert_eq!(pool.free_count(), pool.capacity());
}
