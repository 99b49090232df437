//! Receives the quickstart's `Tick`s on `quickstart/ticks` over
//! websockets from every publisher discovery reports (or from one
//! `--endpoint ws://host:port/path`), checks each and prints them.
//!
//! ```text
//! cargo run --release --bin net_subscriber -- --interface lo
//! ```
//!
//! Flags (`--help` lists them): `--endpoint URL` (skip discovery),
//! `--count N`: stop after N ticks (default 0: never), `--idle-secs S`:
//! stop after S seconds without a tick (default 0: never), `--print-every
//! N` (default 1), `--interface IFACE` and `--discovery-port P` as for
//! `net_publisher`.

#![allow(clippy::print_stdout)]

use std::{
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use clap::Parser;
use shmidl_examples::{
    now_ns,
    quickstart::{topics::quickstart_ticks, Tick},
    tick_checksum, DiscoveryArgs,
};

/// Receives the quickstart's ticks on `quickstart/ticks` over websockets
/// from every publisher discovery reports, checks each and prints them.
#[derive(Parser, Debug)]
struct Args {
    /// Connect to this publisher (`ws://host:port/path`) instead of
    /// following discovery.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Stop after this many ticks (0: never).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Stop after this many seconds without a tick (0: never).
    #[arg(long, default_value_t = 0, value_name = "S")]
    idle_secs: u64,
    /// Print one tick in this many.
    #[arg(long, default_value_t = 1, value_name = "N")]
    print_every: u64,
    #[command(flatten)]
    discovery: DiscoveryArgs,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("net_subscriber: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (count, idle, every) = (args.count, args.idle_secs, args.print_every.max(1));

    let received = Arc::new(AtomicU64::new(0));
    let corrupt = Arc::new(AtomicU64::new(0));
    // The lowest and highest sequence numbers received.
    let seqs = Arc::new((AtomicU64::new(u64::MAX), AtomicU64::new(0)));
    let (r, c, q) = (
        Arc::clone(&received),
        Arc::clone(&corrupt),
        Arc::clone(&seqs),
    );
    // Through discovery with the generated function, or straight to an
    // endpoint without discovery.
    let builder = match &args.endpoint {
        None => quickstart_ticks::net_subscriber().discovery(args.discovery.config()),
        Some(endpoint) => shmidl::net::NetSubscriber::typed::<Tick>().endpoint(endpoint),
    };
    let mut builder = builder
        .on_connect(|e| println!("connected to {}", e.url))
        .on_disconnect(|e, why| println!("disconnected from {}: {why:?}", e.url))
        .on_error(|e, what| eprintln!("net_subscriber: {}: {what}", e.url))
        .on_message(move |d| {
            let tick: &Tick = d.message;
            let n = r.fetch_add(1, Ordering::Relaxed) + 1;
            q.0.fetch_min(tick.seq, Ordering::Relaxed);
            q.1.fetch_max(tick.seq, Ordering::Relaxed);
            if tick.check != tick_checksum(tick) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            if n % every == 0 {
                println!(
                    "tick seq={} from {:#018x} latency={} µs",
                    tick.seq,
                    d.header.origin,
                    now_ns().saturating_sub(tick.sent_ns) / 1000
                );
            }
        });
    if idle > 0 {
        builder = builder.idle_timeout(Duration::from_secs(idle), true);
    }
    let subscriber = builder.start()?;
    let start = Instant::now();
    loop {
        let n = received.load(Ordering::Relaxed);
        if (count > 0 && n >= count) || subscriber.is_stopped() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = subscriber.stats();
    let n = received.load(Ordering::Relaxed);
    let range = if n == 0 {
        String::new()
    } else {
        format!(
            " (seq {}–{})",
            seqs.0.load(Ordering::Relaxed),
            seqs.1.load(Ordering::Relaxed)
        )
    };
    println!(
        "net_subscriber: {n} ticks{range} in {:.2} s, {} corrupt, {} missed after the first, {} bad frames",
        start.elapsed().as_secs_f64(),
        corrupt.load(Ordering::Relaxed),
        stats.missed,
        stats.bad_frames + stats.wrong_fingerprint + stats.undecodable
    );
    if corrupt.load(Ordering::Relaxed) > 0 {
        return Err("corrupt ticks".into());
    }
    if n == 0 {
        return Err("no tick arrived".into());
    }
    if count > 0 && n < count {
        return Err(format!("{n} ticks of the {count} asked for").into());
    }
    Ok(())
}
