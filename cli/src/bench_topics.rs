//! `shmidl bench topics`: what opening a topic costs as a domain fills up.
//!
//! One process creates `n` topics in a new domain (each a registry entry
//! and a segment of its own, with its pool and router) and times every
//! creation; a second process then joins every topic (`Join::new()`: it
//! finds the registry entry and attaches to the existing segment) and times
//! every join. The figures compare the first ten with the last ten: a
//! registry that slowed down as it filled would show there.

#![allow(clippy::print_stdout)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use shmidl::{Join, Node, TopicConfig};

/// What `shmidl bench topics` was asked for.
pub struct Options {
    /// Topics to create and join.
    pub topics: u32,
    /// Print JSON instead of a table.
    pub json: bool,
}

/// Timings of one kind of open, in microseconds.
struct Summary {
    first10: f64,
    last10: f64,
    median: f64,
    p99: f64,
}

fn summarize(times: &[Duration]) -> Summary {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = |ds: &[Duration]| ds.iter().map(|&d| us(d)).sum::<f64>() / ds.len().max(1) as f64;
    let k = times.len().min(10);
    let mut sorted: Vec<f64> = times.iter().map(|&d| us(d)).collect();
    sorted.sort_by(f64::total_cmp);
    let pick = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    Summary {
        first10: mean(&times[..k]),
        last10: mean(&times[times.len() - k..]),
        median: pick(0.5),
        p99: pick(0.99),
    }
}

/// Raises this process's descriptor limit so that `n` topics fit (each
/// open topic keeps one); returns how many topics fit under the hard limit.
fn make_room(n: u32) -> u32 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    let want = u64::from(n) + 64;
    let hard = limit.maximum.unwrap_or(u64::MAX);
    limit.current = Some(want.min(hard));
    if let Err(e) = setrlimit(Resource::Nofile, limit) {
        eprintln!("shmidl bench topics: cannot raise the descriptor limit: {e}");
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    (now.saturating_sub(64)).min(u64::from(n)) as u32
}

pub fn run(opts: &Options) -> ExitCode {
    match measure(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmidl bench topics: {e}");
            ExitCode::FAILURE
        }
    }
}

fn measure(opts: &Options) -> Result<(), String> {
    let n = make_room(opts.topics);
    if n < opts.topics {
        eprintln!(
            "shmidl bench topics: the descriptor limit allows {n} topics, not {}",
            opts.topics
        );
    }
    if n == 0 {
        return Err("no topic fits under the descriptor limit".into());
    }
    let domain = format!("bench-topics-{}", std::process::id());
    let node = Node::builder(&domain)
        .max_topics(n.max(shmidl::DEFAULT_MAX_TOPICS))
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let mut held = Vec::with_capacity(n as usize);
    let mut create = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let p = node
            .publisher::<u64>(&format!("bench/t{i}"), TopicConfig::default())
            .map_err(|e| e.to_string())?;
        create.push(t.elapsed());
        held.push(p);
    }
    let join = join_in_peer(&domain, n)?;
    drop(held);
    let (create, join) = (summarize(&create), summarize(&join));
    if opts.json {
        let row = |s: &Summary| {
            serde_json::json!({
                "first10_us": s.first10, "last10_us": s.last10,
                "median_us": s.median, "p99_us": s.p99,
                "last10_over_first10": s.last10 / s.first10,
            })
        };
        println!(
            "{}",
            serde_json::json!({"topics": n, "create": row(&create), "join": row(&join)})
        );
        return Ok(());
    }
    println!("{n} topics in one domain; µs per open");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "", "first 10", "last 10", "median", "p99", "last/first"
    );
    for (what, s) in [
        ("create a new topic", &create),
        ("join it from another process", &join),
    ] {
        println!(
            "{what:<34} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.2}x",
            s.first10,
            s.last10,
            s.median,
            s.p99,
            s.last10 / s.first10
        );
    }
    Ok(())
}

/// Runs `shmidl bench-peer topics-join` and reads its timings (one line of
/// nanoseconds per join).
fn join_in_peer(domain: &str, n: u32) -> Result<Vec<Duration>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["bench-peer", "topics-join", domain, &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the peer process: {e}"))?;
    let stdout = child.stdout.take().ok_or("no peer output")?;
    let mut times = Vec::with_capacity(n as usize);
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let ns: u64 = line
            .trim()
            .parse()
            .map_err(|_| format!("peer printed {line:?}"))?;
        times.push(Duration::from_nanos(ns));
    }
    crate::bench::finish(child)?;
    if times.len() != n as usize {
        return Err(format!("the peer joined {} topics of {n}", times.len()));
    }
    Ok(times)
}

/// The peer: joins `bench/t0` … `bench/t{n-1}` of `domain`, printing the
/// nanoseconds each join took, one per line.
pub(crate) fn join_peer(domain: &str, n: &str) -> Result<(), String> {
    let n: u32 = n.parse().map_err(|_| format!("bad count {n:?}"))?;
    make_room(n);
    let node = Node::builder(domain)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let mut held = Vec::with_capacity(n as usize);
    let mut out = String::with_capacity(n as usize * 8);
    for i in 0..n {
        let t = Instant::now();
        let s = node
            .subscriber::<u64>(&format!("bench/t{i}"), Join::new())
            .map_err(|e| e.to_string())?;
        out.push_str(&format!("{}\n", t.elapsed().as_nanos()));
        held.push(s);
    }
    print!("{out}");
    Ok(())
}
