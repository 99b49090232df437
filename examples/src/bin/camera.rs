//! 640×480 RGB frames (900 KiB each) from a camera process to a viewer
//! process, through the generated topic `camera/image`, without a copy: the
//! camera writes each frame in place in a pool slot, the viewer reads that
//! same memory. (The seed library did this with array pools; here the frame
//! size is part of the schema type.)
//!
//! ```text
//! cargo run --release --bin camera             # starts the camera process itself
//! ```
//!
//! Flags (`--help` lists them): `--frames N` (default 200).

#![allow(clippy::print_stdout)]

use std::{
    process::{Command, ExitCode},
    time::{Duration, Instant},
};

use clap::Parser;
use shmidl::{Node, RecvError};
use shmidl_examples::{
    fnv1a, now_ns,
    robot::v1::{topics::camera_image, Image},
};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const DEADLINE: Duration = Duration::from_secs(60);

/// Sends 640×480 RGB frames from a camera process (which this one
/// starts) to this one, without a copy, and checks every frame.
#[derive(Parser, Debug)]
struct Args {
    /// Frames to send (at least 1).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    frames: u64,
    /// Be the camera process of the viewer on this domain (what the viewer
    /// starts).
    #[arg(long, value_name = "DOMAIN", hide = true)]
    camera: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.camera {
        Some(domain) => camera(domain, args.frames),
        None => viewer(args.frames),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camera: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Paints frame `n` (a moving gradient) straight into the pool slot.
fn camera(domain: &str, frames: u64) -> Result<(), Box<dyn std::error::Error>> {
    let node = Node::builder(domain).open_or_create()?;
    let mut publisher = camera_image::publisher(&node)?;
    let deadline = Instant::now() + DEADLINE;
    while publisher.subscriber_count() == 0 {
        if Instant::now() > deadline {
            return Err("no viewer subscribed".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for n in 0..frames {
        // `loan_recycled`: the slot keeps an old frame's bytes; every byte
        // is rewritten below, so zeroing 900 KiB first would be wasted.
        let mut image = publisher.loan_recycled()?;
        image.width = WIDTH;
        image.height = HEIGHT;
        image.encoding = "rgb8".try_into()?;
        for (i, px) in image.data.chunks_exact_mut(3).enumerate() {
            let (x, y) = (i as u32 % WIDTH, i as u32 / WIDTH);
            px.copy_from_slice(&[(x + n as u32) as u8, y as u8, n as u8]);
        }
        image.checksum = fnv1a(&image.data);
        image.stamp_ns = now_ns();
        publisher.publish(image)?;
        // About 100 frames per second: the viewer sees each one.
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn viewer(frames: u64) -> Result<(), Box<dyn std::error::Error>> {
    let domain = format!("camera-{}", std::process::id());
    // Frames are big: give the domain room for the topic's 8 slots.
    let node = Node::builder(&domain).size(16 << 20).open_or_create()?;
    let mut subscriber = camera_image::subscriber(&node)?;
    println!(
        "viewer {}: subscribed to `{}` ({} bytes per frame)",
        std::process::id(),
        camera_image::NAME,
        std::mem::size_of::<Image>()
    );
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--camera", &domain, "--frames", &frames.to_string()])
        .spawn()?;

    let mut seen = 0u64;
    let mut latencies = Vec::new();
    let start = Instant::now();
    loop {
        match subscriber.recv_timeout(Duration::from_secs(5)) {
            Ok(image) => {
                latencies.push(now_ns().saturating_sub(image.stamp_ns));
                if fnv1a(&image.data) != image.checksum {
                    return Err(format!("frame {seen} arrived torn").into());
                }
                if image.encoding != "rgb8" || (image.width, image.height) != (WIDTH, HEIGHT) {
                    return Err("unexpected frame format".into());
                }
                seen += 1;
            }
            Err(RecvError::Timeout) if child.try_wait()?.is_some() => break,
            Err(RecvError::Timeout) => return Err("the camera went quiet".into()),
            Err(e) => return Err(e.into()),
        }
        if seen == frames {
            break;
        }
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("the camera process failed: {status}").into());
    }
    latencies.sort_unstable();
    let p50 = latencies.get(latencies.len() / 2).copied().unwrap_or(0);
    println!(
        "viewer: {seen} of {frames} frames of {WIDTH}×{HEIGHT} RGB, checksums ok, in {:.2?}; \
         p50 camera→viewer {p50} ns (a 900 KiB frame, handed over without a copy)",
        start.elapsed()
    );
    Ok(())
}
