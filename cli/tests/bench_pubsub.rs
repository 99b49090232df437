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

/// The fan-out rows (one publisher to one and to four subscriber
/// processes, placed by the scheduler and spread) and the runtime-sized
/// frame rows are there, with their figures, in one run.
#[test]
fn bench_pubsub_fanout_and_slice_rows_are_reported() {
    let rows = common::shmidl_json(&[
        "bench",
        "pubsub",
        "--only",
        "fanout,slice",
        "--stream",
        "8000",
        "--iterations",
        "200",
        "--warmup",
        "20",
        "--json",
    ]);
    let rows = rows.as_array().unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["bench"] == name)
            .unwrap_or_else(|| panic!("no {name} in {rows:?}"))
    };
    for name in [
        "shmidl-block-1to1/64",
        "shmidl-block-1to4/64",
        "shmidl-block-1to1/64@spread",
        "shmidl-block-1to4/64@spread",
        "shmidl-poll-slice/64",
        "shmidl-poll-slice/6220800",
    ] {
        let p50 = row(name)["one_way_ns"]["p50"].as_u64().unwrap();
        assert!(p50 > 0, "{}", row(name));
    }
    // The `@batch` row needs a system that lets a process choose
    // SCHED_BATCH (the bench skips it, with a note, elsewhere).
    let batch_allowed = std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: changes only this short-lived thread's policy.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0 }
    })
    .join()
    .unwrap();
    let batch = ["shmidl-throughput-block-1to4/64@batch"];
    for name in [
        "shmidl-throughput-1to1/64",
        "shmidl-throughput-1to4/64",
        "shmidl-throughput-block-1to1/64",
        "shmidl-throughput-block-1to4/64",
    ]
    .into_iter()
    .chain(batch.into_iter().filter(|_| batch_allowed))
    {
        let r = row(name);
        let rate = r["million_messages_per_s"].as_f64().unwrap();
        let cpu = r["cpu_ns_per_message"].as_f64().unwrap();
        assert!(rate > 0.0 && rate < 1000.0, "{r}");
        assert!(cpu > 0.0, "{r}");
    }
}
