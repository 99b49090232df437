//! `shmidl spy`: the live table of topics announced on the network; and
//! `shmidl announce`, which announces topics as a program would.

#![allow(clippy::print_stdout)]

use std::{
    io::{IsTerminal, Write},
    net::Ipv4Addr,
    process::ExitCode,
    time::{Duration, Instant},
};

use shmidl::net::{
    AnnouncedTopic, Announcer, Discovery, DiscoveryConfig, Interface, NetSecret, TopicEntry,
    Transport,
};

/// The discovery options `spy` and `announce` share, as in
/// [`DiscoveryConfig`].
#[derive(clap::Args)]
pub struct NetArgs {
    /// UDP port.
    #[arg(long, default_value_t = shmidl::net::DEFAULT_PORT)]
    port: u16,
    /// IPv4 multicast group.
    #[arg(long, default_value_t = shmidl::net::DEFAULT_GROUP)]
    group: Ipv4Addr,
    /// Also use this IPv6 multicast group (ff02::7447 is shmidl's; needs
    /// --interface NAME).
    #[arg(long)]
    ipv6_group: Option<std::net::Ipv6Addr>,
    /// Interface, by name (eth0, lo) or IPv4 address; default: the routing
    /// table's choice.
    #[arg(long, value_parser = |s: &str| Ok::<_, String>(parse_interface(s)))]
    interface: Option<Interface>,
    /// Where broadcasts go (default 255.255.255.255; 127.255.255.255 with
    /// --interface lo).
    #[arg(long)]
    broadcast_address: Option<Ipv4Addr>,
    /// broadcast, multicast or both.
    #[arg(long, default_value = "both", value_parser = parse_transport)]
    transport: Transport,
    /// Multicast TTL (IPv6: hop limit).
    #[arg(long, default_value_t = 1)]
    ttl: u32,
    /// Authenticate announcements with the shared secret in this file
    /// (sealed when sent, checked when heard; see docs/security.md).
    #[arg(long, conflicts_with = "secret_env")]
    secret_file: Option<std::path::PathBuf>,
    /// The same, with the secret in this environment variable (a secret is
    /// never given on the command line itself).
    #[arg(long)]
    secret_env: Option<String>,
}

impl NetArgs {
    /// The configuration these options describe; fails only if a secret
    /// cannot be loaded.
    pub fn config(&self) -> Result<DiscoveryConfig, String> {
        let mut config = self.config_without_secret();
        config.secret = match (&self.secret_file, &self.secret_env) {
            (Some(path), _) => Some(NetSecret::from_file(path).map_err(|e| e.to_string())?),
            (None, Some(var)) => Some(NetSecret::from_env(var).map_err(|e| e.to_string())?),
            (None, None) => None,
        };
        Ok(config)
    }

    fn config_without_secret(&self) -> DiscoveryConfig {
        let mut config = DiscoveryConfig::on_port(self.port).with_transport(self.transport);
        config.group = self.group;
        config.ipv6_group = self.ipv6_group;
        config.ttl = self.ttl;
        match &self.interface {
            // This host only, announcements from 127.0.0.1.
            Some(Interface::Name(lo)) if lo == "lo" => config = config.loopback(),
            Some(interface) => config.interface = interface.clone(),
            None => {}
        }
        if let Some(address) = self.broadcast_address {
            config.broadcast_address = address;
        }
        config
    }
}

/// Parses a fingerprint: `0x`-prefixed hexadecimal or decimal.
pub fn parse_fingerprint(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s:?}: {e}"))
}

/// Runs `shmidl announce`: announces until `duration` passes (then says
/// goodbye) or the process is interrupted.
pub fn announce(
    config: DiscoveryConfig,
    topics: Vec<AnnouncedTopic>,
    duration: Option<Duration>,
) -> ExitCode {
    let announcer = match Announcer::start(config.clone(), topics) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("shmidl announce: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "announcing as sender {:#018x} on port {} every {:?}",
        announcer.sender_id(),
        config.port,
        config.interval
    );
    match duration {
        Some(d) => std::thread::sleep(d),
        None => loop {
            std::thread::park();
        },
    }
    let errors = announcer.send_errors();
    announcer.shutdown();
    if errors > 0 {
        eprintln!("shmidl announce: {errors} datagram(s) could not be sent");
    }
    ExitCode::SUCCESS
}

/// How often the table is redrawn (and JSON lines written).
const REFRESH: Duration = Duration::from_secs(1);

/// What `shmidl spy` was asked.
pub struct Options {
    /// Stop after this long; `None` runs until interrupted.
    pub duration: Option<Duration>,
    /// JSON lines even on a terminal.
    pub json: bool,
    /// The discovery settings (port, group, interface, transport).
    pub config: DiscoveryConfig,
}

/// Parses `500ms`, `3s`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 3s or 2m"))?;
    let scale = match unit.trim() {
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses `broadcast`, `multicast` or `both`.
pub fn parse_transport(s: &str) -> Result<Transport, String> {
    match s {
        "broadcast" => Ok(Transport::Broadcast),
        "multicast" => Ok(Transport::Multicast),
        "both" => Ok(Transport::Both),
        other => Err(format!("{other:?}: broadcast, multicast or both")),
    }
}

/// An interface by IPv4 address, or else by name.
pub fn parse_interface(s: &str) -> Interface {
    s.parse::<Ipv4Addr>()
        .map_or_else(|_| Interface::Name(s.to_owned()), Interface::Address)
}

/// Runs `shmidl spy`.
pub fn spy(options: Options) -> ExitCode {
    let discovery = match Discovery::start(options.config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("shmidl spy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = options.json || !std::io::stdout().is_terminal();
    let start = Instant::now();
    let mut refresh = 0u64;
    loop {
        let elapsed = start.elapsed();
        let last = options.duration.is_some_and(|d| elapsed + REFRESH >= d);
        let wait = match options.duration {
            Some(d) if last => d.saturating_sub(elapsed),
            _ => REFRESH,
        };
        std::thread::sleep(wait);
        refresh += 1;
        let topics = discovery.topics();
        let now = Instant::now();
        let written = if json {
            write_json(refresh, &topics, now)
        } else {
            write_table(&discovery, &topics, now)
        };
        if written.is_err() {
            // The reader went away (a closed pipe): nothing left to do.
            return ExitCode::SUCCESS;
        }
        if last {
            return ExitCode::SUCCESS;
        }
    }
}

fn age_ms(entry: &TopicEntry, now: Instant) -> u128 {
    now.saturating_duration_since(entry.last_seen).as_millis()
}

/// One JSON object per topic per refresh.
fn write_json(refresh: u64, topics: &[TopicEntry], now: Instant) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for t in topics {
        let line = serde_json::json!({
            "refresh": refresh,
            "host": t.peer.host,
            "pid": t.peer.pid,
            "sender_id": format!("{:#018x}", t.peer.sender_id),
            "topic": t.topic.name,
            "type": t.topic.type_name,
            "fingerprint": format!("{:#018x}", t.topic.fingerprint),
            "role": t.topic.role.as_str(),
            "endpoint": t.endpoint(),
            "source": t.peer.source.to_string(),
            "last_seen_ms": age_ms(t, now),
            "rate_hz": (t.peer.rate_hz() * 100.0).round() / 100.0,
            "connectable": t.is_connectable(),
        });
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// The table, redrawn in place (ANSI clear screen and home).
fn write_table(discovery: &Discovery, topics: &[TopicEntry], now: Instant) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    write!(out, "\x1b[2J\x1b[H")?;
    writeln!(
        out,
        "{:<16} {:>7}  {:<28} {:<24} {:<18} {:<10} {:<28} {:>9} {:>7}",
        "HOST", "PID", "TOPIC", "TYPE", "FINGERPRINT", "ROLE", "ENDPOINT", "LAST SEEN", "RATE"
    )?;
    for t in topics {
        writeln!(
            out,
            "{:<16} {:>7}  {:<28} {:<24} {:#018x} {:<10} {:<28} {:>7}ms {:>5.2}Hz",
            t.peer.host,
            t.peer.pid,
            t.topic.name,
            t.topic.type_name,
            t.topic.fingerprint,
            t.topic.role.as_str(),
            t.endpoint().unwrap_or_else(|| "-".to_owned()),
            age_ms(t, now),
            t.peer.rate_hz(),
        )?;
    }
    let s = discovery.stats();
    writeln!(
        out,
        "\n{} topic(s) from {} peer(s); {} datagram(s), {} rejected",
        topics.len(),
        discovery.peers().len(),
        s.received,
        s.rejected()
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn fingerprints_parse_in_hex_or_decimal() {
        assert_eq!(
            parse_fingerprint("0x87d5a86ee31ae2fd"),
            Ok(0x87d5_a86e_e31a_e2fd)
        );
        assert_eq!(parse_fingerprint("42"), Ok(42));
        assert!(parse_fingerprint("0xzz").is_err());
    }
}
