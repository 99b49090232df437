//! `shmidl ls` and `shmidl clean` against segments left by killed processes.

#![allow(clippy::print_stdout)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use shmidl::Segment;

const SHMIDL: &str = env!("CARGO_BIN_EXE_shmidl");

/// This test has its own `main` (`harness = false`): run with
/// `SHMIDL_HOLD=<segment>`, the same binary is the holder process the test
/// spawns — it attaches to the segment with a pool and waits to be killed.
fn main() {
    if let Ok(domain) = std::env::var("SHMIDL_HOLD_TOPIC") {
        // A domain with one topic, three samples held.
        let node = shmidl::Node::builder(&domain).open_or_create().unwrap();
        let publisher = node
            .publisher::<u64>("cli/topic", shmidl::TopicConfig::default())
            .unwrap();
        let _held: Vec<_> = (0..3).map(|_| publisher.loan().unwrap()).collect();
        // A growable topic holding five samples: three chunks of two.
        let grown = node
            .publisher::<u64>(
                "cli/grow",
                shmidl::TopicConfig {
                    pool: 2,
                    pool_chunks: 4,
                    ..shmidl::TopicConfig::default()
                },
            )
            .unwrap();
        let _grown: Vec<_> = (0..5).map(|_| grown.loan().unwrap()).collect();
        // A second topic with traffic, for the rates of its ports.
        let mut tx = node
            .publisher::<u64>("cli/rate", shmidl::TopicConfig::default())
            .unwrap();
        let mut rx = node
            .subscriber::<u64>("cli/rate", shmidl::Join::new())
            .unwrap();
        std::thread::spawn(move || {
            for i in 0u64.. {
                let mut m = tx.loan().unwrap();
                *m = i;
                tx.publish(m).unwrap();
                rx.recv_timeout(Duration::from_secs(5)).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        println!("ready");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    if let Ok(name) = std::env::var("SHMIDL_HOLD") {
        let seg = Segment::builder(&name).open_or_create().unwrap();
        let _pool = shmidl::Pool::<u64>::builder(&seg, "p")
            .capacity(8)
            .open_or_create()
            .unwrap();
        // And a growable pool holding samples in two later chunks.
        let grown = shmidl::Pool::<u64>::builder(&seg, "g")
            .capacity(2)
            .growable(4)
            .open_or_create()
            .unwrap();
        let _held: Vec<_> = (0..5).map(|i| grown.try_make(i).unwrap()).collect();
        println!("ready");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    clean_removes_a_segment_left_by_a_killed_process_and_keeps_a_live_one();
    println!("test clean_removes_a_segment_left_by_a_killed_process_and_keeps_a_live_one ... ok");
    clean_keeps_the_chunks_of_a_pool_whose_segment_exists();
    println!("test clean_keeps_the_chunks_of_a_pool_whose_segment_exists ... ok");
    ls_shows_topics_under_their_domain_and_clean_removes_their_segments();
    println!("test ls_shows_topics_under_their_domain_and_clean_removes_their_segments ... ok");
}

fn ls_shows_topics_under_their_domain_and_clean_removes_their_segments() {
    let domain = unique("topics");
    let mut child = spawn_holder("SHMIDL_HOLD_TOPIC", &domain);

    let json: serde_json::Value = serde_json::from_str(&shmidl(&["ls", "--json"])).unwrap();
    let rows = json.as_array().unwrap();
    let row = rows
        .iter()
        .find(|r| r["name"] == domain.as_str())
        .expect("the domain is listed");
    let topics = row["topics"].as_array().unwrap();
    let topic = topics.iter().find(|t| t["name"] == "cli/topic").unwrap();
    assert_eq!(topic["type"], "u64");
    // The type's fingerprint, as `shmidl check -v` prints it for `u64`.
    assert_eq!(
        topic["fingerprint"],
        format!("{:#018x}", <u64 as shmidl::ShmSafe>::FINGERPRINT)
    );
    assert_eq!(topic["live"]["processes_alive"], 1);
    assert_eq!(topic["live"]["pool"]["free"], 64 - 3);
    // The busy topic's ports, each with a message rate.
    let busy = topics.iter().find(|t| t["name"] == "cli/rate").unwrap();
    let ports = busy["live"]["ports"].as_array().unwrap();
    for role in ["publisher", "subscriber"] {
        let port = ports
            .iter()
            .find(|p| p["role"] == role)
            .unwrap_or_else(|| panic!("no {role} port in {ports:?}"));
        assert!(port["messages_per_s"].as_f64().unwrap() > 0.0, "{port}");
        assert!(port["messages"].as_u64().unwrap() > 0, "{port}");
    }
    // A growable topic's use counts every chunk, and its chunk segments are
    // not listed beside the domain.
    let grow = topics.iter().find(|t| t["name"] == "cli/grow").unwrap();
    let pool = &grow["live"]["pool"];
    assert_eq!(
        (&pool["capacity"], &pool["free"], &pool["chunks"]),
        (&6.into(), &1.into(), &3.into()),
        "{grow}"
    );
    let grow_segment = grow["segment"].as_str().unwrap();
    assert!(
        !rows.iter().any(|r| r["chunk_of"]["name"] == grow_segment),
        "a topic's chunk segments are counted under it"
    );
    let text = shmidl(&["ls"]);
    assert!(text.contains("1 of 6 slots free in 3 chunks"), "{text}");
    assert!(text.contains("publisher 0 (pid"), "{text}");
    assert!(text.contains("msg/s"), "{text}");
    let segment = topic["segment"].as_str().unwrap().to_owned();
    assert!(
        !rows.iter().any(|r| r["name"] == segment.as_str()),
        "a topic segment is listed under its domain, not beside it"
    );

    child.kill().unwrap();
    child.wait().unwrap();
    let text = shmidl(&["ls"]);
    assert!(text.contains("topic cli/topic  u64"), "{text}");
    assert!(text.contains("processes: 0 alive, 1 dead"), "{text}");
    shmidl(&["clean"]);
    let busy_segment = busy["segment"].as_str().unwrap().to_owned();
    let grow_segment = grow_segment.to_owned();
    for name in [&domain, &segment, &busy_segment, &grow_segment] {
        assert!(
            !std::path::Path::new(&format!("/dev/shm/shmidl.{name}")).exists(),
            "{name} was not cleaned"
        );
    }
}

fn hold(name: &str) -> std::process::Child {
    spawn_holder("SHMIDL_HOLD", name)
}

/// Starts this binary as a holder (`role` = `value`) and waits until it is
/// ready.
fn spawn_holder(role: &str, value: &str) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(role, value)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.trim() == "ready" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("holder ready");
    child
}

fn shmidl(args: &[&str]) -> String {
    let out = Command::new(SHMIDL).args(args).output().unwrap();
    assert!(out.status.success(), "shmidl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Chunk segments of `seg`'s growable pools in `/dev/shm` now.
fn chunk_files(seg: &str) -> usize {
    let prefix = format!("shmidl.{seg}.chunk-");
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .count()
}

fn unique(tag: &str) -> String {
    format!("t-cli-{tag}-{}", std::process::id())
}

fn clean_removes_a_segment_left_by_a_killed_process_and_keeps_a_live_one() {
    let dead = unique("dead");
    let live = unique("live");
    let mut killed = hold(&dead);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let mut alive = hold(&live);
    assert_eq!(chunk_files(&dead), 2, "the killed holder's pool grew twice");

    let listing = shmidl(&["ls"]);
    assert!(listing.contains(&format!("{dead}  ")), "{listing}");
    assert!(listing.contains("0 alive, 1 dead"), "{listing}");
    assert!(listing.contains("8 of 8 slots free"), "{listing}");
    assert!(
        listing.contains(&format!("(pool chunk of {live})")),
        "{listing}"
    );

    let dry = shmidl(&["clean", "--dry-run"]);
    assert!(dry.contains(&format!("would remove {dead}")), "{dry}");
    assert!(dry.contains(&format!("kept {live}")), "{dry}");
    assert!(Segment::inspect(&dead).is_ok(), "a dry run removes nothing");

    let done = shmidl(&["clean"]);
    assert!(done.contains(&format!("removed {dead}")), "{done}");
    assert!(done.contains(&format!("kept {live}")), "{done}");
    assert!(Segment::inspect(&dead).is_err());
    assert!(Segment::inspect(&live).is_ok());
    assert_eq!(chunk_files(&dead), 0, "chunks go with their pool's segment");
    assert_eq!(chunk_files(&live), 2);

    alive.kill().unwrap();
    alive.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Segment::inspect(&live).is_ok() && Instant::now() < deadline {
        shmidl(&["clean"]);
    }
    assert!(
        Segment::inspect(&live).is_err(),
        "removed once its holder died"
    );
    assert_eq!(chunk_files(&live), 0);
}

/// A chunk whose every participant left (its objects are in flight as raw
/// handles) is kept while its pool's segment exists.
fn clean_keeps_the_chunks_of_a_pool_whose_segment_exists() {
    let name = unique("owner");
    let seg = Segment::builder(&name).create_exclusive().unwrap();
    let pool = shmidl::Pool::<u64>::builder(&seg, "g")
        .capacity(1)
        .growable(2)
        .open_or_create()
        .unwrap();
    let raws: Vec<_> = (0..2)
        .map(|i| pool.try_make(i).unwrap().freeze().into_raw())
        .collect();
    drop(pool); // unmaps the chunk: no participant left there
    assert_eq!(chunk_files(&name), 1);

    let done = shmidl(&["clean"]);
    assert!(
        done.contains(&format!("a pool chunk of {name}, which exists")),
        "{done}"
    );
    assert_eq!(chunk_files(&name), 1, "kept");

    let pool = shmidl::Pool::<u64>::builder(&seg, "g").open().unwrap();
    for (i, raw) in raws.into_iter().enumerate() {
        // SAFETY: each handle came from `into_raw` and is redeemed once.
        assert_eq!(*unsafe { pool.from_raw(raw) }.unwrap(), i as u64);
    }
    assert_eq!(pool.free_count(), 2);
    drop(pool);
    drop(seg);
    assert_eq!(chunk_files(&name), 0, "removed with its owner");
}
