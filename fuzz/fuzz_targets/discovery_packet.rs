//! `cargo +nightly fuzz run discovery_packet`: the discovery packet parser
//! never panics, and whatever it accepts re-encodes to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmidl::net::fuzzing::check_discovery_input(data);
});
