//! `shmidl bench net` runs every case and prints one JSON row per case
//! (small counts: this checks the command, not the speed).

mod common;

#[test]
fn bench_net_prints_four_rows_of_json() {
    let rows = common::shmidl_json(&[
        "bench", "net", "--small", "2000", "--large", "20", "--runs", "2", "--json",
    ]);
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
