//! Receives joint states from the generated topic `robot/joint_states` and
//! prints a summary.
//!
//! Flags (`--help` lists them): `--domain NAME` (default `demo`),
//! `--count N`: stop after N messages (default 1000), `--idle-secs S`:
//! give up after S seconds without a message (default 30).

#![allow(clippy::print_stdout)]

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use shmidl::{Node, RecvError};
use shmidl_examples::{
    now_ns,
    robot::v1::{topics::robot_joint_states, Mode},
};

/// Receives joint states from the topic `robot/joint_states` and prints a
/// summary.
#[derive(Parser, Debug)]
struct Args {
    /// The domain (a name shared by the processes that talk).
    #[arg(long, default_value = "demo", value_name = "NAME")]
    domain: String,
    /// Stop after this many messages.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Give up after this many seconds without a message.
    #[arg(long, default_value_t = 30, value_name = "S")]
    idle_secs: u64,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consumer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (domain, count) = (&args.domain, args.count);
    let idle = Duration::from_secs(args.idle_secs);

    let node = Node::builder(domain).open_or_create()?;
    let mut subscriber = robot_joint_states::subscriber(&node)?;
    println!(
        "consumer {}: subscribed to `{}` in domain `{domain}`",
        std::process::id(),
        robot_joint_states::NAME
    );

    let mut received = 0u64;
    let mut latency_sum = 0u64;
    while received < count {
        let state = match subscriber.recv_timeout(idle) {
            Ok(state) => state,
            Err(RecvError::Timeout) => {
                return Err(format!("no message for {idle:?} after {received}").into())
            }
            Err(e) => return Err(e.into()),
        };
        latency_sum += now_ns().saturating_sub(state.stamp_ns);
        // The enum is checked when read: another process cannot make this UB.
        let mode = state.mode.get()?;
        if state.position.len() != state.names.len() {
            return Err("names and positions disagree".into());
        }
        if received % 250 == 0 || mode == Mode::Idle {
            println!(
                "#{received}: mode {mode:?}, {} = {:.3} rad, pose x {:.0}",
                state.names[1], state.position[1], state.pose.x
            );
        }
        received += 1;
    }
    println!(
        "consumer: received {received} joint states, mean one-way latency {} ns",
        latency_sum / received.max(1)
    );
    Ok(())
}
