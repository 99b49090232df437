//! Receives the quickstart's `Tick`s on `quickstart/ticks` over
//! websockets from every publisher discovery reports (or from one
//! `--endpoint ws://host:port/path`), checks each and prints them.
//!
//! ```text
//! cargo run --release --bin net_subscriber -- --interface lo
//! ```
//!
//! Flags: `--endpoint URL` (skip discovery), `--count N`: stop after N
//! ticks (default 0: never), `--idle-secs S`: stop after S seconds
//! without a tick (default 0: never), `--print-every N` (default 1),
//! `--interface IFACE` and `--discovery-port P` as for `net_publisher`.

#![allow(clippy::print_stdout)]

use std::{
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use shmidl::net::{DiscoveryConfig, Interface};
use shmidl_examples::{
    flag, now_ns,
    quickstart::{topics::quickstart_ticks, Tick},
    tick_checksum,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("net_subscriber: {e}");
            ExitCode::FAILURE
        }
    }
}

fn discovery() -> Result<DiscoveryConfig, String> {
    let iface: String = flag("--interface", "default".to_owned())?;
    let mut config = DiscoveryConfig::on_port(flag("--discovery-port", shmidl::net::DEFAULT_PORT)?);
    if iface == "lo" {
        config = config.loopback();
    } else if iface != "default" {
        config = config.with_interface(Interface::Name(iface));
    }
    Ok(config)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint: String = flag("--endpoint", String::new())?;
    let count: u64 = flag("--count", 0)?;
    let idle: u64 = flag("--idle-secs", 0)?;
    let every: u64 = flag("--print-every", 1)?.max(1);

    let received = Arc::new(AtomicU64::new(0));
    let corrupt = Arc::new(AtomicU64::new(0));
    let (r, c) = (Arc::clone(&received), Arc::clone(&corrupt));
    // Through discovery with the generated function, or straight to an
    // endpoint without discovery.
    let builder = if endpoint.is_empty() {
        quickstart_ticks::net_subscriber().discovery(discovery()?)
    } else {
        shmidl::net::NetSubscriber::typed::<Tick>().endpoint(&endpoint)
    };
    let mut builder = builder
        .on_connect(|e| println!("connected to {}", e.url))
        .on_disconnect(|e, why| println!("disconnected from {}: {why:?}", e.url))
        .on_message(move |d| {
            let tick: &Tick = d.message;
            let n = r.fetch_add(1, Ordering::Relaxed) + 1;
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
    println!(
        "net_subscriber: {} ticks in {:.2} s, {} corrupt, {} missed, {} bad frames",
        received.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
        corrupt.load(Ordering::Relaxed),
        stats.missed,
        stats.bad_frames + stats.wrong_fingerprint + stats.undecodable
    );
    if corrupt.load(Ordering::Relaxed) > 0 {
        return Err("corrupt ticks".into());
    }
    Ok(())
}
