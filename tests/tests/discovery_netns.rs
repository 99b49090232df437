//! Discovery between two network namespaces joined by a veth pair, created
//! here: by IPv4 broadcast alone, by IPv4 multicast alone and by IPv6
//! multicast alone, a listener in one namespace sees the topic a sender in
//! the other announces, and its goodbye. Needs root and `ip` (iproute2); where namespaces cannot be
//! made, each test prints why and passes without running.
//!
//! Addresses are only the namespaces' own: 10.77.0.1/24 and 10.77.0.2/24
//! on the veth pair, and its IPv6 link-local ones. The namespaces (named with this process's pid) are
//! deleted when the test ends, also when it fails.

use std::time::Duration;

use shmidl_tests::{free_udp_port, Namespaces};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");
const DEADLINE: Duration = Duration::from_secs(20);

fn across_namespaces(transport: &str) {
    let ns = match Namespaces::create() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("SKIPPED: discovery across network namespaces ({transport}): cannot create namespaces: {why}");
            return;
        }
    };
    let port = free_udp_port().to_string();
    let config = |dev: &str| -> Vec<String> {
        [port.as_str(), transport, "200", dev, "255.255.255.255"]
            .map(str::to_owned)
            .to_vec()
    };
    let listen_args = [vec!["disc-listen".to_owned()], config(&ns.veth_b)].concat();
    let listen_args: Vec<&str> = listen_args.iter().map(String::as_str).collect();
    let mut listener = ns.child(CHILD, &ns.b, &listen_args);
    listener
        .next_value("listening_us", DEADLINE)
        .expect("the listener starts");
    let announce_args = [
        vec!["disc-announce".to_owned()],
        config(&ns.veth_a),
        vec!["random".to_owned(), "lidar/points".to_owned()],
    ]
    .concat();
    let announce_args: Vec<&str> = announce_args.iter().map(String::as_str).collect();
    let mut sender = ns.child(CHILD, &ns.a, &announce_args);
    let started: u128 = sender
        .next_value("started_us", DEADLINE)
        .expect("the sender starts")
        .parse()
        .unwrap();
    let v = listener
        .next_value("appeared", DEADLINE)
        .unwrap_or_else(|| panic!("{transport}: nothing seen: {:?}", listener.unmatched()));
    assert!(v.starts_with("lidar/points "), "{v}");
    let at: u128 = v.split(' ').nth(1).unwrap().parse().unwrap();
    eprintln!(
        "{transport} across namespaces: seen {:.1} ms after the sender started",
        at.saturating_sub(started) as f64 / 1000.0
    );
    sender.stop();
    let v = listener.next_value("gone", DEADLINE).expect("the goodbye");
    assert!(v.starts_with("lidar/points Goodbye "), "{v}");
    assert!(sender.finish(DEADLINE));
    assert!(listener.finish(DEADLINE));
    assert_eq!(
        listener.next_value("rejected", DEADLINE).as_deref(),
        Some("0")
    );
}

#[test]
fn broadcast_alone_crosses_a_veth_pair_between_namespaces() {
    across_namespaces("broadcast");
}

#[test]
fn multicast_alone_crosses_a_veth_pair_between_namespaces() {
    across_namespaces("multicast");
}

#[test]
fn ipv6_multicast_alone_crosses_a_veth_pair_between_namespaces() {
    across_namespaces("multicast6");
}
