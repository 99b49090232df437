//! `shmidl bench pubsub` runs and prints JSON rows (small counts: this
//! checks the command and its placements, not the speed).

mod common;

#[test]
fn bench_pubsub_throughput_runs_at_both_placements() {
    let rows = common::shmidl_json(&[
        "bench",
        "pubsub",
        "--only",
        "throughput",
        "--stream",
        "20000",
        "--iterations",
        "200",
        "--warmup",
        "20",
        "--runs",
        "2",
        "--json",
    ]);
    let rows = rows.as_array().unwrap();
    for name in [
        "shmidl-throughput/64@two-cpus",
        "shmidl-throughput/64@same-cpu",
    ] {
        let row = rows
            .iter()
            .find(|r| r["bench"] == name)
            .unwrap_or_else(|| panic!("no {name} in {rows:?}"));
        let rate = row["million_messages_per_s"].as_f64().unwrap();
        // A cross-process stream of 64 B cannot beat a billion a second.
        assert!(rate > 0.0 && rate < 1000.0, "{row}");
        let lo = row["million_messages_per_s_min"].as_f64().unwrap();
        let hi = row["million_messages_per_s_max"].as_f64().unwrap();
        assert!(lo <= rate && rate <= hi, "{row}");
        assert_eq!(row["runs"], 2);
    }
}
