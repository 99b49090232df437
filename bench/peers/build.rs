//! Reads the resolved iceoryx2 version from this crate's own `Cargo.lock`, so every report
//! names the version that was actually measured.

use std::{env, fs, path::Path};

fn main() {
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let lock = Path::new(&dir).join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = fs::read_to_string(&lock).unwrap_or_default();
    let mut lines = text.lines();
    let mut version = String::from("unknown");
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"iceoryx2\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                version = v.trim_matches('"').to_owned();
            }
            break;
        }
    }
    println!("cargo:rustc-env=SHMIDL_PEERS_ICEORYX2_VERSION={version}");
}
