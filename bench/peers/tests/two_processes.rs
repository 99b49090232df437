//! Runs the real binary end to end, with few iterations: every bench completes between two
//! processes, prints the agreed JSON, and leaves nothing in /dev/shm.

use std::process::{Command, Stdio};

use serde_json::Value;

fn leftovers_of(pid: u32) -> Vec<String> {
    let prefix = format!("shmidl-peers-{pid}-");
    std::fs::read_dir("/dev/shm")
        .expect("list /dev/shm")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[test]
fn all_benches_run_between_two_processes_and_clean_up() {
    let child = Command::new(env!("CARGO_BIN_EXE_shmidl-peers"))
        .args(["all", "--iterations", "300", "--warmup", "30", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn shmidl-peers");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for shmidl-peers");
    assert!(out.status.success(), "exit status {}", out.status);

    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON value");
    let runs = v.as_array().expect("`all --json` prints an array");
    let names: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["bench"].as_str().unwrap(),
                r["mode"].as_str().unwrap(),
                r["payload"].as_u64().unwrap(),
                r["placement"].as_str().unwrap(),
            )
        })
        .collect();
    let expected = [
        "cacheline busy-poll 8 free",
        "iceoryx2 busy-poll 64 free",
        "iceoryx2 busy-poll 4194304 free",
        "futex blocking 4 same-cpu",
        "iceoryx2 blocking 64 same-cpu",
        "iceoryx2 blocking-waitset 64 same-cpu",
        "futex blocking 4 split-cpu",
        "iceoryx2 blocking 64 split-cpu",
        "iceoryx2 blocking-waitset 64 split-cpu",
    ];
    assert_eq!(names, expected);
    for r in runs {
        assert_eq!(r["iterations"], 300);
        for key in ["one_way_ns", "round_trip_ns"] {
            let p = |name: &str| r[key][name].as_f64().unwrap();
            assert!(p("min") > 0.0);
            assert!(p("min") <= p("p50") && p("p50") <= p("p90"));
            assert!(p("p90") <= p("p99") && p("p99") <= p("max"));
        }
        assert_eq!(
            r["one_way_ns"]["p50"].as_f64().unwrap() * 2.0,
            r["round_trip_ns"]["p50"].as_f64().unwrap()
        );
    }
    assert_eq!(leftovers_of(pid), Vec::<String>::new());
}

#[test]
fn an_unsupported_payload_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_shmidl-peers"))
        .args(["iceoryx2", "--payload", "100"])
        .output()
        .expect("run shmidl-peers");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not built in"));
}
