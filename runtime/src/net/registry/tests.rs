use std::net::{Ipv4Addr, SocketAddr};

use super::*;

const SECOND: Duration = Duration::from_secs(1);

fn src() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 7447).into()
}

fn topic(name: &str, fp: u64) -> AnnouncedTopic {
    AnnouncedTopic {
        name: name.into(),
        type_name: "demo.v1.T".into(),
        fingerprint: fp,
        role: Role::Publisher,
        ws_port: 9000,
        ws_path: format!("/{name}"),
    }
}

fn packet(sender: u64, seq: u64, topics: Vec<AnnouncedTopic>) -> Packet {
    Packet {
        goodbye: false,
        sender_id: sender,
        sequence: seq,
        pid: 100,
        lease_ms: 3000,
        part: 0,
        parts: 1,
        host: "h".into(),
        topics,
    }
}

fn names(events: &[DiscoveryEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            DiscoveryEvent::TopicAppeared(t) => format!("appeared {}", t.topic.name),
            DiscoveryEvent::TopicChanged { new, .. } => format!("changed {}", new.topic.name),
            DiscoveryEvent::TopicGone { entry, reason } => {
                format!("gone {} {reason:?}", entry.topic.name)
            }
            DiscoveryEvent::PeerRestarted { .. } => "restarted".into(),
            DiscoveryEvent::FingerprintMismatch { entry, .. } => {
                format!("mismatch {}", entry.topic.name)
            }
        })
        .collect()
}

#[test]
fn an_announcement_adds_topics_once_and_refreshes_them() {
    let mut sut = Registry::new(8, 8);
    let t0 = Instant::now();
    let ev = sut.handle(packet(1, 1, vec![topic("a", 1), topic("b", 2)]), src(), t0);
    assert_eq!(names(&ev), ["appeared a", "appeared b"]);
    let ev = sut.handle(
        packet(1, 2, vec![topic("a", 1), topic("b", 2)]),
        src(),
        t0 + SECOND,
    );
    assert!(ev.is_empty());
    assert_eq!(sut.topics().len(), 2);
    assert_eq!(sut.topics()[0].expires, t0 + SECOND + 3 * SECOND);
    assert_eq!(sut.peers()[0].rounds, 2);
    assert_eq!(
        sut.topics()[0].endpoint().as_deref(),
        Some("127.0.0.1:9000/a")
    );
    assert!((sut.peers()[0].rate_hz() - 1.0).abs() < 1e-9);
}

#[test]
fn a_changed_endpoint_is_a_change() {
    let mut sut = Registry::new(8, 8);
    let t0 = Instant::now();
    sut.handle(packet(1, 1, vec![topic("a", 1)]), src(), t0);
    let moved = topic("a", 1).with_websocket(9999, "/moved");
    let ev = sut.handle(packet(1, 2, vec![moved]), src(), t0);
    assert_eq!(names(&ev), ["changed a"]);
}

#[test]
fn goodbye_removes_at_once_and_withdrawal_removes_only_the_listed() {
    let mut sut = Registry::new(8, 8);
    let t0 = Instant::now();
    sut.handle(packet(1, 1, vec![topic("a", 1), topic("b", 2)]), src(), t0);
    let withdraw = Packet {
        goodbye: true,
        ..packet(1, 2, vec![topic("a", 1)])
    };
    assert_eq!(names(&sut.handle(withdraw, src(), t0)), ["gone a Goodbye"]);
    let bye = Packet {
        goodbye: true,
        ..packet(1, 3, vec![])
    };
    assert_eq!(
        names(&sut.handle(bye.clone(), src(), t0)),
        ["gone b Goodbye"]
    );
    assert!(sut.topics().is_empty() && sut.peers().is_empty());
    assert!(sut.handle(bye, src(), t0).is_empty());
    assert_eq!(sut.stats().unknown_goodbyes, 1);
}

#[test]
fn topics_expire_after_their_lease() {
    let mut sut = Registry::new(8, 8);
    let t0 = Instant::now();
    sut.handle(packet(1, 1, vec![topic("a", 1)]), src(), t0);
    assert!(sut.expire(t0 + 2 * SECOND).is_empty());
    assert_eq!(sut.next_expiry(), Some(t0 + 3 * SECOND));
    assert_eq!(names(&sut.expire(t0 + 3 * SECOND)), ["gone a Expired"]);
    assert!(sut.peers().is_empty());
}

#[test]
fn a_new_pid_or_a_sequence_reset_is_a_restart() {
    let mut sut = Registry::new(8, 8);
    let t0 = Instant::now();
    sut.handle(packet(1, 100, vec![topic("a", 1)]), src(), t0);
    // Reordered by a little: stale, ignored.
    assert!(sut
        .handle(packet(1, 97, vec![topic("a", 1)]), src(), t0)
        .is_empty());
    assert_eq!(sut.stats().stale, 1);
    // Back to the start: the announcer started over.
    let ev = sut.handle(packet(1, 1, vec![topic("a", 1)]), src(), t0);
    assert_eq!(names(&ev), ["restarted", "gone a Restarted", "appeared a"]);
    let other_pid = Packet {
        pid: 101,
        ..packet(1, 2, vec![topic("a", 1)])
    };
    let ev = sut.handle(other_pid, src(), t0);
    assert_eq!(names(&ev), ["restarted", "gone a Restarted", "appeared a"]);
    assert_eq!(sut.peers()[0].pid, 101);
}

#[test]
fn a_watched_topic_with_another_fingerprint_is_never_connectable() {
    let mut sut = Registry::new(8, 8);
    sut.watch("a", 1);
    let t0 = Instant::now();
    let ev = sut.handle(packet(1, 1, vec![topic("a", 2), topic("b", 2)]), src(), t0);
    assert_eq!(names(&ev), ["mismatch a", "appeared b"]);
    let a = &sut.topics()[0];
    assert!(!a.is_connectable());
    assert_eq!(a.expected_fingerprint, Some(1));
    // Watching later reports what is already known.
    assert_eq!(names(&sut.watch("b", 7)), ["mismatch b"]);
    // A fix to the expected fingerprint is a change, and connectable.
    let ev = sut.handle(packet(1, 2, vec![topic("a", 1)]), src(), t0);
    assert_eq!(names(&ev), ["changed a"]);
    assert!(sut.topics()[0].is_connectable());
}

#[test]
fn a_flood_of_senders_stays_within_the_caps() {
    let mut sut = Registry::new(16, 40);
    let t0 = Instant::now();
    for id in 0..10_000u64 {
        let now = t0 + Duration::from_millis(id);
        sut.handle(
            packet(id + 1, 1, vec![topic("x", 1), topic("y", 1)]),
            src(),
            now,
        );
        assert!(sut.peers().len() <= 16);
        assert!(sut.topic_count() <= 40);
        sut.check();
    }
    assert_eq!(sut.topics().len(), sut.topic_count());
    assert_eq!(sut.stats().peers_evicted, 10_000 - 16);
    // The newest survive.
    assert!(sut.peers().iter().all(|p| p.sender_id > 10_000 - 16));
}

#[test]
fn malformed_datagrams_are_counted_per_reason_and_change_nothing() {
    let mut sut = Registry::new(8, 8);
    let t0 = Instant::now();
    let good = packet(1, 1, vec![topic("a", 1)]).encode().unwrap();
    let mut foreign = good.clone();
    foreign[0] = b'X';
    let mut future = good.clone();
    future[4] = 9;
    for bad in [&good[..20], &foreign[..], &future[..], &[0u8; 1500][..]] {
        assert!(sut.handle_datagram(bad, src(), t0).is_empty());
    }
    let s = sut.stats();
    assert_eq!(
        (s.too_short, s.bad_magic, s.unsupported_version, s.too_large),
        (1, 1, 1, 1)
    );
    assert_eq!(s.rejected(), 4);
    assert!(sut.topics().is_empty() && sut.peers().is_empty());
    assert_eq!(
        names(&sut.handle_datagram(&good, src(), t0)),
        ["appeared a"]
    );
}

#[test]
fn a_flood_at_the_default_caps_stays_bounded() {
    // The default topic cap, with room for more peers than its topics
    // fill, so each of 5,000 invented senders' 16 topics evicts the least
    // recently seen topic (and every 1,024th sender a peer). Prints the
    // cost per packet: it does not grow with the table.
    let mut sut = Registry::new(1024, crate::net::DEFAULT_MAX_TOPICS);
    let t0 = Instant::now();
    let topics: Vec<AnnouncedTopic> = (0..16).map(|i| topic(&format!("t{i}"), 1)).collect();
    let start = Instant::now();
    for id in 0..5_000u64 {
        let now = t0 + Duration::from_micros(id);
        sut.handle(packet(id + 1, 1, topics.clone()), src(), now);
    }
    eprintln!(
        "flood at the default topic cap: {:.1} µs per 16-topic packet",
        start.elapsed().as_secs_f64() * 1e6 / 5_000.0
    );
    assert!(sut.peers().len() <= 1024);
    assert_eq!(sut.topic_count(), crate::net::DEFAULT_MAX_TOPICS);
    assert!(sut.stats().topics_evicted > 0);
    assert_eq!(sut.topics().len(), sut.topic_count());
    sut.check();
}

#[test]
fn a_peer_keeps_its_first_ipv4_source() {
    let mut sut = Registry::new(8, 8);
    let t0 = Instant::now();
    let v6: SocketAddr = "[fe80::1]:7447".parse().unwrap();
    let first: SocketAddr = "10.0.0.1:7447".parse().unwrap();
    let other: SocketAddr = "10.0.0.2:7447".parse().unwrap();
    sut.handle(packet(1, 1, vec![topic("a", 1)]), v6, t0);
    assert_eq!(sut.peers()[0].source, v6);
    sut.handle(packet(1, 1, vec![topic("a", 1)]), first, t0);
    assert_eq!(sut.peers()[0].source, first);
    sut.handle(packet(1, 2, vec![topic("a", 1)]), other, t0);
    sut.handle(packet(1, 3, vec![topic("a", 1)]), v6, t0);
    assert_eq!(sut.peers()[0].source, first);
    assert_eq!(
        sut.topics()[0].endpoint().as_deref(),
        Some("10.0.0.1:9000/a")
    );
}
