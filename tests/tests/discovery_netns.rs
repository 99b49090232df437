//! Discovery between two network namespaces joined by a veth pair, created
//! here: by IPv4 broadcast alone, by IPv4 multicast alone and by IPv6
//! multicast alone, a listener in one namespace sees the topic a sender in
//! the other announces, and its goodbye. Needs root and `ip` (iproute2); where namespaces cannot be
//! made, each test prints why and passes without running.
//!
//! Addresses are only the namespaces' own: 10.77.0.1/24 and 10.77.0.2/24
//! on the veth pair, and its IPv6 link-local ones. The namespaces (named with this process's pid) are
//! deleted when the test ends, also when it fails.

use std::{
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use shmidl_tests::{free_udp_port, LineChild};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");
const DEADLINE: Duration = Duration::from_secs(20);

/// Two namespaces and the veth pair between them; deleted on drop.
struct Namespaces {
    a: String,
    b: String,
    veth_a: String,
    veth_b: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Namespaces {
    /// Creates `shmidl-<pid>-<n>-a`/`-b` joined by `shv<pid>x<n>a`/`…b`,
    /// both ends up with their address; `Err` says why not.
    fn create() -> Result<Namespaces, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        if !rustix::process::geteuid().is_root() {
            return Err("not root".into());
        }
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let sut = Namespaces {
            a: format!("shmidl-{pid}-{n}-a"),
            b: format!("shmidl-{pid}-{n}-b"),
            // At most 15 bytes: "shv" + up to 7 digits + "x" + n + "a".
            veth_a: format!("shv{}x{n}a", pid % 10_000_000),
            veth_b: format!("shv{}x{n}b", pid % 10_000_000),
        };
        // From here on, drop cleans up whatever was made.
        ip(&["netns", "add", &sut.a])?;
        ip(&["netns", "add", &sut.b])?;
        ip(&[
            "link",
            "add",
            &sut.veth_a,
            "type",
            "veth",
            "peer",
            "name",
            &sut.veth_b,
        ])?;
        ip(&["link", "set", &sut.veth_a, "netns", &sut.a])?;
        ip(&["link", "set", &sut.veth_b, "netns", &sut.b])?;
        for (ns, dev, addr) in [
            (&sut.a, &sut.veth_a, "10.77.0.1/24"),
            (&sut.b, &sut.veth_b, "10.77.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            // No duplicate address detection: the link-local IPv6 address
            // is usable at once (else ~1 s later; the test would only wait).
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-qw"])
                .arg(format!("net.ipv6.conf.{dev}.accept_dad=0"))
                .status();
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(sut)
    }

    fn child(&self, ns: &str, args: &[&str]) -> LineChild {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, CHILD]).args(args);
        LineChild::spawn(c)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and so the pair.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
        let _ = ip(&["link", "del", &self.veth_a]);
    }
}

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
    let mut listener = ns.child(&ns.b, &listen_args);
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
    let mut sender = ns.child(&ns.a, &announce_args);
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
