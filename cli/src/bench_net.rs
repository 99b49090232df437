//! `shmidl bench net`: the websocket transport against raw TCP on
//! loopback, in the same run, with the same payloads and batching.
//!
//! Both sides run in this process over real loopback sockets. The
//! websocket side is a `NetPublisher` (waiting policy) and untyped
//! `NetSubscriber`s that count frames in their callback; the baseline is
//! length-prefixed frames (`u32` length, then the payload) written by one
//! thread per connection that takes up to the same batch of frames from a
//! bounded queue of the same size (yielding once for more when it has less
//! than a batch, as the websocket writer does) and flushes once per batch, and read by
//! one thread per connection. A second baseline, "direct", is the ceiling:
//! the sending thread writes each frame straight into every connection's
//! buffer and flushes every 256 frames (no queue, no writer thread).
//!
//! Each case runs `--runs` times, the three kinds in turn, and the figures
//! are the medians (with the range of the ratios): on a shared two-core
//! machine one run of the direct baseline (40 ms at 64 B) swings by 1.5×.

use std::{
    io::{BufReader, BufWriter, Read, Write},
    net::{TcpListener, TcpStream},
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc,
    },
    time::{Duration, Instant},
};

use shmidl::net::{NetPublisher, NetRuntime, NetSubscriber, SlowPolicy};

use crate::bench::median;

/// What `shmidl bench net` measures.
pub struct Options {
    /// Messages per run at 64 B.
    pub small: u64,
    /// Messages per run at 64 KiB.
    pub large: u64,
    /// Runs of each case; the figures are the medians.
    pub runs: usize,
    /// Print one JSON array instead of a table.
    pub json: bool,
}

const QUEUE: usize = 4096;
const BATCH: usize = 256;
const DEADLINE: Duration = Duration::from_secs(120);

struct Row {
    payload: usize,
    fanout: usize,
    messages: u64,
    runs: usize,
    /// Medians, messages per second.
    ws: f64,
    tcp: f64,
    direct: f64,
    /// The smallest and largest ratio of one run, websocket to direct.
    direct_ratio_range: (f64, f64),
}

/// Runs every case and prints the table (or JSON).
pub fn run(opts: &Options) -> ExitCode {
    let mut rows = Vec::new();
    for (payload, messages) in [(64, opts.small), (64 << 10, opts.large)] {
        for fanout in [1, 4] {
            let (mut ws, mut tcp, mut direct) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..opts.runs {
                let rate = |took: Duration| messages as f64 / took.as_secs_f64();
                match websocket(payload, fanout, messages) {
                    Ok(t) => ws.push(rate(t)),
                    Err(e) => {
                        eprintln!("shmidl bench net: websocket {payload} B x{fanout}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                match raw_tcp(payload, fanout, messages) {
                    Ok(t) => tcp.push(rate(t)),
                    Err(e) => {
                        eprintln!("shmidl bench net: raw TCP {payload} B x{fanout}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                match raw_tcp_direct(payload, fanout, messages) {
                    Ok(t) => direct.push(rate(t)),
                    Err(e) => {
                        eprintln!("shmidl bench net: direct TCP {payload} B x{fanout}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            let ratios: Vec<f64> = ws.iter().zip(&direct).map(|(w, d)| w / d).collect();
            let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ratios.iter().copied().fold(0.0, f64::max);
            rows.push(Row {
                payload,
                fanout,
                messages,
                runs: opts.runs,
                ws: median(&mut ws),
                tcp: median(&mut tcp),
                direct: median(&mut direct),
                direct_ratio_range: (lo, hi),
            });
        }
    }
    print(&rows, opts.json);
    ExitCode::SUCCESS
}

#[allow(clippy::print_stdout)]
fn print(rows: &[Row], json: bool) {
    if json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "payload_bytes": r.payload,
                    "receivers": r.fanout,
                    "messages": r.messages,
                    "websocket_msgs_per_s": r.ws,
                    "raw_tcp_msgs_per_s": r.tcp,
                    "websocket_bytes_per_s": r.ws * r.payload as f64,
                    "raw_tcp_bytes_per_s": r.tcp * r.payload as f64,
                    "ratio": r.ws / r.tcp,
                    "direct_tcp_msgs_per_s": r.direct,
                    "ratio_to_direct": r.ws / r.direct,
                    "runs": r.runs,
                    "ratio_to_direct_min": r.direct_ratio_range.0,
                    "ratio_to_direct_max": r.direct_ratio_range.1,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(out));
        return;
    }
    println!(
        "{:<10} {:>9} {:>10} {:>16} {:>16} {:>7} {:>16} {:>7} {:>13}",
        "payload",
        "receivers",
        "messages",
        "websocket",
        "queued TCP",
        "ratio",
        "direct TCP",
        "ratio",
        "ratio range"
    );
    for r in rows {
        let rate = |x: f64| {
            if r.payload >= 1024 {
                format!("{:.2} GB/s", x * r.payload as f64 / 1e9)
            } else {
                format!("{:.2} M msg/s", x / 1e6)
            }
        };
        let (ws, tcp, direct) = (rate(r.ws), rate(r.tcp), rate(r.direct));
        let payload = if r.payload >= 1024 {
            format!("{} KiB", r.payload >> 10)
        } else {
            format!("{} B", r.payload)
        };
        println!(
            "{payload:<10} {:>9} {:>10} {ws:>16} {tcp:>16} {:>6.2}x {direct:>16} {:>6.2}x {:>13}",
            r.fanout,
            r.messages,
            r.ws / r.tcp,
            r.ws / r.direct,
            format!(
                "{:.2}–{:.2}x",
                r.direct_ratio_range.0, r.direct_ratio_range.1
            )
        );
    }
    let runs = rows.first().map_or(1, |r| r.runs);
    let medians = if runs == 1 {
        "one run".to_owned()
    } else {
        format!("medians of {runs} runs")
    };
    println!(
        "(per receiver: every receiver gets every message; {medians}; ratio = websocket / \
         queued raw TCP (a writer thread per connection, the transport's shape), then \
         websocket / direct raw TCP (the sending thread writes), and the range of that ratio \
         over the runs)"
    );
}

fn wait_for(counters: &[Arc<AtomicU64>], n: u64) -> Result<(), String> {
    let deadline = Instant::now() + DEADLINE;
    while counters.iter().any(|c| c.load(Ordering::Relaxed) < n) {
        if Instant::now() > deadline {
            return Err("timed out".into());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

fn websocket(payload: usize, fanout: usize, messages: u64) -> Result<Duration, String> {
    let rt = NetRuntime::start(2).map_err(|e| e.to_string())?;
    let publisher = NetPublisher::builder("bench/net")
        .bind("127.0.0.1:0".parse().map_err(|_| "address")?)
        .queue_capacity(QUEUE)
        .batch(BATCH)
        .slow_policy(SlowPolicy::Wait(DEADLINE))
        .runtime(rt.clone())
        .start_raw("bench.Blob", 1)
        .map_err(|e| e.to_string())?;
    let mut counters = Vec::new();
    let mut subscribers = Vec::new();
    for _ in 0..fanout {
        let count = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&count);
        subscribers.push(
            NetSubscriber::raw(Some(1))
                .endpoint(&publisher.url())
                .max_message_size(payload)
                .runtime(rt.clone())
                .on_message(move |_| {
                    c.fetch_add(1, Ordering::Relaxed);
                })
                .start()
                .map_err(|e| e.to_string())?,
        );
        counters.push(count);
    }
    if !publisher.wait_for_connections(fanout, DEADLINE) {
        return Err("subscribers did not connect".into());
    }
    let data = vec![0xa5u8; payload];
    let start = Instant::now();
    for _ in 0..messages {
        publisher.send(&data).map_err(|e| e.to_string())?;
    }
    wait_for(&counters, messages)?;
    let took = start.elapsed();
    drop(subscribers);
    publisher.close(Duration::from_secs(5));
    rt.shutdown(Duration::from_secs(5));
    Ok(took)
}

/// Connects `fanout` counting readers to a new listener; the listener,
/// the counters and the reader threads.
type Readers = (
    TcpListener,
    Vec<Arc<AtomicU64>>,
    Vec<std::thread::JoinHandle<()>>,
);

fn raw_tcp_direct(payload: usize, fanout: usize, messages: u64) -> Result<Duration, String> {
    let (listener, counters, readers) = readers(fanout)?;
    let mut outs = Vec::new();
    for _ in 0..fanout {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        outs.push(BufWriter::with_capacity(128 << 10, stream));
    }
    let data = vec![0xa5u8; payload];
    let len = (payload as u32).to_le_bytes();
    let start = Instant::now();
    for i in 0..messages {
        for out in &mut outs {
            out.write_all(&len).map_err(|e| e.to_string())?;
            out.write_all(&data).map_err(|e| e.to_string())?;
        }
        if i % BATCH as u64 == BATCH as u64 - 1 {
            for out in &mut outs {
                out.flush().map_err(|e| e.to_string())?;
            }
        }
    }
    for out in &mut outs {
        out.flush().map_err(|e| e.to_string())?;
    }
    wait_for(&counters, messages)?;
    let took = start.elapsed();
    drop(outs);
    for r in readers {
        let _ = r.join();
    }
    Ok(took)
}

fn readers(fanout: usize) -> Result<Readers, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut counters = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..fanout {
        let count = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&count);
        let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        readers.push(std::thread::spawn(move || {
            let mut reader = BufReader::with_capacity(128 << 10, stream);
            let mut len = [0u8; 4];
            let mut buf = Vec::new();
            while reader.read_exact(&mut len).is_ok() {
                let n = u32::from_le_bytes(len) as usize;
                // A fresh buffer per message, as the websocket side has.
                buf.clear();
                buf.resize(n, 0);
                if reader.read_exact(&mut buf).is_err() {
                    break;
                }
                c.fetch_add(1, Ordering::Relaxed);
            }
        }));
        counters.push(count);
    }
    Ok((listener, counters, readers))
}

fn raw_tcp(payload: usize, fanout: usize, messages: u64) -> Result<Duration, String> {
    let (listener, counters, readers) = readers(fanout)?;
    let mut queues = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..fanout {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::sync_channel::<Arc<[u8]>>(QUEUE);
        queues.push(tx);
        writers.push(std::thread::spawn(move || {
            let mut out = BufWriter::with_capacity(128 << 10, stream);
            while let Ok(first) = rx.recv() {
                let mut frame = Some(first);
                let mut n = 0;
                let mut yielded = false;
                loop {
                    while let Some(f) = frame.take() {
                        if out.write_all(&f).is_err() {
                            return;
                        }
                        n += 1;
                        if n < BATCH {
                            frame = rx.try_recv().ok();
                        }
                    }
                    // As the websocket writer: less than a batch, so
                    // yield once for more before the flush.
                    if yielded || n >= BATCH {
                        break;
                    }
                    yielded = true;
                    std::thread::yield_now();
                    frame = rx.try_recv().ok();
                }
                if out.flush().is_err() {
                    return;
                }
            }
        }));
    }
    let start = Instant::now();
    for _ in 0..messages {
        // One length-prefixed frame shared by every connection, as the
        // websocket side shares one `Bytes`.
        let mut frame = Vec::with_capacity(4 + payload);
        frame.extend_from_slice(&(payload as u32).to_le_bytes());
        frame.resize(4 + payload, 0xa5);
        let frame: Arc<[u8]> = frame.into();
        for q in &queues {
            q.send(Arc::clone(&frame)).map_err(|_| "writer gone")?;
        }
    }
    wait_for(&counters, messages)?;
    let took = start.elapsed();
    drop(queues);
    for w in writers {
        let _ = w.join();
    }
    for r in readers {
        let _ = r.join();
    }
    Ok(took)
}
