//! The discovery packet, websocket frame and websocket stream fuzz
//! harnesses, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/{discovery_packet,ws_frame,ws_stream}.rs`, nightly,
//! by hand) and the proptests that run them in CI
//! (`runtime/tests/discovery_packet.rs`, `net/ws/frame.rs` and
//! `net/ws/reader.rs` tests). Not public API. (It lives in `net/`, not in
//! the crate's `fuzzing` module, so that no lower layer names `net`.)

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

/// Parses `data` as a websocket frame (and its payload with the wire
/// harness, `crate::fuzzing::check_wire_input`). Panics if the parser
/// panics, or if an accepted frame does not encode back to exactly `data`.
pub fn check_frame_input(data: &[u8]) {
    use super::ws::FrameHeader;
    if let Ok((header, payload)) = FrameHeader::parse(data, 1 << 20) {
        let again = header.encode(payload).expect("an accepted frame encodes");
        assert_eq!(again, data, "accepted bytes must re-encode identically");
        crate::fuzzing::check_wire_input(payload);
    }
}

/// Reads `data` as the bytes a server sends a subscriber after the
/// handshake (websocket frames: RFC 6455 §5), with a small and a large
/// message limit. Panics if the reader panics or hands out a message
/// outside its buffer.
pub fn check_ws_stream_input(data: &[u8]) {
    for max in [64, 1 << 20] {
        super::ws::reader::read_events(data, max);
    }
}
