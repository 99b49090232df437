//! `shmidl bench bridge` runs its three paths (a sink process for the
//! two-process websocket, two bridge processes for the bridged one) and
//! prints their figures as JSON (small counts: this checks the command,
//! not the speed), leaving nothing in /dev/shm.

mod common;

#[test]
fn bench_bridge_measures_both_paths_and_cleans_up() {
    let v = common::shmidl_json(&[
        "bench",
        "bridge",
        "--iterations",
        "50",
        "--stream",
        "2000",
        "--json",
    ]);
    for path in ["websocket", "websocket_two_processes", "bridge"] {
        assert!(v[path]["p50_ns"].as_u64().unwrap() > 0, "{v}");
        assert!(v[path]["messages_per_s"].as_f64().unwrap() > 0.0, "{v}");
    }
    // Only this test makes `bench-bridge-*` domains.
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("bench-bridge-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
