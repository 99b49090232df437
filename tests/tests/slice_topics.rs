//! Runtime-sized payloads through topics, with real processes: a topic of
//! `[u8]` whose slots hold a 1920×1080×3 frame, samples of every length up
//! to that, contents checked in another process, send modes, a killed
//! subscriber's samples reclaimed, and the pool entirely free at the end.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use shmidl::{Join, Node, SendMode, TopicConfig, TopicError};
use shmidl_tests::{
    kill, read_field, slice_fill, slice_len, slice_mismatch, unique_name, wait_for,
    wait_with_deadline,
};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");
const FULL_HD: u32 = 1920 * 1080 * 3;

fn child(args: &[&str]) -> std::process::Child {
    Command::new(CHILD)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning the child")
}

fn frames() -> TopicConfig {
    TopicConfig {
        elements: FULL_HD,
        pool: 6,
        depth: 2,
        overflow: SendMode::WaitIfFull(Duration::from_secs(20)),
        ..TopicConfig::default()
    }
}

/// Publishes samples `0..count` on `publisher`, each of its pattern.
fn publish_all(publisher: &mut shmidl::Publisher<[u8]>, count: u64) {
    let max = publisher.max_len();
    for seq in 0..count {
        let mut sample = publisher.loan_slice(slice_len(seq, max)).unwrap();
        slice_fill(seq, &mut sample);
        assert_eq!(
            publisher.publish(sample).unwrap(),
            0,
            "sample {seq} was dropped"
        );
    }
}

#[test]
fn full_hd_frames_and_shorter_samples_cross_processes_intact() {
    let domain = unique_name("slices");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let mut publisher = node.publisher::<[u8]>("cam/rgb", frames()).unwrap();
    assert_eq!(publisher.max_len(), FULL_HD as usize);

    // Two subscribers in two processes join with the topic's settings.
    let count = 12u64;
    let mut subs: Vec<_> = (0..2)
        .map(|_| child(&["slice-sub", &domain, "cam/rgb", &count.to_string(), "exit"]))
        .collect();
    for c in &mut subs {
        assert_eq!(
            read_field(c, "ready", Duration::from_secs(30)).as_deref(),
            Some("1")
        );
    }
    assert!(wait_for(Duration::from_secs(10), || {
        publisher.subscriber_count() == 2
    }));

    // Every pipe is 2 deep and the pool holds 6: the publisher waits for
    // the subscribers (WaitIfFull), so nothing is dropped.
    publish_all(&mut publisher, count);
    let expected: usize = (0..count).map(|s| slice_len(s, FULL_HD as usize)).sum();
    for c in subs {
        let out = wait_with_deadline(c, Instant::now() + Duration::from_secs(60));
        assert!(out.status.success(), "subscriber failed: {out:?}");
    }

    // Every sample went back to the pool.
    let pool = publisher.router().pool().clone();
    drop(publisher);
    assert_eq!(pool.free_count(), pool.capacity());
    eprintln!("{count} samples, {expected} bytes, to each of two processes");
}

#[test]
fn a_killed_subscribers_samples_are_reclaimed() {
    let domain = unique_name("slices-kill");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let config = TopicConfig {
        elements: 4096,
        pool: 8,
        depth: 4,
        overflow: SendMode::WaitIfFull(Duration::from_secs(20)),
        ..TopicConfig::default()
    };
    let mut publisher = node.publisher::<[u8]>("points", config).unwrap();
    let mut c = child(&["slice-sub", &domain, "points", "3", "hold"]);
    assert_eq!(
        read_field(&mut c, "ready", Duration::from_secs(30)).as_deref(),
        Some("1")
    );
    assert!(wait_for(Duration::from_secs(10), || {
        publisher.subscriber_count() == 1
    }));
    // Three samples it checks and one more it never takes.
    publish_all(&mut publisher, 4);
    let pool = publisher.router().pool().clone();
    assert!(wait_for(Duration::from_secs(30), || pool.free_count() == 8 - 2));
    kill(c);

    // The dead subscriber held one sample and had one queued: both return.
    node.cleanup_dead().unwrap();
    assert_eq!(pool.free_count(), 8);
    let report = node.audit().unwrap();
    assert_eq!(
        (report.counts_fixed, report.slots_freed),
        (0, 0),
        "{report:?}"
    );
}

#[test]
fn every_send_mode_carries_the_sample_length() {
    let domain = unique_name("slices-modes");
    let node = Node::builder(&domain).open_or_create().unwrap();
    let config = TopicConfig {
        elements: 100,
        pool: 8,
        depth: 2,
        overflow: SendMode::OverwriteOldest,
        ..TopicConfig::default()
    };
    let mut publisher = node.publisher::<[u32]>("v", config).unwrap();
    let mut sub = node.subscriber::<[u32]>("v", Join::new()).unwrap();
    for len in [3usize, 0, 100, 7] {
        let mut s = publisher.loan_slice(len).unwrap();
        for (i, x) in s.iter_mut().enumerate() {
            *x = (len * 1000 + i) as u32;
        }
        publisher.publish(s).unwrap();
    }
    // Depth 2 under OverwriteOldest: the two newest remain, with their
    // own lengths.
    for len in [100usize, 7] {
        let got = sub.try_recv().unwrap().unwrap();
        assert_eq!(got.len(), len);
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, &x)| x == (len * 1000 + i) as u32));
    }
    assert!(sub.try_recv().unwrap().is_none());

    // SoftFailIfFull: a full pipe fails the send, and the length of a
    // shared sample is what it was loaned with.
    let sample = publisher.loan_copy(&[1, 2, 3]).unwrap().freeze();
    assert_eq!(
        publisher.send(&sample, SendMode::SoftFailIfFull).unwrap(),
        0
    );
    assert_eq!(
        publisher.send(&sample, SendMode::SoftFailIfFull).unwrap(),
        0
    );
    assert_eq!(
        publisher.send(&sample, SendMode::SoftFailIfFull).unwrap(),
        1
    );
    assert_eq!(&*sub.try_recv().unwrap().unwrap(), &[1, 2, 3]);

    // A sample shrinks and grows back within its slot.
    let mut s = publisher.loan_slice(10).unwrap();
    s.truncate(4);
    assert_eq!(s.len(), 4);
    s.set_len(100).unwrap();
    assert_eq!(s.len(), 100);
    let err = s.set_len(101).unwrap_err();
    assert_eq!((err.requested, err.capacity), (101, 100));
    assert!(matches!(
        publisher.loan_slice(101),
        Err(shmidl::LoanError::TooLong(_))
    ));
    assert_eq!(
        slice_mismatch(5, &{
            let mut b = vec![0u8; 300];
            slice_fill(5, &mut b);
            b
        }),
        None
    );
}

#[test]
fn slice_topics_check_their_element_count_and_type() {
    let domain = unique_name("slices-errors");
    let node = Node::builder(&domain).open_or_create().unwrap();

    // A `[T]` topic needs its element count; a `T` topic has none.
    let err = node
        .publisher::<[u8]>("a", TopicConfig::default())
        .unwrap_err();
    assert!(matches!(err, TopicError::Elements { .. }), "{err}");
    assert!(err.to_string().contains("TopicConfig::elements"), "{err}");
    let err = node.subscriber::<[u8]>("b", Join::new()).unwrap_err();
    assert!(err.to_string().contains("Join::min_elements"), "{err}");
    let err = node
        .publisher::<u64>(
            "c",
            TopicConfig {
                elements: 4,
                ..TopicConfig::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, TopicError::Elements { .. }), "{err}");

    let config = TopicConfig {
        elements: 64,
        ..TopicConfig::default()
    };
    let _p = node.publisher::<[u8]>("img", config).unwrap();
    // Another element type, or one value where samples are runs: refused,
    // naming both types.
    let err = node
        .subscriber::<[u16]>("img", Join::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`[u8]`") && err.contains("`[u16]`"), "{err}");
    let err = node
        .subscriber::<u8>("img", Join::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`[u8]`") && err.contains("`u8`"), "{err}");
    // A joiner's minimum length is checked as "at least".
    let err = node
        .subscriber::<[u8]>("img", Join::new().min_elements(65))
        .unwrap_err();
    assert!(
        matches!(
            err,
            TopicError::Unmet {
                what: "elements",
                ..
            }
        ),
        "{err}"
    );
    node.subscriber::<[u8]>("img", Join::new().min_elements(64))
        .unwrap();
    // Another element count under an exact configuration: both shown.
    let err = node
        .subscriber::<[u8]>(
            "img",
            TopicConfig {
                elements: 32,
                ..config
            },
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("64 elements") && err.contains("32 elements"),
        "{err}"
    );
    let info = node.topics().into_iter().find(|t| t.name == "img").unwrap();
    assert_eq!(
        (info.type_name.as_str(), info.config.elements),
        ("[u8]", 64)
    );
}
