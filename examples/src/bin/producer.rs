//! Publishes joint states on the generated topic `robot/joint_states`.
//!
//! ```text
//! cargo run --release --bin consumer -- --domain demo     # one terminal
//! cargo run --release --bin producer -- --domain demo     # another
//! ```
//!
//! Flags (`--help` lists them): `--domain NAME` (default `demo`), `--count
//! N` (default 1000),
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

use clap::Parser;
use shmidl::{
    net::{AnnouncedTopic, Announcer, Role},
    Node,
};
use shmidl_examples::{
    discovery_config, now_ns,
    robot::v1::{topics::robot_joint_states, JointState, Mode, Vec3, MAX_JOINTS},
};

/// Publishes joint states on the topic `robot/joint_states`.
#[derive(Parser, Debug)]
struct Args {
    /// The domain (a name shared by the processes that talk).
    #[arg(long, default_value = "demo", value_name = "NAME")]
    domain: String,
    /// Messages to publish.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Messages per second.
    #[arg(long, default_value_t = 1000.0, value_name = "HZ")]
    rate: f64,
    /// How long to wait for a subscriber, in seconds.
    #[arg(long, default_value_t = 30, value_name = "S")]
    wait_secs: u64,
    /// Also announce the topic on the network through this interface
    /// (`lo`, `eth0`, … or `default`), so that `shmidl spy` lists it.
    #[arg(long, value_name = "IFACE")]
    announce: Option<String>,
    /// The UDP port of the announcement.
    #[arg(long, default_value_t = shmidl::net::DEFAULT_PORT, value_name = "PORT")]
    announce_port: u16,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("producer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (domain, count, rate) = (&args.domain, args.count, args.rate);
    let wait = Duration::from_secs(args.wait_secs);

    let node = Node::builder(domain).open_or_create()?;
    // The generated module knows the topic's name, type and options.
    let mut publisher = robot_joint_states::publisher(&node)?;
    println!(
        "producer {}: publishing {count} joint states on `{}` in domain `{domain}`",
        std::process::id(),
        robot_joint_states::NAME
    );

    // Tell the network the topic exists; off unless asked. Kept alive for
    // the whole run: dropping it says goodbye.
    let _announcer = if let Some(announce) = &args.announce {
        let config = discovery_config(announce, args.announce_port);
        let topic = AnnouncedTopic::of::<JointState>(robot_joint_states::NAME, Role::Publisher);
        let announcer = Announcer::start(config, vec![topic])?;
        println!(
            "producer: announcing `{}` on port {} via {announce}",
            robot_joint_states::NAME,
            args.announce_port
        );
        Some(announcer)
    } else {
        None
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
