//! The discovery packet fuzz harness, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/discovery_packet.rs`, nightly, by hand) and the
//! proptests that run it in CI (`runtime/tests/discovery_packet.rs`). Not
//! public API. (It lives in `net/`, not in the crate's `fuzzing` module,
//! so that no lower layer names `net`.)

use super::Packet;

/// Parses `data` as a discovery packet. Panics if the parser panics, or if
/// an accepted packet does not encode back to exactly `data` (the format is
/// canonical) or does not parse again to the same packet.
pub fn check_discovery_input(data: &[u8]) {
    if let Ok(packet) = Packet::parse(data) {
        let again = packet.encode().expect("an accepted packet encodes");
        assert_eq!(again, data, "accepted bytes must re-encode identically");
        assert_eq!(Packet::parse(&again).as_ref(), Ok(&packet));
    }
}
