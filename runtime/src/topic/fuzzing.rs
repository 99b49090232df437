//! The topic registry decoder's fuzz harness, shared by the cargo-fuzz
//! target (`fuzz/fuzz_targets/topic_registry.rs`, nightly, by hand) and the
//! proptest that runs it in CI (`topic/registry.rs`). Not public API
//! (`shmidl::registry_fuzzing`, hidden).

use super::registry::{decode_records, MAX_TOPIC_NAME_LEN};

/// Decodes `data` as a copy of a domain's topic registry (what `shmidl ls`
/// reads out of a segment another process wrote): panics only if the
/// decoder does, or returns more entries than fit in `data`, or a name
/// longer than an entry holds.
pub fn check_registry_input(data: &[u8]) {
    let records = decode_records(data);
    assert!(records.len() <= data.len().saturating_sub(64) / 512);
    for (name, _) in records {
        assert!(name.len() <= 3 * MAX_TOPIC_NAME_LEN, "{name:?}");
    }
}
