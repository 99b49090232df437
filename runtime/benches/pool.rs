//! `cargo bench -p shmidl --bench pool`: pool pointers against the heap.
//!
//! Loan+drop of a 64-byte value from `Pool` (shared memory) and `LocalPool`
//! against `Box::new`+drop, and a process-local clone+drop of a `Sample`
//! against `Arc::clone`+drop, all in the same run so the ratios hold on a
//! noisy machine.

// criterion_group!/criterion_main! generate undocumented functions.
#![allow(missing_docs)]

use std::{hint::black_box, sync::Arc};

use criterion::{criterion_group, criterion_main, Criterion};
use shmidl::{LocalPool, Pool, Segment};

type Payload = [u64; 8]; // 64 bytes

fn loan_drop(c: &mut Criterion) {
    let name = format!("bench-pool-{}", std::process::id());
    let seg = Segment::builder(&name)
        .size(1 << 20)
        .create_exclusive()
        .unwrap();
    let pool = Pool::<Payload>::builder(&seg, "p")
        .capacity(64)
        .open_or_create()
        .unwrap();
    let local = LocalPool::<Payload>::new(64).unwrap();
    let mut g = c.benchmark_group("loan+drop 64B");
    g.bench_function("Box::new", |b| {
        b.iter(|| drop(black_box(Box::new([7u64; 8]))))
    });
    g.bench_function("Pool", |b| {
        b.iter(|| drop(black_box(pool.try_make([7u64; 8]).ok().unwrap())))
    });
    g.bench_function("LocalPool", |b| {
        b.iter(|| drop(black_box(local.try_make([7u64; 8]).ok().unwrap())))
    });
    g.finish();

    let mut g = c.benchmark_group("clone+drop");
    let arc = Arc::new([7u64; 8]);
    let shared = pool.try_make([7u64; 8]).ok().unwrap().freeze();
    let local_shared = local.try_make([7u64; 8]).ok().unwrap().freeze();
    g.bench_function("Arc::clone", |b| b.iter(|| drop(black_box(arc.clone()))));
    g.bench_function("Pool Sample::clone", |b| {
        b.iter(|| drop(black_box(shared.clone())))
    });
    g.bench_function("LocalPool Sample::clone", |b| {
        b.iter(|| drop(black_box(local_shared.clone())))
    });
    g.finish();
}

criterion_group!(benches, loan_drop);
criterion_main!(benches);
