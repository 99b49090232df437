//! Parse and check a generated 10,000-line schema, compared with just reading it.
//!
//! ```sh
//! cargo bench -p shmidl-idl --bench parse
//! ```

use std::{hint::black_box, path::PathBuf};

use criterion::{criterion_main, Criterion};

/// A schema of about `lines` lines using every construct: constants, enums, structs that
/// refer to earlier ones, messages and topics, with docs and comments.
fn generate(lines: usize) -> String {
    let mut s = String::from("/// Benchmark schema.\npackage bench.v1;\n\nconst N: u32 = 8;\n\n");
    let mut i = 0;
    while s.lines().count() < lines {
        s.push_str(&format!(
            "/// Mode {i}.\nenum Mode{i}: u8 {{\n    Idle = 0,\n    Run = 1,\n    Fault = 2,\n}}\n\n"
        ));
        s.push_str(&format!(
            "// Point {i}.\nstruct Point{i} {{\n    x: f64,\n    y: f64,\n    z: f32,\n}}\n\n"
        ));
        s.push_str(&format!(
            "/// Sample {i}.\nmessage Sample{i} {{\n    stamp_ns: u64,\n    mode: Mode{i},\n    name: string<32>,\n    \
             points: sequence<Point{i}, N>,\n    grid: [[u8; 4]; N],\n    blob: bytes<64>,\n    prev: {},\n}}\n\n",
            if i == 0 { "Point0".to_owned() } else { format!("Point{}", i - 1) }
        ));
        s.push_str(&format!("topic \"bench/sample_{i}\": Sample{i} {{ pool: 16, depth: 4, overflow: soft_fail }}\n\n"));
        i += 1;
    }
    s
}

fn bench(c: &mut Criterion) {
    let text = generate(10_000);
    let path: PathBuf =
        std::env::temp_dir().join(format!("shmidl-bench-{}.shmidl", std::process::id()));
    if let Err(e) = std::fs::write(&path, &text) {
        panic!("cannot write {}: {e}", path.display());
    }
    match shmidl_idl::load(&path, &[]) {
        Ok(schema) => eprintln!(
            "generated schema: {} lines, {} bytes, {} types, {} topics",
            text.lines().count(),
            text.len(),
            schema.types().len(),
            schema.topics().len()
        ),
        Err(d) => panic!("generated schema is invalid:\n{d}"),
    }
    let mut group = c.benchmark_group("schema_10k_lines");
    group.sample_size(20);
    group.bench_function("read_file", |b| {
        b.iter(|| black_box(std::fs::read_to_string(&path).map(|t| t.len())))
    });
    group.bench_function("parse_only", |b| {
        b.iter(|| black_box(shmidl_idl::parse_ast("bench.shmidl", &text).is_ok()))
    });
    group.bench_function("load_parse_and_check", |b| {
        b.iter(|| {
            black_box(
                shmidl_idl::load(&path, &[])
                    .map(|s| s.types().len())
                    .unwrap_or(0),
            )
        })
    });
    group.bench_function("format", |b| {
        b.iter(|| black_box(shmidl_idl::format_str("bench.shmidl", &text).map(|t| t.len())))
    });
    group.finish();
    let _ = std::fs::remove_file(&path);
}

// `criterion_group!` defines an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
