//! Publishes the quickstart's `Tick`s on the topic `quickstart/ticks` over
//! websockets, announced through discovery.
//!
//! ```text
//! cargo run --release --bin net_subscriber -- --interface lo        # one terminal
//! cargo run --release --bin net_publisher -- --interface lo         # another
//! ```
//!
//! Flags (`--help` lists them): `--address A` (default `0.0.0.0`) and
//! `--port P` (default 0: any free port) to listen on; `--rate HZ`
//! (default 10; 0: as fast as possible); `--count N` (default 100; 0:
//! forever); `--subscribers N`: wait for that many subscribers before
//! sending (default 0); `--interface IFACE` (`lo`, `eth0`, … or `default`)
//! and `--discovery-port P` (default 7447) for the announcements. It prints
//! `url=ws://…` and `fingerprint=0x…` first; the frames are described in
//! `docs/wire-format.md` §3.

#![allow(clippy::print_stdout)]

use std::{
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::Parser;
use shmidl::{net::NetPublisher, ShmSafe};
use shmidl_examples::{
    now_ns,
    quickstart::{topics::quickstart_ticks, Tick},
    tick_checksum, DiscoveryArgs,
};

/// Publishes the quickstart's ticks on `quickstart/ticks` over websockets,
/// announced through discovery.
#[derive(Parser, Debug)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    address: std::net::IpAddr,
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Ticks per second (0: as fast as possible).
    #[arg(long, default_value_t = 10.0, value_name = "HZ")]
    rate: f64,
    /// Ticks to send (0: forever).
    #[arg(long, default_value_t = 100)]
    count: u64,
    /// Wait for this many subscribers before sending.
    #[arg(long, default_value_t = 0)]
    subscribers: usize,
    #[command(flatten)]
    discovery: DiscoveryArgs,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("net_publisher: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let &Args {
        address,
        port,
        rate,
        count,
        subscribers,
        ..
    } = args;
    let publisher = NetPublisher::builder(quickstart_ticks::NAME)
        .bind(SocketAddr::new(address, port))
        .announce(args.discovery.config())
        .start::<Tick>()?;
    println!("url={}", publisher.url());
    println!("fingerprint={:#018x}", Tick::FINGERPRINT);
    println!(
        "net_publisher: serving `{}` at {} (announced)",
        quickstart_ticks::NAME,
        publisher.url()
    );
    if subscribers > 0 && !publisher.wait_for_connections(subscribers, Duration::from_secs(60)) {
        return Err(format!("only {} subscriber(s) came", publisher.connections()).into());
    }
    let period = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
    let start = Instant::now();
    let mut seq = 0;
    // Ticks no subscriber was connected for (pub/sub: they are gone).
    let mut unheard = 0u64;
    while count == 0 || seq < count {
        let mut tick = Tick {
            seq,
            sent_ns: now_ns(),
            phase: 3,
            filler: [seq; 4],
            check: 0,
        };
        tick.check = tick_checksum(&tick);
        if publisher.send(&tick)? == 0 {
            unheard += 1;
        }
        seq += 1;
        if let Some(period) = period {
            let next = start + period * u32::try_from(seq).unwrap_or(u32::MAX);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
    publisher.drain(Duration::from_secs(10));
    let stats = publisher.stats();
    println!(
        "net_publisher: sent {seq} ticks to {} connection(s) in {:.2} s ({} batches, {} dropped, \
         {unheard} before any subscriber was connected)",
        stats.connections,
        start.elapsed().as_secs_f64(),
        stats.batches,
        stats.dropped_oldest + stats.dropped_timeout
    );
    if unheard > 0 && subscribers == 0 {
        println!("net_publisher: --subscribers N waits for N subscribers before the first tick");
    }
    publisher.close(Duration::from_secs(5));
    Ok(())
}
