//! The quickstart: a publisher and a subscriber in two real processes,
//! exchanging messages through shared memory.
//!
//! ```text
//! cargo run --release --bin quickstart
//! ```
//!
//! This process joins a domain (a shared-memory segment), subscribes to the
//! topic `quickstart/ticks`, and starts a second copy of itself as the
//! publisher. The message type and the topic come from
//! `examples/schema/quickstart.shmidl`, compiled to Rust by `build.rs`. The publisher writes each message in place in shared memory
//! (no copy, no serialisation), stamped with the system-wide monotonic
//! clock; the subscriber measures how long each took to arrive.
//!
//! 1. a paced stream (one message every 20 µs): one-way latency percentiles;
//! 2. a burst as fast as possible with `WaitIfFull`: throughput and loss
//!    (there is none: a full queue makes the publisher wait);
//! 3. the network leg: the publisher serves the same topic over a websocket
//!    on loopback and announces it by UDP discovery; this process discovers
//!    it, connects, and receives a burst of ticks through the wire codec.

#![allow(clippy::print_stdout)]

use std::{
    process::{Command, ExitCode},
    time::{Duration, Instant},
};

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use shmidl::{net::DiscoveryConfig, Node, SendMode, TopicConfig};
use shmidl_examples::{
    now_ns,
    quickstart::{topics::quickstart_ticks, Tick},
};

const PACED: u64 = 50_000;
const PACE: Duration = Duration::from_micros(20);
const BURST: u64 = 1_000_000;
/// Ticks of the network leg.
const NET_BURST: u64 = 100_000;
const TOPIC: &str = quickstart_ticks::NAME;
/// How long either side waits for the other before giving up.
const DEADLINE: Duration = Duration::from_secs(60);

/// The topic's options from the schema (pool 256, depth 64, one publisher,
/// one subscriber), with a longer wait when a queue is full than the
/// schema's default second: the two processes may share one core.
fn config() -> TopicConfig {
    TopicConfig {
        overflow: SendMode::WaitIfFull(DEADLINE),
        ..quickstart_ticks::config()
    }
}

fn checksum(t: &Tick) -> u64 {
    [t.seq, t.sent_ns, t.phase]
        .iter()
        .chain(&t.filler)
        .fold(0xcbf2_9ce4_8422_2325u64, |h, w| {
            (h ^ w).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--publisher") => match (args.get(2), args.get(3)) {
            (Some(domain), Some(port)) => publisher(domain, port),
            _ => Err("--publisher needs a domain name and a discovery port".into()),
        },
        None => subscriber(),
        Some("--help" | "-h") => {
            println!(
                "quickstart: a subscriber (this process) and a publisher process on a topic \
                 generated from examples/schema/quickstart.shmidl, over shared memory and then \
                 a loopback websocket, with figures.\n\nUsage: quickstart (no arguments)"
            );
            Ok(())
        }
        Some(other) => Err(format!("unknown argument {other:?}; run without arguments")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Discovery on loopback only, on this run's own UDP port, announcing
/// every 100 ms so that the subscriber need not wait long.
fn discovery(port: u16) -> DiscoveryConfig {
    DiscoveryConfig::on_port(port)
        .loopback()
        .with_interval(Duration::from_millis(100))
}

fn publisher(domain: &str, port: &str) -> Result<(), String> {
    shm_publisher(domain)?;
    // The network leg: serve the topic over a websocket on loopback (any
    // free port), announced by discovery; the generated module knows the
    // topic's name and type.
    let port: u16 = port.parse().map_err(|_| "bad discovery port")?;
    let net = quickstart_ticks::net_publisher(discovery(port)).map_err(|e| e.to_string())?;
    if !net.wait_for_connections(1, DEADLINE) {
        return Err("no network subscriber showed up".into());
    }
    for seq in 0..NET_BURST {
        let mut tick = Tick {
            seq,
            sent_ns: now_ns(),
            phase: 3,
            filler: [seq; 4],
            check: 0,
        };
        tick.check = checksum(&tick);
        net.send(&tick).map_err(|e| e.to_string())?;
    }
    if !net.drain(DEADLINE) || !net.close(DEADLINE) {
        return Err("the network subscriber did not take every tick".into());
    }
    Ok(())
}

fn shm_publisher(domain: &str) -> Result<(), String> {
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let mut publisher = node
        .publisher::<Tick>(TOPIC, config())
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + DEADLINE;
    while publisher.subscriber_count() == 0 {
        if Instant::now() > deadline {
            return Err("no subscriber showed up".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut send = |seq: u64, phase: u64| -> Result<(), String> {
        let mut tick = publisher.loan_zeroed().map_err(|e| e.to_string())?;
        tick.seq = seq;
        tick.phase = phase;
        tick.filler = [seq; 4];
        tick.sent_ns = now_ns();
        tick.check = checksum(&tick);
        match publisher.publish(tick).map_err(|e| e.to_string())? {
            0 => Ok(()),
            n => Err(format!("{n} pipe(s) failed for message {seq}")),
        }
    };
    for seq in 0..PACED {
        let next = Instant::now() + PACE;
        send(seq, 1)?;
        while Instant::now() < next {
            // Let the subscriber run if both share a core.
            std::thread::yield_now();
        }
    }
    for seq in 0..BURST {
        send(seq, 2)?;
    }
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn subscriber() -> Result<(), String> {
    let domain = format!("quickstart-{}", std::process::id());
    let node = Node::builder(&domain)
        .size(4 << 20)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let mut subscriber = node
        .subscriber::<Tick>(TOPIC, config())
        .map_err(|e| e.to_string())?;
    println!(
        "process {} joined domain `{domain}` and subscribed to `{TOPIC}`",
        std::process::id()
    );
    let discovery_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["--publisher", &domain, &discovery_port.to_string()])
        .spawn()
        .map_err(|e| format!("starting the publisher process: {e}"))?;
    println!("process {} publishes to it", child.id());

    let result = receive(&mut subscriber);
    let net = result.as_ref().ok().map(|_| net_receive(discovery_port));
    let status = child.wait().map_err(|e| e.to_string())?;
    let (latencies, burst) = result?;
    let net = net.transpose()?;
    if !status.success() {
        return Err(format!("the publisher failed: {status}"));
    }
    let (received, lost, took) = burst;
    println!(
        "paced: {} messages of 64 B, one every {} µs, lost 0; one-way latency (send to receipt) p50 {} ns, p90 {} ns, p99 {} ns, max {:.1} µs",
        latencies.len(),
        PACE.as_micros(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1] as f64 / 1e3,
    );
    println!(
        "burst: {received} messages of 64 B in {:.1} ms, lost {lost}: {:.2} M messages/s",
        took.as_secs_f64() * 1e3,
        received as f64 / took.as_secs_f64() / 1e6
    );
    println!(
        "pool `{TOPIC}`: {} of {} slots free again",
        node.router::<Tick>(TOPIC, config())
            .map_err(|e| e.to_string())?
            .pool()
            .free_count(),
        config().pool
    );
    if let Some((connected, took, p50)) = net {
        println!(
            "network: discovered the publisher and connected in {:.0} ms; {NET_BURST} ticks over a \
             loopback websocket in {:.1} ms, lost 0: {:.2} M messages/s; send to receipt p50 {} µs \
             (within a burst: mostly time queued behind earlier ticks, not the wire's latency)",
            connected.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3,
            NET_BURST as f64 / took.as_secs_f64() / 1e6,
            p50 / 1000
        );
    }
    Ok(())
}

/// The network leg's subscriber: discovers the publisher, connects,
/// checks every tick; returns the time to connect, the burst's duration
/// and the median one-way latency.
fn net_receive(discovery_port: u16) -> Result<(Duration, Duration, u64), String> {
    let start = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let connected_ns = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(
        NET_BURST as usize,
    )));
    let (r, b, c, l) = (
        Arc::clone(&received),
        Arc::clone(&bad),
        Arc::clone(&connected_ns),
        Arc::clone(&latencies),
    );
    let subscriber = quickstart_ticks::net_subscriber()
        .discovery(discovery(discovery_port))
        .on_connect(move |_| c.store(start.elapsed().as_nanos() as u64, Ordering::Relaxed))
        .on_message(move |d| {
            let tick = d.message;
            if tick.check != checksum(tick) || tick.seq != r.load(Ordering::Relaxed) {
                b.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(mut l) = l.lock() {
                l.push(now_ns().saturating_sub(tick.sent_ns));
            }
            r.fetch_add(1, Ordering::Relaxed);
        })
        .start()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + DEADLINE;
    while received.load(Ordering::Relaxed) < NET_BURST {
        if Instant::now() > deadline {
            return Err(format!(
                "network: timed out after {} ticks",
                received.load(Ordering::Relaxed)
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = start.elapsed() - Duration::from_nanos(connected_ns.load(Ordering::Relaxed));
    drop(subscriber);
    if bad.load(Ordering::Relaxed) > 0 {
        return Err(format!(
            "network: {} ticks corrupt or out of order",
            bad.load(Ordering::Relaxed)
        ));
    }
    let mut latencies = std::mem::take(&mut *latencies.lock().map_err(|_| "poisoned")?);
    latencies.sort_unstable();
    Ok((
        Duration::from_nanos(connected_ns.load(Ordering::Relaxed)),
        took,
        percentile(&latencies, 0.5),
    ))
}

type Burst = (u64, u64, Duration);

fn receive(subscriber: &mut shmidl::Subscriber<Tick>) -> Result<(Vec<u64>, Burst), String> {
    let mut latencies = Vec::with_capacity(PACED as usize);
    let mut expect = 0;
    let mut burst_start = None;
    let deadline = Instant::now() + DEADLINE;
    let mut idle = 0u32;
    loop {
        // Busy-poll: the lowest latency, at the cost of a core. After a
        // while idle, yield so a publisher on the same core can run.
        let Some(tick) = subscriber.try_recv().map_err(|e| e.to_string())? else {
            idle += 1;
            if idle % 64 == 0 {
                if Instant::now() > deadline {
                    return Err(format!("timed out after {expect} messages"));
                }
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
            continue;
        };
        idle = 0;
        let arrived = now_ns();
        if tick.check != checksum(&tick) {
            return Err(format!("message {} is corrupt", tick.seq));
        }
        if tick.phase == 2 && burst_start.is_none() {
            if expect != PACED {
                return Err(format!("paced phase lost {} messages", PACED - expect));
            }
            burst_start = Some(Instant::now());
            expect = 0;
        }
        if tick.seq != expect {
            return Err(format!("expected message {expect}, got {}", tick.seq));
        }
        expect += 1;
        match burst_start {
            None => latencies.push(arrived.saturating_sub(tick.sent_ns)),
            Some(start) if expect == BURST => {
                latencies.sort_unstable();
                return Ok((latencies, (BURST, 0, start.elapsed())));
            }
            Some(_) => {}
        }
    }
}
