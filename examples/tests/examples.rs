//! Every example runs to completion as a user would run it, with a deadline.

use std::{
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

/// Waits for `child` with a deadline; kills it and fails if it hangs.
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{what} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn spawn(exe: &str, args: &[&str]) -> Child {
    Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn producer_and_consumer_exchange_joint_states_in_two_processes() {
    let domain = format!("ex-joints-{}", std::process::id());
    let common = ["--domain", &domain, "--count", "300"];
    let consumer = spawn(
        env!("CARGO_BIN_EXE_consumer"),
        &[&common[..], &["--idle-secs", "60"]].concat(),
    );
    let producer = spawn(
        env!("CARGO_BIN_EXE_producer"),
        &[&common[..], &["--rate", "2000", "--wait-secs", "60"]].concat(),
    );
    let produced = finish(producer, "producer");
    let consumed = finish(consumer, "consumer");
    let produced = String::from_utf8(produced.stdout).unwrap();
    let consumed = String::from_utf8(consumed.stdout).unwrap();
    assert!(produced.contains("sent 300"), "{produced}");
    assert!(consumed.contains("received 300 joint states"), "{consumed}");
    // The last message switches the arm to Idle, read through the checked enum.
    assert!(consumed.contains("mode Idle"), "{consumed}");
    assert!(consumed.contains("joint_1 = "), "{consumed}");
}

#[test]
fn the_camera_hands_whole_frames_to_the_viewer() {
    let out = finish(
        spawn(env!("CARGO_BIN_EXE_camera"), &["--frames", "20"]),
        "camera",
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("640×480 RGB, checksums ok"), "{stdout}");
}

#[test]
fn the_derive_only_example_publishes_and_encodes() {
    let out = finish(spawn(env!("CARGO_BIN_EXE_derive_only"), &[]), "derive_only");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("received Warn \"disk 91% full\" [507, 28]"),
        "{stdout}"
    );
    assert!(stdout.contains("wire: 88 bytes"), "{stdout}");
}

/// The `shmidl` command built next to this package's binaries (by
/// `cargo test --workspace`, as CI runs it).
fn shmidl_cli() -> Option<std::path::PathBuf> {
    let cli = std::path::Path::new(env!("CARGO_BIN_EXE_producer")).with_file_name("shmidl");
    cli.exists().then_some(cli)
}

#[test]
fn shmidl_spy_lists_the_topic_an_announcing_producer_publishes() {
    let Some(cli) = shmidl_cli() else {
        eprintln!(
            "SKIPPED: no `shmidl` binary next to the examples; `cargo test --workspace` builds it"
        );
        return;
    };
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let domain = format!("ex-spy-{}", std::process::id());
    let common = ["--domain", &domain, "--count", "60"];
    // A consumer, so the producer runs its course (about 6 s) and both
    // leave nothing behind in /dev/shm.
    let consumer = spawn(
        env!("CARGO_BIN_EXE_consumer"),
        &[&common[..], &["--idle-secs", "60"]].concat(),
    );
    let producer = spawn(
        env!("CARGO_BIN_EXE_producer"),
        &[
            &common[..],
            &[
                "--rate",
                "10",
                "--wait-secs",
                "60",
                "--announce",
                "lo",
                "--announce-port",
                &port,
            ],
        ]
        .concat(),
    );
    let spy = finish(
        Command::new(cli)
            .args([
                "spy",
                "--for",
                "3s",
                "--json",
                "--interface",
                "lo",
                "--port",
                &port,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        "shmidl spy",
    );
    let produced = finish(producer, "producer");
    finish(consumer, "consumer");
    let lines = String::from_utf8(spy.stdout).unwrap();
    let rows: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let row = rows
        .iter()
        .find(|r| r["topic"] == "robot/joint_states")
        .unwrap_or_else(|| panic!("spy did not list the topic: {lines}"));
    let pid = String::from_utf8(produced.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.trim_end_matches(':').parse::<u64>().ok())
        .unwrap();
    assert_eq!(row["pid"], pid, "{row}");
    assert_eq!(row["type"], "robot.v1.JointState", "{row}");
    assert_eq!(row["role"], "publisher", "{row}");
    assert_eq!(
        row["fingerprint"],
        format!(
            "{:#018x}",
            <shmidl_examples::robot::v1::JointState as shmidl::ShmSafe>::FINGERPRINT
        ),
        "{row}"
    );
    eprintln!("spy: {row}");
}

/// Every example program explains its flags with `--help` and refuses a
/// flag it does not know (a typo must not be ignored), before it touches
/// shared memory or the network.
#[test]
fn every_example_answers_help_and_refuses_an_unknown_flag() {
    for (exe, flag) in [
        (env!("CARGO_BIN_EXE_producer"), "--count"),
        (env!("CARGO_BIN_EXE_consumer"), "--idle-secs"),
        (env!("CARGO_BIN_EXE_camera"), "--frames"),
        (env!("CARGO_BIN_EXE_net_publisher"), "--discovery-port"),
        (env!("CARGO_BIN_EXE_net_subscriber"), "--print-every"),
        (env!("CARGO_BIN_EXE_quickstart"), "no arguments"),
        (env!("CARGO_BIN_EXE_derive_only"), "Takes no arguments"),
    ] {
        let help = finish(spawn(exe, &["--help"]), exe);
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains("Usage") && text.contains(flag),
            "{exe}: {text}"
        );
        let typo = spawn(exe, &["--cuont", "5"]).wait_with_output().unwrap();
        assert!(!typo.status.success(), "{exe} accepted --cuont");
        let err = String::from_utf8_lossy(&typo.stderr);
        assert!(err.contains("--cuont"), "{exe}: {err}");
    }
}
