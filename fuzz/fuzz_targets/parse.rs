//! Any input: parsing, validating, rendering diagnostics and formatting never panic, and
//! formatting round-trips. See `shmidl_idl::fuzzing::check_input`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmidl_idl::fuzzing::check_input(data);
});
