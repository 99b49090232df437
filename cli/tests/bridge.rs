//! `shmidl bridge` with real processes: two bridge processes, each bridging
//! a topic of a schema both ways for its own domain, connect through
//! discovery on loopback. Typed programs (this test, compiled with a struct
//! matching the schema) publish on both domains; every message reaches
//! every subscriber of both domains exactly once, none is echoed back, and
//! Ctrl-C stops both bridges cleanly with their final counters.

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use shmidl::{
    Bool, FixedSizeString, Node, Publisher, SendMode, ShmMessage, Subscriber, TopicConfig,
};

const SHMIDL: &str = env!("CARGO_BIN_EXE_shmidl");

const SCHEMA: &str = r#"package t.v1;

message Sample {
    seq: u64,
    origin: u32,
    ok: bool,
    name: string<8>,
    values: [u32; 4],
}

topic "t/samples": Sample { pool: 256, depth: 128 }
"#;

/// The schema's `t.v1.Sample`, as a program compiled with it declares it.
#[derive(ShmMessage, Clone, Debug, PartialEq)]
#[repr(C)]
#[shm(name = "t.v1.Sample")]
struct Sample {
    seq: u64,
    origin: u32,
    ok: Bool,
    name: FixedSizeString<8>,
    #[shm(padding)]
    __pad0: [u8; 3],
    values: [u32; 4],
    #[shm(padding)]
    __pad1: [u8; 4],
}

const TOPIC: &str = "t/samples";
/// A message sent until the bridges carry it, then ignored.
const MARKER: u64 = u64::MAX;
const COUNT: u64 = 1_000;

/// The topic's options in the schema, as generated code gives them.
fn config() -> TopicConfig {
    TopicConfig {
        pool: 256,
        depth: 128,
        overflow: SendMode::WaitIfFull(Duration::from_secs(1)),
        ..TopicConfig::default()
    }
}

fn sample(seq: u64, origin: u32) -> Sample {
    Sample {
        seq,
        origin,
        ok: Bool::new(seq % 2 == 0),
        name: FixedSizeString::try_from("bridged").unwrap(),
        __pad0: [0; 3],
        values: [seq as u32, origin, 7, 9],
        __pad1: [0; 4],
    }
}

fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "cli-bridge-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn schema_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.shmidl", unique("schema")));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(SCHEMA.as_bytes()))
        .unwrap();
    path
}

fn free_port() -> String {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string()
}

fn bridge(domain: &str, schema: &PathBuf, port: &str) -> Child {
    bridge_with(domain, schema, port, &["--out", TOPIC, "--in", TOPIC])
}

fn bridge_with(domain: &str, schema: &PathBuf, port: &str, args: &[&str]) -> Child {
    Command::new(SHMIDL)
        .args(["bridge", "--domain", domain])
        .args(args)
        .arg("-s")
        .arg(schema)
        .args(["--interface", "lo", "--port", port])
        .args(["--interval", "500ms", "--json", "--for", "120s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running shmidl bridge")
}

/// The URL a bridge serves its --out topic on, from its first status line.
fn served_url(child: &mut Child) -> String {
    use std::io::BufRead as _;
    let stderr = child.stderr.take().expect("piped stderr");
    let mut line = String::new();
    std::io::BufReader::new(stderr)
        .read_line(&mut line)
        .unwrap();
    line.split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned()
}

fn secret_file(byte: u8) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.key", unique("key")));
    std::fs::write(&path, [byte; 32]).unwrap();
    path
}

/// Interrupts `child` as Ctrl-C does and waits for it, with a deadline.
fn interrupt(mut child: Child) -> Output {
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("shmidl bridge did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// The message after markers, waiting up to 20 s.
fn next(sub: &mut Subscriber<Sample>) -> Option<Sample> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match sub.recv_timeout(Duration::from_millis(100)) {
            Ok(s) if s.seq == MARKER => continue,
            Ok(s) => return Some((*s).clone()),
            Err(shmidl::RecvError::Timeout) => continue,
            Err(e) => panic!("receiving: {e}"),
        }
    }
    None
}

/// Publishes markers of `origin` on `from` until every subscriber in `to`
/// got one: the bridges then carry messages from `from` to them (what is
/// published before a bridge connects is not kept for it).
fn until_carried(from: &mut Publisher<Sample>, origin: u32, to: &mut [&mut Subscriber<Sample>]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = vec![false; to.len()];
    while !got.iter().all(|g| *g) {
        assert!(Instant::now() < deadline, "the bridges never connected");
        from.publish(from.loan_uninit().unwrap().write(sample(MARKER, origin)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        for (sub, got) in to.iter_mut().zip(&mut got) {
            while let Ok(Some(s)) = sub.try_recv() {
                *got |= s.seq == MARKER && s.origin == origin;
            }
        }
    }
}

/// Every message of both origins, each once and in order per origin.
fn expect_all(sub: &mut Subscriber<Sample>, who: &str) {
    let mut next_seq = [0u64; 2];
    for _ in 0..2 * COUNT {
        let s = next(sub).unwrap_or_else(|| panic!("{who}: missing messages after {next_seq:?}"));
        let o = (s.origin - 1) as usize;
        assert_eq!(
            s.seq, next_seq[o],
            "{who}: origin {} out of order",
            s.origin
        );
        assert_eq!(s, sample(s.seq, s.origin), "{who}: damaged");
        next_seq[o] += 1;
    }
    // Nothing more: no echo of either side's messages.
    let quiet = Instant::now() + Duration::from_millis(500);
    while Instant::now() < quiet {
        if let Ok(Some(s)) = sub.try_recv() {
            assert_eq!(s.seq, MARKER, "{who}: an extra message {s:?}");
        }
    }
}

fn final_counters(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().expect("counters printed");
    let v: serde_json::Value = serde_json::from_str(last).expect("JSON lines");
    assert_eq!(v["final"], true, "{v}");
    v
}

#[test]
fn two_bridges_carry_a_schema_topic_both_ways_without_echo_and_stop_on_ctrl_c() {
    let schema = schema_file();
    let port = free_port();
    let (a, b) = (unique("a"), unique("b"));
    let bridge_a = bridge(&a, &schema, &port);
    let bridge_b = bridge(&b, &schema, &port);
    {
        let node_a = Node::builder(&a).open_or_create().unwrap();
        let node_b = Node::builder(&b).open_or_create().unwrap();
        let mut pub_a = node_a.publisher::<Sample>(TOPIC, config()).unwrap();
        let mut pub_b = node_b.publisher::<Sample>(TOPIC, config()).unwrap();
        let mut sub_a = node_a.subscriber::<Sample>(TOPIC, config()).unwrap();
        let mut sub_b1 = node_b.subscriber::<Sample>(TOPIC, config()).unwrap();
        let mut sub_b2 = node_b.subscriber::<Sample>(TOPIC, config()).unwrap();
        until_carried(&mut pub_a, 1, &mut [&mut sub_b1, &mut sub_b2]);
        until_carried(&mut pub_b, 2, &mut [&mut sub_a]);

        std::thread::scope(|scope| {
            scope.spawn(|| expect_all(&mut sub_a, "a"));
            scope.spawn(|| expect_all(&mut sub_b1, "b1"));
            scope.spawn(|| expect_all(&mut sub_b2, "b2"));
            scope.spawn(|| {
                for seq in 0..COUNT {
                    pub_a
                        .publish(pub_a.loan_uninit().unwrap().write(sample(seq, 1)))
                        .unwrap();
                }
            });
            for seq in 0..COUNT {
                pub_b
                    .publish(pub_b.loan_uninit().unwrap().write(sample(seq, 2)))
                    .unwrap();
            }
        });
    }
    for (out, name) in [(interrupt(bridge_a), "a"), (interrupt(bridge_b), "b")] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "bridge {name}: {stderr}");
        assert!(stderr.contains("stopping (interrupted)"), "{stderr}");
        let v = final_counters(&out);
        assert_eq!(v["type"], "t.v1.Sample", "{v}");
        // The other side's messages came in; this side's went out; what the
        // in side published locally was not sent back.
        assert!(v["in_messages"].as_u64().unwrap() >= COUNT, "{name}: {v}");
        assert!(v["out_messages"].as_u64().unwrap() >= COUNT, "{name}: {v}");
        assert!(
            v["out_skipped_own"].as_u64().unwrap() >= COUNT,
            "{name}: {v}"
        );
        assert_eq!(v["in_dropped"], 0, "{name}: {v}");
        assert_eq!(v["peers"].as_array().unwrap().len(), 1, "{name}: {v}");
        if name == "a" {
            // Stopped first: its connection to the other bridge was open.
            let per = v["publisher"]["per_connection"].as_array().unwrap();
            assert_eq!(per.len(), 1, "{v}");
            assert!(per[0]["written"].as_u64().unwrap() >= COUNT, "{v}");
            assert_eq!(per[0]["dropped"], 0, "{v}");
        }
    }
    std::fs::remove_file(&schema).unwrap();
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(&a) || n.contains(&b))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn unknown_topics_and_missing_directions_are_clear_errors() {
    let schema = schema_file();
    let run = |args: &[&str]| {
        let out = Command::new(SHMIDL)
            .args(["bridge", "--domain", &unique("err"), "-s"])
            .arg(&schema)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["--out", "t/nope"]);
    assert!(
        err.contains("`t/nope` is not in the schema; it declares: t/samples"),
        "{err}"
    );
    let err = run(&[]);
    assert!(err.contains("give at least one --out or --in"), "{err}");
    let err = run(&["--in", TOPIC, "--connect", "t/other=ws://127.0.0.1:1/x"]);
    assert!(err.contains("not an --in topic"), "{err}");
    std::fs::remove_file(&schema).unwrap();
}

#[test]
fn with_a_secret_a_bridge_with_the_wrong_key_gets_nothing_and_is_counted() {
    let schema = schema_file();
    let (right, wrong) = (secret_file(1), secret_file(2));
    let port = free_port();
    let (a, good, bad) = (unique("sa"), unique("sgood"), unique("sbad"));
    let key = |path: &PathBuf| path.to_str().unwrap().to_owned();
    let (right_key, wrong_key) = (key(&right), key(&wrong));
    let mut bridge_a = bridge_with(
        &a,
        &schema,
        &port,
        &["--out", TOPIC, "--secret-file", &right_key],
    );
    let url = served_url(&mut bridge_a);
    let connect = format!("{TOPIC}={url}");
    let bridge_good = bridge_with(
        &good,
        &schema,
        &port,
        &["--in", TOPIC, "--secret-file", &right_key],
    );
    let bridge_bad = bridge_with(
        &bad,
        &schema,
        &port,
        &[
            "--in",
            TOPIC,
            "--connect",
            &connect,
            "--secret-file",
            &wrong_key,
        ],
    );
    {
        let node_a = Node::builder(&a).open_or_create().unwrap();
        let node_good = Node::builder(&good).open_or_create().unwrap();
        let node_bad = Node::builder(&bad).open_or_create().unwrap();
        let mut publisher = node_a.publisher::<Sample>(TOPIC, config()).unwrap();
        let mut heard = node_good.subscriber::<Sample>(TOPIC, config()).unwrap();
        let mut refused = node_bad.subscriber::<Sample>(TOPIC, config()).unwrap();
        until_carried(&mut publisher, 1, &mut [&mut heard]);
        for seq in 0..100 {
            publisher
                .publish(publisher.loan_uninit().unwrap().write(sample(seq, 1)))
                .unwrap();
            assert_eq!(next(&mut heard).map(|s| s.seq), Some(seq));
        }
        assert!(
            matches!(refused.try_recv(), Ok(None)),
            "the wrong key received a message"
        );
    }
    let out_a = interrupt(bridge_a);
    let v = final_counters(&out_a);
    let refusals = v["publisher"]["unauthorized"].as_u64().unwrap();
    assert!(refusals >= 1, "the wrong key's handshakes are counted: {v}");
    assert_eq!(v["publisher"]["connections"], 1, "only the right key: {v}");
    let v = final_counters(&interrupt(bridge_bad));
    assert_eq!(v["in_messages"], 0, "{v}");
    let v = final_counters(&interrupt(bridge_good));
    assert!(v["in_messages"].as_u64().unwrap() >= 100, "{v}");
    for path in [schema, right, wrong] {
        std::fs::remove_file(path).unwrap();
    }
}
