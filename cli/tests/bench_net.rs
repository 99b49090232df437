//! `shmidl bench net` runs every case and prints one JSON row per case
//! (small counts: this checks the command, not the speed).

use std::process::Command;

#[test]
fn bench_net_prints_four_rows_of_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_shmidl"))
        .args([
            "bench", "net", "--small", "2000", "--large", "20", "--runs", "2", "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert!(row["websocket_msgs_per_s"].as_f64().unwrap() > 0.0);
        assert!(row["raw_tcp_msgs_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(row["runs"], 2);
        let (lo, hi) = (
            row["ratio_to_direct_min"].as_f64().unwrap(),
            row["ratio_to_direct_max"].as_f64().unwrap(),
        );
        assert!(lo > 0.0 && lo <= hi, "{row}");
    }
}
