//! Bridges between shared memory and the network, with real processes on
//! loopback: two domains stand for two hosts, each with a bridge process
//! (`shmidl-test-child bridge`) forwarding the topic both ways. Messages
//! published in one domain reach every subscriber of the other, checked
//! and in order, and nothing is echoed back or ping-pongs.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use shmidl::{Join, Node, Subscriber, TopicConfig};
use shmidl_tests::{free_udp_port, unique_name, LineChild, Msg};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");
const DEADLINE: Duration = Duration::from_secs(60);
const TOPIC: &str = "bridge/msgs";

fn config() -> TopicConfig {
    TopicConfig {
        pool: 256,
        depth: 128,
        overflow: shmidl::SendMode::WaitIfFull(Duration::from_secs(20)),
        ..TopicConfig::default()
    }
}

/// A bridge child on loopback.
fn bridge(domain: &str, port: &str) -> LineChild {
    let mut c = Command::new(CHILD);
    c.args([
        "bridge",
        domain,
        TOPIC,
        port,
        "broadcast",
        "100",
        "lo",
        "127.255.255.255",
    ]);
    LineChild::spawn(c)
}

/// Receives `count` messages of `publisher` in order, checksums intact.
fn expect(sub: &mut Subscriber<Msg>, publisher: u64, count: u64) {
    for seq in 0..count {
        let m = sub
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("message {seq} of publisher {publisher}: {e}"));
        assert!(m.intact(), "a damaged message: {:?}", *m);
        assert_eq!((m.publisher, m.seq), (publisher, seq), "lost or reordered");
    }
}

/// [`expect`] on every subscriber at once (one thread each: a subscriber
/// left unread would fill its queue and hold the publishers back).
fn expect_all(subs: Vec<Subscriber<Msg>>, publisher: u64, count: u64) -> Vec<Subscriber<Msg>> {
    let threads: Vec<_> = subs
        .into_iter()
        .map(|mut sub| {
            std::thread::spawn(move || {
                expect(&mut sub, publisher, count);
                sub
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Nothing more arrives for a while.
fn quiet(sub: &mut Subscriber<Msg>) {
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        if let Some(m) = sub.try_recv().unwrap() {
            panic!("an extra message (an echo?): {:?}", *m);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn two_domains_bridged_both_ways_get_every_message_once() {
    let (a, b) = (unique_name("bridge-a"), unique_name("bridge-b"));
    let port = free_udp_port().to_string();
    exchange(&a, &b, || [bridge(&a, &port), bridge(&b, &port)]);
}

/// Host A is network namespace `a` (10.77.0.1) with domain A, host B is
/// namespace `b` (10.77.0.2) with domain B: each bridge process runs in its
/// namespace and reaches the other only through the veth pair. (Shared
/// memory is not namespaced: this test process plays every local publisher
/// and subscriber of both domains.)
#[test]
fn two_hosts_in_network_namespaces_bridge_both_ways() {
    let ns = match shmidl_tests::Namespaces::create() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("SKIPPED: bridging across network namespaces: cannot create them: {why}");
            return;
        }
    };
    let (a, b) = (unique_name("bridge-nsa"), unique_name("bridge-nsb"));
    let port = free_udp_port().to_string();
    let args = |domain: &str, dev: &str| -> Vec<String> {
        [
            "bridge",
            domain,
            TOPIC,
            &port,
            "broadcast",
            "100",
            dev,
            "10.77.0.255",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    exchange(&a, &b, || {
        let run = |name: &str, domain: &str, dev: &str| {
            let v = args(domain, dev);
            let v: Vec<&str> = v.iter().map(String::as_str).collect();
            ns.child(CHILD, name, &v)
        };
        [run(&ns.a, &a, &ns.veth_a), run(&ns.b, &b, &ns.veth_b)]
    });
}

/// Publishes in domain `a`, checks every subscriber of `b` (two) and `a`
/// (one), then the other way, with the bridges `start` makes.
fn exchange(a: &str, b: &str, start: impl FnOnce() -> [LineChild; 2]) {
    let node_a = Node::builder(a).open_or_create().unwrap();
    let node_b = Node::builder(b).open_or_create().unwrap();
    let mut pub_a = node_a.publisher::<Msg>(TOPIC, config()).unwrap();
    let sub_a = node_a.subscriber::<Msg>(TOPIC, Join::new()).unwrap();
    let pub_b = node_b.publisher::<Msg>(TOPIC, config()).unwrap();
    let mut subs_b: Vec<_> = (0..2)
        .map(|_| node_b.subscriber::<Msg>(TOPIC, Join::new()).unwrap())
        .collect();

    let mut bridges = start();
    for c in &mut bridges {
        assert_eq!(c.next_value("ready", DEADLINE).as_deref(), Some("1"));
    }

    // Host A → host B: both subscribers there get all of it.
    let n = 2_000;
    let sender = std::thread::spawn(move || {
        for seq in 0..n {
            let mut m = pub_a.loan_zeroed().unwrap();
            *m = Msg::new(1, seq);
            assert_eq!(pub_a.publish(m).unwrap(), 0);
        }
        pub_a
    });
    // A's own subscriber gets them locally, meanwhile.
    subs_b.push(sub_a);
    let mut subs = expect_all(subs_b, 1, n);
    let sub_a = subs.pop().unwrap();
    let mut subs_b = subs;
    let _pub_a = sender.join().unwrap();

    // Host B → host A, while the bridge of B must not send A's messages
    // back.
    let m = 500;
    let sender = std::thread::spawn(move || {
        let mut pub_b = pub_b;
        for seq in 0..m {
            let mut msg = pub_b.loan_zeroed().unwrap();
            *msg = Msg::new(2, seq);
            assert_eq!(pub_b.publish(msg).unwrap(), 0);
        }
        pub_b
    });
    subs_b.push(sub_a);
    let mut subs = expect_all(subs_b, 2, m);
    let mut sub_a = subs.pop().unwrap();
    let mut subs_b = subs;
    let _pub_b = sender.join().unwrap();
    quiet(&mut sub_a);
    for sub in &mut subs_b {
        quiet(sub);
    }

    // Each bridge sent its domain's own messages and skipped what it had
    // brought in: one hop each, no ping-pong.
    let mut totals = Vec::new();
    for c in &mut bridges {
        c.stop();
        let get = |c: &mut LineChild, k: &str| -> u64 {
            c.next_value(k, DEADLINE)
                .unwrap_or_else(|| panic!("no {k}"))
                .parse()
                .unwrap()
        };
        totals.push([
            get(c, "out_messages"),
            get(c, "out_skipped_own"),
            get(c, "in_messages"),
            get(c, "in_dropped"),
        ]);
    }
    // Let each bridge leave on its own (a killed one could still hold its
    // liveness lock when this process leaves, and the last live leaver
    // removes the topic's segment).
    for (name, c) in ["A", "B"].iter().zip(&mut bridges) {
        let unread = c.unmatched();
        assert!(
            c.finish(DEADLINE),
            "bridge {name} did not exit cleanly; it printed {unread:?}"
        );
    }
    eprintln!("bridge A [out, skipped, in, dropped] = {:?}", totals[0]);
    eprintln!("bridge B [out, skipped, in, dropped] = {:?}", totals[1]);
    assert_eq!(totals[0], [n, m, m, 0]);
    assert_eq!(totals[1], [m, n, n, 0]);
}
