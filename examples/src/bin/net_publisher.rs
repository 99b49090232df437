//! Publishes the quickstart's `Tick`s on the topic `quickstart/ticks` over
//! websockets, announced through discovery.
//!
//! ```text
//! cargo run --release --bin net_subscriber -- --interface lo        # one terminal
//! cargo run --release --bin net_publisher -- --interface lo         # another
//! ```
//!
//! Flags: `--address A` (default `0.0.0.0`) and `--port P` (default 0: any
//! free port) to listen on; `--rate HZ` (default 10; 0: as fast as
//! possible); `--count N` (default 100; 0: forever); `--subscribers N`:
//! wait for that many subscribers before sending (default 0);
//! `--interface IFACE` (`lo`, `eth0`, … or `default`) and
//! `--discovery-port P` (default 7447) for the announcements. It prints
//! `url=ws://…` and `fingerprint=0x…` first; the frames are described in
//! `docs/wire-format.md` §3.

#![allow(clippy::print_stdout)]

use std::{
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, Instant},
};

use shmidl::{
    net::{DiscoveryConfig, Interface, NetPublisher},
    ShmSafe,
};
use shmidl_examples::{
    flag, now_ns,
    quickstart::{topics::quickstart_ticks, Tick},
    tick_checksum,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("net_publisher: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The discovery configuration of `--interface` and `--discovery-port`.
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
    let address: std::net::IpAddr = flag("--address", [0, 0, 0, 0].into())?;
    let port: u16 = flag("--port", 0)?;
    let rate: f64 = flag("--rate", 10.0)?;
    let count: u64 = flag("--count", 100)?;
    let subscribers: usize = flag("--subscribers", 0)?;

    let publisher = NetPublisher::builder(quickstart_ticks::NAME)
        .bind(SocketAddr::new(address, port))
        .announce(discovery()?)
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
    while count == 0 || seq < count {
        let mut tick = Tick {
            seq,
            sent_ns: now_ns(),
            phase: 3,
            filler: [seq; 4],
            check: 0,
        };
        tick.check = tick_checksum(&tick);
        publisher.send(&tick)?;
        seq += 1;
        if let Some(period) = period {
            let next = start + period * u32::try_from(seq).unwrap_or(u32::MAX);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
    publisher.drain(Duration::from_secs(10));
    let stats = publisher.stats();
    println!(
        "net_publisher: sent {seq} ticks to {} connection(s) in {:.2} s ({} batches, {} dropped)",
        stats.connections,
        start.elapsed().as_secs_f64(),
        stats.batches,
        stats.dropped_oldest + stats.dropped_timeout
    );
    publisher.close(Duration::from_secs(5));
    Ok(())
}
