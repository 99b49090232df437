//! The websocket transport between real processes on loopback: one
//! publisher to three subscribers, three publishers to one subscriber
//! (100,000 checksummed messages each, none lost under the waiting
//! policy), a publisher process replaced by another, and a slow subscriber
//! process handled by its policy while a fast one gets everything. Publishers listen
//! on port 0 and announce the real port; each test has its own discovery
//! port, so the tests run in parallel.

use std::{process::Command, time::Duration};

use shmidl_tests::{free_udp_port, LineChild};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");
const DEADLINE: Duration = Duration::from_secs(120);
const COUNT: u64 = 100_000;

fn child(args: &[&str]) -> LineChild {
    let mut command = Command::new(CHILD);
    command.args(args);
    LineChild::spawn(command)
}

fn subscriber(port: &str, topic: &str, per: u64, pubs: u64) -> LineChild {
    let mut sub = child(&["ws-sub", port, topic, &per.to_string(), &pubs.to_string()]);
    assert_eq!(sub.next_value("ready", DEADLINE).as_deref(), Some("1"));
    sub
}

fn publisher(port: &str, topic: &str, id: u64, count: u64, subs: usize) -> LineChild {
    child(&[
        "ws-pub",
        port,
        topic,
        &id.to_string(),
        &count.to_string(),
        &subs.to_string(),
    ])
}

fn expect_all(sub: &mut LineChild, total: u64) {
    assert_eq!(
        sub.next_value("received", DEADLINE),
        Some(total.to_string()),
        "{:?}",
        sub.unmatched()
    );
    assert_eq!(sub.next_value("broken", DEADLINE).as_deref(), Some("0"));
    assert_eq!(sub.next_value("missed", DEADLINE).as_deref(), Some("0"));
    assert!(sub.finish(DEADLINE));
}

fn expect_sent(publisher: &mut LineChild, count: u64) {
    assert_eq!(
        publisher.next_value("sent", DEADLINE),
        Some(count.to_string())
    );
    assert_eq!(
        publisher.next_value("dropped", DEADLINE).as_deref(),
        Some("0")
    );
    assert!(publisher.finish(DEADLINE));
}

#[test]
fn one_publisher_reaches_three_subscribers_without_loss() {
    let port = free_udp_port().to_string();
    let mut subs: Vec<_> = (0..3)
        .map(|_| subscriber(&port, "ws/one", COUNT, 1))
        .collect();
    let mut publisher = publisher(&port, "ws/one", 1, COUNT, 3);
    expect_sent(&mut publisher, COUNT);
    for sub in &mut subs {
        expect_all(sub, COUNT);
    }
}

#[test]
fn three_publishers_reach_one_subscriber_without_loss() {
    let port = free_udp_port().to_string();
    let mut sub = subscriber(&port, "ws/many", COUNT, 3);
    let mut pubs: Vec<_> = (1..=3)
        .map(|id| publisher(&port, "ws/many", id, COUNT, 1))
        .collect();
    for p in &mut pubs {
        expect_sent(p, COUNT);
    }
    expect_all(&mut sub, 3 * COUNT);
}

#[test]
fn a_replaced_publisher_process_is_connected_again() {
    let port = free_udp_port().to_string();
    let mut sub = subscriber(&port, "ws/restart", 1000, 2);
    for id in 1..=2 {
        let mut p = publisher(&port, "ws/restart", id, 1000, 1);
        expect_sent(&mut p, 1000);
    }
    expect_all(&mut sub, 2000);
    // `connected=` lines: one per publisher process.
}

fn slow_subscriber_is_handled_by(policy: &str) {
    const BLOBS: u64 = 3000;
    let port = free_udp_port().to_string();
    let topic = format!("ws/slow-{policy}");
    let n = BLOBS.to_string();
    let mut fast = child(&["ws-blob-sub", &port, &topic, &n, "0"]);
    assert_eq!(fast.next_value("ready", DEADLINE).as_deref(), Some("1"));
    let mut slow = child(&["ws-blob-sub", &port, &topic, &n, "5"]);
    assert_eq!(slow.next_value("ready", DEADLINE).as_deref(), Some("1"));
    // 48 MB in 16 KiB blobs, paced so that a subscriber that keeps
    // reading keeps up; far more than the slow one's queue and socket
    // buffers hold.
    let mut p = child(&["ws-blob-pub", &port, &topic, &n, "2", policy]);
    assert_eq!(p.next_value("sent", DEADLINE), Some(n.clone()));
    let dropped: u64 = p.next_value("dropped", DEADLINE).unwrap().parse().unwrap();
    let disconnected: u64 = p
        .next_value("disconnected", DEADLINE)
        .unwrap()
        .parse()
        .unwrap();
    assert!(p.finish(DEADLINE));
    match policy {
        "drop" => assert!(dropped > 0, "nothing dropped for the slow subscriber"),
        _ => assert!(disconnected > 0, "the slow subscriber was not disconnected"),
    }
    // The fast one got every blob, in order, whatever the slow one did.
    assert_eq!(fast.next_value("received", DEADLINE), Some(n));
    assert_eq!(fast.next_value("broken", DEADLINE).as_deref(), Some("0"));
    assert_eq!(
        fast.next_value("in_order", DEADLINE).as_deref(),
        Some("true")
    );
    assert!(fast.finish(DEADLINE));
    slow.stop();
    assert_eq!(slow.next_value("broken", DEADLINE).as_deref(), Some("0"));
    assert!(slow.finish(DEADLINE));
}

#[test]
fn a_slow_subscriber_process_loses_its_oldest_messages_and_the_fast_one_none() {
    slow_subscriber_is_handled_by("drop");
}

#[test]
fn a_slow_subscriber_process_is_disconnected_and_the_fast_one_loses_none() {
    slow_subscriber_is_handled_by("disconnect");
}

/// Another process serves frames a `Msg` subscriber must refuse (another
/// type's fingerprint, a payload too short to be a `Msg`, 8 KiB over a
/// 1 KiB limit), then good ones: each kind is counted under its reason and
/// never delivered, and the good ones arrive.
#[test]
fn wrong_undecodable_and_oversized_frames_from_another_process_are_counted() {
    use std::sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    };
    let mut hostile = child(&["ws-wrong-pub"]);
    let urls: Vec<String> = (0..4)
        .map(|_| {
            hostile
                .next_value("url", DEADLINE)
                .expect("the publisher's url")
        })
        .collect();
    let delivered = Arc::new(AtomicU64::new(0));
    let damaged = Arc::new(AtomicU64::new(0));
    let (seen, bad) = (Arc::clone(&delivered), Arc::clone(&damaged));
    let mut builder = shmidl::net::NetSubscriber::typed::<shmidl_tests::Msg>()
        .max_message_size(1024)
        .max_bad_frames(100)
        .on_message(move |d| {
            // Counted, not asserted: a panic here would only end the
            // connection's task, and the test would wait out its deadline.
            if !(d.message.intact() && d.message.publisher == 9) {
                bad.fetch_add(1, Ordering::Relaxed);
            }
            seen.fetch_add(1, Ordering::Relaxed);
        });
    for url in &urls {
        builder = builder.endpoint(url);
    }
    let sub = builder.start().unwrap();
    assert_eq!(hostile.next_value("sent", DEADLINE).as_deref(), Some("1"));
    let deadline = std::time::Instant::now() + DEADLINE;
    let all_in = |s: &shmidl::net::ws::SubscriberStats| {
        s.wrong_fingerprint >= 3 && s.undecodable >= 3 && s.oversized >= 1
    };
    while delivered.load(Ordering::Relaxed) < 10 || !all_in(&sub.stats()) {
        assert!(std::time::Instant::now() < deadline, "{:?}", sub.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = sub.stats();
    eprintln!("refused from another process: {s:?}");
    assert_eq!(delivered.load(Ordering::Relaxed), 10);
    assert_eq!(
        damaged.load(Ordering::Relaxed),
        0,
        "a refused frame was delivered"
    );
    assert_eq!(s.wrong_fingerprint, 3, "{s:?}");
    assert_eq!(s.undecodable, 3, "{s:?}");
    // The websocket library refuses the first oversized message before
    // buffering it, and the connection with it.
    assert_eq!(s.oversized, 1, "{s:?}");
    drop(sub);
    assert!(hostile.finish(DEADLINE));
}
