//! `cargo +nightly fuzz run ws_stream`: the subscriber's websocket reader
//! never panics on what a server sends, and every message it hands out
//! lies inside its buffer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmidl::net::fuzzing::check_ws_stream_input(data);
});
