//! Processes killed with SIGKILL: survivors reclaim what they held.

use std::{
    thread,
    time::{Duration, Instant},
};

use shmidl::{Node, RecvError, SendMode};
use shmidl_tests::{
    crash_config, crash_grow_config, kill, read_field, spawn_child, unique_name, CRASH_TOPIC,
};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

fn start(role: &str, domain: &str) -> std::process::Child {
    let mut child = spawn_child(CHILD, &[role, domain]);
    assert_eq!(
        read_field(&mut child, "ready", Duration::from_secs(30)).as_deref(),
        Some("1"),
        "{role} child did not get ready"
    );
    child
}

#[test]
fn everything_a_killed_participant_held_is_reclaimed_once() {
    let domain = unique_name("crash-holder");
    let node = Node::builder(&domain)
        .size(1 << 20)
        .open_or_create()
        .unwrap();
    let mut sub = node.subscriber::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let router = node.router::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let child = start("crash-holder", &domain);
    assert_eq!(router.publisher_count(), 1);
    assert_eq!(router.subscriber_count(), 2);
    assert_eq!(
        router.pool().free_count(),
        16 - 3 - 3,
        "2 unique + 1 shared + 3 queued"
    );
    assert_eq!(node.segment().participants().len(), 2);

    kill(child);
    assert_eq!(node.cleanup_dead().unwrap(), 1);
    assert_eq!(node.cleanup_dead().unwrap(), 0, "reclaimed exactly once");
    assert_eq!(router.publisher_count(), 0);
    assert_eq!(router.subscriber_count(), 1);
    assert_eq!(node.segment().participants().len(), 1);
    // What it published before dying is still delivered.
    let got: Vec<u64> = std::iter::from_fn(|| sub.try_recv().unwrap().map(|s| *s)).collect();
    assert_eq!(got, vec![100, 101, 102]);
    assert_eq!(router.pool().free_count(), 16, "every slot came back");
    assert_eq!(node.segment().attached(), 1);
}

#[test]
fn what_a_killed_participant_held_in_later_pool_chunks_is_reclaimed_once() {
    let domain = unique_name("crash-grow");
    let node = Node::builder(&domain)
        .size(1 << 20)
        .open_or_create()
        .unwrap();
    let config = crash_grow_config();
    let mut sub = node.subscriber::<u64>(CRASH_TOPIC, config).unwrap();
    let router = node.router::<u64>(CRASH_TOPIC, config).unwrap();
    let child = start("crash-grow-holder", &domain);
    let pool = router.pool();
    // 3 unique + 1 shared + 3 queued = 7 slots: four 2-slot chunks.
    assert_eq!(pool.chunks(), 4);
    assert_eq!(pool.free_count(), 1);

    kill(child);
    assert_eq!(node.cleanup_dead().unwrap(), 1);
    assert_eq!(node.cleanup_dead().unwrap(), 0, "reclaimed exactly once");
    // What it published before dying is still delivered, from later chunks.
    let got: Vec<u64> = std::iter::from_fn(|| sub.try_recv().unwrap().map(|s| *s)).collect();
    assert_eq!(got, vec![100, 101, 102]);
    assert_eq!(
        pool.free_count(),
        pool.capacity(),
        "every slot of every chunk came back"
    );
    assert!(pool.chunks() < 4, "emptied chunks were retired");
}

#[test]
fn a_publisher_waiting_on_a_killed_subscribers_full_queue_is_released() {
    let domain = unique_name("crash-waitfull");
    let node = Node::builder(&domain)
        .size(1 << 20)
        .open_or_create()
        .unwrap();
    let mut publisher = node.publisher::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let child = start("idle-subscriber", &domain);
    for v in 0..4 {
        let s = publisher.loan().unwrap();
        let _ = v;
        assert_eq!(publisher.publish(s).unwrap(), 0);
    }
    let waiter = thread::spawn(move || {
        let s = publisher.loan().unwrap().freeze();
        let failed = publisher.send(&s, SendMode::WaitIfFull(Duration::from_secs(60)));
        (failed, publisher)
    });
    thread::sleep(Duration::from_millis(50));
    let killed_at = Instant::now();
    kill(child);
    let (failed, _publisher) = waiter.join().unwrap();
    assert_eq!(failed.unwrap(), 1, "the dead subscriber's pipe failed");
    assert!(
        killed_at.elapsed() < Duration::from_secs(60),
        "released before its timeout"
    );
    let router = node.router::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    assert_eq!(router.subscriber_count(), 0);
}

#[test]
fn a_subscriber_waiting_on_a_killed_publisher_sees_the_pipe_close() {
    let domain = unique_name("crash-recv");
    let node = Node::builder(&domain)
        .size(1 << 20)
        .open_or_create()
        .unwrap();
    let mut sub = node.subscriber::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let child = start("idle-publisher", &domain);
    assert!(sub.is_open());
    let waiter = thread::spawn(move || (sub.recv().map(|s| *s), sub));
    thread::sleep(Duration::from_millis(50));
    kill(child);
    let (result, sub) = waiter.join().unwrap();
    assert!(matches!(result, Err(RecvError::Closed)), "{result:?}");
    assert!(!sub.is_open());
}
