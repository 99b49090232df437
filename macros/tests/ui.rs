//! Compile-time behaviour of `#[derive(ShmMessage)]`: what it accepts and
//! the error it gives for each thing it refuses. The `.stderr` files are
//! written by `TRYBUILD=overwrite cargo test -p shmidl-macros --test ui`,
//! never by hand.

#[test]
fn ui() {
    // One `TestCases` for all files: dependencies are built once.
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
