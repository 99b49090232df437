//! The quickstart: two real processes share a segment and an object in it.
//!
//! ```text
//! cargo run --release --bin quickstart
//! ```
//!
//! The first process creates a segment and a named object (a small mailbox of
//! atomics), then starts a second copy of this program as its partner. The
//! partner opens the same segment by name, finds the same object, and the
//! two play ping-pong through it; the first prints what it measured.

#![allow(clippy::print_stdout)]

use std::{
    process::{Command, ExitCode},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use shmidl::Segment;

/// Round trips played.
const ROUNDS: u64 = 100_000;
/// How long either side waits for the other before giving up.
const DEADLINE: Duration = Duration::from_secs(30);

/// The shared mailbox: `ball` holds the last number hit; the initiator hits
/// odd numbers, the partner even ones.
type Mailbox = [AtomicU64; 2];
const BALL: usize = 0;
const PARTNER_PID: usize = 1;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--partner") => match args.get(2) {
            Some(name) => partner(name),
            None => Err("--partner needs a segment name".into()),
        },
        None => initiator(),
        Some(other) => Err(format!("unknown argument {other:?}; run without arguments")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}

fn initiator() -> Result<(), String> {
    let name = format!("quickstart-{}", std::process::id());
    let t0 = Instant::now();
    let segment = Segment::builder(&name)
        .size(1 << 20)
        .create_exclusive()
        .map_err(|e| e.to_string())?;
    let mailbox = segment
        .find_or_create::<Mailbox>("mailbox", Default::default)
        .map_err(|e| e.to_string())?;
    let created = t0.elapsed();
    println!(
        "process {} created segment `{name}` ({} KiB) and object `mailbox` at offset {} in {:.1} µs",
        std::process::id(),
        segment.size() / 1024,
        mailbox.offset(),
        created.as_secs_f64() * 1e6
    );

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["--partner", &name])
        .spawn()
        .map_err(|e| format!("starting the partner process: {e}"))?;

    let deadline = Instant::now() + DEADLINE;
    let result = (|| {
        // Wait for the partner to say hello through the shared object.
        while mailbox[PARTNER_PID].load(Ordering::Acquire) == 0 {
            if Instant::now() > deadline {
                return Err("the partner never arrived".to_string());
            }
            std::hint::spin_loop();
        }
        println!(
            "process {} found the same object by name and wrote its pid into it",
            mailbox[PARTNER_PID].load(Ordering::Acquire)
        );
        let start = Instant::now();
        for round in 0..ROUNDS {
            let serve = 2 * round + 1;
            mailbox[BALL].store(serve, Ordering::Release);
            while mailbox[BALL].load(Ordering::Acquire) != serve + 1 {
                if Instant::now() > deadline {
                    return Err(format!("the partner stopped answering at round {round}"));
                }
                std::hint::spin_loop();
            }
        }
        let took = start.elapsed();
        println!(
            "{ROUNDS} round trips through shared memory in {:.1} ms: {:.0} ns per round trip",
            took.as_secs_f64() * 1e3,
            took.as_nanos() as f64 / ROUNDS as f64
        );
        Ok(())
    })();
    // Tell the partner to stop (on error too), then reap it.
    mailbox[BALL].store(u64::MAX, Ordering::Release);
    let status = child.wait().map_err(|e| e.to_string())?;
    result?;
    if !status.success() {
        return Err(format!("the partner failed: {status}"));
    }
    println!(
        "both processes agree; the segment is removed when the last handle is dropped (attached now: {})",
        segment.attached()
    );
    Ok(())
}

fn partner(name: &str) -> Result<(), String> {
    let segment = Segment::open(name).map_err(|e| e.to_string())?;
    let mailbox = segment
        .find::<Mailbox>("mailbox")
        .map_err(|e| e.to_string())?;
    mailbox[PARTNER_PID].store(u64::from(std::process::id()), Ordering::Release);
    let deadline = Instant::now() + DEADLINE;
    let mut last = 0;
    loop {
        let ball = mailbox[BALL].load(Ordering::Acquire);
        if ball == u64::MAX {
            return Ok(());
        }
        if ball != last && ball % 2 == 1 {
            last = ball + 1;
            mailbox[BALL].store(last, Ordering::Release);
        } else if Instant::now() > deadline {
            return Err("the initiator went quiet".into());
        }
        std::hint::spin_loop();
    }
}
