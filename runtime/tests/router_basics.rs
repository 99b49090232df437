//! Router semantics in one process: send modes, late joiners, timeouts,
//! closing, and that every queued reference comes back to the pool.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use shmidl::{Pool, RecvError, Router, RouterOpenError, Segment, SendError, SendMode};

fn setup(tag: &str, capacity: u32) -> (Segment, Pool<u64>) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t-router-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let seg = Segment::builder(&name)
        .size(4 << 20)
        .create_exclusive()
        .unwrap();
    let pool = Pool::<u64>::builder(&seg, "pool")
        .capacity(capacity)
        .open_or_create()
        .unwrap();
    (seg, pool)
}

fn send(publisher: &mut shmidl::Publisher<u64>, pool: &Pool<u64>, v: u64, mode: SendMode) -> usize {
    let s = pool.try_make(v).unwrap().freeze();
    publisher.send(&s, mode).unwrap()
}

#[test]
fn soft_fail_counts_exactly_the_messages_not_delivered() {
    let (_seg, pool) = setup("soft", 32);
    let router = Router::builder(&pool, "r")
        .depth(4)
        .open_or_create()
        .unwrap();
    let mut sub = router.subscriber().unwrap();
    let mut publisher = router.publisher().unwrap();
    let failed: usize = (0..10)
        .map(|v| send(&mut publisher, &pool, v, SendMode::SoftFailIfFull))
        .sum();
    assert_eq!(failed, 6, "depth 4: 6 of 10 did not fit");
    let got: Vec<u64> = std::iter::from_fn(|| sub.try_recv().unwrap().map(|s| *s)).collect();
    assert_eq!(got, vec![0, 1, 2, 3]);
    assert_eq!(pool.free_count(), 32);
}

#[test]
fn overwrite_oldest_keeps_the_newest_depth_messages_and_frees_the_rest() {
    let (_seg, pool) = setup("overwrite", 32);
    let router = Router::builder(&pool, "r")
        .depth(4)
        .open_or_create()
        .unwrap();
    let mut sub = router.subscriber().unwrap();
    let mut publisher = router.publisher().unwrap();
    for v in 0..10 {
        assert_eq!(send(&mut publisher, &pool, v, SendMode::OverwriteOldest), 0);
    }
    assert_eq!(
        pool.free_count(),
        32 - 4,
        "overwritten samples went back to the pool"
    );
    let got: Vec<u64> = std::iter::from_fn(|| sub.try_recv().unwrap().map(|s| *s)).collect();
    assert_eq!(got, vec![6, 7, 8, 9]);
    assert_eq!(pool.free_count(), 32);
}

#[test]
fn wait_if_full_fails_the_pipe_after_its_timeout() {
    let (_seg, pool) = setup("waitfull", 32);
    let router = Router::builder(&pool, "r")
        .depth(2)
        .open_or_create()
        .unwrap();
    let _sub = router.subscriber().unwrap();
    let mut publisher = router.publisher().unwrap();
    let mode = SendMode::WaitIfFull(Duration::from_millis(20));
    assert_eq!(send(&mut publisher, &pool, 1, mode), 0);
    assert_eq!(send(&mut publisher, &pool, 2, mode), 0);
    assert_eq!(
        send(&mut publisher, &pool, 3, mode),
        1,
        "full: the pipe failed after waiting"
    );
}

#[test]
fn wait_if_full_resumes_when_the_subscriber_reads() {
    let (_seg, pool) = setup("waitresume", 32);
    let router = Router::builder(&pool, "r")
        .depth(1)
        .open_or_create()
        .unwrap();
    let mut sub = router.subscriber().unwrap();
    let mut publisher = router.publisher().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < 50 {
            got.push(*sub.recv_timeout(Duration::from_secs(20)).unwrap());
        }
        got
    });
    for v in 0..50 {
        assert_eq!(
            send(
                &mut publisher,
                &pool,
                v,
                SendMode::WaitIfFull(Duration::from_secs(20))
            ),
            0
        );
    }
    assert_eq!(reader.join().unwrap(), (0..50).collect::<Vec<_>>());
    assert_eq!(pool.free_count(), 32);
}

#[test]
fn a_late_subscriber_gets_only_later_messages() {
    let (_seg, pool) = setup("late", 32);
    let router = Router::builder(&pool, "r").open_or_create().unwrap();
    let mut early = router.subscriber().unwrap();
    let mut publisher = router.publisher().unwrap();
    send(&mut publisher, &pool, 1, SendMode::SoftFailIfFull);
    let mut late = router.subscriber().unwrap();
    send(&mut publisher, &pool, 2, SendMode::SoftFailIfFull);
    assert_eq!(*early.try_recv().unwrap().unwrap(), 1);
    assert_eq!(*early.try_recv().unwrap().unwrap(), 2);
    assert_eq!(*late.try_recv().unwrap().unwrap(), 2);
    assert!(late.try_recv().unwrap().is_none());
}

#[test]
fn a_leaving_subscriber_returns_its_queued_samples() {
    let (_seg, pool) = setup("leave", 32);
    let router = Router::builder(&pool, "r").open_or_create().unwrap();
    let sub = router.subscriber().unwrap();
    let mut publisher = router.publisher().unwrap();
    for v in 0..5 {
        send(&mut publisher, &pool, v, SendMode::SoftFailIfFull);
    }
    assert_eq!(pool.free_count(), 27);
    drop(sub);
    assert_eq!(pool.free_count(), 32);
    // Its slot is reused by a newcomer with an empty queue.
    let mut next = router.subscriber().unwrap();
    assert!(next.try_recv().unwrap().is_none());
}

#[test]
fn recv_timeout_returns_timeout_when_nothing_comes() {
    let (_seg, pool) = setup("timeout", 4);
    let router = Router::builder(&pool, "r").open_or_create().unwrap();
    let mut sub = router.subscriber().unwrap();
    let _publisher = router.publisher().unwrap();
    assert!(matches!(
        sub.recv_timeout(Duration::from_millis(30)),
        Err(RecvError::Timeout)
    ));
}

#[test]
fn the_pipe_closes_when_the_last_publisher_leaves_and_the_queue_is_empty() {
    let (_seg, pool) = setup("close", 8);
    let router = Router::builder(&pool, "r").open_or_create().unwrap();
    let mut sub = router.subscriber().unwrap();
    assert!(!sub.is_open());
    let mut publisher = router.publisher().unwrap();
    assert!(sub.is_open());
    send(&mut publisher, &pool, 7, SendMode::SoftFailIfFull);
    drop(publisher);
    assert!(sub.is_open(), "a queued message keeps it open");
    assert_eq!(*sub.recv().unwrap(), 7);
    assert!(!sub.is_open());
    assert!(matches!(sub.recv(), Err(RecvError::Closed)));
}

#[test]
fn a_blocked_recv_is_woken_by_a_send_from_another_thread() {
    let (_seg, pool) = setup("wake", 8);
    let router = Router::builder(&pool, "r").open_or_create().unwrap();
    let mut sub = router.subscriber().unwrap();
    let mut publisher = router.publisher().unwrap();
    let t = std::thread::spawn(move || *sub.recv_timeout(Duration::from_secs(20)).unwrap());
    std::thread::sleep(Duration::from_millis(20));
    send(&mut publisher, &pool, 9, SendMode::SoftFailIfFull);
    assert_eq!(t.join().unwrap(), 9);
}

#[test]
fn opening_checks_configuration_pool_and_sample_origin() {
    let (seg, pool) = setup("config", 8);
    let router = Router::builder(&pool, "r")
        .depth(4)
        .open_or_create()
        .unwrap();
    assert!(matches!(
        Router::builder(&pool, "r").depth(5).open_or_create(),
        Err(RouterOpenError::ConfigMismatch { .. })
    ));
    assert_eq!(
        Router::builder(&pool, "r").open().unwrap().config().depth,
        4
    );
    let other = Pool::<u64>::builder(&seg, "other")
        .capacity(2)
        .open_or_create()
        .unwrap();
    assert!(matches!(
        Router::builder(&other, "r").open(),
        Err(RouterOpenError::PoolMismatch { .. })
    ));
    let mut publisher = router.publisher().unwrap();
    let foreign = other.try_make(1).unwrap().freeze();
    assert!(matches!(
        publisher.send(&foreign, SendMode::SoftFailIfFull),
        Err(SendError::ForeignSample { .. })
    ));
    assert!(matches!(
        Router::builder(&pool, "z").depth(0).open_or_create(),
        Err(RouterOpenError::InvalidConfig(_))
    ));
}

#[test]
fn ports_run_out_and_come_back() {
    let (_seg, pool) = setup("ports", 8);
    let router = Router::builder(&pool, "r")
        .max_publishers(1)
        .max_subscribers(1)
        .open_or_create()
        .unwrap();
    let p = router.publisher().unwrap();
    assert!(router.publisher().is_err());
    drop(p);
    assert!(router.publisher().is_ok());
    let s = router.subscriber().unwrap();
    assert!(router.subscriber().is_err());
    drop(s);
    assert_eq!(router.subscriber_count(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_subscriber_is_woken_without_polling() {
    let (_seg, pool) = setup("async", 16);
    let router = Router::builder(&pool, "r").open_or_create().unwrap();
    let mut sub = router.subscriber().unwrap().into_async(4).unwrap();
    let mut publisher = router.publisher().unwrap();
    let sender = std::thread::spawn(move || {
        for v in 0..20u64 {
            std::thread::sleep(Duration::from_millis(1));
            let s = pool.make_pooled(v).unwrap().freeze();
            assert_eq!(
                publisher
                    .send(&s, SendMode::WaitIfFull(Duration::from_secs(20)))
                    .unwrap(),
                0
            );
        }
        pool
    });
    for v in 0..20u64 {
        let got = tokio::time::timeout(Duration::from_secs(20), sub.recv())
            .await
            .expect("a message within the deadline")
            .unwrap();
        assert_eq!(*got, v);
    }
    let pool = sender.join().unwrap();
    drop(sub);
    assert_eq!(pool.free_count(), 16);
}

/// A message without `Default` (std has none for `[u8; 2000]`).
#[derive(shmidl::ShmMessage)]
#[repr(C)]
struct Big {
    id: u64,
    data: [u8; 2000],
}

#[test]
fn loans_need_no_default_zeroed_uninit_or_recycled() {
    let static_name = format!("t-router-big-{}", std::process::id());
    let seg = Segment::builder(&static_name)
        .size(4 << 20)
        .create_exclusive()
        .unwrap();
    let pool = Pool::<Big>::builder(&seg, "pool")
        .capacity(4)
        .open_or_create()
        .unwrap();
    let router = Router::builder(&pool, "r")
        .depth(4)
        .open_or_create()
        .unwrap();
    let mut sub = router.subscriber().unwrap();
    let mut publisher = router.publisher().unwrap();

    let mut big = publisher.loan_zeroed().unwrap();
    assert!(big.data.iter().all(|&b| b == 0) && big.id == 0);
    big.id = 1;
    big.data[1999] = 9;
    publisher.publish(big).unwrap();

    let slot = publisher.loan_uninit().unwrap();
    let big = slot.write(Big {
        id: 2,
        data: [7; 2000],
    });
    publisher.publish(big).unwrap();

    let first = sub.try_recv().unwrap().unwrap();
    assert_eq!((first.id, first.data[1999]), (1, 9));
    let second = sub.try_recv().unwrap().unwrap();
    assert_eq!((second.id, second.data[0]), (2, 7));
    drop((first, second));

    // A recycled slot may hold an earlier message's bytes: valid, not zeroed.
    let recycled = publisher.loan_recycled().unwrap();
    assert!(recycled.id <= 2);
    drop(recycled);
    assert_eq!(pool.free_count(), 4);
}

#[test]
fn an_excluded_subscriber_gets_nothing_and_a_later_one_on_its_port_gets_everything() {
    let (seg, pool) = setup("exclude", 32);
    let router = Router::builder(&pool, "r")
        .depth(4)
        .max_subscribers(2)
        .open_or_create()
        .unwrap();
    let mut publisher = router.publisher().unwrap();
    let mut mine = router.subscriber().unwrap();
    let mut other = router.subscriber().unwrap();
    assert!(publisher.exclude(&mine));
    // More messages than `mine`'s queue holds: under WaitIfFull the
    // publisher would wait for it if it were not left out.
    for v in 0..8 {
        let s = pool.try_make(v).unwrap();
        assert_eq!(publisher.publish(s).unwrap(), 0);
        assert_eq!(*other.try_recv().unwrap().unwrap(), v);
    }
    assert!(mine.try_recv().unwrap().is_none());
    // The exclusion ends with that subscriber: the next one on the same
    // port receives.
    drop(mine);
    let mut next = router.subscriber().unwrap();
    send(&mut publisher, &pool, 42, SendMode::SoftFailIfFull);
    assert_eq!(*next.try_recv().unwrap().unwrap(), 42);
    assert_eq!(*other.try_recv().unwrap().unwrap(), 42);
    // A subscriber of another router is refused.
    let foreign = Router::builder(&pool, "r2").open_or_create().unwrap();
    let mut foreign_publisher = foreign.publisher().unwrap();
    assert!(!foreign_publisher.exclude(&next));
    drop((next, other, seg));
    assert_eq!(pool.free_count(), 32);
}
