//! The websocket examples: `net_publisher` to `net_subscriber` through
//! discovery, and a third-party client, Python's `websockets` package with
//! a decoder written from `docs/wire-format.md` alone
//! (`tests/python/ws_client.py`), reading discovery packets and frames.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use shmidl::ShmSafe;
use shmidl_examples::quickstart::Tick;

const DEADLINE: Duration = Duration::from_secs(60);

fn free_udp_port() -> String {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port().to_string())
        .unwrap()
}

/// Waits for `child` before the deadline (killing it after); its output.
fn finish(mut child: Child, what: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn publisher(port: &str, count: &str, subscribers: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_net_publisher"))
        .args(["--interface", "lo", "--discovery-port", port, "--rate", "0"])
        .args(["--count", count, "--subscribers", subscribers])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn net_publisher_reaches_net_subscriber_through_discovery() {
    let port = free_udp_port();
    let subscriber = Command::new(env!("CARGO_BIN_EXE_net_subscriber"))
        .args(["--interface", "lo", "--discovery-port", &port])
        .args(["--count", "5000", "--print-every", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let publisher = publisher(&port, "5000", "1");
    let out = finish(publisher, "net_publisher");
    assert!(out.contains("sent 5000 ticks to 1 connection(s)"), "{out}");
    let out = finish(subscriber, "net_subscriber");
    assert!(
        out.contains("5000 ticks") && out.contains("0 corrupt, 0 missed"),
        "{out}"
    );
}

#[test]
fn a_python_websockets_client_decodes_discovery_and_frames_from_the_docs() {
    let python = Command::new("python3")
        .args(["-c", "import websockets.asyncio.client"])
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        // .ci/run installs it (`python3 -m pip install websockets`).
        eprintln!("SKIPPED: python3 with the `websockets` package is not available here");
        return;
    }
    let port = free_udp_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/ws_client.py");
    let mut client = Command::new("python3")
        .args([script, &port, "quickstart/ticks"])
        .arg(format!("{:x}", Tick::FINGERPRINT))
        .arg("2000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = client.stdout.take().unwrap();
    let publisher = publisher(&port, "2000", "1");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .collect();
    let out = finish(publisher, "net_publisher");
    let _ = finish(client, "ws_client.py");
    let origin = lines.iter().find_map(|l| l.strip_prefix("origin="));
    assert!(
        lines.iter().any(|l| l == "decoded=2000"),
        "{lines:?} / {out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("announced=quickstart.Tick")),
        "{lines:?}"
    );
    assert!(origin.is_some(), "{lines:?}");
}
