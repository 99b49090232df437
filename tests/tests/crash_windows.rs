//! A process dies inside each crash window of docs/crash-safety.md (a
//! test-only hook aborts it at the named point); survivors see the
//! documented outcome: nothing released twice, nothing used after free,
//! and what leaked is recovered by an audit of the quiescent segment.

use std::{
    os::unix::process::ExitStatusExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use shmidl::Node;
use shmidl_tests::{
    crash_config, crash_grow_config, kill, read_field, unique_name, wait_with_deadline, CRASH_TOPIC,
};

const CHILD: &str = env!("CARGO_BIN_EXE_shmidl-test-child");

fn child(point: &str, args: &[&str]) -> std::process::Child {
    Command::new(CHILD)
        .args(args)
        .env("SHMIDL_CRASH_AT", point)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the child")
}

/// Waits for a child that must die by `abort()` at its crash point.
fn expect_abort(c: std::process::Child, point: &str) {
    let out = wait_with_deadline(c, Instant::now() + Duration::from_secs(60));
    assert_eq!(
        out.status.signal(),
        Some(libc_sigabrt()),
        "the child did not die at {point}: {out:?}"
    );
}

fn libc_sigabrt() -> i32 {
    6
}

/// Publisher-side windows: the child publishes to two subscribers of ours.
fn publisher_window(point: &str) {
    let domain = unique_name("win-pub");
    let node = Node::builder(&domain)
        .size(1 << 20)
        .open_or_create()
        .unwrap();
    let router = node.router::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let mut a = node.subscriber::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let mut b = node.subscriber::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    expect_abort(child(point, &["crash-at", &domain, "pub"]), point);
    assert_eq!(node.cleanup_dead().unwrap(), 1);
    // Whatever was delivered is intact and received once per subscriber.
    for sub in [&mut a, &mut b] {
        let mut last = None;
        while let Some(m) = sub.try_recv().unwrap() {
            assert!(last.is_none_or(|l| *m > l), "duplicate or reordered");
            last = Some(*m);
        }
    }
    settle(&node, &router, point);
}

/// Subscriber-side windows: we publish to the child.
fn subscriber_window(point: &str) {
    let domain = unique_name("win-sub");
    let node = Node::builder(&domain)
        .size(1 << 20)
        .open_or_create()
        .unwrap();
    let router = node.router::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let mut publisher = node.publisher::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let mut c = child(point, &["crash-at", &domain, "sub"]);
    assert_eq!(
        read_field(&mut c, "ready", Duration::from_secs(30)).as_deref(),
        Some("1")
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
        if let Ok(s) = publisher.loan() {
            let _ = publisher.publish(s);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    expect_abort(c, point);
    assert_eq!(node.cleanup_dead().unwrap(), 1);
    settle(&node, &router, point);
}

/// Windows in attaching, creating, and reclaiming.
fn lifecycle_window(point: &str, role: &str) {
    let domain = unique_name("win-life");
    let node = Node::builder(&domain)
        .size(1 << 20)
        .open_or_create()
        .unwrap();
    let router = node.router::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let mut sub = node.subscriber::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    if role == "reclaim" {
        // A dead participant for the child to reclaim (and die doing so).
        let mut holder = shmidl_tests::spawn_child(CHILD, &["crash-holder", &domain]);
        assert_eq!(
            read_field(&mut holder, "ready", Duration::from_secs(30)).as_deref(),
            Some("1")
        );
        kill(holder);
    }
    expect_abort(child(point, &["crash-at", &domain, role]), point);
    // The child's own temporary segment file, if it died creating one.
    for entry in std::fs::read_dir("/dev/shm").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("shmidl~") && name.ends_with(&format!("{domain}-new")) {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    node.cleanup_dead().unwrap();
    // What the dead holder published is still delivered, once.
    let got: Vec<u64> = std::iter::from_fn(|| sub.try_recv().unwrap().map(|m| *m)).collect();
    assert!(got.is_empty() || got == [100, 101, 102], "{point}: {got:?}");
    // An object whose creator died in `init` is created again, once.
    let fresh = node
        .segment()
        .find_or_create("fresh", || std::sync::atomic::AtomicU64::new(7))
        .unwrap();
    assert!(matches!(
        fresh.load(std::sync::atomic::Ordering::SeqCst),
        1 | 7
    ));
    settle(&node, &router, point);
}

/// The child allocates with an empty stash of its own while ours holds
/// freed slots: it steals ours.
fn steal_window(point: &str) {
    let domain = unique_name("win-steal");
    let node = Node::builder(&domain)
        .size(1 << 20)
        .open_or_create()
        .unwrap();
    let router = node.router::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    // Ten freed slots in this process's stash: enough that a process with
    // none of its own steals them rather than using the free list.
    let freed: Vec<_> = (0..10)
        .map(|v| router.pool().try_make(v).unwrap())
        .collect();
    drop(freed);
    expect_abort(child(point, &["crash-at", &domain, "loan"]), point);
    assert_eq!(node.cleanup_dead().unwrap(), 1);
    settle(&node, &router, point);
}

/// Windows in retiring a growable pool's chunk: the child grows the pool to
/// three chunks and empties the middle one.
fn retire_window(point: &str) {
    let domain = unique_name("win-retire");
    let node = Node::builder(&domain)
        .size(1 << 20)
        .open_or_create()
        .unwrap();
    let router = node
        .router::<u64>(CRASH_TOPIC, crash_grow_config())
        .unwrap();
    expect_abort(child(point, &["crash-at", &domain, "grow"]), point);
    assert_eq!(node.cleanup_dead().unwrap(), 1);
    let report = node.audit().unwrap();
    eprintln!("{point}: {report:?}");
    let pool = router.pool();
    assert_eq!(
        pool.free_count(),
        pool.capacity(),
        "{point}: every slot is free after the audit"
    );
    // The pool still grows, allocates and frees across its chunks.
    let all: Vec<_> = (0..16)
        .map(|v| pool.try_make(v).unwrap().freeze())
        .collect();
    assert_eq!(pool.chunks(), 8, "{point}");
    assert!(pool.try_make(99).is_err());
    drop(all);
    assert_eq!(pool.free_count(), pool.capacity(), "{point}");
    drop((router, node));
    let left = shmidl_tests::chunk_files(&domain);
    assert!(left.is_empty(), "{point}: chunk segments left: {left:?}");
}

/// After the death: an audit leaves every slot free and the topic working.
fn settle(node: &Node, router: &shmidl::Router<u64>, point: &str) {
    let report = node.audit().unwrap();
    eprintln!("{point}: {report:?}");
    assert_eq!(
        router.pool().free_count(),
        16,
        "{point}: every slot is free after the audit"
    );
    let mut p = node.publisher::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let mut s = node.subscriber::<u64>(CRASH_TOPIC, crash_config()).unwrap();
    let mut m = p.loan().unwrap();
    *m = 42;
    p.publish(m).unwrap();
    assert_eq!(
        *s.try_recv().unwrap().unwrap(),
        42,
        "{point}: the topic still works"
    );
}

macro_rules! windows {
    ($($test:ident => $point:literal via $how:expr;)*) => {$(
        #[test]
        fn $test() {
            $how($point);
        }
    )*};
}

windows! {
    dies_after_popping_a_free_slot => "pool.alloc.after_pop" via publisher_window;
    dies_freezing_after_recording => "pool.freeze.after_hold" via publisher_window;
    dies_after_erasing_a_record_before_releasing => "pool.release.after_unhold" via publisher_window;
    dies_before_pushing_a_freed_slot => "pool.free.before_push" via publisher_window;
    dies_after_stealing_a_stash => "pool.steal.after_claim" via steal_window;
    dies_after_counting_a_queue_reference => "router.send.after_retain" via publisher_window;
    dies_publishing_before_the_push => "router.publish.before_push" via publisher_window;
    dies_after_writing_a_cell_value => "ring.push.after_value" via publisher_window;
    dies_after_stamping_a_cell => "ring.push.after_stamp" via publisher_window;
    dies_after_claiming_a_cell => "ring.pop.after_claim" via subscriber_window;
    dies_after_popping_before_adopting => "router.recv.after_pop" via subscriber_window;
    dies_dropping_a_received_sample => "pool.release.after_unhold" via subscriber_window;
    dies_after_locking_a_participant_row => "segment.attach.after_lock" via |p| lifecycle_window(p, "attach");
    dies_while_initialising_an_object => "directory.before_ready" via |p| lifecycle_window(p, "attach");
    dies_before_publishing_a_new_segment => "segment.create.before_publish" via |p| lifecycle_window(p, "attach");
    dies_after_claiming_a_dead_row => "reclaim.after_claim" via |p| lifecycle_window(p, "reclaim");
    dies_after_erasing_a_dead_rows_records => "reclaim.pool.after_erase" via |p| lifecycle_window(p, "reclaim");
    dies_sealing_a_chunk_to_retire => "pool.retire.sealing" via retire_window;
    dies_after_marking_a_chunk_retired => "pool.retire.after_mark" via retire_window;
}
