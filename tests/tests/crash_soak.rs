//! Soak: publishers and subscribers exchange checksummed messages while
//! the driver SIGKILLs one at a random moment and starts a replacement.
//!
//! `SHMIDL_SOAK_KILLS=1000 cargo test --release -p shmidl-tests --test crash_soak -- --nocapture`
//! runs a longer soak (CI runs 50 kills).

use std::{
    process::Child,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime},
};

use shmidl::{Node, Segment, SegmentOpenError};
use shmidl_tests::{
    kill, read_field, soak_config, spawn_child, unique_name, wait_with_deadline, Msg, SOAK_TOPIC,
};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

struct Member {
    child: Child,
    publisher: bool,
}

fn start(domain: &str, publisher: bool, id: u64) -> Member {
    let id = id.to_string();
    let mut child = if publisher {
        spawn_child(CHILD, &["soak-pub", domain, &id])
    } else {
        spawn_child(CHILD, &["soak-sub", domain])
    };
    assert_eq!(
        read_field(&mut child, "ready", Duration::from_secs(30)).as_deref(),
        Some("1"),
        "a soak child did not start"
    );
    Member { child, publisher }
}

#[test]
fn killing_members_at_random_never_corrupts_duplicates_or_leaks() {
    let kills: u32 = std::env::var("SHMIDL_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let domain = unique_name("soak");
    let node = Node::builder(&domain)
        .size(4 << 20)
        .open_or_create()
        .unwrap();
    let stop = node
        .segment()
        .find_or_create("stop", || AtomicU64::new(0))
        .unwrap();
    let router = node.router::<Msg>(SOAK_TOPIC, soak_config()).unwrap();

    let mut rng = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut ids = 0u64;
    let mut members: Vec<Member> = [true, true, false, false]
        .into_iter()
        .map(|p| {
            ids += 1;
            start(&domain, p, ids)
        })
        .collect();
    for _ in 0..kills {
        // Let it run a random while, kill a random member mid-flight.
        std::thread::sleep(Duration::from_micros(2_000 + next() % 40_000));
        for m in &mut members {
            if let Some(status) = m.child.try_wait().unwrap() {
                panic!("a soak member exited by itself with {status}");
            }
        }
        let victim = (next() % members.len() as u64) as usize;
        let publisher = members[victim].publisher;
        let dead = members.swap_remove(victim);
        kill(dead.child);
        ids += 1;
        members.push(start(&domain, publisher, ids));
    }
    stop.store(1, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(60);
    for m in members {
        let out = wait_with_deadline(m.child, deadline);
        assert!(out.status.success(), "a soak member failed: {out:?}");
    }
    let report = node.audit().unwrap();
    eprintln!("soak: {kills} kills; audit after cleanup: {report:?}");
    assert_eq!(router.publisher_count(), 0);
    assert_eq!(router.subscriber_count(), 0);
    assert_eq!(router.pool().free_count(), 64, "every slot is free again");
    drop((router, stop, node));
    assert!(matches!(
        Segment::open(&domain),
        Err(SegmentOpenError::NotFound { .. })
    ));
}
