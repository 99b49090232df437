//! `cargo +nightly fuzz run topic_registry`: decoding a copy of a domain's
//! topic registry (what `shmidl ls` reads) never panics on any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmidl::registry_fuzzing::check_registry_input(data);
});
