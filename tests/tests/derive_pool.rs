//! Derived types in real shared memory: a pool sample and a segment object
//! read and written by another process, and the fingerprint refusing a
//! different type under the same name.

use std::{
    env,
    process::Command,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use shmidl::{ObjectError, Pool, PoolOpenError, RawSample, Segment, ShmMessage, ShmSafe};
use shmidl_tests::{field, unique_name, wait_with_deadline};

#[derive(ShmMessage, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
#[shm(name = "test.derive.Vec3")]
struct Vec3 {
    x: f64,
    y: f64,
    z: f64,
}

#[derive(ShmMessage, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
#[shm(name = "test.derive.Telemetry")]
struct Telemetry {
    stamp_ns: u64,
    pose: Vec3,
    joints: [f32; 6],
    mode: u8,
    #[shm(padding)]
    __pad0: [u8; 7],
}

/// Same layout as `Telemetry`, another field name: another type.
#[derive(ShmMessage, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
#[shm(name = "test.derive.Telemetry")]
struct TelemetryRenamed {
    time_ns: u64,
    pose: Vec3,
    joints: [f32; 6],
    mode: u8,
    #[shm(padding)]
    __pad0: [u8; 7],
}

/// Shared counters, placed directly in a segment.
#[derive(ShmMessage)]
#[repr(C)]
struct Counters {
    reads: AtomicU64,
    last_mode: AtomicU32,
    #[shm(padding)]
    __pad0: [u8; 4],
}

fn telemetry(stamp_ns: u64) -> Telemetry {
    Telemetry {
        stamp_ns,
        pose: Vec3 {
            x: 1.5,
            y: -2.0,
            z: 0.25,
        },
        joints: [0.0, 0.5, 1.0, 1.5, 2.0, 2.5],
        mode: 3,
        __pad0: [0; 7],
    }
}

const CHILD_ENV: &str = "SHMIDL_DERIVE_POOL_CHILD";
const TEST_NAME: &str = "a_derived_sample_is_read_by_another_process";

#[test]
fn a_derived_sample_is_read_by_another_process() {
    // This test binary is its own child: with CHILD_ENV set it plays the
    // reader and exits.
    if let Ok(args) = env::var(CHILD_ENV) {
        return read_in_child(&args);
    }

    let name = unique_name("derive-pool");
    let seg = Segment::builder(&name)
        .size(1 << 20)
        .create_exclusive()
        .unwrap();
    let counters = seg
        .find_or_create("counters", || Counters {
            reads: AtomicU64::new(0),
            last_mode: AtomicU32::new(0),
            __pad0: [0; 4],
        })
        .unwrap();
    let pool = Pool::<Telemetry>::builder(&seg, "telemetry")
        .capacity(4)
        .open_or_create()
        .unwrap();
    let sample = pool.try_make(telemetry(42)).unwrap().freeze();

    let child = Command::new(env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--test-threads=1"])
        .env(CHILD_ENV, format!("{name},{}", sample.raw().to_u64()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_deadline(child, Instant::now() + Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {out:?}");
    assert_eq!(
        field(&stdout, "child"),
        Some("read"),
        "the child did not run: {stdout}"
    );
    assert_eq!(counters.reads.load(Ordering::SeqCst), 1);
    assert_eq!(counters.last_mode.load(Ordering::SeqCst), 3);
    assert_eq!(*sample, telemetry(42), "the child only read the sample");
    drop(sample);
    assert_eq!(pool.free_count(), 4);
}

/// The child: opens the segment and pool by name, upgrades the handle, checks
/// every field, and reports through the shared counters and stdout.
fn read_in_child(args: &str) {
    use std::io::Write;

    let (name, raw) = args.split_once(',').expect("CHILD_ENV is `name,raw`");
    let raw = RawSample::from_u64(raw.parse().expect("raw handle"));
    let seg = Segment::open(name).unwrap();
    let pool = Pool::<Telemetry>::builder(&seg, "telemetry")
        .capacity(4)
        .open()
        .unwrap();
    let sample = pool.upgrade(raw).unwrap();
    assert_eq!(*sample, telemetry(42));
    let counters = seg.find::<Counters>("counters").unwrap();
    counters.reads.fetch_add(1, Ordering::SeqCst);
    counters
        .last_mode
        .store(u32::from(sample.mode), Ordering::SeqCst);
    // Not `println!`: libtest captures that, and the parent reads stdout.
    // The leading newline ends libtest's `test ... ` line.
    std::io::stdout().write_all(b"\nchild=read\n").unwrap();
}

#[test]
fn a_pool_refuses_a_type_with_another_fingerprint() {
    assert_ne!(Telemetry::FINGERPRINT, TelemetryRenamed::FINGERPRINT);
    assert_eq!(
        std::mem::size_of::<Telemetry>(),
        std::mem::size_of::<TelemetryRenamed>()
    );
    let seg = Segment::builder(&unique_name("derive-mismatch"))
        .size(1 << 20)
        .create_exclusive()
        .unwrap();
    let _pool = Pool::<Telemetry>::builder(&seg, "telemetry")
        .capacity(2)
        .open_or_create()
        .unwrap();
    let err = Pool::<TelemetryRenamed>::builder(&seg, "telemetry")
        .capacity(2)
        .open()
        .err()
        .expect("a pool of another type opened");
    assert!(
        matches!(err, PoolOpenError::Object(ObjectError::TypeMismatch { .. })),
        "{err}"
    );
    // An object placed directly in the segment is checked the same way.
    seg.find_or_create("pose", || Vec3 {
        x: 0.0,
        y: 0.0,
        z: 0.0,
    })
    .unwrap();
    assert!(matches!(
        seg.find::<Telemetry>("pose").err(),
        Some(ObjectError::TypeMismatch { .. })
    ));
}
