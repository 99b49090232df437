//! `cargo +nightly fuzz run ws_frame`: the websocket frame parser never
//! panics, and whatever it accepts re-encodes to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmidl::net::fuzzing::check_frame_input(data);
});
