//! Discovery over real sockets on loopback, in one process: by broadcast
//! and by multicast, announcements reach several listeners, goodbye
//! removes at once, own packets are ignored when asked, and hostile
//! datagrams are counted, not applied.
#![cfg(feature = "net")]

use std::{
    net::UdpSocket,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use shmidl::net::{
    AnnouncedTopic, Announcer, Discovery, DiscoveryConfig, DiscoveryEvent, GoneReason, Role,
    Transport,
};

const INTERVAL: Duration = Duration::from_millis(200);
const DEADLINE: Duration = Duration::from_secs(10);

/// A port nobody uses right now (the kernel's pick for an ephemeral bind).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(transport: Transport) -> DiscoveryConfig {
    let mut c = DiscoveryConfig::on_port(free_port())
        .with_interval(INTERVAL)
        .with_transport(transport)
        .loopback();
    // Announcer and listeners share this process.
    c.ignore_own = false;
    c
}

fn topic(name: &str) -> AnnouncedTopic {
    AnnouncedTopic {
        name: name.into(),
        type_name: "demo.v1.Msg".into(),
        fingerprint: 0xfeed,
        role: Role::Publisher,
        ws_port: 9000,
        ws_path: format!("/{name}"),
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
    start.elapsed()
}

fn has(d: &Discovery, name: &str) -> bool {
    d.topics().iter().any(|t| t.topic.name == name)
}

fn three_listeners_see_it_and_goodbye_removes_it(transport: Transport) {
    let config = config(transport);
    let events = Arc::new(Mutex::new(Vec::new()));
    let listeners: Vec<Discovery> = (0..3)
        .map(|_| {
            let events = Arc::clone(&events);
            Discovery::builder(config.clone())
                .on_event(move |e| events.lock().unwrap().push(e.clone()))
                .start()
                .unwrap()
        })
        .collect();
    let sut = Announcer::start(config, vec![topic("a")]).unwrap();
    for l in &listeners {
        let took = wait_until("the topic", || has(l, "a"));
        eprintln!("{transport:?}: seen after {took:?}");
    }
    sut.add_topic(topic("b")).unwrap();
    for l in &listeners {
        wait_until("the added topic", || has(l, "b"));
    }
    assert!(sut.remove_topic("b"));
    for l in &listeners {
        wait_until("the withdrawal", || !has(l, "b"));
    }
    sut.shutdown();
    for l in &listeners {
        let took = wait_until("the goodbye", || l.topics().is_empty());
        eprintln!("{transport:?}: gone after {took:?}");
        assert_eq!(l.stats().rejected(), 0);
    }
    // Callbacks run just after the table changes: a and b, in each of
    // three listeners.
    let goodbyes = || {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    DiscoveryEvent::TopicGone {
                        reason: GoneReason::Goodbye,
                        ..
                    }
                )
            })
            .count()
    };
    wait_until("six goodbye events", || goodbyes() == 6);
    drop(listeners);
    assert_eq!(goodbyes(), 6, "{:#?}", events.lock().unwrap());
}

#[test]
fn broadcast_reaches_three_listeners_and_goodbye_removes_at_once() {
    three_listeners_see_it_and_goodbye_removes_it(Transport::Broadcast);
}

#[test]
fn multicast_reaches_three_listeners_and_goodbye_removes_at_once() {
    three_listeners_see_it_and_goodbye_removes_it(Transport::Multicast);
}

#[test]
fn own_packets_are_ignored_when_asked() {
    let mut config = config(Transport::Multicast);
    config.ignore_own = true;
    let listener = Discovery::start(config.clone()).unwrap();
    let sut = Announcer::start(config, vec![topic("mine")]).unwrap();
    wait_until("own packets", || listener.stats().own >= 2);
    assert!(listener.topics().is_empty());
    drop(sut);
}

#[test]
fn hostile_datagrams_are_counted_and_dropped() {
    let config = config(Transport::Broadcast);
    let listener = Discovery::start(config.clone()).unwrap();
    let mut events = listener.events();
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", config.port);
    raw.send_to(b"GET / HTTP/1.1\r\n", to).unwrap();
    raw.send_to(&[0u8; 3], to).unwrap();
    raw.send_to(&vec![0x53; 4000], to).unwrap();
    let mut future = shmidl::net::Packet {
        goodbye: false,
        sender_id: 7,
        sequence: 1,
        pid: 1,
        lease_ms: 1000,
        part: 0,
        parts: 1,
        host: "h".into(),
        topics: vec![topic("x")],
    }
    .encode()
    .unwrap();
    let good = future.clone();
    future[4] = 2;
    raw.send_to(&future, to).unwrap();
    raw.send_to(&good[..good.len() - 1], to).unwrap();
    raw.send_to(&good, to).unwrap();
    wait_until("the valid packet", || has(&listener, "x"));
    let s = listener.stats();
    assert_eq!(s.bad_magic, 1, "{s:?}");
    assert_eq!(s.too_short, 1, "{s:?}");
    assert_eq!(s.too_large, 1, "{s:?}");
    assert_eq!(s.unsupported_version, 1, "{s:?}");
    assert_eq!(s.length, 1, "{s:?}");
    assert_eq!(s.accepted, 1, "{s:?}");
    assert_eq!(listener.topics().len(), 1);
    // The async stream saw exactly the one topic appear.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let first = rt.block_on(async {
        tokio::time::timeout(DEADLINE, events.next_event())
            .await
            .ok()
            .flatten()
    });
    assert!(
        matches!(&first, Some(DiscoveryEvent::TopicAppeared(t)) if t.topic.name == "x"),
        "{first:?}"
    );
    assert!(events.try_next_event().is_none());
}

#[test]
fn a_flood_of_senders_stays_within_the_caps() {
    let mut config = config(Transport::Broadcast);
    config.max_peers = 32;
    config.max_topics = 48;
    let listener = Discovery::start(config.clone()).unwrap();
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", config.port);
    for id in 1..=2000u64 {
        let bytes = shmidl::net::Packet {
            goodbye: false,
            sender_id: id,
            sequence: 1,
            pid: id as u32,
            lease_ms: 60_000,
            part: 0,
            parts: 1,
            host: "flood".into(),
            topics: vec![topic("x"), topic("y")],
        }
        .encode()
        .unwrap();
        raw.send_to(&bytes, to).unwrap();
        if id % 100 == 0 {
            // Let the listener keep up rather than measure the socket buffer.
            wait_until("the listener to keep up", || {
                listener.stats().accepted >= id - 50
            });
        }
    }
    wait_until("most of the flood", || listener.stats().accepted >= 1900);
    // Then until nothing more arrives, so the counters and tables below
    // describe one moment.
    let mut last = 0;
    wait_until("the flood to end", || {
        std::thread::sleep(Duration::from_millis(100));
        let now = listener.stats().accepted;
        std::mem::replace(&mut last, now) == now
    });
    let s = listener.stats();
    assert!(listener.peers().len() <= 32);
    assert!(listener.topics().len() <= 48);
    assert_eq!(s.peers_evicted, s.accepted - listener.peers().len() as u64);
    assert!(s.topics_evicted > 0, "{s:?}");
    eprintln!(
        "flood: {} accepted, {} peers and {} topics kept, {} peers and {} topics evicted",
        s.accepted,
        listener.peers().len(),
        listener.topics().len(),
        s.peers_evicted,
        s.topics_evicted
    );
}

#[test]
fn a_watched_topic_with_another_fingerprint_is_a_mismatch_and_never_connectable() {
    let config = config(Transport::Multicast);
    let listener = Discovery::builder(config.clone())
        .watch("a", 0xbad)
        .start()
        .unwrap();
    let mut events = listener.events();
    let _sut = Announcer::start(config, vec![topic("a"), topic("b")]).unwrap();
    wait_until("both topics", || listener.topics().len() == 2);
    assert_eq!(
        listener
            .connectable_topics()
            .iter()
            .map(|t| t.topic.name.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    // Events are handed out just after the table changes: collect them
    // until the mismatch is there.
    let mut seen = Vec::new();
    wait_until("the mismatch event", || {
        while let Some(e) = events.try_next_event() {
            seen.push(e);
        }
        seen.iter().any(|e| matches!(e,
            DiscoveryEvent::FingerprintMismatch { entry, expected: 0xbad } if entry.topic.name == "a"))
    });
    assert!(
        !seen.iter().any(|e| matches!(e,
            DiscoveryEvent::TopicAppeared(t) if t.topic.name == "a")),
        "{seen:#?}"
    );
}

#[test]
fn two_hundred_topics_arrive_in_several_self_contained_packets() {
    let config = config(Transport::Broadcast);
    let listener = Discovery::start(config.clone()).unwrap();
    let topics: Vec<AnnouncedTopic> = (0..200)
        .map(|i| topic(&format!("fleet/robot_{i:03}/joint_states")))
        .collect();
    let sut = Announcer::start(config, topics.clone()).unwrap();
    wait_until("all 200 topics", || listener.topics().len() == 200);
    let mut names: Vec<String> = listener
        .topics()
        .into_iter()
        .map(|t| t.topic.name)
        .collect();
    names.sort();
    let mut expected: Vec<String> = topics.into_iter().map(|t| t.name).collect();
    expected.sort();
    assert_eq!(names, expected);
    // One round is several datagrams (counted once per destination).
    assert!(sut.packets_sent() > 1, "{}", sut.packets_sent());
}

#[test]
fn an_interface_given_by_address_works_for_both_transports() {
    for transport in [Transport::Broadcast, Transport::Multicast] {
        let mut config = config(transport);
        config.interface = shmidl::net::Interface::Address(std::net::Ipv4Addr::LOCALHOST);
        let listener = Discovery::start(config.clone()).unwrap();
        let sut = Announcer::start(config, vec![topic("by_address")]).unwrap();
        wait_until("the topic", || has(&listener, "by_address"));
        assert_eq!(sut.send_errors(), 0, "{transport:?}");
    }
}

#[test]
fn an_unknown_interface_is_a_typed_error() {
    let config =
        config(Transport::Both).with_interface(shmidl::net::Interface::Name("no-such-if0".into()));
    assert!(matches!(
        Discovery::start(config.clone()),
        Err(shmidl::net::NetError::Interface { .. })
    ));
    assert!(matches!(
        Announcer::start(config, vec![]),
        Err(shmidl::net::NetError::Interface { .. })
    ));
}

/// A listening socket of the announcements on `port`, beside the
/// listeners (address and port reuse), to capture what goes on the wire.
fn capture_socket(port: u16) -> UdpSocket {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_reuse_port(true).unwrap();
    s.bind(&std::net::SocketAddr::from(([0, 0, 0, 0], port)).into())
        .unwrap();
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

#[test]
fn with_a_secret_only_the_right_key_hears_and_replays_and_forgeries_are_refused() {
    use shmidl::net::{NetSecret, Packet};
    let secret = NetSecret::from_bytes(b"the deployment's shared secret").unwrap();
    let mut sealed = config(Transport::Broadcast);
    sealed.secret = Some(secret.clone());
    let capture = capture_socket(sealed.port);
    let right = Discovery::start(sealed.clone()).unwrap();
    let mut wrong_config = sealed.clone();
    wrong_config.secret = Some(NetSecret::from_bytes(b"a stranger's other secret").unwrap());
    let wrong = Discovery::start(wrong_config).unwrap();
    // A listener without a secret still reads sealed packets (the format is
    // public; only a receiver with the secret can check them).
    let mut open_config = sealed.clone();
    open_config.secret = None;
    let open = Discovery::start(open_config).unwrap();

    let announcer = Announcer::start(sealed.clone(), vec![topic("secure")]).unwrap();
    wait_until("the right key to see the topic", || has(&right, "secure"));
    wait_until("an open listener to see the topic", || has(&open, "secure"));
    wait_until("the wrong key to refuse a round", || {
        wrong.stats().bad_tag >= 2
    });
    assert!(!has(&wrong, "secure"));

    // Capture a sealed announcement, let the sender move on, replay it.
    let mut buf = [0u8; 2048];
    let captured = loop {
        let (n, _) = capture.recv_from(&mut buf).unwrap();
        if Packet::parse(&buf[..n]).is_ok_and(|p| !p.goodbye) && Packet::is_sealed(&buf[..n]) {
            break buf[..n].to_vec();
        }
    };
    let before = right.stats();
    wait_until("a newer round", || right.stats().accepted > before.accepted);
    // Unicast to a port several sockets share reaches only one of them:
    // send what every listener must see by broadcast, as announcers do.
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.set_broadcast(true).unwrap();
    let to = (sealed.broadcast_address, sealed.port);
    raw.send_to(&captured, to).unwrap();
    wait_until("the replay to be refused", || right.stats().replayed >= 1);

    // A forgery: the captured packet with another websocket port (its tag
    // no longer matches), and an unsealed announcement of its own.
    let port_at = captured.len() - shmidl::net::TRAILER_LEN - 1 - "/secure".len() - 2;
    assert_eq!(
        u16::from_le_bytes([captured[port_at], captured[port_at + 1]]),
        9000
    );
    let mut forged = captured.clone();
    forged[port_at..port_at + 2].copy_from_slice(&6666u16.to_le_bytes());
    raw.send_to(&forged, to).unwrap();
    let unsealed = Packet {
        goodbye: false,
        sender_id: 99,
        sequence: 1,
        pid: 1,
        lease_ms: 60_000,
        part: 0,
        parts: 1,
        host: "mallory".into(),
        topics: vec![topic("secure").with_websocket(6666, "/secure")],
    }
    .encode()
    .unwrap();
    raw.send_to(&unsealed, to).unwrap();
    wait_until("both forgeries to be refused", || {
        let s = right.stats();
        s.bad_tag >= 1 && s.unauthenticated >= 1
    });
    let ports: Vec<u16> = right
        .topics()
        .iter()
        .filter(|t| t.topic.name == "secure")
        .map(|t| t.topic.ws_port)
        .collect();
    assert_eq!(ports, [9000], "only the real announcement is known");
    drop(announcer);
}
