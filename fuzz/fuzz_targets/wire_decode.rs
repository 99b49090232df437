//! `cargo +nightly fuzz run wire_decode`: the wire decoder never panics, and
//! whatever it accepts re-encodes to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmidl::fuzzing::check_wire_input(data);
});
