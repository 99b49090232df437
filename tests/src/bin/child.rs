//! The child process of shmidl's end-to-end tests.
//!
//! `shmidl-test-child <scenario> <args…>`; answers on stdout as `key=value`
//! lines; exits non-zero with a message on stderr when something fails.

#![allow(clippy::print_stdout)]

use std::{
    process::ExitCode,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use shmidl::{Join, Node, ObjectError, Pool, RawSample, Router, Sample, Segment, SendMode};
use shmidl_tests::{
    crash_config, crash_grow_config, install_drop_counter, soak_config, wait_for, Counted,
    DropCounterGuard, Msg, CRASH_TOPIC, SOAK_TOPIC,
};

#[path = "child/bridge.rs"]
mod bridge;
#[path = "child/discovery.rs"]
mod discovery;
#[path = "child/ws.rs"]
mod ws;

const DEADLINE: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["race", control, target] => race(control, target),
        ["find-wrong-type", seg, obj] => find_wrong_type(seg, obj),
        ["read", seg, obj] => read(seg, obj),
        ["handover-give", seg] => handover_give(seg),
        ["handover-take", seg] => handover_take(seg),
        ["grow-give", seg, count] => grow_give(seg, count),
        ["churn", seg, seed, ops] => churn(seg, seed, ops),
        ["publish", seg, id, count] => publish(seg, id, count),
        ["crash-holder", domain] => crash_holder(domain),
        ["crash-grow-holder", domain] => crash_grow_holder(domain),
        ["crash-at", domain, role] => crash_at(domain, role),
        ["topic-join", domain, topics] => topic_join(domain, topics),
        ["agree-publish", domain, count] => agree_publish(domain, count),
        ["agree-wrong", domain] => agree_wrong(domain),
        ["topic-hold", domain, topic] => topic_hold(domain, topic),
        ["fd-limit", domain, limit] => fd_limit(domain, limit),
        ["slice-sub", domain, topic, count, then] => slice_subscriber(domain, topic, count, then),
        ["soak-pub", domain, id] => soak_publisher(domain, id),
        ["soak-sub", domain] => soak_subscriber(domain),
        ["idle-subscriber", domain] => idle_subscriber(domain),
        ["idle-publisher", domain] => idle_publisher(domain),
        ["subscribe", seg, publishers, count] => subscribe(seg, publishers, count),
        ["disc-announce", rest @ ..] => discovery::announce(rest),
        ["bridge", rest @ ..] => bridge::both(rest),
        ["disc-listen", rest @ ..] => discovery::listen(rest),
        ["ws-pub", rest @ ..] => ws::publish(rest),
        ["ws-wrong-pub", rest @ ..] => ws::wrong_publish(rest),
        ["ws-sub", rest @ ..] => ws::subscribe(rest),
        ["ws-blob-pub", rest @ ..] => ws::blob_publish(rest),
        ["ws-blob-sub", rest @ ..] => ws::blob_subscribe(rest),
        _ => Err(format!("unknown scenario {args:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmidl-test-child: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Races `open_or_create` of segment `target` and `find_or_create` of the
/// object `obj` in it, released together by the `go` flag in `control`.
/// The init closure counts itself in `control`'s `inits`.
fn race(control: &str, target: &str) -> Result<(), String> {
    let ctl = Segment::open(control).map_err(|e| e.to_string())?;
    let ready = ctl.find::<AtomicU64>("ready").map_err(|e| e.to_string())?;
    let go = ctl.find::<AtomicU64>("go").map_err(|e| e.to_string())?;
    let done = ctl.find::<AtomicU64>("done").map_err(|e| e.to_string())?;
    let inits = ctl.find::<AtomicU64>("inits").map_err(|e| e.to_string())?;
    ready.fetch_add(1, Ordering::SeqCst);
    if !wait_for(DEADLINE, || go.load(Ordering::SeqCst) == 1) {
        return Err("no go signal".into());
    }
    let seg = Segment::builder(target)
        .size(1 << 20)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let me = u64::from(std::process::id());
    let obj = seg
        .find_or_create("obj", || {
            inits.fetch_add(1, Ordering::SeqCst);
            AtomicU64::new(me)
        })
        .map_err(|e| e.to_string())?;
    println!("segment_id={:x}", seg.id());
    println!("offset={}", obj.offset());
    println!("value={}", obj.load(Ordering::SeqCst));
    // Stay attached until every racer has answered, so the segment cannot
    // vanish and be re-created between two racers.
    done.fetch_add(1, Ordering::SeqCst);
    if !wait_for(DEADLINE, || go.load(Ordering::SeqCst) == 2) {
        return Err("no release signal".into());
    }
    Ok(())
}

/// Looks up an `AtomicU64` object as a `u32` and reports the error.
fn find_wrong_type(seg: &str, obj: &str) -> Result<(), String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    match seg.find::<u32>(obj) {
        Err(ObjectError::TypeMismatch {
            expected, found, ..
        }) => {
            println!("error=type_mismatch");
            println!("expected_size={}", expected.size);
            println!("found_size={}", found.size);
            Ok(())
        }
        Err(e) => Err(format!("unexpected error {e}")),
        Ok(_) => Err("a u32 view of an AtomicU64 object was allowed".into()),
    }
}

/// Reads an `AtomicU64` object and adds one to it.
fn read(seg: &str, obj: &str) -> Result<(), String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let v = seg.find::<AtomicU64>(obj).map_err(|e| e.to_string())?;
    println!("value={}", v.fetch_add(1, Ordering::SeqCst));
    Ok(())
}

/// Pool `pool` of `Counted` in `seg`, with the drop counter installed.
fn counted_pool(seg: &str) -> Result<(Segment, Pool<Counted>, DropCounterGuard), String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let guard = install_drop_counter(&seg);
    let pool = Pool::<Counted>::builder(&seg, "pool")
        .open()
        .map_err(|e| e.to_string())?;
    Ok((seg, pool, guard))
}

/// Makes an object and leaves its owning handle in the `handoff` object,
/// then exits without any pointer to it.
fn handover_give(seg: &str) -> Result<(), String> {
    let (seg, pool, _guard) = counted_pool(seg)?;
    let handoff = seg
        .find::<AtomicU64>("handoff")
        .map_err(|e| e.to_string())?;
    let sample = pool
        .try_make(Counted::new(0xfeed))
        .map_err(|e| e.to_string())?
        .freeze();
    handoff.store(sample.into_raw().to_u64(), Ordering::SeqCst);
    Ok(())
}

/// Makes `count` objects in the (growable) pool, enough to make it grow,
/// leaves their owning handles in `mailbox`, and exits without any pointer
/// to them.
fn grow_give(seg: &str, count: &str) -> Result<(), String> {
    let (seg, pool, _guard) = counted_pool(seg)?;
    let mailbox = seg
        .find::<[AtomicU64; 16]>("mailbox")
        .map_err(|e| e.to_string())?;
    let count: usize = count.parse().map_err(|_| "bad count")?;
    for (i, slot) in mailbox.iter().take(count).enumerate() {
        let sample = pool
            .try_make(Counted::new(0x1000 + i as u64))
            .map_err(|e| e.to_string())?
            .freeze();
        slot.store(sample.into_raw().to_u64(), Ordering::SeqCst);
    }
    println!("chunks={}", pool.chunks());
    Ok(())
}

/// Takes over the handle from `handoff`, reads the object, drops it.
fn handover_take(seg: &str) -> Result<(), String> {
    let (seg, pool, _guard) = counted_pool(seg)?;
    let handoff = seg
        .find::<AtomicU64>("handoff")
        .map_err(|e| e.to_string())?;
    let raw = RawSample::from_u64(handoff.swap(0, Ordering::SeqCst));
    // SAFETY: the giver detached this reference with `into_raw`, and the
    // swap above makes this process the only one to redeem it.
    let sample = unsafe { pool.from_raw(raw) }.map_err(|e| e.to_string())?;
    println!("value={:x}", sample.value);
    println!("intact={}", sample.intact());
    Ok(())
}

/// `ops` random operations on pool `pool`: make, clone, drop, and hand
/// objects to other processes through the `mailbox` array of raw handles.
fn churn(seg: &str, seed: &str, ops: &str) -> Result<(), String> {
    let (seg, pool, _guard) = counted_pool(seg)?;
    let mailbox = seg
        .find::<[AtomicU64; 16]>("mailbox")
        .map_err(|e| e.to_string())?;
    let makes = seg.find::<AtomicU64>("makes").map_err(|e| e.to_string())?;
    let mut rng: u64 = seed.parse().map_err(|_| "bad seed")?;
    let ops: u64 = ops.parse().map_err(|_| "bad op count")?;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut held: Vec<Sample<Counted>> = Vec::new();
    for _ in 0..ops {
        let r = next();
        // Keep at most a few references: otherwise clones pile up, every
        // slot stays held, and the pool is exhausted for most of the run
        // (the churn then makes few objects, fewer still on a loaded CPU).
        if held.len() >= 12 {
            let s = held.swap_remove((r >> 8) as usize % held.len());
            if !s.intact() {
                return Err(format!("corrupted object in slot {}", s.slot()));
            }
            continue;
        }
        match r % 6 {
            0 | 1 => {
                match pool.try_make(Counted::new(r)) {
                    Ok(s) => {
                        makes.fetch_add(1, Ordering::SeqCst);
                        held.push(s.freeze());
                    }
                    // Never entered the pool: not counted as made or dropped.
                    Err(e) => std::mem::forget(e.into_inner()),
                }
            }
            2 if !held.is_empty() => {
                let i = (r >> 8) as usize % held.len();
                held.push(held[i].clone());
            }
            3 if !held.is_empty() => {
                let i = (r >> 8) as usize % held.len();
                let s = held.swap_remove(i);
                if !s.intact() {
                    return Err(format!("corrupted object in slot {}", s.slot()));
                }
            }
            4 if !held.is_empty() => {
                // Hand over: park an owning handle in an empty mailbox slot.
                let i = (r >> 8) as usize % held.len();
                let slot = &mailbox[(r >> 32) as usize % 16];
                let s = held.swap_remove(i);
                let raw = s.into_raw().to_u64();
                if slot
                    .compare_exchange(0, raw, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    // Occupied: take our reference back.
                    // SAFETY: `raw` came from `into_raw` just now and was
                    // not published.
                    held.push(
                        unsafe { pool.from_raw(RawSample::from_u64(raw)) }
                            .map_err(|e| e.to_string())?,
                    );
                }
            }
            5 => {
                // Take over whatever handle another process parked.
                let slot = &mailbox[(r >> 32) as usize % 16];
                let raw = slot.swap(0, Ordering::SeqCst);
                if raw != 0 {
                    // SAFETY: a parked handle owns one reference, and the
                    // swap made this process its only redeemer.
                    let s = unsafe { pool.from_raw(RawSample::from_u64(raw)) }
                        .map_err(|e| e.to_string())?;
                    if !s.intact() {
                        return Err("corrupted object from the mailbox".into());
                    }
                    held.push(s);
                }
            }
            _ => {}
        }
    }
    println!("held_at_end={}", held.len());
    Ok(())
}

/// Router `topic` over pool `msgs` in `seg`.
fn msg_router(seg: &str) -> Result<(Segment, Pool<Msg>, Router<Msg>), String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let pool = Pool::<Msg>::builder(&seg, "msgs")
        .timeout(DEADLINE)
        .open()
        .map_err(|e| e.to_string())?;
    let router = Router::builder(&pool, "topic")
        .open()
        .map_err(|e| e.to_string())?;
    Ok((seg, pool, router))
}

/// Sends `count` checksummed messages with `WaitIfFull`; every pipe must
/// succeed.
fn publish(seg: &str, id: &str, count: &str) -> Result<(), String> {
    let (_seg, pool, router) = msg_router(seg)?;
    let id: u64 = id.parse().map_err(|_| "bad id")?;
    let count: u64 = count.parse().map_err(|_| "bad count")?;
    let mut publisher = router.publisher().map_err(|e| e.to_string())?;
    let mut failed = 0;
    for seq in 0..count {
        let sample = pool
            .make_pooled(Msg::new(id, seq))
            .map_err(|e| format!("message {seq}: {e}"))?
            .freeze();
        failed += publisher
            .send(&sample, SendMode::WaitIfFull(DEADLINE))
            .map_err(|e| e.to_string())?;
    }
    println!("failed={failed}");
    Ok(())
}

/// Receives until it has `count` messages from each of `publishers`;
/// checks order per publisher, exactly-once, and checksums.
fn subscribe(seg: &str, publishers: &str, count: &str) -> Result<(), String> {
    let (seg, _pool, router) = msg_router(seg)?;
    let publishers: usize = publishers.parse().map_err(|_| "bad publisher count")?;
    let count: u64 = count.parse().map_err(|_| "bad count")?;
    let ready = seg.find::<AtomicU64>("ready").map_err(|e| e.to_string())?;
    let mut subscriber = router.subscriber().map_err(|e| e.to_string())?;
    ready.fetch_add(1, Ordering::SeqCst);
    let mut next = vec![0u64; publishers];
    let mut total = 0;
    while total < count * publishers as u64 {
        let m = subscriber
            .recv_timeout(DEADLINE)
            .map_err(|e| format!("after {total} messages: {e}"))?;
        if !m.intact() {
            return Err(format!("corrupt message {m:?}"));
        }
        let p = m.publisher as usize;
        if p >= publishers || m.seq != next[p] {
            return Err(format!(
                "out of order or duplicate: {m:?}, expected seq {}",
                next.get(p).copied().unwrap_or(0)
            ));
        }
        next[p] += 1;
        total += 1;
    }
    println!("received={total}");
    Ok(())
}

/// Sleeps until killed (the tests SIGKILL it), bounded by the deadline.
fn wait_to_be_killed() -> Result<(), String> {
    std::thread::sleep(DEADLINE);
    Err("was not killed".into())
}

/// Holds everything a participant can hold, then waits to be killed:
/// a publisher and a subscriber port, two unique samples, one shared
/// sample, and three published messages queued for every subscriber.
fn crash_holder(domain: &str) -> Result<(), String> {
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let mut publisher = node
        .publisher::<u64>(CRASH_TOPIC, crash_config())
        .map_err(|e| e.to_string())?;
    let _subscriber = node
        .subscriber::<u64>(CRASH_TOPIC, crash_config())
        .map_err(|e| e.to_string())?;
    let _unique = (publisher.loan(), publisher.loan());
    let _shared = publisher.loan().map_err(|e| e.to_string())?.freeze();
    let _shared2 = _shared.clone();
    for v in 0..3 {
        let mut s = publisher.loan().map_err(|e| e.to_string())?;
        *s = 100 + v;
        publisher.publish(s).map_err(|e| e.to_string())?;
    }
    println!("ready=1");
    wait_to_be_killed()
}

/// Like `crash_holder` on a growable pool of 2-slot chunks: holds samples
/// and queues messages in later chunks, then waits to be killed.
fn crash_grow_holder(domain: &str) -> Result<(), String> {
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let mut publisher = node
        .publisher::<u64>(CRASH_TOPIC, crash_grow_config())
        .map_err(|e| e.to_string())?;
    let _unique = (publisher.loan(), publisher.loan(), publisher.loan());
    let _shared = publisher.loan().map_err(|e| e.to_string())?.freeze();
    for v in 0..3 {
        let mut s = publisher.loan().map_err(|e| e.to_string())?;
        *s = 100 + v;
        publisher.publish(s).map_err(|e| e.to_string())?;
    }
    let router = node
        .router::<u64>(CRASH_TOPIC, crash_grow_config())
        .map_err(|e| e.to_string())?;
    println!("chunks={}", router.pool().chunks());
    println!("ready=1");
    wait_to_be_killed()
}

/// Subscribes, never reads, waits to be killed.
fn idle_subscriber(domain: &str) -> Result<(), String> {
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let _subscriber = node
        .subscriber::<u64>(CRASH_TOPIC, crash_config())
        .map_err(|e| e.to_string())?;
    println!("ready=1");
    wait_to_be_killed()
}

/// Joins each topic of the comma-separated list (accepting its creator's
/// settings) as a subscriber, says `ready=1`, then expects one message on
/// each: `small/<i>` topics carry the `u64` `i`; `big:<topic>` topics carry
/// 1 MiB frames whose every byte is 0xab.
fn topic_join(domain: &str, topics: &str) -> Result<(), String> {
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let mut small = Vec::new();
    let mut big = Vec::new();
    for topic in topics.split(',') {
        match topic.strip_prefix("big:") {
            Some(name) => big.push(
                node.subscriber::<[u8; 1 << 20]>(name, Join::new())
                    .map_err(|e| e.to_string())?,
            ),
            None => {
                let expect: u64 = topic
                    .rsplit('/')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("small topics end in a number")?;
                let sub = node
                    .subscriber::<u64>(topic, Join::new())
                    .map_err(|e| e.to_string())?;
                small.push((expect, sub));
            }
        }
    }
    println!("ready=1");
    for (expect, sub) in &mut small {
        let m = sub.recv_timeout(DEADLINE).map_err(|e| e.to_string())?;
        if *m != *expect {
            return Err(format!("expected {expect}, got {}", *m));
        }
    }
    for sub in &mut big {
        let frame = sub.recv_timeout(DEADLINE).map_err(|e| e.to_string())?;
        if frame.iter().any(|&b| b != 0xab) {
            return Err("a 1 MiB frame arrived damaged".into());
        }
    }
    Ok(())
}

/// Publishes `count` joint states with the hand-derived type on the topic
/// that the test subscribes to with the generated type.
fn agree_publish(domain: &str, count: &str) -> Result<(), String> {
    use shmidl_tests::derived::{config, JointState, Mode, Vec3, TOPIC};
    let count: u64 = count.parse().map_err(|_| "bad count")?;
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let mut publisher = node
        .publisher::<JointState>(TOPIC, config())
        .map_err(|e| e.to_string())?;
    if !wait_for(DEADLINE, || publisher.subscriber_count() > 0) {
        return Err("no subscriber showed up".into());
    }
    for seq in 0..count {
        let mut m = publisher.loan_zeroed().map_err(|e| e.to_string())?;
        m.stamp_ns = seq;
        m.mode
            .set(if seq % 2 == 0 { Mode::Run } else { Mode::Fault });
        for j in 0..4 {
            m.names[j] = format!("j{j}-{seq}")
                .as_str()
                .try_into()
                .map_err(|_| "name")?;
            m.position
                .push(seq as f64 + j as f64 / 10.0)
                .map_err(|_| "position")?;
        }
        m.pose = Vec3 {
            x: seq as f64,
            y: -1.0,
            z: 0.5,
        };
        publisher.publish(m).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Tries to publish a type with another fingerprint on the same topic:
/// must be refused with `TypeMismatch`.
fn agree_wrong(domain: &str) -> Result<(), String> {
    use shmidl_tests::derived::{config, WrongJointState, TOPIC};
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    match node.publisher::<WrongJointState>(TOPIC, config()) {
        Err(e @ shmidl::TopicError::TypeMismatch { .. }) => {
            println!("refused={e}");
            Ok(())
        }
        Err(e) => Err(format!("refused for another reason: {e}")),
        Ok(_) => Err("a type with another fingerprint was accepted".into()),
    }
}

/// Joins `topic` as a subscriber, says `ready=1`, and leaves when its
/// stdin closes.
fn topic_hold(domain: &str, topic: &str) -> Result<(), String> {
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let _sub = node
        .subscriber::<u64>(topic, Join::new())
        .map_err(|e| e.to_string())?;
    println!("ready=1");
    let mut line = String::new();
    while std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?
        > 0
    {}
    Ok(())
}

/// Lowers this process's descriptor limit to `limit`, then opens topics of
/// `domain` until one fails; prints `opened=<n>` and `error=<message>`.
fn fd_limit(domain: &str, limit: &str) -> Result<(), String> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit: u64 = limit.parse().map_err(|_| "bad limit")?;
    let mut l = getrlimit(Resource::Nofile);
    l.current = Some(limit);
    setrlimit(Resource::Nofile, l).map_err(|e| e.to_string())?;
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let mut open = Vec::new();
    for i in 0..limit * 2 {
        match node.subscriber::<u64>(&format!("fd/t{i}"), Join::new()) {
            Ok(s) => open.push(s),
            Err(e) => {
                println!("opened={}", open.len());
                println!("error={e}");
                return Ok(());
            }
        }
    }
    Err(format!(
        "{} topics opened under a limit of {limit}",
        open.len()
    ))
}

/// Joins the `[u8]` topic `topic`, says `ready=1`, and checks `count`
/// samples made by `shmidl_tests::slice_sample`: sample `seq` has
/// `slice_len(seq, max)` bytes of that pattern. Prints `bytes=<total>`;
/// then, with `then` = `hold`, keeps the last sample, says `held=1` and
/// waits to be killed, or with `exit`, returns.
fn slice_subscriber(domain: &str, topic: &str, count: &str, then: &str) -> Result<(), String> {
    let count: u64 = count.parse().map_err(|_| "bad count")?;
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let mut sub = node
        .subscriber::<[u8]>(topic, Join::new())
        .map_err(|e| e.to_string())?;
    let max = sub_max_len(&node, topic)?;
    println!("ready=1");
    let mut total = 0u64;
    let mut last = None;
    for seq in 0..count {
        let sample = sub.recv_timeout(DEADLINE).map_err(|e| e.to_string())?;
        let want = shmidl_tests::slice_len(seq, max);
        if sample.len() != want {
            return Err(format!(
                "sample {seq}: {} bytes, expected {want}",
                sample.len()
            ));
        }
        if let Some(at) = shmidl_tests::slice_mismatch(seq, &sample) {
            return Err(format!("sample {seq}: wrong byte at {at}"));
        }
        total += sample.len() as u64;
        last = Some(sample);
    }
    println!("bytes={total}");
    if then == "hold" {
        let _keep = last;
        println!("held=1");
        return wait_to_be_killed();
    }
    Ok(())
}

/// The elements per sample of the `[u8]` topic `topic`, as its registry
/// entry says.
fn sub_max_len(node: &Node, topic: &str) -> Result<usize, String> {
    node.topics()
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.config.elements as usize)
        .ok_or_else(|| format!("topic {topic} is not in the registry"))
}

/// Attaches a publisher, never sends, waits to be killed.
fn idle_publisher(domain: &str) -> Result<(), String> {
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let _publisher = node
        .publisher::<u64>(CRASH_TOPIC, crash_config())
        .map_err(|e| e.to_string())?;
    println!("ready=1");
    wait_to_be_killed()
}

/// Publishes checksummed messages until the `stop` flag is set.
fn soak_publisher(domain: &str, id: &str) -> Result<(), String> {
    let id: u64 = id.parse().map_err(|_| "bad id")?;
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let stop = node
        .segment()
        .find::<AtomicU64>("stop")
        .map_err(|e| e.to_string())?;
    let mut publisher = node
        .publisher::<Msg>(SOAK_TOPIC, soak_config())
        .map_err(|e| e.to_string())?;
    println!("ready=1");
    let mut seq = 0;
    while stop.load(Ordering::Acquire) == 0 {
        let Ok(mut m) = publisher.loan() else {
            continue;
        };
        *m = Msg::new(id, seq);
        publisher.publish(m).map_err(|e| e.to_string())?;
        seq += 1;
    }
    Ok(())
}

/// Receives until the `stop` flag is set; fails on a corrupt, duplicated
/// or reordered message.
fn soak_subscriber(domain: &str) -> Result<(), String> {
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let stop = node
        .segment()
        .find::<AtomicU64>("stop")
        .map_err(|e| e.to_string())?;
    let mut subscriber = node
        .subscriber::<Msg>(SOAK_TOPIC, soak_config())
        .map_err(|e| e.to_string())?;
    println!("ready=1");
    let mut last = std::collections::HashMap::<u64, u64>::new();
    let mut received = 0u64;
    while stop.load(Ordering::Acquire) == 0 {
        let m = match subscriber.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => m,
            Err(shmidl::RecvError::Timeout) => continue,
            Err(e) => return Err(e.to_string()),
        };
        if !m.intact() {
            return Err(format!("corrupt message {m:?}"));
        }
        if let Some(&prev) = last.get(&m.publisher) {
            if m.seq <= prev {
                return Err(format!(
                    "publisher {} seq {} after {prev}: duplicate or reordered",
                    m.publisher, m.seq
                ));
            }
        }
        last.insert(m.publisher, m.seq);
        received += 1;
    }
    println!("received={received}");
    Ok(())
}

/// Runs `role` until the crash point named by `SHMIDL_CRASH_AT` aborts the
/// process (reaching the end means the point was never hit: an error).
fn crash_at(domain: &str, role: &str) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match role {
        "attach" | "reclaim" => {
            let node = Node::builder(domain).open_or_create().map_err(|x| e(&x))?;
            if role == "reclaim" {
                // The dead holder's pool records are in the topic's segment:
                // joining the topic attaches there and reclaims them.
                node.router::<u64>(CRASH_TOPIC, crash_config())
                    .map_err(|x| e(&x))?;
            }
            node.segment()
                .find_or_create("fresh", || AtomicU64::new(1))
                .map_err(|x| e(&x))?;
            Segment::builder(&format!("{domain}-new"))
                .create_exclusive()
                .map_err(|x| e(&x))?;
        }
        "pub" => {
            let node = Node::builder(domain).open_or_create().map_err(|x| e(&x))?;
            let mut publisher = node
                .publisher::<u64>(CRASH_TOPIC, crash_config())
                .map_err(|x| e(&x))?;
            for v in 0..100 {
                let shared = publisher.loan().map_err(|x| e(&x))?.freeze();
                drop(shared);
                let mut s = publisher.loan().map_err(|x| e(&x))?;
                *s = v;
                publisher.publish(s).map_err(|x| e(&x))?;
            }
        }
        "sub" => {
            let node = Node::builder(domain).open_or_create().map_err(|x| e(&x))?;
            let mut subscriber = node
                .subscriber::<u64>(CRASH_TOPIC, crash_config())
                .map_err(|x| e(&x))?;
            println!("ready=1");
            for _ in 0..100 {
                let m = subscriber.recv_timeout(DEADLINE).map_err(|x| e(&x))?;
                drop(m);
            }
        }
        "loan" => {
            let node = Node::builder(domain).open_or_create().map_err(|x| e(&x))?;
            let router = node
                .router::<u64>(CRASH_TOPIC, crash_config())
                .map_err(|x| e(&x))?;
            let _held = router.pool().try_make(1).map_err(|x| e(&x))?;
        }
        "grow" => {
            let node = Node::builder(domain).open_or_create().map_err(|x| e(&x))?;
            let router = node
                .router::<u64>(CRASH_TOPIC, crash_grow_config())
                .map_err(|x| e(&x))?;
            let pool = router.pool();
            // Chunks 0, 1 and 2 (two slots each); then empty chunk 1, which
            // retires it (chunk 2 is newer).
            let held = (0..6)
                .map(|v| pool.try_make(v).map(|s| s.freeze()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|x| e(&x))?;
            let (chunk1, _rest): (Vec<_>, Vec<_>) =
                held.into_iter().partition(|s| (2..4).contains(&s.slot()));
            drop(chunk1);
        }
        other => return Err(format!("unknown role {other}")),
    }
    Err("the crash point was never reached".into())
}
