//! Publishers and subscribers in separate processes.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use shmidl::{Pool, Router, Segment};
use shmidl_tests::{field, spawn_child, unique_name, wait_for, wait_with_deadline, Msg};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");
const MESSAGES: u64 = 100_000;

#[test]
fn three_publishers_reach_four_subscribers_exactly_once_in_order() {
    let name = unique_name("fanout");
    let seg = Segment::builder(&name)
        .size(4 << 20)
        .create_exclusive()
        .unwrap();
    let ready = seg.find_or_create("ready", || AtomicU64::new(0)).unwrap();
    let pool = Pool::<Msg>::builder(&seg, "msgs")
        .capacity(256)
        .open_or_create()
        .unwrap();
    let router = Router::builder(&pool, "topic")
        .max_publishers(3)
        .max_subscribers(4)
        .depth(16)
        .open_or_create()
        .unwrap();

    let count = MESSAGES.to_string();
    let deadline = Instant::now() + Duration::from_secs(300);
    let subscribers: Vec<_> = (0..4)
        .map(|_| spawn_child(CHILD, &["subscribe", &name, "3", &count]))
        .collect();
    assert!(
        wait_for(Duration::from_secs(30), || ready.load(Ordering::SeqCst)
            == 4),
        "subscribers did not attach"
    );
    let publishers: Vec<_> = (0..3)
        .map(|id| spawn_child(CHILD, &["publish", &name, &id.to_string(), &count]))
        .collect();
    for p in publishers {
        let out = wait_with_deadline(p, deadline);
        assert!(out.status.success(), "publisher failed: {out:?}");
        assert_eq!(
            field(&String::from_utf8_lossy(&out.stdout), "failed"),
            Some("0")
        );
    }
    for s in subscribers {
        let out = wait_with_deadline(s, deadline);
        assert!(out.status.success(), "subscriber failed: {out:?}");
        let expect = (3 * MESSAGES).to_string();
        assert_eq!(
            field(&String::from_utf8_lossy(&out.stdout), "received"),
            Some(expect.as_str())
        );
    }
    assert_eq!(router.subscriber_count(), 0);
    assert_eq!(router.publisher_count(), 0);
    assert_eq!(pool.free_count(), 256, "every sample came back to the pool");
}
