//! The websocket transport between real processes on loopback: one
//! publisher to three subscribers, three publishers to one subscriber
//! (100,000 checksummed messages each, none lost under the waiting
//! policy), and a publisher process replaced by another. Publishers listen
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
