//! `cargo bench -p shmidl --bench wire`: the wire codec against `memcpy`.
//!
//! In one run: a 4 KiB plain message (integers only: nothing to validate)
//! encoded, decoded, and both, against copying the same 4 KiB with
//! `copy_from_slice` once (the baseline) and twice (the floor of a
//! round trip, which is two copies); and a joint-state message with strings, a sequence and
//! an enum (validation walks every field) against a memcpy of its size. Report
//! ratios of throughput, not absolute times: the machine is shared. 4 KiB
//! copies are sensitive to where the buffers sit (two addresses 4 KiB apart
//! alias in the store buffer): compare within one run.

// criterion_group!/criterion_main! generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shmidl::{Enum, FixedSizeString, FixedSizeVec, LocalPool, ShmMessage};

#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Plain4K {
    stamp: u64,
    data: [u32; 1022],
}

#[derive(ShmMessage, Clone, Copy, Debug, Default, PartialEq)]
#[repr(u8)]
enum Mode {
    #[default]
    Idle = 0,
    Run = 1,
    Fault = 2,
}

/// `robot.v1.JointState` of docs/schema-language.md.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
#[shm(name = "robot.v1.JointState", default)]
struct JointState {
    stamp_ns: u64,
    mode: Enum<Mode>,
    names: [FixedSizeString<32>; 16],
    #[shm(padding)]
    __pad0: [u8; 7],
    position: FixedSizeVec<f64, 16>,
    pose: [f64; 3],
}

fn codec(c: &mut Criterion) {
    let plain = Plain4K {
        stamp: 1,
        data: [0x5a5a_5a5a; 1022],
    };
    let size = std::mem::size_of::<Plain4K>();
    let src = vec![0x5au8; size];
    let mut buf = vec![0u8; size];

    let mut g = c.benchmark_group("4 KiB plain");
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function("memcpy", |b| {
        b.iter(|| buf.copy_from_slice(black_box(&src)))
    });
    // The floor of a round trip: there and back.
    let mut back = vec![0u8; size];
    g.bench_function("memcpy x2", |b| {
        b.iter(|| {
            buf.copy_from_slice(black_box(&src));
            back.copy_from_slice(black_box(&buf));
        })
    });
    g.bench_function("encode", |b| {
        b.iter(|| black_box(&plain).encode(&mut buf).unwrap())
    });
    let encoded = plain.encode_to_vec().unwrap();
    g.bench_function("decode", |b| {
        b.iter(|| black_box(Plain4K::decode(black_box(&encoded)).unwrap()))
    });
    let mut out = plain;
    g.bench_function("decode_in_place", |b| {
        b.iter(|| {
            black_box(&mut out)
                .decode_in_place(black_box(&encoded))
                .unwrap()
        })
    });
    let pool = LocalPool::<Plain4K>::new(4).unwrap();
    g.bench_function("decode_into pool slot", |b| {
        b.iter(|| {
            let slot = pool.try_loan_uninit().unwrap();
            black_box(Plain4K::decode_into(black_box(&encoded), slot).unwrap())
        })
    });
    g.bench_function("encode+decode (by value)", |b| {
        b.iter(|| {
            black_box(&plain).encode(&mut buf).unwrap();
            black_box(Plain4K::decode(black_box(&buf)).unwrap())
        })
    });
    g.bench_function("encode+decode_in_place", |b| {
        b.iter(|| {
            black_box(&plain).encode(&mut buf).unwrap();
            black_box(&mut out)
                .decode_in_place(black_box(&buf))
                .unwrap()
        })
    });
    g.finish();

    let mut joint = JointState {
        stamp_ns: 7,
        mode: Mode::Run.into(),
        ..Default::default()
    };
    for (i, name) in joint.names.iter_mut().enumerate() {
        *name = format!("joint_{i}").as_str().try_into().unwrap();
        joint.position.push(i as f64 * 0.1).unwrap();
    }
    let size = std::mem::size_of::<JointState>();
    let src = vec![0x5au8; size];
    let mut buf = vec![0u8; size];
    let mut g = c.benchmark_group("joint state (strings, sequence, enum)");
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function("memcpy", |b| {
        b.iter(|| buf.copy_from_slice(black_box(&src)))
    });
    let mut out = joint;
    g.bench_function("encode+decode_in_place", |b| {
        b.iter(|| {
            black_box(&joint).encode(&mut buf).unwrap();
            black_box(&mut out)
                .decode_in_place(black_box(&buf))
                .unwrap()
        })
    });
    g.bench_function("validate", |b| {
        b.iter(|| JointState::validate(black_box(&buf)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
