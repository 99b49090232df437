//! The websocket transport in one process, over loopback: typed delivery
//! through explicit endpoints and through discovery, both runtime modes,
//! the slow-receiver policies and the rejection of bad frames. Every test
//! uses port 0 and its own discovery port, so they run in parallel.
#![cfg(feature = "net")]

use std::{
    net::UdpSocket,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use shmidl::{
    net::{
        ws::CloseReason, DiscoveryConfig, NetPublisher, NetRuntime, NetSubscriber, SlowPolicy,
        Transport,
    },
    ShmMessage, ShmSafe,
};

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[shm(name = "test.net.Sample")]
struct Sample {
    seq: u64,
    check: u64,
}

/// A valid frame (header and payload) of `Sample::new(seq)`, as a
/// publisher sends it.
fn sample_frame(seq: u64) -> Vec<u8> {
    shmidl::net::ws::FrameHeader {
        flags: 0,
        origin: 1,
        fingerprint: Sample::FINGERPRINT,
        sequence: seq,
        timestamp_ns: 0,
        payload_len: 0,
    }
    .encode(&Sample::new(seq).encode_to_vec().unwrap())
    .unwrap()
}

impl Sample {
    fn new(seq: u64) -> Sample {
        Sample {
            seq,
            check: seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xabcd,
        }
    }
    fn intact(&self) -> bool {
        *self == Sample::new(self.seq)
    }
}

#[derive(ShmMessage, Clone, Copy, Debug)]
#[repr(C)]
#[shm(name = "test.net.Other")]
struct Other {
    x: u32,
}

const DEADLINE: Duration = Duration::from_secs(20);

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn discovery() -> DiscoveryConfig {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = DiscoveryConfig::on_port(port)
        .loopback()
        .with_transport(Transport::Broadcast)
        .with_interval(Duration::from_millis(100));
    // Publisher and subscriber share this process.
    c.ignore_own = false;
    c
}

fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Counts intact messages per sequence, in order.
#[derive(Default)]
struct Tally {
    received: AtomicU64,
    broken: AtomicU64,
}

#[test]
fn typed_messages_arrive_in_order_on_an_own_runtime() {
    let rt = NetRuntime::start(2).unwrap();
    let publisher = NetPublisher::builder("t/own")
        .bind(localhost())
        .runtime(rt.clone())
        .start::<Sample>()
        .unwrap();
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicU64::new(0));
    let (t, n) = (Arc::clone(&tally), Arc::clone(&next));
    let subscriber = NetSubscriber::typed::<Sample>()
        .endpoint(&publisher.url())
        .runtime(rt.clone())
        .on_message(move |d| {
            let ok = d.message.intact() && d.message.seq == n.fetch_add(1, Ordering::Relaxed);
            if !ok {
                t.broken.fetch_add(1, Ordering::Relaxed);
            }
            t.received.fetch_add(1, Ordering::Relaxed);
        })
        .start()
        .unwrap();
    assert!(publisher.wait_for_connections(1, DEADLINE));
    for i in 0..20_000 {
        publisher.send(&Sample::new(i)).unwrap();
    }
    assert!(publisher.drain(DEADLINE));
    wait_until("20,000 messages", || {
        tally.received.load(Ordering::Relaxed) == 20_000
    });
    assert_eq!(tally.broken.load(Ordering::Relaxed), 0);
    let stats = subscriber.stats();
    assert_eq!(
        (stats.missed, stats.bad_frames, stats.undecodable),
        (0, 0, 0)
    );
    assert!(publisher.stats().batches < 20_000, "writes are batched");
    drop(subscriber);
    drop(publisher);
    rt.shutdown(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_runtime_carries_a_stream() {
    let rt = NetRuntime::from_handle(tokio::runtime::Handle::current());
    assert!(!rt.is_owned());
    let publisher = NetPublisher::builder("t/handle")
        .bind(localhost())
        .runtime(rt.clone())
        .start::<Sample>()
        .unwrap();
    let subscriber = NetSubscriber::typed::<Sample>()
        .endpoint(&publisher.url())
        .with_stream(64)
        .start()
        .unwrap();
    let mut stream = subscriber.stream().unwrap();
    let url = publisher.url();
    let sender = tokio::task::spawn_blocking(move || {
        assert!(publisher.wait_for_connections(1, DEADLINE));
        for i in 0..1000 {
            publisher.send(&Sample::new(i)).unwrap();
        }
        assert!(publisher.drain(DEADLINE));
        publisher
    });
    for i in 0..1000 {
        let (endpoint, msg) = tokio::time::timeout(DEADLINE, stream.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(endpoint.url, url);
        assert_eq!(msg, Sample::new(i));
    }
    drop(sender.await.unwrap());
}

#[test]
fn discovery_connects_and_a_restarted_publisher_is_reconnected() {
    let config = discovery();
    let rt = NetRuntime::start(2).unwrap();
    let tally = Arc::new(Tally::default());
    let opened = Arc::new(AtomicU64::new(0));
    let announced = Arc::new(AtomicU64::new(0));
    let (t, o, a) = (
        Arc::clone(&tally),
        Arc::clone(&opened),
        Arc::clone(&announced),
    );
    let subscriber = NetSubscriber::typed::<Sample>()
        .topic("t/disc")
        .discovery(config.clone())
        .runtime(rt.clone())
        .on_message(move |d| {
            if !d.message.intact() {
                t.broken.fetch_add(1, Ordering::Relaxed);
            }
            t.received.fetch_add(1, Ordering::Relaxed);
        })
        .on_connect(move |_| {
            o.fetch_add(1, Ordering::Relaxed);
        })
        .on_announcement(move |_| {
            a.fetch_add(1, Ordering::Relaxed);
        })
        .start()
        .unwrap();
    for round in 0..2u64 {
        let publisher = NetPublisher::builder("t/disc")
            .bind(localhost())
            .announce(config.clone())
            .runtime(rt.clone())
            .start::<Sample>()
            .unwrap();
        assert!(publisher.wait_for_connections(1, DEADLINE), "round {round}");
        for i in 0..1000 {
            publisher.send(&Sample::new(i)).unwrap();
        }
        assert!(publisher.drain(DEADLINE));
        wait_until("the messages", || {
            tally.received.load(Ordering::Relaxed) == 1000 * (round + 1)
        });
    }
    assert_eq!(opened.load(Ordering::Relaxed), 2);
    assert!(announced.load(Ordering::Relaxed) >= 2);
    assert_eq!(tally.broken.load(Ordering::Relaxed), 0);
    drop(subscriber);
}

#[test]
fn a_slow_receiver_gets_its_policy_and_a_fast_one_everything() {
    const N: u64 = 3000;
    let payload = vec![7u8; 16 * 1024];
    for policy in [SlowPolicy::DropOldest, SlowPolicy::Disconnect] {
        let publisher = NetPublisher::builder("t/slow")
            .bind(localhost())
            .queue_capacity(256)
            .slow_policy(policy)
            .start_raw("test.Blob", 1)
            .unwrap();
        let fast = Arc::new(AtomicU64::new(0));
        let f = Arc::clone(&fast);
        let fast_sub = NetSubscriber::raw(Some(1))
            .endpoint(&publisher.url())
            .on_message(move |_| {
                f.fetch_add(1, Ordering::Relaxed);
            })
            .start()
            .unwrap();
        assert!(publisher.wait_for_connections(1, DEADLINE));
        let closed = Arc::new(Mutex::new(Vec::new()));
        let c = Arc::clone(&closed);
        let slow_sub = NetSubscriber::raw(Some(1))
            .endpoint(&publisher.url())
            .on_message(|_| std::thread::sleep(Duration::from_millis(5)))
            .on_disconnect(move |_, why| c.lock().unwrap().push(why.clone()))
            .start()
            .unwrap();
        assert!(publisher.wait_for_connections(2, DEADLINE));
        // 48 MB, paced so that a receiver that keeps reading keeps up,
        // far more than the slow one's queue and socket buffers hold.
        for i in 0..N {
            publisher.send(&payload).unwrap();
            if i % 16 == 15 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        wait_until("the fast receiver", || fast.load(Ordering::Relaxed) == N);
        let stats = publisher.stats();
        match policy {
            SlowPolicy::DropOldest => {
                assert!(stats.dropped_oldest > 0, "{stats:?}");
                // The drops are the slow connection's alone; the fast one
                // was written every message.
                let per = publisher.connection_stats();
                assert_eq!(per.len(), 2, "{per:?}");
                let dropped: Vec<u64> = per.iter().map(|c| c.dropped).collect();
                assert_eq!(dropped.iter().sum::<u64>(), stats.dropped_oldest, "{per:?}");
                assert!(dropped.contains(&0), "{per:?}");
                assert!(per.iter().any(|c| c.written == N), "{per:?}");
                assert!(per.iter().all(|c| c.peer.ip().is_loopback()), "{per:?}");
            }
            _ => {
                assert!(stats.disconnected_slow > 0, "{stats:?}");
                wait_until("the slow one's close", || {
                    !closed.lock().unwrap().is_empty()
                });
            }
        }
        assert_eq!(fast_sub.stats().missed, 0, "{policy:?}");
        drop((slow_sub, fast_sub));
    }
}

/// Several threads sending on one publisher: every subscriber gets every
/// message once, in sequence order, each thread's in the order it sent
/// them, with small queues that make senders wait for room.
#[test]
fn threads_sending_at_once_reach_every_subscriber_in_sequence_order() {
    const THREADS: u64 = 4;
    const EACH: u64 = 5_000;
    let publisher = NetPublisher::builder("t/threads")
        .bind(localhost())
        .queue_capacity(16)
        .batch(8)
        .slow_policy(SlowPolicy::Wait(DEADLINE))
        .start_raw("test.Blob", 1)
        .unwrap();
    let mut logs = Vec::new();
    let mut subscribers = Vec::new();
    for _ in 0..2 {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&log);
        subscribers.push(
            NetSubscriber::raw(Some(1))
                .endpoint(&publisher.url())
                .on_message(move |d| {
                    let id = u64::from_le_bytes(d.bytes[..8].try_into().unwrap());
                    l.lock().unwrap().push((d.header.sequence, id));
                })
                .start()
                .unwrap(),
        );
        logs.push(log);
    }
    assert!(publisher.wait_for_connections(2, DEADLINE));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let publisher = &publisher;
            s.spawn(move || {
                for i in 0..EACH {
                    let id = t << 32 | i;
                    assert_eq!(publisher.send(&id.to_le_bytes()).unwrap(), 2);
                }
            });
        }
    });
    let total = (THREADS * EACH) as usize;
    for log in &logs {
        wait_until("every message", || log.lock().unwrap().len() == total);
        let log = log.lock().unwrap();
        // Sequence numbers 0.. in order, none twice, none missing.
        assert!(log.iter().enumerate().all(|(i, (seq, _))| *seq == i as u64));
        for t in 0..THREADS {
            let mine: Vec<u64> = log
                .iter()
                .filter(|(_, id)| id >> 32 == t)
                .map(|(_, id)| id & 0xffff_ffff)
                .collect();
            assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "thread {t}");
        }
    }
    let stats = publisher.stats();
    assert_eq!((stats.sent, stats.dropped_timeout), (THREADS * EACH, 0));
    for s in &subscribers {
        assert_eq!(s.stats().missed, 0);
    }
}

/// A raw message is only lent to the callbacks (the next frame of the
/// same read is decoded into it): one kept with `clone` holds its own
/// bytes, whatever arrives after it, and equals a message of the same
/// payload from elsewhere.
#[test]
fn raw_messages_kept_from_the_callback_hold_their_own_bytes() {
    const N: u64 = 3_000;
    let payload = |i: u64| -> Vec<u8> {
        let mut p = i.to_le_bytes().to_vec();
        p.extend((0..56).map(|k| (i as u8).wrapping_mul(31).wrapping_add(k)));
        p
    };
    let publisher = NetPublisher::builder("t/raw-kept")
        .bind(localhost())
        .slow_policy(SlowPolicy::Wait(DEADLINE))
        .start_raw("test.Blob", 1)
        .unwrap();
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = Arc::clone(&kept);
    let subscriber = NetSubscriber::raw(Some(1))
        .endpoint(&publisher.url())
        .on_message(move |d| {
            assert_eq!(d.message.as_bytes(), d.bytes);
            k.lock().unwrap().push(d.message.clone());
        })
        .start()
        .unwrap();
    assert!(publisher.wait_for_connections(1, DEADLINE));
    // Sent back to back: many frames to a read.
    for i in 0..N {
        publisher.send(&payload(i)).unwrap();
    }
    wait_until("every message", || kept.lock().unwrap().len() == N as usize);
    let kept = kept.lock().unwrap();
    for (i, m) in (0..N).zip(kept.iter()) {
        assert_eq!(m.as_bytes(), payload(i), "message {i}");
        assert_eq!(&**m, &payload(i)[..]);
    }
    // Equal by payload, not by the buffer it was read into.
    let frame = shmidl::net::ws::FrameHeader {
        flags: 0,
        origin: 7,
        fingerprint: 1,
        sequence: 5,
        timestamp_ns: 0,
        payload_len: 0,
    }
    .encode(&payload(5))
    .unwrap();
    let alone =
        <shmidl::net::RawMessage as shmidl::net::NetMessage>::decode_frame(&frame.into()).unwrap();
    assert_eq!(alone, kept[5]);
    assert_ne!(alone, kept[6]);
    drop(subscriber);
}

/// Under `Wait`, a receiver that stops reading costs each send at most the
/// timeout, then loses its oldest queued message; the others get
/// everything, and once it reads again it gets the newest.
#[test]
fn under_wait_a_stuck_receiver_loses_its_oldest_after_the_timeout() {
    const N: u64 = 120;
    const CAPACITY: usize = 8;
    let publisher = NetPublisher::builder("t/wait")
        .bind(localhost())
        .queue_capacity(CAPACITY)
        .slow_policy(SlowPolicy::Wait(Duration::from_millis(10)))
        .start_raw("test.Blob", 1)
        .unwrap();
    let seq_of = |bytes: &[u8]| u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let fast = Arc::new(Mutex::new(Vec::new()));
    let f = Arc::clone(&fast);
    let fast_sub = NetSubscriber::raw(Some(1))
        .endpoint(&publisher.url())
        .on_message(move |d| f.lock().unwrap().push(seq_of(d.bytes)))
        .start()
        .unwrap();
    assert!(publisher.wait_for_connections(1, DEADLINE));
    // The stuck one reads nothing until `release`, then everything.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Mutex::new(Some(released));
    let stuck = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&stuck);
    let stuck_sub = NetSubscriber::raw(Some(1))
        .endpoint(&publisher.url())
        .on_message(move |d| {
            if let Some(rx) = released.lock().unwrap().take() {
                let _ = rx.recv_timeout(DEADLINE);
            }
            s.lock().unwrap().push(seq_of(d.bytes));
        })
        .start()
        .unwrap();
    assert!(publisher.wait_for_connections(2, DEADLINE));
    // 30 MB: more than the stuck connection's socket buffers and queue hold.
    let mut payload = vec![0u8; 256 * 1024];
    for i in 0..N {
        payload[..8].copy_from_slice(&i.to_le_bytes());
        assert_eq!(publisher.send(&payload).unwrap(), 2);
    }
    wait_until("the fast receiver", || {
        fast.lock().unwrap().len() == N as usize
    });
    assert_eq!(*fast.lock().unwrap(), (0..N).collect::<Vec<_>>());
    let stats = publisher.stats();
    assert!(stats.dropped_timeout > 0, "{stats:?}");
    let per = publisher.connection_stats();
    assert!(
        per.iter()
            .any(|c| c.dropped == stats.dropped_timeout && c.queued == CAPACITY),
        "{per:?}"
    );
    release.send(()).unwrap();
    wait_until("the stuck receiver's newest", || {
        stuck.lock().unwrap().last() == Some(&(N - 1))
    });
    let got = stuck.lock().unwrap().clone();
    // In order, and what it lost is what the publisher counted.
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert_eq!(got.len() as u64 + stats.dropped_timeout, N, "{got:?}");
    assert_eq!(stuck_sub.stats().missed, stats.dropped_timeout);
    assert!(publisher.drain(DEADLINE));
    drop((stuck_sub, fast_sub));
}

#[test]
fn bad_frames_are_counted_and_repeated_offences_close_the_connection() {
    let rt = NetRuntime::start(1).unwrap();
    // Right fingerprint, undecodable payload (wrong length).
    let bad_body = NetPublisher::builder("t/bad")
        .bind(localhost())
        .runtime(rt.clone())
        .start_raw(Sample::TYPE_NAME, Sample::FINGERPRINT)
        .unwrap();
    // Another type.
    let other = NetPublisher::builder("t/bad")
        .bind(localhost())
        .runtime(rt.clone())
        .start::<Other>()
        .unwrap();
    // Too large for the subscriber.
    let big = NetPublisher::builder("t/bad")
        .bind(localhost())
        .runtime(rt.clone())
        .start_raw(Sample::TYPE_NAME, Sample::FINGERPRINT)
        .unwrap();
    let closed = Arc::new(Mutex::new(Vec::new()));
    let c = Arc::clone(&closed);
    let subscriber = NetSubscriber::typed::<Sample>()
        .endpoint(&bad_body.url())
        .endpoint(&other.url())
        .endpoint(&big.url())
        .runtime(rt.clone())
        .max_bad_frames(3)
        .max_message_size(1024)
        .on_disconnect(move |_, why| c.lock().unwrap().push(why.clone()))
        .start()
        .unwrap();
    for p in [&bad_body, other.raw(), &big] {
        assert!(p.wait_for_connections(1, DEADLINE));
    }
    for _ in 0..4 {
        bad_body.send(&[1, 2, 3]).unwrap();
        other.send(&Other { x: 1 }).unwrap();
    }
    big.send(&vec![0u8; 4096]).unwrap();
    wait_until("three closes", || {
        let c = closed.lock().unwrap();
        c.iter().filter(|r| **r == CloseReason::BadFrames).count() >= 2
            && c.iter().any(|r| matches!(r, CloseReason::Error(_)))
    });
    let stats = subscriber.stats();
    assert_eq!(stats.received, 0);
    assert_eq!(stats.undecodable, 4);
    assert_eq!(stats.wrong_fingerprint, 4);
    assert_eq!(stats.oversized, 1);
    assert_eq!(stats.closed_for_bad_frames, 2);
}

#[test]
fn send_with_reports_completion_and_an_idle_subscriber_stops() {
    let publisher = NetPublisher::builder("t/done")
        .bind(localhost())
        .start::<Sample>()
        .unwrap();
    let idle = Arc::new(AtomicU64::new(0));
    let i = Arc::clone(&idle);
    let subscriber = NetSubscriber::typed::<Sample>()
        .endpoint(&publisher.url())
        .idle_timeout(Duration::from_millis(200), true)
        .on_idle(move || {
            i.fetch_add(1, Ordering::Relaxed);
        })
        .start()
        .unwrap();
    assert!(publisher.wait_for_connections(1, DEADLINE));
    let (tx, rx) = std::sync::mpsc::channel();
    let queued = publisher
        .send_with(&Sample::new(1), move |outcome| tx.send(outcome).unwrap())
        .unwrap();
    assert_eq!(queued, 1);
    let outcome = rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!((outcome.connections, outcome.written), (1, 1));
    wait_until("the idle stop", || subscriber.is_stopped());
    assert_eq!(idle.load(Ordering::Relaxed), 1);
}

#[test]
fn with_a_secret_only_subscribers_with_a_valid_token_are_admitted() {
    use shmidl::net::NetSecret;
    let secret = NetSecret::from_bytes(b"the deployment's shared secret").unwrap();
    let publisher = NetPublisher::builder("t/secret")
        .bind(localhost())
        .secret(secret.clone())
        .start::<Sample>()
        .unwrap();
    let count = |n: &Arc<AtomicU64>| {
        let n = Arc::clone(n);
        move |_: &shmidl::net::ws::Delivery<'_, Sample>| {
            n.fetch_add(1, Ordering::Relaxed);
        }
    };
    let (right_n, wrong_n, none_n) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let right = NetSubscriber::typed::<Sample>()
        .endpoint(&publisher.url())
        .secret(secret)
        .on_message(count(&right_n))
        .start()
        .unwrap();
    let wrong = NetSubscriber::typed::<Sample>()
        .endpoint(&publisher.url())
        .secret(NetSecret::from_bytes(b"a stranger's other secret").unwrap())
        .on_message(count(&wrong_n))
        .start()
        .unwrap();
    let none = NetSubscriber::typed::<Sample>()
        .endpoint(&publisher.url())
        .on_message(count(&none_n))
        .start()
        .unwrap();
    assert!(publisher.wait_for_connections(1, DEADLINE));
    // The strangers keep trying (with backoff) and are refused every time.
    wait_until("two refusals each", || publisher.stats().unauthorized >= 4);
    for i in 0..100 {
        publisher.send(&Sample::new(i)).unwrap();
    }
    assert!(publisher.drain(DEADLINE));
    wait_until("100 messages", || right_n.load(Ordering::Relaxed) == 100);
    assert_eq!(publisher.connections(), 1);
    assert_eq!(wrong_n.load(Ordering::Relaxed), 0);
    assert_eq!(none_n.load(Ordering::Relaxed), 0);
    assert_eq!(wrong.stats().connections_opened, 0);
    assert_eq!(none.stats().connections_opened, 0);
    drop((right, wrong, none));
}

/// A websocket server that is not a shmidl publisher: it sends `frames`
/// to the first client, as given, then waits.
fn hostile_server(rt: &NetRuntime, frames: Vec<tokio_tungstenite::tungstenite::Message>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("ws://{}/hostile", listener.local_addr().unwrap());
    rt.handle().spawn(async move {
        use futures_util::SinkExt;
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        for frame in frames {
            if ws.send(frame).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    url
}

#[test]
fn frames_with_a_bad_header_or_as_text_are_counted_and_valid_ones_still_arrive() {
    use tokio_tungstenite::tungstenite::Message;
    let rt = NetRuntime::start(1).unwrap();
    let good = sample_frame;
    let mut bad_magic = good(1);
    bad_magic[0] = b'X';
    let mut bad_length = good(1);
    bad_length[40] = 99;
    let frames = vec![
        Message::Binary(good(0).into()),
        Message::Binary(bad_magic.into()),
        Message::Binary(bad_length.into()),
        Message::Binary(good(1)[..20].to_vec().into()),
        Message::Text("hello".into()),
        Message::Binary(good(1).into()),
    ];
    let url = hostile_server(&rt, frames);
    let received = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::clone(&received);
    let subscriber = NetSubscriber::typed::<Sample>()
        .endpoint(&url)
        .runtime(rt.clone())
        .max_bad_frames(10)
        .on_message(move |d| r.lock().unwrap().push(d.message.seq))
        .start()
        .unwrap();
    wait_until("both good frames", || received.lock().unwrap().len() == 2);
    assert_eq!(*received.lock().unwrap(), vec![0, 1]);
    let stats = subscriber.stats();
    assert_eq!((stats.bad_frames, stats.text_frames), (3, 1), "{stats:?}");
}

#[test]
fn a_client_that_never_answers_pings_is_closed() {
    let rt = NetRuntime::start(1).unwrap();
    let publisher = NetPublisher::builder("t/ping")
        .bind(localhost())
        .keepalive(Duration::from_millis(20), Duration::from_millis(100))
        .runtime(rt.clone())
        .start::<Sample>()
        .unwrap();
    // Never reads, so never answers a ping.
    let _silent = silent_client(&rt, &publisher);
    wait_until("the ping timeout", || publisher.stats().ping_timeouts == 1);
    wait_until("the close", || publisher.connections() == 0);
}

/// A client that stops reading while frames are being written to it: the
/// write waits on a full socket, where no ping can go out, and the
/// connection is closed once no byte was taken for the pong timeout
/// (under `DropOldest`, which never closes a slow connection by itself).
#[test]
fn a_client_that_stops_reading_mid_stream_is_closed_after_the_pong_timeout() {
    let rt = NetRuntime::start(1).unwrap();
    let publisher = NetPublisher::builder("t/stalled")
        .bind(localhost())
        .keepalive(Duration::from_secs(60), Duration::from_millis(200))
        .slow_policy(SlowPolicy::DropOldest)
        .runtime(rt.clone())
        .start_raw("test.Blob", 1)
        .unwrap();
    let _silent = silent_client(&rt, &publisher);
    // Far more than the socket buffers hold (the first ping is a minute
    // away, so only the stalled write can end the connection).
    let payload = vec![1u8; 1 << 20];
    let start = Instant::now();
    while publisher.connections() == 1 {
        assert!(start.elapsed() < DEADLINE, "never closed");
        publisher.send(&payload).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = publisher.stats();
    assert_eq!((stats.ping_timeouts, stats.io_errors), (1, 0), "{stats:?}");
}

/// A websocket client that completes the handshake and never reads.
fn silent_client(
    rt: &NetRuntime,
    publisher: &NetPublisher,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let addr = publisher.local_addr();
    let url = publisher.url();
    let ws = rt.handle().block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio_tungstenite::client_async(url.as_str(), tcp)
            .await
            .unwrap()
            .0
    });
    assert!(publisher.wait_for_connections(1, DEADLINE));
    ws
}

/// Sends 1 MiB messages until the connection's writer has been stuck for
/// a while (its written count stops moving).
fn fill_until_stuck(publisher: &NetPublisher) {
    let payload = vec![1u8; 1 << 20];
    let (mut last, mut still) = (u64::MAX, 0);
    let start = Instant::now();
    while still < 20 {
        assert!(start.elapsed() < DEADLINE, "the writer never got stuck");
        publisher.send(&payload).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let written = publisher.stats().written;
        still = if written == last { still + 1 } else { 0 };
        last = written;
    }
}

/// `close` ends a connection whose writer waits on a subscriber that never
/// reads (the frame begun gets `CLOSE_GRACE`, 2 s), long before the
/// 60 s pong timeout would.
#[test]
fn close_ends_a_writer_stuck_on_a_subscriber_that_never_reads() {
    let rt = NetRuntime::start(1).unwrap();
    let publisher = NetPublisher::builder("t/stuck-close")
        .bind(localhost())
        .keepalive(Duration::from_secs(60), Duration::from_secs(60))
        .slow_policy(SlowPolicy::DropOldest)
        .runtime(rt.clone())
        .start_raw("test.Blob", 1)
        .unwrap();
    let _silent = silent_client(&rt, &publisher);
    fill_until_stuck(&publisher);
    let start = Instant::now();
    assert!(publisher.close(Duration::from_secs(10)));
    assert!(start.elapsed() < Duration::from_secs(8));
}

/// Closing a slow connection (`Disconnect`) ends its writer even while
/// that writer waits on the socket.
#[test]
fn disconnect_ends_a_writer_stuck_on_a_subscriber_that_never_reads() {
    let rt = NetRuntime::start(1).unwrap();
    let publisher = NetPublisher::builder("t/stuck-disconnect")
        .bind(localhost())
        .keepalive(Duration::from_secs(60), Duration::from_secs(60))
        .queue_capacity(64)
        .slow_policy(SlowPolicy::Disconnect)
        .runtime(rt.clone())
        .start_raw("test.Blob", 1)
        .unwrap();
    let _silent = silent_client(&rt, &publisher);
    // Stuck first, then the queue fills behind it.
    fill_until_stuck(&publisher);
    assert_eq!(publisher.stats().disconnected_slow, 0);
    let payload = vec![1u8; 1 << 20];
    let start = Instant::now();
    while publisher.stats().disconnected_slow == 0 {
        assert!(start.elapsed() < DEADLINE, "never full");
        publisher.send(&payload).unwrap();
    }
    let closed = Instant::now();
    wait_until("the connection's end", || publisher.connections() == 0);
    assert!(closed.elapsed() < Duration::from_secs(8));
    assert_eq!(publisher.stats().ping_timeouts, 0);
}

#[test]
fn a_subscriber_answers_pings_so_a_publisher_with_a_short_keepalive_keeps_it() {
    let rt = NetRuntime::start(1).unwrap();
    let publisher = NetPublisher::builder("t/alive")
        .bind(localhost())
        .keepalive(Duration::from_millis(20), Duration::from_millis(100))
        .runtime(rt.clone())
        .start::<Sample>()
        .unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let r = Arc::clone(&received);
    let subscriber = NetSubscriber::typed::<Sample>()
        .endpoint(&publisher.url())
        .runtime(rt.clone())
        .on_message(move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        })
        .start()
        .unwrap();
    assert!(publisher.wait_for_connections(1, DEADLINE));
    // Many pings and pong deadlines pass.
    std::thread::sleep(Duration::from_millis(600));
    publisher.send(&Sample::new(0)).unwrap();
    wait_until("the message", || received.load(Ordering::Relaxed) == 1);
    let stats = publisher.stats();
    assert_eq!((stats.ping_timeouts, stats.accepted), (0, 1), "{stats:?}");
    assert_eq!(subscriber.stats().connections_opened, 1);
}

#[test]
fn fragmented_messages_are_put_together_and_pings_between_them_answered() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{
        protocol::frame::{
            coding::{Data, OpCode},
            Frame,
        },
        Message,
    };
    let rt = NetRuntime::start(1).unwrap();
    let good = sample_frame;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("ws://{}/fragments", listener.local_addr().unwrap());
    let (pongs_tx, pongs_rx) = std::sync::mpsc::channel();
    let first = good(0);
    let second = good(1);
    rt.handle().spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let (a, rest) = first.split_at(10);
        let (b, c) = rest.split_at(20);
        let frames = [
            Message::Ping(vec![1, 2, 3].into()),
            Message::Frame(Frame::message(
                a.to_vec(),
                OpCode::Data(Data::Binary),
                false,
            )),
            Message::Frame(Frame::message(
                b.to_vec(),
                OpCode::Data(Data::Continue),
                false,
            )),
            Message::Ping(vec![4].into()),
            Message::Frame(Frame::message(
                c.to_vec(),
                OpCode::Data(Data::Continue),
                true,
            )),
            Message::Binary(second.into()),
        ];
        for frame in frames {
            ws.send(frame).await.unwrap();
        }
        let mut pongs = Vec::new();
        while pongs.len() < 2 {
            match ws.next().await {
                Some(Ok(Message::Pong(p))) => pongs.push(p.to_vec()),
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        let _ = pongs_tx.send(pongs);
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let received = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::clone(&received);
    let subscriber = NetSubscriber::typed::<Sample>()
        .endpoint(&url)
        .runtime(rt.clone())
        .on_message(move |d| r.lock().unwrap().push(*d.message))
        .start()
        .unwrap();
    wait_until("both messages", || received.lock().unwrap().len() == 2);
    assert_eq!(
        *received.lock().unwrap(),
        vec![Sample::new(0), Sample::new(1)]
    );
    let pongs = pongs_rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(pongs, vec![vec![1, 2, 3], vec![4]]);
    let stats = subscriber.stats();
    assert_eq!((stats.bad_frames, stats.missed), (0, 0), "{stats:?}");
}

/// A message type with an atomic field has no wire form.
#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "test.net.WithAtomic")]
struct WithAtomic {
    hits: std::sync::atomic::AtomicU64,
}

#[test]
fn a_message_without_a_wire_form_is_refused_before_anything_is_queued() {
    let publisher = NetPublisher::builder("t/atomic")
        .bind(localhost())
        .start::<WithAtomic>()
        .unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let r = Arc::clone(&received);
    let subscriber = NetSubscriber::raw(Some(WithAtomic::FINGERPRINT))
        .endpoint(&publisher.url())
        .on_message(move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        })
        .start()
        .unwrap();
    assert!(publisher.wait_for_connections(1, DEADLINE));
    let msg = WithAtomic {
        hits: std::sync::atomic::AtomicU64::new(7),
    };
    for _ in 0..3 {
        assert!(matches!(
            publisher.send(&msg),
            Err(shmidl::net::NetSendError::Encode(_))
        ));
    }
    // Nothing went out: the raw sender's next frame arrives whole and is
    // the only one.
    publisher.raw().send(&[0u8; 8]).unwrap();
    wait_until("the raw frame", || received.load(Ordering::Relaxed) == 1);
    // The counter is added at the end of the batch the callback ran in.
    wait_until("the raw frame counted", || subscriber.stats().received >= 1);
    assert!(publisher.raw().drain(DEADLINE));
    let stats = subscriber.stats();
    assert_eq!((stats.bad_frames, stats.received), (0, 1), "{stats:?}");
    assert_eq!(publisher.stats().sent, 1);
}
