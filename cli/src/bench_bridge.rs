//! `shmidl bench bridge`: end-to-end one-way latency and throughput of
//! shared memory → bridge → websocket → bridge → shared memory on loopback,
//! against the plain websocket path, in the same run.
//!
//! - **websocket, one process**: a `TypedNetPublisher` and a
//!   `NetSubscriber` of this process, over a loopback connection (they
//!   share one runtime).
//! - **websocket, two processes**: the same publisher in this process, the
//!   subscriber in a `shmidl bench-peer ws-sink` process, as an application
//!   using the websocket transport directly is deployed. The peer reads
//!   the monotonic clock (one clock for every process of the host) when its
//!   callback gets a message and reports it on a pipe, which also paces the
//!   next message (the pipe is outside the timed interval).
//! - **bridge**: this process publishes on topic `bench/bridge` of domain
//!   A and receives it on domain B; two `shmidl bench-peer bridge`
//!   processes bridge the topic both ways, one per domain, found by
//!   discovery on loopback.
//!
//! Latency is one message at a time (the next leaves when the previous
//! arrived), one-way, timed in this process with one clock. Throughput is
//! a stream under the waiting policies. The target: the bridge adds at most
//! 20 % to the websocket's latency at 64 B; the ratio is given against both
//! websocket baselines, the two-process one being what a bridge replaces.

#![allow(clippy::print_stdout)]

use std::{
    net::SocketAddr,
    process::{Child, ExitCode},
    sync::{mpsc, Mutex},
    time::{Duration, Instant},
};

use crate::bench::monotonic_ns;
use shmidl::{
    net::{
        Bridge, DiscoveryConfig, NetPublisher, NetSubscriber, SlowPolicy, Transport,
        TypedNetPublisher,
    },
    Join, Node, SendMode, ShmMessage, ShmSafe, TopicConfig,
};

const TOPIC: &str = "bench/bridge";
const DEADLINE: Duration = Duration::from_secs(60);

/// The 64-byte message of both paths.
#[derive(ShmMessage, Clone, Copy, Debug, Default)]
#[repr(C)]
#[shm(name = "shmidl.bench.Probe")]
pub struct Probe {
    seq: u64,
    pad: [u64; 7],
}

/// Options of `shmidl bench bridge`.
pub struct Options {
    /// One-at-a-time messages for latency.
    pub iterations: u32,
    /// Messages in the throughput stream.
    pub stream: u64,
    /// Print JSON instead of a table.
    pub json: bool,
}

fn topic_config() -> TopicConfig {
    TopicConfig {
        pool: 256,
        depth: 128,
        overflow: SendMode::WaitIfFull(DEADLINE),
        ..TopicConfig::default()
    }
}

fn discovery(port: u16) -> DiscoveryConfig {
    DiscoveryConfig::on_port(port)
        .loopback()
        .with_transport(Transport::Broadcast)
        .with_interval(Duration::from_millis(100))
}

/// Runs the three paths and prints the figures.
pub fn run(opts: &Options) -> ExitCode {
    match (
        websocket(opts),
        websocket_two_processes(opts),
        bridged(opts),
    ) {
        (Ok(ws), Ok(ws2), Ok(br)) => {
            let ratio = br.0 as f64 / ws.0.max(1) as f64;
            let ratio2 = br.0 as f64 / ws2.0.max(1) as f64;
            if opts.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "websocket": {"p50_ns": ws.0, "p99_ns": ws.1, "messages_per_s": ws.2},
                        "websocket_two_processes":
                            {"p50_ns": ws2.0, "p99_ns": ws2.1, "messages_per_s": ws2.2},
                        "bridge": {"p50_ns": br.0, "p99_ns": br.1, "messages_per_s": br.2},
                        "p50_ratio": ratio,
                        "p50_ratio_two_processes": ratio2,
                    })
                );
            } else {
                println!(
                    "{:<34} {:>10} {:>10} {:>14}",
                    "64 B, one-way", "p50 ns", "p99 ns", "messages/s"
                );
                for (name, (p50, p99, rate)) in [
                    ("websocket, one process", ws),
                    ("websocket, two processes", ws2),
                    ("shm → bridge → ws → bridge → shm", br),
                ] {
                    println!("{name:<34} {p50:>10} {p99:>10} {rate:>14.0}");
                }
                println!(
                    "bridge p50 / websocket p50: {ratio2:.2}x against two processes, \
                     {ratio:.2}x against one (target ≤ 1.20x)"
                );
            }
            ExitCode::SUCCESS
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("shmidl bench bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A waiting-policy publisher of [`Probe`]s on a free loopback port: the
/// sending side of both websocket baselines.
fn loopback_publisher() -> Result<TypedNetPublisher<Probe>, String> {
    NetPublisher::builder(TOPIC)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .slow_policy(SlowPolicy::Wait(DEADLINE))
        .start::<Probe>()
        .map_err(|e| e.to_string())
}

/// (p50, p99, messages/s) of the websocket between this process and a
/// `ws-sink` peer process.
fn websocket_two_processes(opts: &Options) -> Result<(u64, u64, f64), String> {
    use std::io::BufRead as _;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let publisher = loopback_publisher()?;
    let iterations = u64::from(opts.iterations);
    let total = iterations + opts.stream;
    let exe = std::env::current_exe().map_err(|x| e(&x))?;
    let mut peer = std::process::Command::new(exe)
        .args(["bench-peer", "ws-sink", &publisher.url()])
        .args([iterations.to_string(), total.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|x| e(&x))?;
    let mut lines = std::io::BufReader::new(peer.stdout.take().ok_or("no peer stdout")?).lines();
    let mut arrival = |want: u64| -> Result<u64, String> {
        let line = lines
            .next()
            .ok_or("the ws-sink peer ended early")?
            .map_err(|x| e(&x))?;
        let (seq, at) = line
            .split_once(' ')
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
            .ok_or_else(|| format!("ws-sink peer: {line:?}"))?;
        if seq != want {
            return Err(format!(
                "websocket (two processes): {seq} arrived instead of {want}"
            ));
        }
        Ok(at)
    };
    if !publisher.wait_for_connections(1, DEADLINE) {
        let _ = peer.kill();
        return Err("the ws-sink peer did not connect".into());
    }
    let mut lat = Vec::with_capacity(opts.iterations as usize);
    for seq in 0..iterations {
        let start = monotonic_ns();
        publisher
            .send(&Probe {
                seq,
                ..Probe::default()
            })
            .map_err(|x| e(&x))?;
        lat.push(arrival(seq)?.saturating_sub(start));
    }
    let start = monotonic_ns();
    for seq in iterations..total {
        publisher
            .send(&Probe {
                seq,
                ..Probe::default()
            })
            .map_err(|x| e(&x))?;
    }
    let last = arrival(total - 1)?;
    let rate = opts.stream as f64 / (last.saturating_sub(start).max(1) as f64 / 1e9);
    finish(peer)?;
    let (p50, p99) = percentiles(lat);
    Ok((p50, p99, rate))
}

/// `shmidl bench-peer ws-sink <url> <iterations> <total>`: receives Probes
/// from `url`; prints `seq monotonic_ns` for each of the first
/// `iterations` and for the last of `total`, then exits.
pub fn ws_sink(url: &str, iterations: &str, total: &str) -> Result<(), String> {
    use std::io::Write as _;
    let num = |s: &str| s.parse::<u64>().map_err(|_| format!("bad number {s:?}"));
    let (iterations, total) = (num(iterations)?, num(total)?);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let out = Mutex::new(std::io::stdout());
    let _subscriber = NetSubscriber::typed::<Probe>()
        .endpoint(url)
        .on_message(move |d| {
            let seq = d.message.seq;
            if seq < iterations || seq + 1 == total {
                let at = monotonic_ns();
                let mut out = out
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = writeln!(out, "{seq} {at}");
                let _ = out.flush();
            }
            if seq + 1 == total {
                let _ = tx
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .send(());
            }
        })
        .start()
        .map_err(|e| e.to_string())?;
    rx.recv_timeout(DEADLINE)
        .map_err(|_| "ws-sink: the last message did not come".to_owned())
}

fn percentiles(mut v: Vec<u64>) -> (u64, u64) {
    v.sort_unstable();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.99))
}

/// (p50, p99, messages/s) of the plain websocket path.
fn websocket(opts: &Options) -> Result<(u64, u64, f64), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let publisher = loopback_publisher()?;
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let _subscriber = NetSubscriber::typed::<Probe>()
        .endpoint(&publisher.url())
        .on_message(move |d| {
            let _ = tx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .send((d.message.seq, Instant::now()));
        })
        .start()
        .map_err(|x| e(&x))?;
    if !publisher.wait_for_connections(1, DEADLINE) {
        return Err("the websocket subscriber did not connect".into());
    }
    let mut lat = Vec::with_capacity(opts.iterations as usize);
    for seq in 0..u64::from(opts.iterations) {
        let start = Instant::now();
        publisher
            .send(&Probe {
                seq,
                ..Probe::default()
            })
            .map_err(|x| e(&x))?;
        let (got, at) = rx.recv_timeout(DEADLINE).map_err(|x| e(&x))?;
        if got != seq {
            return Err(format!("websocket: {got} arrived instead of {seq}"));
        }
        lat.push(at.duration_since(start).as_nanos() as u64);
    }
    let start = Instant::now();
    let base = u64::from(opts.iterations);
    for seq in base..base + opts.stream {
        publisher
            .send(&Probe {
                seq,
                ..Probe::default()
            })
            .map_err(|x| e(&x))?;
    }
    let mut last = 0;
    while last + 1 < base + opts.stream {
        last = rx.recv_timeout(DEADLINE).map_err(|x| e(&x))?.0;
    }
    let rate = opts.stream as f64 / start.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(lat);
    Ok((p50, p99, rate))
}

/// (p50, p99, messages/s) through two bridge processes.
fn bridged(opts: &Options) -> Result<(u64, u64, f64), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let pid = std::process::id();
    let (a, b) = (
        format!("bench-bridge-a-{pid}"),
        format!("bench-bridge-b-{pid}"),
    );
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_err(|x| e(&x))?
        .port()
        .to_string();
    let node_a = Node::builder(&a).open_or_create().map_err(|x| e(&x))?;
    let node_b = Node::builder(&b).open_or_create().map_err(|x| e(&x))?;
    let mut publisher = node_a
        .publisher::<Probe>(TOPIC, topic_config())
        .map_err(|x| e(&x))?;
    let _b_topic = node_b
        .router::<Probe>(TOPIC, topic_config())
        .map_err(|x| e(&x))?;
    let mut subscriber = node_b
        .subscriber::<Probe>(TOPIC, Join::new())
        .map_err(|x| e(&x))?;
    let mut peers = Vec::new();
    for domain in [&a, &b] {
        peers.push(spawn(&["bridge", domain, &port])?);
    }
    // Ready when a probe goes through.
    let deadline = Instant::now() + DEADLINE;
    let mut seq = 0;
    loop {
        let mut m = publisher.loan_zeroed().map_err(|x| e(&x))?;
        m.seq = u64::MAX;
        publisher.publish(m).map_err(|x| e(&x))?;
        if subscriber
            .recv_timeout(Duration::from_millis(200))
            .is_ok_and(|m| m.seq == u64::MAX)
        {
            break;
        }
        if Instant::now() > deadline {
            return Err("the bridges did not connect".into());
        }
    }
    // Drain the extra probes sent while connecting.
    while subscriber.recv_timeout(Duration::from_millis(300)).is_ok() {}
    let mut lat = Vec::with_capacity(opts.iterations as usize);
    for _ in 0..opts.iterations {
        let start = Instant::now();
        let mut m = publisher.loan_zeroed().map_err(|x| e(&x))?;
        m.seq = seq;
        publisher.publish(m).map_err(|x| e(&x))?;
        let got = subscriber.recv_timeout(DEADLINE).map_err(|x| e(&x))?;
        let took = start.elapsed();
        if got.seq != seq {
            return Err(format!("bridge: {} arrived instead of {seq}", got.seq));
        }
        lat.push(took.as_nanos() as u64);
        seq += 1;
    }
    let start = Instant::now();
    let first = seq;
    let total = opts.stream;
    let sender = std::thread::spawn(move || -> Result<(), String> {
        for s in first..first + total {
            let mut m = publisher.loan_zeroed().map_err(|x| x.to_string())?;
            m.seq = s;
            publisher.publish(m).map_err(|x| x.to_string())?;
        }
        Ok(())
    });
    let mut received = 0u64;
    while received < total {
        let got = subscriber.recv_timeout(DEADLINE).map_err(|x| e(&x))?;
        if got.seq != first + received {
            return Err(format!(
                "bridge stream: {} arrived instead of {}",
                got.seq,
                first + received
            ));
        }
        received += 1;
    }
    let rate = received as f64 / start.elapsed().as_secs_f64();
    sender.join().map_err(|_| "the sender panicked")??;
    for p in peers {
        finish(p)?;
    }
    let (p50, p99) = percentiles(lat);
    Ok((p50, p99, rate))
}

fn spawn(args: &[&str]) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    std::process::Command::new(exe)
        .arg("bench-peer")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())
}

/// Closes the peer's stdin (its signal to stop) and waits for it.
fn finish(mut child: Child) -> Result<(), String> {
    drop(child.stdin.take());
    crate::bench::finish(child)
}

/// `shmidl bench-peer bridge <domain> <discovery port>`: bridges the topic
/// of `domain` both ways until stdin closes.
pub fn peer(domain: &str, port: &str) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let port: u16 = port.parse().map_err(|_| "bad port")?;
    let node = Node::builder(domain).open_or_create().map_err(|x| e(&x))?;
    let config = discovery(port);
    let _bridge = Bridge::<Probe>::both(
        &node,
        TOPIC,
        topic_config(),
        NetPublisher::builder(TOPIC)
            .bind("127.0.0.1:0".parse().map_err(|_| "address")?)
            .slow_policy(SlowPolicy::Wait(DEADLINE))
            .announce(config.clone()),
        NetSubscriber::raw(Some(Probe::FINGERPRINT))
            .topic(TOPIC)
            .discovery(config),
    )
    .map_err(|x| e(&x))?;
    // Until the leader closes our stdin.
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    Ok(())
}
