//! Runnable shmidl programs. Run the quickstart with
//! `cargo run --release --bin quickstart`.
