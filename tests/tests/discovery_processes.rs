//! Discovery between real processes on loopback: one announcing child,
//! three listening children (`shmidl-test-child disc-announce|disc-listen`).
//! Each test uses its own UDP port, so they run in parallel.
//!
//! Latencies are measured and printed (`--nocapture`), never asserted,
//! except the functional requirement that every listener sees the topic
//! within 1.5 announcement intervals of starting to listen.

use std::{process::Command, time::Duration};

use shmidl_tests::{free_udp_port, LineChild};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");
const DEADLINE: Duration = Duration::from_secs(20);

struct Net {
    port: String,
    transport: &'static str,
    interval_ms: u64,
}

impl Net {
    fn new(transport: &'static str, interval_ms: u64) -> Net {
        Net {
            port: free_udp_port().to_string(),
            transport,
            interval_ms,
        }
    }

    fn args(&self) -> Vec<String> {
        vec![
            self.port.clone(),
            self.transport.to_owned(),
            self.interval_ms.to_string(),
            "lo".to_owned(),
            "127.255.255.255".to_owned(),
        ]
    }

    fn announcer(&self, sender: &str, topic: &str) -> LineChild {
        let mut c = Command::new(CHILD);
        c.arg("disc-announce")
            .args(self.args())
            .args([sender, topic]);
        let mut child = LineChild::spawn(c);
        child
            .next_value("started_us", DEADLINE)
            .expect("the announcer starts");
        child
    }

    fn listener(&self) -> (LineChild, u128) {
        let mut c = Command::new(CHILD);
        c.arg("disc-listen").args(self.args());
        let mut child = LineChild::spawn(c);
        let at = child
            .next_value("listening_us", DEADLINE)
            .expect("the listener starts");
        (child, at.parse().unwrap())
    }
}

/// `appeared=<topic> <us> <fp>` → (topic, µs).
fn event(value: &str) -> (String, String, u128) {
    let parts: Vec<&str> = value.split(' ').collect();
    (
        parts[0].to_owned(),
        parts.get(1).copied().unwrap_or_default().to_owned(),
        parts.last().and_then(|s| s.parse().ok()).unwrap_or(0),
    )
}

fn appeared_us(value: &str) -> u128 {
    value
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap()
}

#[test]
fn three_listeners_see_a_sender_within_one_and_a_half_intervals_and_its_goodbye_at_once() {
    // The default interval: a listener that starts between two rounds
    // waits for the next one, up to one interval.
    let net = Net::new("both", 1000);
    let mut sender = net.announcer("random", "robot/joints");
    let mut listeners: Vec<(LineChild, u128)> = (0..3).map(|_| net.listener()).collect();
    for (i, (l, listening)) in listeners.iter_mut().enumerate() {
        let v = l
            .next_value("appeared", DEADLINE)
            .unwrap_or_else(|| panic!("listener {i} saw nothing: {:?}", l.unmatched()));
        assert!(v.starts_with("robot/joints "), "{v}");
        let latency_ms = (appeared_us(&v) - *listening) as f64 / 1000.0;
        eprintln!("listener {i}: topic seen {latency_ms:.1} ms after it started listening (interval 1000 ms)");
        assert!(
            latency_ms <= 1.5 * net.interval_ms as f64,
            "listener {i} took {latency_ms} ms"
        );
    }
    sender.stop();
    let stopping: u128 = sender
        .next_value("stopping_us", DEADLINE)
        .unwrap()
        .parse()
        .unwrap();
    for (i, (l, _)) in listeners.iter_mut().enumerate() {
        let v = l.next_value("gone", DEADLINE).expect("the topic leaves");
        let (topic, reason, at) = event(&v);
        assert_eq!(
            (topic.as_str(), reason.as_str()),
            ("robot/joints", "Goodbye")
        );
        eprintln!(
            "listener {i}: goodbye applied {:.1} ms after the sender was told to stop (lease 3000 ms)",
            (at - stopping) as f64 / 1000.0
        );
    }
    assert!(sender.finish(DEADLINE));
    for (l, _) in &mut listeners {
        assert!(l.finish(DEADLINE));
        assert_eq!(l.next_value("rejected", DEADLINE).as_deref(), Some("0"));
    }
}

#[test]
fn a_sigkilled_sender_disappears_after_its_lease() {
    let net = Net::new("multicast", 200);
    let mut sender = net.announcer("random", "camera/frames");
    let (mut listener, _) = net.listener();
    listener
        .next_value("appeared", DEADLINE)
        .expect("the topic appears");
    let killed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    sender.kill();
    let v = listener
        .next_value("gone", DEADLINE)
        .expect("the topic expires");
    let (topic, reason, at) = event(&v);
    assert_eq!(
        (topic.as_str(), reason.as_str()),
        ("camera/frames", "Expired")
    );
    eprintln!(
        "killed sender's topic expired {:.1} ms after SIGKILL (lease 600 ms)",
        (at - killed) as f64 / 1000.0
    );
}

#[test]
fn a_restarted_sender_is_seen_as_a_restart() {
    // A lease (3 s) far longer than a restart takes, so the old incarnation
    // is still known when the new one speaks, even on a loaded machine.
    let net = Net::new("broadcast", 1000);
    // A sender that keeps its id across restarts (DiscoveryConfig::sender_id).
    let id = format!(
        "{:016x}",
        0x5eed_0000_0000_0000u64 | u64::from(std::process::id())
    );
    let mut first = net.announcer(&id, "arm/state");
    let (mut listener, _) = net.listener();
    listener.next_value("appeared", DEADLINE).expect("first");
    let old_pid = first.id();
    first.kill();
    let second = net.announcer(&id, "arm/state");
    let v = listener
        .next_value("restarted", DEADLINE)
        .unwrap_or_else(|| panic!("no restart: {:?}", listener.unmatched()));
    let pids: Vec<u32> = v.split(' ').take(2).map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids, [old_pid, second.id()]);
    // The new incarnation's topic is there again.
    let v = listener.next_value("appeared", DEADLINE).expect("again");
    assert!(v.starts_with("arm/state "), "{v}");
}
