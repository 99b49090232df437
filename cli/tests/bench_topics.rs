//! `shmidl bench topics` creates and joins topics in two processes and
//! prints their timings (small counts: this checks the command, not the
//! speed).

mod common;

#[test]
fn bench_topics_times_creating_and_joining_every_topic() {
    let v = common::shmidl_json(&["bench", "topics", "--topics", "40", "--json"]);
    assert_eq!(v["topics"], 40, "{v}");
    for kind in ["create", "join"] {
        for field in ["first10_us", "last10_us", "median_us", "p99_us"] {
            let us = v[kind][field].as_f64().unwrap_or(-1.0);
            assert!(us > 0.0 && us < 60e6, "{kind}.{field} in {v}");
        }
    }
}
