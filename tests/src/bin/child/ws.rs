//! Websocket transport scenarios: a publisher and a subscriber of
//! `shmidl_tests::Msg` over loopback, found by discovery on a test's own
//! UDP port.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use shmidl::net::{DiscoveryConfig, NetPublisher, NetSubscriber, SlowPolicy, Transport};
use shmidl_tests::Msg;

/// The longest any scenario runs.
const LIFETIME: Duration = Duration::from_secs(120);

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad {what}: {s:?}"))
}

fn config(port: &str) -> Result<DiscoveryConfig, String> {
    Ok(DiscoveryConfig::on_port(parse("port", port)?)
        .loopback()
        .with_transport(Transport::Broadcast)
        .with_interval(Duration::from_millis(100)))
}

/// `ws-pub <discovery port> <topic> <publisher id> <count> <subscribers>`:
/// announces `topic`, waits for that many subscribers, sends `count`
/// checksummed messages under the waiting policy, drains, prints `sent=`.
pub fn publish(args: &[&str]) -> Result<(), String> {
    let [port, topic, id, count, subs] = args else {
        return Err(format!("ws-pub arguments: {args:?}"));
    };
    let id: u64 = parse("id", id)?;
    let count: u64 = parse("count", count)?;
    let subs: usize = parse("subscribers", subs)?;
    let publisher = NetPublisher::builder(topic)
        .bind("127.0.0.1:0".parse().map_err(|_| "addr")?)
        .slow_policy(SlowPolicy::Wait(Duration::from_secs(30)))
        .announce(config(port)?)
        .start::<Msg>()
        .map_err(|e| e.to_string())?;
    println!("port={}", publisher.local_addr().port());
    if !publisher.wait_for_connections(subs, LIFETIME) {
        return Err(format!("only {} subscribers came", publisher.connections()));
    }
    let start = Instant::now();
    for seq in 0..count {
        let queued = publisher
            .send(&Msg::new(id, seq))
            .map_err(|e| e.to_string())?;
        if queued != subs {
            return Err(format!("message {seq} queued for {queued} of {subs}"));
        }
    }
    if !publisher.drain(LIFETIME) {
        return Err("could not drain".into());
    }
    let stats = publisher.stats();
    if !publisher.close(Duration::from_secs(10)) {
        return Err("connections did not close".into());
    }
    println!("sent={count}");
    println!("rate={:.0}", count as f64 / start.elapsed().as_secs_f64());
    println!("dropped={}", stats.dropped_timeout + stats.dropped_oldest);
    Ok(())
}

/// `ws-sub <discovery port> <topic> <per publisher> <publishers>`: follows
/// `topic` until it has `per publisher` messages from each of that many
/// publishers (by the message's `publisher` field), each intact and in
/// order; prints `received=`, `broken=`, `connections=`.
pub fn subscribe(args: &[&str]) -> Result<(), String> {
    let [port, topic, per, pubs] = args else {
        return Err(format!("ws-sub arguments: {args:?}"));
    };
    let per: u64 = parse("per publisher", per)?;
    let pubs: u64 = parse("publishers", pubs)?;
    let total = Arc::new(AtomicU64::new(0));
    let broken = Arc::new(AtomicU64::new(0));
    let next: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let (t, b, n) = (Arc::clone(&total), Arc::clone(&broken), Arc::clone(&next));
    let subscriber = NetSubscriber::typed::<Msg>()
        .topic(topic)
        .discovery(config(port)?)
        .on_connect(|e| println!("connected={}", e.url))
        .on_message(move |d| {
            let m = d.message;
            let mut next = n.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let expected = next.entry(m.publisher).or_insert(0);
            if !m.intact() || m.seq != *expected {
                b.fetch_add(1, Ordering::Relaxed);
            }
            *expected = m.seq + 1;
            t.fetch_add(1, Ordering::Relaxed);
        })
        .start()
        .map_err(|e| e.to_string())?;
    println!("ready=1");
    let deadline = Instant::now() + LIFETIME;
    while total.load(Ordering::Relaxed) < per * pubs {
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = subscriber.stats();
    println!("received={}", total.load(Ordering::Relaxed));
    println!("broken={}", broken.load(Ordering::Relaxed));
    println!("missed={}", stats.missed);
    println!("connections={}", stats.connections_opened);
    Ok(())
}

/// The payload of a blob: its sequence number, then that number's low
/// byte repeated, 16 KiB in all.
fn blob(seq: u64) -> Vec<u8> {
    let mut b = vec![seq as u8; 16 * 1024];
    b[..8].copy_from_slice(&seq.to_le_bytes());
    b
}

fn blob_seq(b: &[u8]) -> Option<u64> {
    let seq = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
    // A sample of the filler (checking every byte would make a debug build
    // the slow receiver).
    let filled = [8, b.len() / 2, b.len() - 1]
        .iter()
        .all(|&i| b.get(i) == Some(&(seq as u8)));
    (b.len() == 16 * 1024 && filled).then_some(seq)
}

const BLOB_FINGERPRINT: u64 = 0x0b10_b0b1_0b10_b0b1;

/// `ws-blob-pub <discovery port> <topic> <count> <subscribers>
/// <drop|disconnect>`: 16 KiB blobs, paced (1 ms every 8), under the
/// policy; prints `sent=`, `dropped=`, `disconnected=`.
pub fn blob_publish(args: &[&str]) -> Result<(), String> {
    let [port, topic, count, subs, policy] = args else {
        return Err(format!("ws-blob-pub arguments: {args:?}"));
    };
    let count: u64 = parse("count", count)?;
    let policy = match *policy {
        "drop" => SlowPolicy::DropOldest,
        "disconnect" => SlowPolicy::Disconnect,
        other => return Err(format!("policy {other:?}")),
    };
    let publisher = NetPublisher::builder(topic)
        .bind("127.0.0.1:0".parse().map_err(|_| "addr")?)
        .queue_capacity(1024)
        .slow_policy(policy)
        .announce(config(port)?)
        .start_raw("shmidl_tests.Blob", BLOB_FINGERPRINT)
        .map_err(|e| e.to_string())?;
    if !publisher.wait_for_connections(parse("subscribers", subs)?, LIFETIME) {
        return Err("subscribers did not come".into());
    }
    for seq in 0..count {
        publisher.send(&blob(seq)).map_err(|e| e.to_string())?;
        if seq % 8 == 7 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    publisher.drain(LIFETIME);
    let stats = publisher.stats();
    let _ = publisher.close(Duration::from_secs(10));
    println!("sent={count}");
    println!("dropped={}", stats.dropped_oldest + stats.dropped_timeout);
    println!("disconnected={}", stats.disconnected_slow);
    Ok(())
}

/// `ws-blob-sub <discovery port> <topic> <count> <slow ms>`: receives
/// blobs until `count` (fast) or until stdin says stop (slow: sleeps that
/// long per blob); prints `received=`, `broken=` (corrupt or going back),
/// `in_order=` (whether every blob followed the previous one).
pub fn blob_subscribe(args: &[&str]) -> Result<(), String> {
    let [port, topic, count, slow] = args else {
        return Err(format!("ws-blob-sub arguments: {args:?}"));
    };
    let count: u64 = parse("count", count)?;
    let slow = Duration::from_millis(parse("slow", slow)?);
    let total = Arc::new(AtomicU64::new(0));
    let broken = Arc::new(AtomicU64::new(0));
    let gaps = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let (t, b, g, n) = (
        Arc::clone(&total),
        Arc::clone(&broken),
        Arc::clone(&gaps),
        Arc::clone(&next),
    );
    let _subscriber = NetSubscriber::raw(Some(BLOB_FINGERPRINT))
        .topic(topic)
        .discovery(config(port)?)
        .on_message(move |d| {
            match blob_seq(d.bytes) {
                Some(seq) if seq >= n.load(Ordering::Relaxed) => {
                    if seq != n.load(Ordering::Relaxed) {
                        g.fetch_add(1, Ordering::Relaxed);
                    }
                    n.store(seq + 1, Ordering::Relaxed);
                }
                _ => {
                    b.fetch_add(1, Ordering::Relaxed);
                }
            }
            t.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(slow);
        })
        .start()
        .map_err(|e| e.to_string())?;
    println!("ready=1");
    if slow.is_zero() {
        let deadline = Instant::now() + LIFETIME;
        while total.load(Ordering::Relaxed) < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    } else {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    println!("received={}", total.load(Ordering::Relaxed));
    println!("broken={}", broken.load(Ordering::Relaxed));
    println!("in_order={}", gaps.load(Ordering::Relaxed) == 0);
    Ok(())
}

/// `ws-wrong-pub`: a publisher process that serves, on an ephemeral
/// loopback port, what a subscriber of `Msg` must refuse: 3 frames of
/// another type's fingerprint, 3 of `Msg`'s fingerprint with a payload
/// that is not a `Msg` (too short), 3 of 8 KiB (over a 1 KiB limit), then
/// 10 good ones. Prints `url=` and waits for one subscriber first, then
/// `sent=1` and runs until told to stop.
pub fn wrong_publish(_args: &[&str]) -> Result<(), String> {
    use shmidl::ShmSafe;
    let localhost = "127.0.0.1:0".parse().map_err(|_| "address")?;
    let good = NetPublisher::builder("hostile/msg")
        .bind(localhost)
        .start::<Msg>()
        .map_err(|e| e.to_string())?;
    // The same topic path served raw, with arbitrary fingerprints: three
    // publishers on three ports, each a different kind of wrong.
    let raw = |fingerprint: u64| {
        NetPublisher::builder("hostile/msg")
            .bind(localhost)
            .start_raw("hostile", fingerprint)
            .map_err(|e| e.to_string())
    };
    let wrong_type = raw(0xdead_beef)?;
    let short = raw(Msg::FINGERPRINT)?;
    let big = raw(Msg::FINGERPRINT)?;
    for p in [&wrong_type, &short, &big] {
        println!("url={}", p.url());
    }
    println!("url={}", good.url());
    for p in [&wrong_type, &short, &big, &good] {
        if !p.wait_for_connections(1, LIFETIME) {
            return Err("no subscriber".into());
        }
    }
    for _ in 0..3 {
        wrong_type.send(&[0u8; 64]).map_err(|e| e.to_string())?;
        short.send(&[1u8; 3]).map_err(|e| e.to_string())?;
        big.send(&vec![2u8; 8192]).map_err(|e| e.to_string())?;
    }
    for seq in 0..10 {
        good.send(&Msg::new(9, seq)).map_err(|e| e.to_string())?;
    }
    for p in [&wrong_type, &short, &big, &good] {
        p.drain(LIFETIME);
    }
    println!("sent=1");
    super::discovery::wait_for_stop();
    Ok(())
}
