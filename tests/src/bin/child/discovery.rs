//! Discovery scenarios of the child binary: an announcer and a listener
//! that report on stdout, one `key=value` line per fact, with wall-clock
//! timestamps (µs since the epoch) so the test can measure latencies
//! across processes.

use std::{
    io::BufRead,
    net::Ipv4Addr,
    str::FromStr,
    sync::mpsc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use shmidl::net::{
    AnnouncedTopic, Announcer, Discovery, DiscoveryConfig, DiscoveryEvent, Interface, Role,
    Transport,
};

/// The longest a discovery child lives without being told to stop.
const LIFETIME: Duration = Duration::from_secs(60);

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn parse<T: FromStr>(what: &str, s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad {what}: {s:?}"))
}

/// `<port> <broadcast|multicast|both|multicast6> <interval_ms> <interface> <broadcast address>`
/// (`multicast6`: IPv6 multicast to ff02::7447 alone, IPv4 off)
pub(super) fn config(args: &[&str]) -> Result<DiscoveryConfig, String> {
    let [port, transport, interval, iface, bcast, ..] = args else {
        return Err(format!("discovery arguments: {args:?}"));
    };
    let (transport, ipv6) = match *transport {
        "broadcast" => (Transport::Broadcast, false),
        "multicast" => (Transport::Multicast, false),
        "both" => (Transport::Both, false),
        "multicast6" => (Transport::Multicast, true),
        other => return Err(format!("transport {other:?}")),
    };
    let mut config = DiscoveryConfig::on_port(parse("port", port)?)
        .with_interval(Duration::from_millis(parse("interval", interval)?))
        .with_transport(transport)
        .with_interface(Interface::Name((*iface).to_owned()));
    config.broadcast_address = parse::<Ipv4Addr>("broadcast address", bcast)?;
    if ipv6 {
        config.ipv4 = false;
        config.ipv6_group = Some(shmidl::net::DEFAULT_GROUP_V6);
    }
    Ok(config)
}

/// Blocks until stdin says `stop`, closes, or [`LIFETIME`] passes.
pub(super) fn wait_for_stop() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == "stop" => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(LIFETIME);
}

/// `disc-announce <config…> <sender id hex|random> <topic>…`: announces the
/// topics until told to stop, then says goodbye.
pub fn announce(args: &[&str]) -> Result<(), String> {
    let mut config = config(args)?;
    let (sender, topics) = match args.get(5..) {
        Some([sender, topics @ ..]) if !topics.is_empty() => (*sender, topics),
        _ => return Err(format!("disc-announce arguments: {args:?}")),
    };
    if sender != "random" {
        config.sender_id = Some(u64::from_str_radix(sender, 16).map_err(|e| e.to_string())?);
    }
    let topics = topics
        .iter()
        .map(|name| AnnouncedTopic {
            name: (*name).to_owned(),
            type_name: "shmidl_tests.Msg".into(),
            fingerprint: <shmidl_tests::Msg as shmidl::ShmSafe>::FINGERPRINT,
            role: Role::Publisher,
            ws_port: 9100,
            ws_path: format!("/{name}"),
        })
        .collect();
    let announcer = Announcer::start(config, topics).map_err(|e| e.to_string())?;
    println!("sender={:016x}", announcer.sender_id());
    println!("started_us={}", now_us());
    wait_for_stop();
    println!("stopping_us={}", now_us());
    announcer.shutdown();
    println!("stopped=1");
    Ok(())
}

/// `disc-listen <config…>`: prints every discovery event until stdin
/// closes.
pub fn listen(args: &[&str]) -> Result<(), String> {
    let config = config(args)?;
    let discovery = Discovery::builder(config)
        .on_event(|event| {
            let at = now_us();
            match event {
                DiscoveryEvent::TopicAppeared(t) => {
                    println!(
                        "appeared={} {at} {:#018x}",
                        t.topic.name, t.topic.fingerprint
                    );
                }
                DiscoveryEvent::TopicChanged { new, .. } => {
                    println!("changed={} {at}", new.topic.name);
                }
                DiscoveryEvent::TopicGone { entry, reason } => {
                    println!("gone={} {reason:?} {at}", entry.topic.name);
                }
                DiscoveryEvent::PeerRestarted { old, new } => {
                    println!("restarted={} {} {at}", old.pid, new.pid);
                }
                DiscoveryEvent::FingerprintMismatch { entry, .. } => {
                    println!("mismatch={} {at}", entry.topic.name);
                }
            }
        })
        .start()
        .map_err(|e| e.to_string())?;
    println!("listening_us={}", now_us());
    wait_for_stop();
    let stats = discovery.stats();
    println!("rejected={}", stats.rejected());
    Ok(())
}
