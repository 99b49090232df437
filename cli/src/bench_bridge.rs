//! `shmidl bench bridge`: end-to-end one-way latency and throughput of
//! shared memory → bridge → websocket → bridge → shared memory on loopback,
//! against the plain websocket path, in the same run.
//!
//! - **websocket**: a `TypedNetPublisher` and a `NetSubscriber` of this
//!   process, over a loopback connection.
//! - **bridge**: this process publishes on topic `bench/bridge` of domain
//!   A and receives it on domain B; two `shmidl bench-peer bridge`
//!   processes bridge the topic both ways, one per domain, found by
//!   discovery on loopback.
//!
//! Latency is one message at a time (the next leaves when the previous
//! arrived), one-way, timed in this process with one clock. Throughput is
//! a stream under the waiting policies. The target: the bridge adds at most
//! 20 % to the websocket's latency at 64 B.

#![allow(clippy::print_stdout)]

use std::{
    process::{Child, ExitCode},
    sync::{mpsc, Mutex},
    time::{Duration, Instant},
};

use shmidl::{
    net::{Bridge, DiscoveryConfig, NetPublisher, NetSubscriber, SlowPolicy, Transport},
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

/// Runs both paths and prints the figures.
pub fn run(opts: &Options) -> ExitCode {
    match (websocket(opts), bridged(opts)) {
        (Ok(ws), Ok(br)) => {
            let ratio = br.0 as f64 / ws.0.max(1) as f64;
            if opts.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "websocket": {"p50_ns": ws.0, "p99_ns": ws.1, "messages_per_s": ws.2},
                        "bridge": {"p50_ns": br.0, "p99_ns": br.1, "messages_per_s": br.2},
                        "p50_ratio": ratio,
                    })
                );
            } else {
                println!(
                    "{:<34} {:>10} {:>10} {:>14}",
                    "64 B, one-way", "p50 ns", "p99 ns", "messages/s"
                );
                for (name, (p50, p99, rate)) in
                    [("websocket", ws), ("shm → bridge → ws → bridge → shm", br)]
                {
                    println!("{name:<34} {p50:>10} {p99:>10} {rate:>14.0}");
                }
                println!("bridge p50 / websocket p50: {ratio:.2}x (target ≤ 1.20x)");
            }
            ExitCode::SUCCESS
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("shmidl bench bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

fn percentiles(mut v: Vec<u64>) -> (u64, u64) {
    v.sort_unstable();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.99))
}

/// (p50, p99, messages/s) of the plain websocket path.
fn websocket(opts: &Options) -> Result<(u64, u64, f64), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let publisher = NetPublisher::builder(TOPIC)
        .bind("127.0.0.1:0".parse().map_err(|_| "address")?)
        .slow_policy(SlowPolicy::Wait(DEADLINE))
        .start::<Probe>()
        .map_err(|x| e(&x))?;
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

fn finish(mut child: Child) -> Result<(), String> {
    drop(child.stdin.take());
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("bridge peer failed: {status}"))
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("a bridge peer did not stop".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
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
