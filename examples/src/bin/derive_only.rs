//! No schema: a `#[repr(C)]` struct with `#[derive(ShmMessage)]` is enough
//! to publish it through shared memory and to put it on the wire.
//!
//! ```text
//! cargo run --bin derive_only
//! ```

#![allow(clippy::print_stdout)]

use shmidl::{Enum, FixedSizeString, FixedSizeVec, Node, ShmMessage, TopicConfig};

/// A fieldless enum is stored as its integer and checked when read.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
enum Level {
    Info = 0,
    Warn = 1,
}

/// The derive checks that it can live in shared memory: `#[repr(C)]`, no
/// pointers, no implicit padding (it names the field and the bytes to add
/// if there is any).
#[derive(ShmMessage, Debug)]
#[repr(C)]
#[shm(name = "demo.LogLine", default)]
struct LogLine {
    stamp_ns: u64,
    level: Enum<Level>,
    text: FixedSizeString<59>,
    codes: FixedSizeVec<u16, 4>,
}

/// No schema: a `#[derive(ShmMessage)]` struct published through shared
/// memory and put on the wire. Takes no arguments.
#[derive(clap::Parser, Debug)]
struct Args {}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    <Args as clap::Parser>::parse();
    let domain = format!("derive-only-{}", std::process::id());
    let node = Node::builder(&domain).size(1 << 20).open_or_create()?;
    let config = TopicConfig {
        pool: 4,
        ..TopicConfig::default()
    };
    let mut subscriber = node.subscriber::<LogLine>("demo/log", config)?;
    let mut publisher = node.publisher::<LogLine>("demo/log", config)?;

    let mut line = publisher.loan_zeroed()?;
    line.stamp_ns = shmidl_examples::now_ns();
    line.level.set(Level::Warn);
    line.text.push_str("disk 91% full")?;
    line.codes.extend_from_slice(&[507, 28])?;
    publisher.publish(line)?;

    let got = subscriber.try_recv()?.ok_or("nothing arrived")?;
    println!(
        "received {:?} {:?} {:?} ({} bytes, fingerprint {:#018x})",
        got.level.get()?,
        got.text.as_str(),
        got.codes.as_slice(),
        std::mem::size_of::<LogLine>(),
        <LogLine as shmidl::ShmSafe>::FINGERPRINT,
    );

    // The same value on the wire, and back, validated.
    let bytes = got.encode_to_vec()?;
    let back = LogLine::decode(&bytes)?;
    println!(
        "wire: {} bytes, decoded {:?}",
        bytes.len(),
        back.text.as_str()
    );
    Ok(())
}
