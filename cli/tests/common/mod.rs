//! What the `shmidl bench` tests share.

use std::process::Command;

/// Runs `shmidl` with `args` (which end in `--json`), checks that it
/// succeeded (its stderr is the failure message) and parses its stdout.
pub fn shmidl_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_shmidl"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shmidl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
