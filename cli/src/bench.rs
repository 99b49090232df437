//! `shmidl bench pubsub`: publish-subscribe between two real processes,
//! with the floors of any shared-memory transport measured in the same run.
//!
//! Every latency figure comes from a ping-pong: process A publishes on
//! `ping`, process B answers each message on `pong`; one-way latency is
//! half of each round trip, timed with the monotonic clock. Benchmarks:
//!
//! - `cacheline`: two atomics in one shared cache line, busy-polled — the
//!   floor of any busy-polling transport;
//! - `futex`: a shared futex word, each side sleeping until woken — the
//!   floor of any blocking wake-up;
//! - `shmidl-poll/<size>`: router ping-pong, receivers busy-poll `try_recv`;
//! - `shmidl-block/<size>`: the same, receivers sleep in `recv_timeout`
//!   at once (spin count 0), so the figure is the futex wake-up path;
//! - `shmidl-async/64`: the blocking ping-pong awaited through an
//!   `AsyncSubscriber` on a tokio current-thread runtime;
//! - `shmidl-throughput/64@two-cpus` and `@same-cpu`: one publisher
//!   streams to one busy-polling subscriber, pinned as named (unpinned, the
//!   scheduler's placement swung the figure from 2 to 11 M msg/s between
//!   runs); timed from the first loan to the receipt of the last message on
//!   the monotonic clock both processes share (the fan-out streams too);
//! - `shmidl-block-1to<n>/64`: blocking latency from one publisher to `n`
//!   subscriber processes (1 and 4), the latest receipt among them minus
//!   the send; placed by the scheduler, and `@spread`: the publisher on
//!   CPU 0, subscriber `k` on CPU `(k + 1) % 2`;
//! - `shmidl-throughput-1to<n>/64`: one publisher streams to `n` subscriber
//!   processes (1 and 4) that each receive every message, busy-polling;
//!   `shmidl-throughput-block-1to<n>/64` the same with receivers that sleep
//!   when their queue is empty (five busy-polling processes on two cores
//!   measure the scheduler), and `…-1to4/64@batch` with blocking receivers
//!   under `SCHED_BATCH` (woken, they do not preempt the publisher). Each
//!   also reports the CPU time all its processes spent in their send or
//!   receive loops per message: on `c` CPUs no placement streams faster
//!   than `c` over that figure;
//! - `shmidl-poll-slice/<n>`: the busy-poll ping-pong over topics of `[u8]`
//!   (runtime-sized samples, `Node::publisher::<[u8]>`) whose slots hold a
//!   1920×1080×3 frame, with samples of 64 bytes and of the full frame:
//!   compare with `shmidl-poll/64` of the same run.
//!
//! Payloads are written in place; large ones are loaned without being
//! filled (`loan_recycled`), so their cost shows the transport, not memcpy.

#![allow(clippy::print_stdout)]

use std::{
    process::{Child, Command, ExitCode, Stdio},
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use shmidl::{Pool, Router, Segment, SendMode, SlotView};

/// How long a side waits for its peer before giving up.
const DEADLINE: Duration = Duration::from_secs(60);

/// Options of `shmidl bench pubsub`.
pub struct Options {
    /// Measured round trips per benchmark.
    pub iterations: u32,
    /// Unmeasured round trips first.
    pub warmup: u32,
    /// Messages in the throughput run.
    pub stream: u64,
    /// Runs of each one-to-one throughput stream (the median is reported).
    pub runs: u32,
    /// Print JSON instead of a table.
    pub json: bool,
    /// The `shmidl-peers` binary (bench/peers): run iceoryx2 in this run.
    pub peers: Option<std::path::PathBuf>,
    /// Run only these groups (`poll`, `slice`, `block`, `throughput`,
    /// `fanout`); every group if empty. The floors always run.
    pub only: Vec<String>,
}

impl Options {
    fn runs(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

#[derive(Debug, Clone, Copy)]
enum Wait {
    Poll,
    Block,
}

/// Where the two processes of a blocking benchmark run. On a virtual
/// machine a futex wake-up of a process on another (idle) CPU can cost 25×
/// one on the same CPU, and an unpinned run lands in either case by chance:
/// blocking figures are only comparable at equal placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Both on CPU 0.
    Same,
    /// Leader on CPU 0, peer on CPU 1.
    Split,
}

impl Placement {
    fn cpu(self, leader: bool) -> usize {
        match (self, leader) {
            (Self::Same, _) | (Self::Split, true) => 0,
            (Self::Split, false) => 1,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Same => "@same-cpu",
            Self::Split => "@two-cpus",
        }
    }
}

/// Pins the calling thread to `cpu`; restores the previous mask on drop.
struct Pinned(Option<rustix::thread::CpuSet>);

fn pin(cpu: usize) -> Pinned {
    let before = rustix::thread::sched_getaffinity(None).ok();
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        eprintln!("shmidl bench: cannot pin to CPU {cpu}: {e}; results are unpinned");
    }
    Pinned(before)
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(set) = &self.0 {
            let _ = rustix::thread::sched_setaffinity(None, set);
        }
    }
}

/// Environment variable telling a peer process which CPU to pin itself to.
const PEER_CPU: &str = "SHMIDL_BENCH_PEER_CPU";

struct Stats {
    name: String,
    payload: usize,
    one_way: [u64; 5],
    extra: Option<(&'static str, f64)>,
    /// With `extra`, when it is the median of several runs: the smallest
    /// and the largest, and how many runs.
    range: Option<(f64, f64, u32)>,
    /// For a stream: the CPU time every process of the run spent in its
    /// loop (sending or receiving), per message.
    cpu_ns_per_message: Option<f64>,
}

fn summarize(name: String, payload: usize, mut rtt: Vec<u64>) -> Stats {
    rtt.sort_unstable();
    let pick = |p: f64| rtt[((rtt.len() - 1) as f64 * p).round() as usize] / 2;
    Stats {
        name,
        payload,
        one_way: [
            rtt[0] / 2,
            pick(0.5),
            pick(0.9),
            pick(0.99),
            rtt[rtt.len() - 1] / 2,
        ],
        extra: None,
        range: None,
        cpu_ns_per_message: None,
    }
}

/// Runs every benchmark and prints the results.
pub fn pubsub(opts: &Options) -> ExitCode {
    match run_all(opts) {
        Ok(results) => {
            print(&results, opts.json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shmidl bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_all(opts: &Options) -> Result<Vec<Stats>, String> {
    let mut out = vec![cacheline(opts)?];
    macro_rules! sizes {
        ($($n:literal),*) => {$(
            out.push(router_pingpong::<$n>(opts, Wait::Poll, None)?);
        )*};
    }
    if opts.runs("poll") {
        sizes!(64, 4096, 65536, 1048576, 4194304);
        // iceoryx2 right after: the VM's placement drifts over minutes
        // (the cache-line floor between 65 and 245 ns in one day), so
        // rows compared with each other are measured close together.
        if let Some(peers) = &opts.peers {
            out.extend(iceoryx2(peers, opts, &ICEORYX2_POLL)?);
        }
    }
    if opts.runs("slice") {
        if !opts.runs("poll") {
            out.push(router_pingpong::<64>(opts, Wait::Poll, None)?);
        }
        for len in [64, FRAME] {
            out.push(slice_pingpong(opts, len)?);
        }
    }
    for placement in [Placement::Same, Placement::Split] {
        out.push(futex_pingpong(opts, placement)?);
        if opts.runs("block") {
            out.push(router_pingpong::<64>(opts, Wait::Block, Some(placement))?);
            out.push(router_pingpong::<4194304>(
                opts,
                Wait::Block,
                Some(placement),
            )?);
            out.push(async_pingpong(opts, placement)?);
        }
        if let Some(peers) = opts.peers.as_ref().filter(|_| opts.runs("block")) {
            let runs = match placement {
                Placement::Same => &ICEORYX2_BLOCK_SAME,
                Placement::Split => &ICEORYX2_BLOCK_SPLIT,
            };
            out.extend(iceoryx2(peers, opts, runs)?);
        }
    }
    if opts.runs("throughput") {
        for placement in [Placement::Split, Placement::Same] {
            let mut rates = (0..opts.runs)
                .map(|_| throughput(opts, placement))
                .collect::<Result<Vec<f64>, String>>()?;
            let median = median(&mut rates);
            let mut s = summarize(
                format!("shmidl-throughput/64{}", placement.suffix()),
                64,
                vec![0],
            );
            s.extra = Some(("million_messages_per_s", median));
            s.range = Some((rates[0], rates[rates.len() - 1], opts.runs));
            out.push(s);
        }
    }
    if opts.runs("fanout") {
        // One publisher to one and to four subscriber processes, blocking
        // (five busy-polling processes on a two-core machine would measure
        // the scheduler), in the same run so they compare: placed by the
        // scheduler, then spread over two CPUs.
        for spread in [false, true] {
            for subscribers in [1, 4] {
                out.push(fanout_pingpong(opts, subscribers, spread)?);
            }
        }
        for wait in [Wait::Poll, Wait::Block] {
            for subscribers in [1, 4] {
                out.push(fanout_throughput(opts, subscribers, wait, false)?);
            }
        }
        // Receivers that do not preempt the publisher when woken (where
        // this system lets a process choose that policy).
        match std::thread::spawn(sched_batch).join() {
            Ok(Ok(())) => out.push(fanout_throughput(opts, 4, Wait::Block, true)?),
            Ok(Err(e)) => eprintln!("shmidl bench: no SCHED_BATCH row: {e}"),
            Err(_) => eprintln!("shmidl bench: no SCHED_BATCH row"),
        }
    }
    Ok(out)
}

/// An iceoryx2 row: its name and the harness's arguments.
type PeerRun = (&'static str, &'static [&'static str]);

const ICEORYX2_POLL: [PeerRun; 2] = [
    ("iceoryx2-poll/64", &["--payload", "64"]),
    ("iceoryx2-poll/4194304", &["--payload", "4194304"]),
];
const ICEORYX2_BLOCK_SAME: [PeerRun; 1] = [(
    "iceoryx2-block/64@same-cpu",
    &["--payload", "64", "--blocking", "--placement", "same"],
)];
const ICEORYX2_BLOCK_SPLIT: [PeerRun; 1] = [(
    "iceoryx2-block/64@two-cpus",
    &["--payload", "64", "--blocking", "--placement", "split"],
)];

/// Runs the iceoryx2 peer harness (`bench/peers`) in this same run.
fn iceoryx2(exe: &std::path::Path, opts: &Options, runs: &[PeerRun]) -> Result<Vec<Stats>, String> {
    let mut out = Vec::new();
    for &(name, args) in runs {
        let output = Command::new(exe)
            .arg("iceoryx2")
            .args(args)
            .args(["--iterations", &opts.iterations.to_string()])
            .args(["--warmup", &opts.warmup.to_string()])
            .arg("--json")
            .output()
            .map_err(|e| format!("running {}: {e}", exe.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} failed: {}",
                exe.display(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("{} printed no JSON: {e}", exe.display()))?;
        let ns = |k: &str| v["one_way_ns"][k].as_f64().map(|x| x as u64).unwrap_or(0);
        out.push(Stats {
            name: name.to_owned(),
            payload: v["payload"].as_u64().unwrap_or(0) as usize,
            one_way: [ns("min"), ns("p50"), ns("p90"), ns("p99"), ns("max")],
            extra: None,
            range: None,
            cpu_ns_per_message: None,
        });
    }
    Ok(out)
}

fn print(results: &[Stats], json: bool) {
    let floor = |name: &str| {
        results
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.one_way[1])
    };
    let ratio = |s: &Stats| {
        let base = if s.name.contains("block")
            || s.name.contains("async")
            || s.name.starts_with("futex")
        {
            let placement = s.name.rsplit_once('@').map_or("", |(_, p)| p);
            floor(&format!("futex@{placement}"))
        } else {
            floor("cacheline")
        };
        base.filter(|&b| b > 0 && !s.name.starts_with("shmidl-throughput"))
            .map(|b| s.one_way[1] as f64 / b as f64)
    };
    // shmidl against iceoryx2 at the same payload, mode and placement.
    let vs_iceoryx2 = |s: &Stats| {
        let other = s.name.strip_prefix("shmidl-")?;
        let base = floor(&format!("iceoryx2-{other}"))?;
        (base > 0).then(|| s.one_way[1] as f64 / base as f64)
    };
    if json {
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|s| {
                let [min, p50, p90, p99, max] = s.one_way;
                let mut v = serde_json::json!({
                    "bench": s.name, "payload": s.payload,
                    "one_way_ns": {"min": min, "p50": p50, "p90": p90, "p99": p99, "max": max},
                    "p50_ratio_to_floor": ratio(s),
                    "p50_ratio_to_iceoryx2": vs_iceoryx2(s),
                });
                if let Some((k, x)) = s.extra {
                    v[k] = serde_json::json!(x);
                    if let Some((lo, hi, runs)) = s.range {
                        v[format!("{k}_min")] = serde_json::json!(lo);
                        v[format!("{k}_max")] = serde_json::json!(hi);
                        v["runs"] = serde_json::json!(runs);
                    }
                }
                if let Some(cpu) = s.cpu_ns_per_message {
                    v["cpu_ns_per_message"] = serde_json::json!(cpu);
                }
                v
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    println!(
        "{:<38} {:>9} {:>9} {:>9} {:>9} {:>11}  p50/floor  p50/iceoryx2",
        "bench", "payload", "min ns", "p50 ns", "p99 ns", "max ns"
    );
    for s in results {
        let [min, p50, _, p99, max] = s.one_way;
        let r = ratio(s).map_or(String::new(), |r| format!("{r:.2}x"));
        let i = vs_iceoryx2(s).map_or(String::new(), |r| format!("{r:.2}x"));
        let cpu = s.cpu_ns_per_message.map_or(String::new(), |c| {
            format!(", CPU {c:.0} ns per message over all processes")
        });
        match s.extra {
            Some((k, x)) => match s.range {
                Some((lo, hi, runs)) => println!(
                    "{:<38} {:>9} {k}: {x:.2} (median of {runs}: {lo:.2}–{hi:.2}){cpu}",
                    s.name, s.payload
                ),
                None => println!("{:<38} {:>9} {k}: {x:.2}{cpu}", s.name, s.payload),
            },
            None => println!(
                "{:<38} {:>9} {:>9} {:>9} {:>9} {:>11}  {r:>9}  {i:>12}",
                s.name, s.payload, min, p50, p99, max
            ),
        }
    }
    println!(
        "one-way latency = round trip / 2 (block-1toN: the last receipt minus the send, on the shared monotonic clock; @spread: publisher on CPU 0, subscriber k on CPU (k + 1) mod 2); floors: cacheline (busy), futex at the same placement (blocking)\n\
         throughput-1toN: busy-polling receivers, throughput-block-1toN: sleeping ones, @batch: sleeping under SCHED_BATCH (no wake-up preemption); CPU: all processes' time in their send or receive loops, per message; fan-out streams send --stream / 4 messages"
    );
}

fn domain(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "bench-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn spawn_peer(args: &[&str], cpu: Option<usize>) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg("bench-peer").args(args).stdout(Stdio::null());
    if let Some(cpu) = cpu {
        cmd.env(PEER_CPU, cpu.to_string());
    }
    cmd.spawn()
        .map_err(|e| format!("starting the peer process: {e}"))
}

/// Waits for a peer process with a deadline; kills it if it hangs.
pub(crate) fn finish(mut child: Child) -> Result<(), String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("peer failed: {status}"))
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("peer did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn spin_until(mut cond: impl FnMut() -> bool) -> Result<(), String> {
    // The clock is read only once the condition has kept us waiting: a
    // `clock_gettime` per message would be part of what is measured.
    let mut deadline = None;
    let mut n = 0u32;
    while !cond() {
        n = n.wrapping_add(1);
        if n % 1024 == 0 {
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + DEADLINE);
            if Instant::now() > deadline {
                return Err("peer stopped answering".into());
            }
            std::thread::yield_now();
        }
        std::hint::spin_loop();
    }
    Ok(())
}

// ---- cache line ---------------------------------------------------------

fn cacheline(opts: &Options) -> Result<Stats, String> {
    let name = domain("cl");
    let seg = Segment::builder(&name)
        .create_exclusive()
        .map_err(|e| e.to_string())?;
    let line = seg
        .find_or_create("line", <[AtomicU64; 2]>::default)
        .map_err(|e| e.to_string())?;
    let total = opts.warmup + opts.iterations;
    let child = spawn_peer(&["cacheline", &name, &total.to_string()], None)?;
    let mut rtt = Vec::with_capacity(opts.iterations as usize);
    for i in 1..=u64::from(total) {
        let t = Instant::now();
        line[0].store(i, Ordering::Release);
        spin_until(|| line[1].load(Ordering::Acquire) == i)?;
        if i > u64::from(opts.warmup) {
            rtt.push(t.elapsed().as_nanos() as u64);
        }
    }
    finish(child)?;
    Ok(summarize("cacheline".into(), 8, rtt))
}

fn cacheline_peer(name: &str, total: u64) -> Result<(), String> {
    let seg = Segment::open(name).map_err(|e| e.to_string())?;
    let line = seg
        .find::<[AtomicU64; 2]>("line")
        .map_err(|e| e.to_string())?;
    for i in 1..=total {
        spin_until(|| line[0].load(Ordering::Acquire) == i)?;
        line[1].store(i, Ordering::Release);
    }
    Ok(())
}

// ---- futex ---------------------------------------------------------------

fn futex_wait(word: &std::sync::atomic::AtomicU32, until: u32) -> Result<(), String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let v = word.load(Ordering::Acquire);
        if v == until {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("peer stopped answering".into());
        }
        let ts = rustix::time::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        let _ =
            rustix::thread::futex::wait(word, rustix::thread::futex::Flags::empty(), v, Some(&ts));
    }
}

fn futex_wake(word: &std::sync::atomic::AtomicU32, v: u32) {
    word.store(v, Ordering::Release);
    let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), 1);
}

fn futex_pingpong(opts: &Options, placement: Placement) -> Result<Stats, String> {
    let _pinned = pin(placement.cpu(true));
    let name = domain("fx");
    let seg = Segment::builder(&name)
        .create_exclusive()
        .map_err(|e| e.to_string())?;
    let words = seg
        .find_or_create("words", <[AtomicU32; 2]>::default)
        .map_err(|e| e.to_string())?;
    let total = opts.warmup + opts.iterations;
    let child = spawn_peer(
        &["futex", &name, &total.to_string()],
        Some(placement.cpu(false)),
    )?;
    let mut rtt = Vec::with_capacity(opts.iterations as usize);
    for i in 1..=total {
        let t = Instant::now();
        futex_wake(&words[0], i);
        futex_wait(&words[1], i)?;
        if i > opts.warmup {
            rtt.push(t.elapsed().as_nanos() as u64);
        }
    }
    finish(child)?;
    Ok(summarize(format!("futex{}", placement.suffix()), 4, rtt))
}

fn futex_peer(name: &str, total: u32) -> Result<(), String> {
    let seg = Segment::open(name).map_err(|e| e.to_string())?;
    let words = seg
        .find::<[AtomicU32; 2]>("words")
        .map_err(|e| e.to_string())?;
    for i in 1..=total {
        futex_wait(&words[0], i)?;
        futex_wake(&words[1], i);
    }
    Ok(())
}

// ---- router ----------------------------------------------------------------

struct Topics<const N: usize> {
    _seg: Segment,
    ping: Router<[u8; N]>,
    pong: Router<[u8; N]>,
}

/// Pool slots and queue depth of the ping-pong topics (a round trip holds
/// at most two samples per topic) and of the throughput stream (deep enough
/// that the publisher rarely has to sleep).
const PINGPONG: (u32, u32) = (8, 4);
const STREAM: (u32, u32) = (256, 128);

fn topics<const N: usize>(
    name: &str,
    create: bool,
    (slots, depth): (u32, u32),
) -> Result<Topics<N>, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let seg = if create {
        // Two pools with their control blocks and holdings, and routers.
        let size = 2 * u64::from(slots) * (N as u64).next_multiple_of(64) + (4 << 20);
        Segment::builder(name)
            .size(size)
            .create_exclusive()
            .map_err(|x| e(&x))?
    } else {
        Segment::open(name).map_err(|x| e(&x))?
    };
    let router = |topic: &str| -> Result<Router<[u8; N]>, String> {
        let pool = Pool::<[u8; N]>::builder(&seg, &format!("{topic}.pool"))
            .capacity(slots)
            .timeout(DEADLINE)
            .open_or_create()
            .map_err(|x| e(&x))?;
        Router::builder(&pool, topic)
            .max_publishers(1)
            .max_subscribers(1)
            .depth(depth)
            .default_mode(SendMode::WaitIfFull(DEADLINE))
            .open_or_create()
            .map_err(|x| e(&x))
    };
    Ok(Topics {
        ping: router("ping")?,
        pong: router("pong")?,
        _seg: seg,
    })
}

fn receive<T: ?Sized + SlotView>(
    sub: &mut shmidl::Subscriber<T>,
    wait: Wait,
) -> Result<shmidl::Sample<T>, String> {
    match wait {
        Wait::Block => sub.recv_timeout(DEADLINE).map_err(|e| e.to_string()),
        Wait::Poll => {
            let mut got = None;
            spin_until(|| {
                got = sub.try_recv().ok().flatten();
                got.is_some()
            })?;
            got.ok_or_else(|| "no message".to_string())
        }
    }
}

fn router_pingpong<const N: usize>(
    opts: &Options,
    wait: Wait,
    placement: Option<Placement>,
) -> Result<Stats, String> {
    let _pinned = placement.map(|p| pin(p.cpu(true)));
    let name = domain("rt");
    let t = topics::<N>(&name, true, PINGPONG)?;
    let mut pong = t.pong.subscriber().map_err(|e| e.to_string())?;
    if let Wait::Block = wait {
        // Measure the wake-up itself, not a spin that catches the reply.
        pong.set_spin_count(0);
    }
    let mut ping = t.ping.publisher().map_err(|e| e.to_string())?;
    let total = opts.warmup + opts.iterations;
    let mode = match wait {
        Wait::Poll => "poll",
        Wait::Block => "block",
    };
    let child = spawn_peer(
        &["router", &name, &N.to_string(), mode, &total.to_string()],
        placement.map(|p| p.cpu(false)),
    )?;
    spin_until(|| ping.subscriber_count() == 1)?;
    let mut rtt = Vec::with_capacity(opts.iterations as usize);
    for i in 0..total {
        let start = Instant::now();
        let mut s = ping.loan_recycled().map_err(|e| e.to_string())?;
        s[..4].copy_from_slice(&i.to_le_bytes());
        ping.publish(s).map_err(|e| e.to_string())?;
        let reply = receive(&mut pong, wait)?;
        let took = start.elapsed();
        if reply[..4] != i.to_le_bytes() {
            return Err(format!("reply {i} out of order"));
        }
        drop(reply);
        if i >= opts.warmup {
            rtt.push(took.as_nanos() as u64);
        }
    }
    finish(child)?;
    let suffix = placement.map_or("", Placement::suffix);
    Ok(summarize(format!("shmidl-{mode}/{N}{suffix}"), N, rtt))
}

/// The blocking ping-pong with the leader awaiting replies through an
/// `AsyncSubscriber` on a current-thread tokio runtime: the cost of the
/// async bridge (a thread hand-off) on top of a blocking receive.
fn async_pingpong(opts: &Options, placement: Placement) -> Result<Stats, String> {
    let _pinned = pin(placement.cpu(true));
    let name = domain("as");
    let t = topics::<64>(&name, true, PINGPONG)?;
    let pong = t.pong.subscriber().map_err(|e| e.to_string())?;
    let mut pong = pong.into_async(4).map_err(|e| e.to_string())?;
    let mut ping = t.ping.publisher().map_err(|e| e.to_string())?;
    let total = opts.warmup + opts.iterations;
    let child = spawn_peer(
        &["router", &name, "64", "block", &total.to_string()],
        Some(placement.cpu(false)),
    )?;
    spin_until(|| ping.subscriber_count() == 1)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let rtt = runtime.block_on(async {
        let mut rtt = Vec::with_capacity(opts.iterations as usize);
        for i in 0..total {
            let start = Instant::now();
            let mut s = ping.loan_recycled().map_err(|e| e.to_string())?;
            s[..4].copy_from_slice(&i.to_le_bytes());
            ping.publish(s).map_err(|e| e.to_string())?;
            let reply = pong.recv().await.map_err(|e| e.to_string())?;
            let took = start.elapsed();
            if reply[..4] != i.to_le_bytes() {
                return Err(format!("reply {i} out of order"));
            }
            if i >= opts.warmup {
                rtt.push(took.as_nanos() as u64);
            }
        }
        Ok::<_, String>(rtt)
    })?;
    finish(child)?;
    Ok(summarize(
        format!("shmidl-async/64{}", placement.suffix()),
        64,
        rtt,
    ))
}

fn router_peer<const N: usize>(name: &str, wait: Wait, total: u32) -> Result<(), String> {
    let t = topics::<N>(name, false, PINGPONG)?;
    let mut ping = t.ping.subscriber().map_err(|e| e.to_string())?;
    if let Wait::Block = wait {
        ping.set_spin_count(0);
    }
    let mut pong = t.pong.publisher().map_err(|e| e.to_string())?;
    spin_until(|| pong.subscriber_count() == 1)?;
    for _ in 0..total {
        let m = receive(&mut ping, wait)?;
        let mut r = pong.loan_recycled().map_err(|e| e.to_string())?;
        r[..4].copy_from_slice(&m[..4]);
        // Answer first, then return the request's slot: the release is not
        // on the round trip's critical path.
        pong.publish(r).map_err(|e| e.to_string())?;
        drop(m);
    }
    Ok(())
}

/// Streams 64-byte messages to one subscriber process (busy-polling) with
/// both pinned as `placement` says; millions of messages per second, from
/// the first loan to the subscriber's receipt of the last message, on the
/// monotonic clock both share (process start and exit are outside the
/// interval).
fn throughput(opts: &Options, placement: Placement) -> Result<f64, String> {
    let _pinned = pin(placement.cpu(true));
    let name = domain("tp");
    let t = topics::<64>(&name, true, STREAM)?;
    let mut ping = t.ping.publisher().map_err(|e| e.to_string())?;
    let done = t
        ._seg
        .find_or_create("done_ns", || AtomicU64::new(0))
        .map_err(|e| e.to_string())?;
    let child = spawn_peer(
        &["stream", &name, &opts.stream.to_string()],
        Some(placement.cpu(false)),
    )?;
    spin_until(|| ping.subscriber_count() == 1)?;
    let start = monotonic_ns();
    for i in 0..opts.stream {
        let mut s = ping.loan_recycled().map_err(|e| e.to_string())?;
        s[..8].copy_from_slice(&i.to_le_bytes());
        ping.publish(s).map_err(|e| e.to_string())?;
    }
    finish(child)?;
    let took = elapsed_since(start, &done)?;
    Ok(opts.stream as f64 / (took as f64 / 1e9) / 1e6)
}

/// The median of `xs` (the mean of the middle two for an even count).
pub(crate) fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Nanoseconds from `start` to the last receipt a peer stored in `done`
/// (both on [`monotonic_ns`]); an error if no peer stored one after
/// `start`.
fn elapsed_since(start: u64, done: &AtomicU64) -> Result<u64, String> {
    let done = done.load(Ordering::Acquire);
    if done <= start {
        return Err(format!(
            "no receipt after the stream began (done at {done} ns, start at {start} ns)"
        ));
    }
    Ok(done - start)
}

/// Nanoseconds on the monotonic clock, the same in every process of the
/// host (what a peer reports its last receipt on).
pub(crate) fn monotonic_ns() -> u64 {
    clock_ns(rustix::time::ClockId::Monotonic)
}

/// Puts this thread under `SCHED_BATCH` (no privilege needed): when a
/// wake-up makes it runnable, it does not preempt the running thread.
fn sched_batch() -> Result<(), String> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler` reads `param`, a valid `sched_param`,
    // and changes only this thread's scheduling policy.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(format!("SCHED_BATCH: {}", std::io::Error::last_os_error()))
    }
}

/// CPU time this thread has used.
fn thread_cpu_ns() -> u64 {
    clock_ns(rustix::time::ClockId::ThreadCPUTime)
}

fn clock_ns(clock: rustix::time::ClockId) -> u64 {
    let t = rustix::time::clock_gettime(clock);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

// ---- runtime-sized samples ----------------------------------------------

/// Elements per slot of the runtime-sized topics: a 1920×1080 RGB frame.
const FRAME: usize = 1920 * 1080 * 3;

/// The ping and pong routers of `[u8]` samples.
type SliceTopics = (Router<[u8]>, Router<[u8]>);

/// The ping and pong topics of `[u8]` samples in `node`'s domain.
fn slice_topics(node: &shmidl::Node) -> Result<SliceTopics, String> {
    let config = shmidl::TopicConfig {
        pool: PINGPONG.0,
        depth: PINGPONG.1,
        max_publishers: 1,
        max_subscribers: 1,
        overflow: SendMode::WaitIfFull(DEADLINE),
        elements: FRAME as u32,
        ..Default::default()
    };
    let open = |t: &str| node.router::<[u8]>(t, config).map_err(|e| e.to_string());
    Ok((open("ping")?, open("pong")?))
}

/// Busy-poll ping-pong of `len`-byte samples over `[u8]` topics: loaned
/// with `loan_slice(len)`, 4 bytes written, the rest left as it was.
fn slice_pingpong(opts: &Options, len: usize) -> Result<Stats, String> {
    let name = domain("sl");
    let node = shmidl::Node::builder(&name)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let (ping_topic, pong_topic) = slice_topics(&node)?;
    let mut pong = pong_topic.subscriber().map_err(|e| e.to_string())?;
    let mut ping = ping_topic.publisher().map_err(|e| e.to_string())?;
    let total = opts.warmup + opts.iterations;
    let child = spawn_peer(&["slice", &name, &total.to_string()], None)?;
    spin_until(|| ping.subscriber_count() == 1)?;
    let mut rtt = Vec::with_capacity(opts.iterations as usize);
    for i in 0..total {
        let start = Instant::now();
        let mut s = ping.loan_slice(len).map_err(|e| e.to_string())?;
        s[..4].copy_from_slice(&i.to_le_bytes());
        ping.publish(s).map_err(|e| e.to_string())?;
        let reply = receive(&mut pong, Wait::Poll)?;
        let took = start.elapsed();
        if reply.len() != len || reply[..4] != i.to_le_bytes() {
            return Err(format!("reply {i} out of order or of the wrong length"));
        }
        drop(reply);
        if i >= opts.warmup {
            rtt.push(took.as_nanos() as u64);
        }
    }
    finish(child)?;
    Ok(summarize(format!("shmidl-poll-slice/{len}"), len, rtt))
}

/// Answers each `[u8]` sample with one of the same length.
fn slice_peer(name: &str, total: u32) -> Result<(), String> {
    let node = shmidl::Node::builder(name)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let (ping_topic, pong_topic) = slice_topics(&node)?;
    let mut ping = ping_topic.subscriber().map_err(|e| e.to_string())?;
    let mut pong = pong_topic.publisher().map_err(|e| e.to_string())?;
    spin_until(|| pong.subscriber_count() == 1)?;
    for _ in 0..total {
        let m = receive(&mut ping, Wait::Poll)?;
        let mut r = pong.loan_slice(m.len()).map_err(|e| e.to_string())?;
        r[..4].copy_from_slice(&m[..4]);
        pong.publish(r).map_err(|e| e.to_string())?;
        drop(m);
    }
    Ok(())
}

// ---- fan-out: one publisher, several subscribers ------------------------

/// The segment, the ping router and the pong router of a fan-out run.
type FanoutTopics = (Segment, Router<[u8; 64]>, Router<[u8; 64]>);

/// A ping topic with `subscribers` subscribers and a pong topic they all
/// answer on, in a segment of their own.
fn fanout_topics(
    name: &str,
    create: bool,
    subscribers: u32,
    (slots, depth): (u32, u32),
) -> Result<FanoutTopics, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let seg = if create {
        Segment::builder(name)
            .size(8 << 20)
            .create_exclusive()
            .map_err(|x| e(&x))?
    } else {
        Segment::open(name).map_err(|x| e(&x))?
    };
    let router = |topic: &str, pubs: u32, subs: u32| -> Result<Router<[u8; 64]>, String> {
        let pool = Pool::<[u8; 64]>::builder(&seg, &format!("{topic}.pool"))
            .capacity(slots)
            .timeout(DEADLINE)
            .open_or_create()
            .map_err(|x| e(&x))?;
        Router::builder(&pool, topic)
            .max_publishers(pubs)
            .max_subscribers(subs)
            .depth(depth)
            .default_mode(SendMode::WaitIfFull(DEADLINE))
            .open_or_create()
            .map_err(|x| e(&x))
    };
    let ping = router("ping", 1, subscribers)?;
    let pong = router("pong", subscribers, 1)?;
    Ok((seg, ping, pong))
}

/// Blocking latency to the last of `subscribers` processes: the leader
/// publishes one message; each follower notes its receipt time (on the
/// monotonic clock all processes share) and counts itself in; the last one
/// answers on the pong topic, which ends the round trip. The one-way figure
/// is the latest receipt minus the send, so the way back (one message, as
/// with one subscriber) is not in it. With `spread`, the publisher runs on
/// CPU 0 and subscriber `k` on CPU `(k + 1) % 2` (with four, two share the
/// publisher's CPU, which it leaves while it waits for the answer).
fn fanout_pingpong(opts: &Options, subscribers: u32, spread: bool) -> Result<Stats, String> {
    let _pinned = spread.then(|| pin(0));
    let name = domain("fo");
    let (seg, ping_router, pong_router) =
        fanout_topics(&name, true, subscribers, (4 * subscribers + 8, 4))?;
    // How many followers have the current message, and the latest of
    // their receipt times.
    let marks = seg
        .find_or_create("marks", <[AtomicU64; 2]>::default)
        .map_err(|e| e.to_string())?;
    let [arrived, last_ns] = &*marks;
    let mut pong = pong_router.subscriber().map_err(|e| e.to_string())?;
    pong.set_spin_count(0);
    let mut ping = ping_router.publisher().map_err(|e| e.to_string())?;
    let total = opts.warmup + opts.iterations;
    let children = (0..subscribers)
        .map(|k| {
            spawn_peer(
                &[
                    "fanout",
                    &name,
                    &subscribers.to_string(),
                    &total.to_string(),
                ],
                spread.then_some((k as usize + 1) % 2),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    spin_until(|| {
        ping.subscriber_count() == subscribers && pong_router.publisher_count() == subscribers
    })?;
    // Doubled, as `summarize` halves round trips.
    let mut to_last = Vec::with_capacity(opts.iterations as usize);
    for i in 0..total {
        // No follower touches the marks between the last answer and the
        // next message.
        arrived.store(0, Ordering::Relaxed);
        last_ns.store(0, Ordering::Relaxed);
        let start = monotonic_ns();
        let mut s = ping.loan_recycled().map_err(|e| e.to_string())?;
        s[..4].copy_from_slice(&i.to_le_bytes());
        ping.publish(s).map_err(|e| e.to_string())?;
        let reply = receive(&mut pong, Wait::Block)?;
        if reply[..4] != i.to_le_bytes() {
            return Err(format!("reply {i} out of order"));
        }
        if i >= opts.warmup {
            let last = last_ns.load(Ordering::Acquire);
            to_last.push(2 * last.saturating_sub(start));
        }
    }
    for child in children {
        finish(child)?;
    }
    let suffix = if spread { "@spread" } else { "" };
    Ok(summarize(
        format!("shmidl-block-1to{subscribers}/64{suffix}"),
        64,
        to_last,
    ))
}

fn fanout_peer(name: &str, subscribers: u32, total: u32) -> Result<(), String> {
    let (seg, ping_router, pong_router) =
        fanout_topics(name, false, subscribers, (4 * subscribers + 8, 4))?;
    let marks = seg
        .find::<[AtomicU64; 2]>("marks")
        .map_err(|e| e.to_string())?;
    let [arrived, last_ns] = &*marks;
    let mut ping = ping_router.subscriber().map_err(|e| e.to_string())?;
    ping.set_spin_count(0);
    let mut pong = pong_router.publisher().map_err(|e| e.to_string())?;
    spin_until(|| pong.subscriber_count() == 1)?;
    for _ in 0..total {
        let m = receive(&mut ping, Wait::Block)?;
        last_ns.fetch_max(monotonic_ns(), Ordering::AcqRel);
        if arrived.fetch_add(1, Ordering::AcqRel) + 1 == u64::from(subscribers) {
            let mut r = pong.loan_recycled().map_err(|e| e.to_string())?;
            r[..4].copy_from_slice(&m[..4]);
            pong.publish(r).map_err(|e| e.to_string())?;
        }
        drop(m);
    }
    Ok(())
}

/// Streams 64-byte messages to `subscribers` processes that each receive
/// every one (busy-polling, yielding when idle): messages published per
/// second, counted when the slowest subscriber has them all. With `batch`,
/// the subscribers run under `SCHED_BATCH`: woken, they wait for their turn
/// instead of preempting the publisher.
fn fanout_throughput(
    opts: &Options,
    subscribers: u32,
    wait: Wait,
    batch: bool,
) -> Result<Stats, String> {
    let mode = match (wait, batch) {
        (Wait::Poll, _) => "poll",
        (Wait::Block, false) => "block",
        (Wait::Block, true) => "block-batch",
    };
    let name = domain("ft");
    let (seg, ping_router, _pong) = fanout_topics(&name, true, subscribers, STREAM)?;
    // The latest receipt of a last message among the subscribers, and the
    // CPU time they spent receiving.
    let done = seg
        .find_or_create("done_ns", || AtomicU64::new(0))
        .map_err(|e| e.to_string())?;
    let receivers_cpu = seg
        .find_or_create("cpu_ns", || AtomicU64::new(0))
        .map_err(|e| e.to_string())?;
    let mut ping = ping_router.publisher().map_err(|e| e.to_string())?;
    let total = opts.stream / 4;
    let children = (0..subscribers)
        .map(|_| {
            spawn_peer(
                &[
                    "fanout-stream",
                    &name,
                    mode,
                    &subscribers.to_string(),
                    &total.to_string(),
                ],
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    spin_until(|| ping.subscriber_count() == subscribers)?;
    let start = monotonic_ns();
    let cpu_start = thread_cpu_ns();
    for i in 0..total {
        let mut s = ping.loan_recycled().map_err(|e| e.to_string())?;
        s[..8].copy_from_slice(&i.to_le_bytes());
        ping.publish(s).map_err(|e| e.to_string())?;
    }
    let sender_cpu = thread_cpu_ns().saturating_sub(cpu_start);
    for child in children {
        finish(child)?;
    }
    let took = Duration::from_nanos(elapsed_since(start, &done)?);
    let mut s = summarize(
        match (wait, batch) {
            (Wait::Poll, _) => format!("shmidl-throughput-1to{subscribers}/64"),
            (Wait::Block, false) => format!("shmidl-throughput-block-1to{subscribers}/64"),
            (Wait::Block, true) => format!("shmidl-throughput-block-1to{subscribers}/64@batch"),
        },
        64,
        vec![0],
    );
    s.extra = Some((
        "million_messages_per_s",
        total as f64 / took.as_secs_f64() / 1e6,
    ));
    let cpu = sender_cpu.saturating_add(receivers_cpu.load(Ordering::Acquire));
    s.cpu_ns_per_message = Some(cpu as f64 / total.max(1) as f64);
    Ok(s)
}

fn fanout_stream_peer(name: &str, wait: Wait, subscribers: u32, total: u64) -> Result<(), String> {
    let (seg, ping_router, _pong) = fanout_topics(name, false, subscribers, STREAM)?;
    let done = seg
        .find::<AtomicU64>("done_ns")
        .map_err(|e| e.to_string())?;
    let cpu = seg.find::<AtomicU64>("cpu_ns").map_err(|e| e.to_string())?;
    let mut sub = ping_router.subscriber().map_err(|e| e.to_string())?;
    // Counted from the first message on: not the wait while the other
    // processes start.
    let mut cpu_start = 0;
    for i in 0..total {
        // Busy-poll (yielding now and then), or spin a little and sleep on
        // the futex: a sleeping receiver is woken once per sleep.
        let m = receive(&mut sub, wait)?;
        if i == 0 {
            cpu_start = thread_cpu_ns();
        }
        if m[..8] != i.to_le_bytes() {
            return Err(format!("message {i} lost or out of order"));
        }
    }
    done.fetch_max(monotonic_ns(), Ordering::AcqRel);
    cpu.fetch_add(thread_cpu_ns().saturating_sub(cpu_start), Ordering::AcqRel);
    Ok(())
}

fn stream_peer(name: &str, total: u64) -> Result<(), String> {
    let t = topics::<64>(name, false, STREAM)?;
    let done = t
        ._seg
        .find::<AtomicU64>("done_ns")
        .map_err(|e| e.to_string())?;
    let mut sub = t.ping.subscriber().map_err(|e| e.to_string())?;
    for i in 0..total {
        let m = receive(&mut sub, Wait::Poll)?;
        if m[..8] != i.to_le_bytes() {
            return Err(format!("message {i} lost or out of order"));
        }
    }
    done.store(monotonic_ns(), Ordering::Release);
    Ok(())
}

/// The second process of each benchmark (`shmidl bench-peer …`).
pub fn peer(args: &[String]) -> ExitCode {
    let _pinned = std::env::var(PEER_CPU)
        .ok()
        .and_then(|c| c.parse().ok())
        .map(pin);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let num = |s: &str| s.parse::<u64>().map_err(|_| format!("bad number {s:?}"));
    let result = (|| match a.as_slice() {
        ["cacheline", name, total] => cacheline_peer(name, num(total)?),
        ["futex", name, total] => futex_peer(name, num(total)? as u32),
        ["stream", name, total] => stream_peer(name, num(total)?),
        ["slice", name, total] => slice_peer(name, num(total)? as u32),
        ["bridge", domain, port] => crate::bench_bridge::peer(domain, port),
        ["ws-sink", url, iterations, total] => crate::bench_bridge::ws_sink(url, iterations, total),
        ["topics-join", domain, n] => crate::bench_topics::join_peer(domain, n),
        ["fanout", name, subs, total] => fanout_peer(name, num(subs)? as u32, num(total)? as u32),
        ["fanout-stream", name, mode, subs, total] => {
            let wait = match *mode {
                "block" => Wait::Block,
                "block-batch" => {
                    sched_batch()?;
                    Wait::Block
                }
                _ => Wait::Poll,
            };
            fanout_stream_peer(name, wait, num(subs)? as u32, num(total)?)
        }
        ["router", name, size, mode, total] => {
            let wait = if *mode == "block" {
                Wait::Block
            } else {
                Wait::Poll
            };
            let total = num(total)? as u32;
            match *size {
                "64" => router_peer::<64>(name, wait, total),
                "4096" => router_peer::<4096>(name, wait, total),
                "65536" => router_peer::<65536>(name, wait, total),
                "1048576" => router_peer::<1048576>(name, wait, total),
                "4194304" => router_peer::<4194304>(name, wait, total),
                other => Err(format!("unsupported size {other}")),
            }
        }
        _ => Err(format!("unknown peer role {a:?}")),
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmidl bench-peer: {e}");
            ExitCode::FAILURE
        }
    }
}
