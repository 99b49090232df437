//! `shmidl spy` and `shmidl announce` through the real binary, on loopback,
//! each test on its own UDP port.

use std::{
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

const SHMIDL: &str = env!("CARGO_BIN_EXE_shmidl");

fn free_port() -> String {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string()
}

fn spawn(args: &[&str]) -> Child {
    Command::new(SHMIDL)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running shmidl")
}

/// Waits with a deadline; kills the child and fails if it hangs.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("shmidl did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn rows(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn spy_lists_what_announce_announces_as_json_lines() {
    let port = free_port();
    let net = ["--interface", "lo", "--port", &port];
    let announcer = spawn(
        &[
            &[
                "announce",
                "--topic",
                "demo/a",
                "--topic",
                "demo/b",
                "--type",
                "demo.v1.T",
                "--fingerprint",
                "0x00c0ffee12345678",
                "--ws-port",
                "9001",
                "--ws-path",
                "/demo",
                "--interval",
                "200ms",
                "--for",
                "4s",
            ][..],
            &net[..],
        ]
        .concat(),
    );
    let spy = finish(spawn(&[&["spy", "--for", "2500ms"][..], &net[..]].concat()));
    assert!(spy.status.success(), "{spy:?}");
    // Piped, so JSON lines without --json: one object per topic per refresh.
    let rows = rows(&spy);
    let last_refresh = rows.iter().filter_map(|r| r["refresh"].as_u64()).max();
    assert_eq!(last_refresh, Some(3), "{rows:#?}");
    let last: Vec<_> = rows.iter().filter(|r| r["refresh"] == 3).collect();
    let topics: Vec<&str> = last.iter().filter_map(|r| r["topic"].as_str()).collect();
    assert_eq!(topics, ["demo/a", "demo/b"], "{rows:#?}");
    let a = last[0];
    assert_eq!(a["type"], "demo.v1.T");
    assert_eq!(a["fingerprint"], "0x00c0ffee12345678");
    assert_eq!(a["role"], "publisher");
    assert_eq!(a["endpoint"], "127.0.0.1:9001/demo");
    assert_eq!(a["connectable"], true);
    assert!(a["rate_hz"].as_f64().unwrap() > 0.0, "{a}");
    let announced = finish(announcer);
    assert!(announced.status.success(), "{announced:?}");
    eprintln!("spy row: {a}");
}

#[test]
fn spy_with_nothing_announced_prints_nothing_and_bad_durations_are_refused() {
    let port = free_port();
    let out = finish(spawn(&[
        "spy",
        "--for",
        "300ms",
        "--json",
        "--interface",
        "lo",
        "--port",
        &port,
    ]));
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let out = finish(spawn(&["spy", "--for", "3 fortnights"]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown unit"),
        "{out:?}"
    );
}

#[test]
fn an_unknown_interface_is_an_error_not_a_silent_spy() {
    let out = finish(spawn(&["spy", "--for", "1s", "--interface", "no-such-if0"]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no network interface named"),
        "{out:?}"
    );
}

#[test]
fn with_a_secret_file_only_a_spy_with_the_same_secret_lists_the_topic() {
    let dir = std::env::temp_dir();
    let key = dir.join(format!("shmidl-spy-key-{}", std::process::id()));
    let other = dir.join(format!("shmidl-spy-other-{}", std::process::id()));
    std::fs::write(&key, "the secret of this deployment\n").unwrap();
    std::fs::write(&other, "somebody else's secret key\n").unwrap();
    let port = free_port();
    let net = ["--interface", "lo", "--port", &port];
    let with = |file: &std::path::Path| {
        [
            "--secret-file".to_owned(),
            file.to_str().unwrap().to_owned(),
        ]
    };
    let key_args = with(&key);
    let key_args: Vec<&str> = key_args.iter().map(String::as_str).collect();
    let other_args = with(&other);
    let other_args: Vec<&str> = other_args.iter().map(String::as_str).collect();
    let announce = [
        "announce",
        "--topic",
        "sealed/t",
        "--type",
        "demo.v1.T",
        "--fingerprint",
        "7",
        "--interval",
        "200ms",
        "--for",
        "3s",
    ];
    let announcer = spawn(&[&announce[..], &net[..], &key_args[..]].concat());
    let right = spawn(&[&["spy", "--for", "2s"][..], &net[..], &key_args[..]].concat());
    let wrong = spawn(&[&["spy", "--for", "2s"][..], &net[..], &other_args[..]].concat());
    let (right, wrong) = (finish(right), finish(wrong));
    assert!(
        right.status.success() && wrong.status.success(),
        "{right:?} {wrong:?}"
    );
    assert!(
        rows(&right).iter().any(|r| r["topic"] == "sealed/t"),
        "{right:?}"
    );
    assert!(
        !rows(&wrong).iter().any(|r| r["topic"] == "sealed/t"),
        "{wrong:?}"
    );
    assert!(finish(announcer).status.success());
    // A secret that cannot be read is a clear error, not an open network.
    let missing = finish(spawn(
        &[
            &["spy", "--for", "1s", "--secret-file", "/nonexistent/key"][..],
            &net[..],
        ]
        .concat(),
    ));
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/key"),
        "{missing:?}"
    );
    std::fs::remove_file(&key).unwrap();
    std::fs::remove_file(&other).unwrap();
}
