//! The bridge scenario of the child binary: one process bridging a topic of
//! `Msg` both ways between its domain and the network.

use std::time::{Duration, Instant};

use shmidl::{
    net::{Bridge, NetPublisher, NetSubscriber},
    Node, SendMode, ShmSafe, TopicConfig,
};
use shmidl_tests::Msg;

/// The topic settings every process of the bridge tests uses.
pub fn topic_config() -> TopicConfig {
    TopicConfig {
        pool: 256,
        depth: 128,
        overflow: SendMode::WaitIfFull(Duration::from_secs(20)),
        ..TopicConfig::default()
    }
}

/// `bridge <domain> <topic> <discovery config…>`: bridges `topic` of
/// `domain` both ways, says `ready=1` once it sends to and receives from
/// another bridge, then runs until told to stop and prints its counters.
pub fn both(args: &[&str]) -> Result<(), String> {
    let [domain, topic, rest @ ..] = args else {
        return Err(format!("bridge arguments: {args:?}"));
    };
    let config = super::discovery::config(rest)?;
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let publisher = NetPublisher::builder(topic)
        .slow_policy(shmidl::net::ws::SlowPolicy::Wait(Duration::from_secs(20)))
        .announce(config.clone());
    let subscriber = NetSubscriber::raw(Some(Msg::FINGERPRINT))
        .topic(topic)
        .discovery(config);
    let bridge = Bridge::<Msg>::both(&node, topic, topic_config(), publisher, subscriber)
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = bridge.publisher().map_or(0, |p| p.connections());
        let inbound = bridge
            .subscriber()
            .map_or(0, |s| s.stats().connections_opened);
        if out >= 1 && inbound >= 1 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not connected: {out} out, {inbound} in; {bridge:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("ready=1");
    super::discovery::wait_for_stop();
    let s = bridge.stats();
    println!("out_messages={}", s.out_messages);
    println!("out_skipped_own={}", s.out_skipped_own);
    println!("in_messages={}", s.in_messages);
    println!("in_dropped={}", s.in_dropped);
    println!("in_skipped_own={}", s.in_skipped_own);
    Ok(())
}
