//! Publishes joint states on the generated topic `robot/joint_states`.
//!
//! ```text
//! cargo run --release --bin consumer -- --domain demo     # one terminal
//! cargo run --release --bin producer -- --domain demo     # another
//! ```
//!
//! Flags: `--domain NAME` (default `demo`), `--count N` (default 1000),
//! `--rate HZ` (default 1000), `--wait-secs S`: how long to wait for a
//! subscriber (default 30), `--announce IFACE`: also announce the topic on
//! the network through interface `IFACE` (`lo`, `eth0`, … or `default`),
//! so that `shmidl spy` lists it, with `--announce-port P` (default 7447).
//!
//! ```text
//! cargo run --bin producer -- --announce lo --rate 10 --count 100   # one terminal
//! shmidl spy --interface lo                                          # another
//! ```

#![allow(clippy::print_stdout)]

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use shmidl::{
    net::{AnnouncedTopic, Announcer, DiscoveryConfig, Interface, Role},
    Node,
};
use shmidl_examples::{
    flag, now_ns,
    robot::v1::{topics::robot_joint_states, JointState, Mode, Vec3, MAX_JOINTS},
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("producer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let domain: String = flag("--domain", "demo".to_owned())?;
    let count: u64 = flag("--count", 1000)?;
    let rate: f64 = flag("--rate", 1000.0)?;
    let wait = Duration::from_secs(flag("--wait-secs", 30)?);
    let announce: String = flag("--announce", String::new())?;
    let announce_port: u16 = flag("--announce-port", shmidl::net::DEFAULT_PORT)?;

    let node = Node::builder(&domain).open_or_create()?;
    // The generated module knows the topic's name, type and options.
    let mut publisher = robot_joint_states::publisher(&node)?;
    println!(
        "producer {}: publishing {count} joint states on `{}` in domain `{domain}`",
        std::process::id(),
        robot_joint_states::NAME
    );

    // Tell the network the topic exists; off unless asked. Kept alive for
    // the whole run: dropping it says goodbye.
    let _announcer = if announce.is_empty() {
        None
    } else {
        let mut config = DiscoveryConfig::on_port(announce_port);
        if announce == "lo" {
            config = config.loopback();
        } else if announce != "default" {
            config = config.with_interface(Interface::Name(announce.clone()));
        }
        let topic = AnnouncedTopic::of::<JointState>(robot_joint_states::NAME, Role::Publisher);
        let announcer = Announcer::start(config, vec![topic])?;
        println!(
            "producer: announcing `{}` on port {announce_port} via {announce}",
            robot_joint_states::NAME
        );
        Some(announcer)
    };

    let deadline = Instant::now() + wait;
    while publisher.subscriber_count() == 0 {
        if Instant::now() > deadline {
            return Err("no consumer subscribed".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    let period = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let start = Instant::now();
    for seq in 0..count {
        // Written in place in shared memory: no copy, no serialisation.
        let mut state: shmidl::SampleMut<JointState> = publisher.loan_zeroed()?;
        state.stamp_ns = now_ns();
        state.mode.set(if seq + 1 == count {
            Mode::Idle
        } else {
            Mode::Run
        });
        for joint in 0..MAX_JOINTS as usize {
            state.names[joint] = format!("joint_{joint}").as_str().try_into()?;
            state.position.push(seq as f64 * 0.001 + joint as f64)?;
        }
        state.pose = Vec3 {
            x: seq as f64,
            y: 0.5,
            z: -1.0,
        };
        let failed = publisher.publish(state)?;
        if failed > 0 {
            return Err(format!("{failed} queue(s) stayed full for message {seq}").into());
        }
        let next = start + period.mul_f64((seq + 1) as f64);
        if let Some(rest) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(rest);
        }
    }
    println!("producer: sent {count} in {:.2?}", start.elapsed());
    Ok(())
}
