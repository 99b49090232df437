//! Property test: whatever bytes a segment file holds, opening it and using
//! its directory gives typed errors, never a panic or undefined behaviour.
//!
//! The same harness is the body of the cargo-fuzz target `segment_open`.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

use proptest::prelude::*;
use shmidl::{Segment, MIN_SEGMENT_SIZE};

fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "fz-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn path(name: &str) -> String {
    format!("/dev/shm/shmidl.{name}")
}

/// The bytes of a real segment with a few objects in it.
fn template() -> Vec<u8> {
    let name = unique("tpl");
    let seg = Segment::builder(&name)
        .size(MIN_SEGMENT_SIZE)
        .create_exclusive()
        .unwrap();
    seg.find_or_create("a", || AtomicU64::new(7)).unwrap();
    seg.find_or_create("bb", || [1u32; 16]).unwrap();
    std::fs::read(path(&name)).unwrap()
}

/// Writes `bytes` as segment file `name`, opens it and exercises it.
fn open_arbitrary(bytes: &[u8]) {
    let name = unique("case");
    std::fs::write(path(&name), bytes).unwrap();
    if let Ok(seg) = Segment::builder(&name).timeout(Duration::ZERO).open() {
        for (obj, _) in seg.objects() {
            let _ = seg.find::<u64>(&obj);
        }
        let _ = seg.find::<AtomicU64>("a");
        let _ = seg.find::<[u32; 16]>("bb");
        let _ = seg.find_or_create("new", || 5u8);
        let _ = (seg.free_bytes(), seg.attached());
    }
    // Opening may have removed it (last handle); ignore "not found".
    let _ = std::fs::remove_file(path(&name));
}

/// `len` pseudo-random bytes from `seed` (splitmix64): far cheaper to
/// generate than a proptest vector of that many bytes.
fn noise(mut seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let tpl = template();
    let len = tpl.len();
    (
        prop::collection::vec((0..len, any::<u8>()), 1..8),
        prop::option::weighted(0.2, 0..len + 64),
    )
        .prop_map(move |(edits, cut)| {
            let mut b = tpl.clone();
            for (i, v) in edits {
                b[i] = v;
            }
            if let Some(n) = cut {
                b.resize(n, 0);
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn opening_random_bytes_never_panics(seed in any::<u64>(), len in 0usize..40_000) {
        open_arbitrary(&noise(seed, len));
    }

    #[test]
    fn opening_a_damaged_segment_never_panics(bytes in mutated()) {
        open_arbitrary(&bytes);
    }
}

#[test]
fn an_all_zero_file_is_not_a_segment() {
    let name = unique("zero");
    std::fs::write(path(&name), vec![0u8; MIN_SEGMENT_SIZE as usize]).unwrap();
    let err = Segment::open(&name).unwrap_err();
    std::fs::remove_file(path(&name)).unwrap();
    assert!(
        matches!(err, shmidl::SegmentOpenError::NotASegment { .. }),
        "{err}"
    );
}

#[test]
fn a_truncated_segment_is_truncated() {
    let name = unique("trunc");
    let mut b = template();
    b.truncate(b.len() / 2);
    std::fs::write(path(&name), &b).unwrap();
    let err = Segment::open(&name).unwrap_err();
    std::fs::remove_file(path(&name)).unwrap();
    assert!(
        matches!(err, shmidl::SegmentOpenError::Truncated { .. }),
        "{err}"
    );
}
