//! `shmidl-peers`: the peer harness of shmidl's pub/sub benchmarks (issue 4).
//!
//! Measures, between two real processes, the latency of iceoryx2's publish-subscribe and of
//! two bare baselines (a cache-line ping-pong and a shared-futex ping-pong), with the same
//! methodology as `shmidl bench pubsub`, so that ratios can be reported:
//!
//! - The leader (this process) creates the shared resources and re-executes this binary with
//!   the hidden `__peer` subcommand as the follower.
//! - Iteration `i` (1-based): the leader reads `Instant::now()`, sends ping `i`, waits for
//!   pong `i`, reads the clock again. The follower waits for ping `i` and answers pong `i`.
//!   The first `--warmup` iterations are not recorded.
//! - One-way latency = round trip / 2 per iteration; percentiles by nearest rank.
//! - Every wait has a deadline (`--timeout-ms`) and checks that the other process is alive,
//!   so a dead peer makes the run fail with a non-zero exit instead of hanging.
//!
//! This crate is not a member of the root workspace (it has its own `[workspace]`), so
//! `cargo test --workspace` never compiles iceoryx2. Run it with
//! `cargo run --release --manifest-path bench/peers/Cargo.toml -- all`.

mod baseline;
mod iox;
mod peer;
mod region;
mod report;

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

use crate::{
    peer::{pin_to_cpu, Cpus, Other, Placement, Result, Watch},
    report::{summary_table, Report},
};

/// The iceoryx2 version this binary was built against (read from `Cargo.lock`).
pub const ICEORYX2_VERSION: &str = env!("SHMIDL_PEERS_ICEORYX2_VERSION");

#[derive(Parser, Debug)]
#[command(
    name = "shmidl-peers",
    version,
    about = "Two-process latency of iceoryx2 pub/sub and bare baselines (shmidl issue 4)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Busy-poll ping-pong through one cache line of a shared /dev/shm page.
    Cacheline(Common),
    /// Blocking ping-pong on a shared futex word: each side sleeps until woken.
    Futex(Common),
    /// iceoryx2 publish-subscribe ping-pong (two services, fixed-size payload).
    Iceoryx2(IceoryxArgs),
    /// Every bench in sequence: cacheline, iceoryx2 busy-poll at 64 B and 4 MiB (placement
    /// free), then futex, iceoryx2 blocking (Listener) and iceoryx2 blocking (WaitSet) at 64 B,
    /// each on one CPU and across two CPUs.
    All(Common),
    /// The second process (internal).
    #[command(name = "__peer", hide = true)]
    Peer(PeerArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct Common {
    /// Measured round trips.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    iterations: u64,
    /// Round trips run before measuring.
    #[arg(long, default_value_t = 10_000)]
    warmup: u64,
    /// Print one JSON object (a JSON array for `all`) on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Longest a single wait may take before the run fails, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Where the two processes run: `free` (no affinity, the scheduler decides), `same` (both
    /// on the first allowed CPU), `split` (leader on the first, follower on the second).
    /// Default: `free`; for `all`, busy-poll benches `free` and blocking benches both `same`
    /// and `split`, unless this option is given.
    #[arg(long, value_enum)]
    placement: Option<Placement>,
}

#[derive(clap::Args, Debug, Clone)]
struct IceoryxArgs {
    #[command(flatten)]
    common: Common,
    /// Payload size in bytes (the whole message: an 8-byte sequence number and a body):
    /// 64, 4096, 65536, 1048576 or 4194304; `4KiB`, `64KiB`, `1MiB`, `4MiB` also work.
    #[arg(long, default_value = "64", value_parser = parse_payload)]
    payload: usize,
    /// Sleep until woken (iceoryx2 event service + Listener) instead of busy-polling.
    #[arg(long)]
    blocking: bool,
    /// With --blocking: sleep in a WaitSet with the listener attached.
    #[arg(long, requires = "blocking")]
    waitset: bool,
}

/// Arguments of the follower process; built by [`Plan::follower_args`].
#[derive(clap::Args, Debug, Clone)]
struct PeerArgs {
    #[arg(long, value_enum)]
    bench: Bench,
    /// Shared-memory name (baselines) or service-name prefix (iceoryx2).
    #[arg(long)]
    name: String,
    /// Round trips to answer, warm-up included.
    #[arg(long)]
    total: u64,
    #[arg(long)]
    timeout_ms: u64,
    /// The leader's pid: if our parent changes, the leader died.
    #[arg(long)]
    leader_pid: u32,
    #[arg(long)]
    cpu: Option<usize>,
    #[arg(long, default_value_t = 64)]
    payload: usize,
    #[arg(long, value_enum, default_value_t = Wait::BusyPoll)]
    wait: Wait,
}

/// Which benchmark.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bench {
    Cacheline,
    Futex,
    Iceoryx2,
}

/// How iceoryx2 waits for a message.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    BusyPoll,
    Blocking,
    Waitset,
}

impl Wait {
    fn mode(self) -> &'static str {
        match self {
            Wait::BusyPoll => "busy-poll",
            Wait::Blocking => "blocking",
            Wait::Waitset => "blocking-waitset",
        }
    }
}

/// The parameters of one run, as the leader sees them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub iterations: u64,
    pub warmup: u64,
    pub timeout: Duration,
    /// The CPU the follower pins itself to, if any.
    pub follower_cpu: Option<usize>,
}

impl Plan {
    fn new(common: &Common) -> Self {
        Self {
            iterations: common.iterations,
            warmup: common.warmup,
            timeout: Duration::from_millis(common.timeout_ms),
            follower_cpu: None,
        }
    }

    /// Round trips including warm-up.
    pub fn total(&self) -> u64 {
        self.iterations + self.warmup
    }

    /// The follower's command line after `__peer`.
    pub fn follower_args(
        &self,
        bench: Bench,
        name: &str,
        payload: usize,
        wait: Wait,
    ) -> Vec<String> {
        let mut args = vec![
            "--bench".into(),
            bench.cli_name(),
            "--name".into(),
            name.into(),
            "--total".into(),
            self.total().to_string(),
            "--timeout-ms".into(),
            self.timeout.as_millis().to_string(),
            "--leader-pid".into(),
            std::process::id().to_string(),
            "--payload".into(),
            payload.to_string(),
            "--wait".into(),
            wait.cli_name(),
        ];
        if let Some(cpu) = self.follower_cpu {
            args.extend(["--cpu".into(), cpu.to_string()]);
        }
        args
    }
}

/// The command-line spelling of a value enum.
trait CliName {
    fn cli_name(&self) -> String;
}

impl<T: ValueEnum> CliName for T {
    fn cli_name(&self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

fn parse_payload(s: &str) -> Result<usize, String> {
    let lower = s.trim().to_ascii_lowercase();
    let (digits, unit) = if let Some(d) = lower.strip_suffix("mib") {
        (d, 1 << 20)
    } else if let Some(d) = lower.strip_suffix("kib") {
        (d, 1 << 10)
    } else {
        (lower.strip_suffix('b').unwrap_or(&lower), 1)
    };
    let n: usize = digits
        .trim()
        .parse()
        .map_err(|e| format!("payload {s:?}: {e}"))?;
    let bytes = n * unit;
    if iox::PAYLOADS.contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "payload {bytes} B is not built in; supported: {:?}",
            iox::PAYLOADS
        ))
    }
}

/// One benchmark to run from the leader.
#[derive(Debug, Clone, Copy)]
struct Job {
    bench: Bench,
    payload: usize,
    wait: Wait,
    placement: Placement,
}

fn run_job(plan: &Plan, job: Job) -> Result<Report> {
    let (bench, mode, payload, samples) = match job.bench {
        Bench::Cacheline => (
            "cacheline",
            "busy-poll",
            8,
            baseline::lead(plan, Bench::Cacheline)?,
        ),
        Bench::Futex => ("futex", "blocking", 4, baseline::lead(plan, Bench::Futex)?),
        Bench::Iceoryx2 => (
            "iceoryx2",
            job.wait.mode(),
            job.payload,
            iox::lead(plan, job.payload, job.wait)?,
        ),
    };
    Ok(Report::new(
        bench,
        mode,
        payload,
        plan.warmup,
        job.placement.as_str(),
        samples,
    ))
}

fn lead(common: &Common, jobs: &[Job], as_array: bool) -> Result<()> {
    set_iceoryx2_log_level();
    let cpus = Cpus::capture()?;
    let mut reports = Vec::with_capacity(jobs.len());
    for &job in jobs {
        let mut plan = Plan::new(common);
        plan.follower_cpu = cpus.place_leader(job.placement)?;
        let report = run_job(&plan, job)?;
        if !common.json {
            println!("{}", report.table());
        }
        reports.push(report);
    }
    if common.json {
        let values: Vec<_> = reports.iter().map(Report::to_json).collect();
        let out = if as_array {
            serde_json::Value::Array(values)
        } else {
            values.into_iter().next().unwrap_or_default()
        };
        println!("{out}");
    } else if as_array {
        print!("{}", summary_table(&reports));
    }
    Ok(())
}

fn follow(args: &PeerArgs) -> Result<()> {
    set_iceoryx2_log_level();
    if let Some(cpu) = args.cpu {
        pin_to_cpu(cpu)?;
    }
    let watch = Watch::new(
        Duration::from_millis(args.timeout_ms),
        Other::Leader {
            pid: args.leader_pid,
        },
    );
    match args.bench {
        Bench::Cacheline | Bench::Futex => {
            baseline::follow(&args.name, args.total, args.bench, watch)
        }
        Bench::Iceoryx2 => iox::follow(&args.name, args.total, args.payload, args.wait, watch),
    }
}

/// iceoryx2 logs on stderr: errors only, unless `IOX2_LOG_LEVEL` says otherwise.
fn set_iceoryx2_log_level() {
    iceoryx2::prelude::set_log_level_from_env_or(iceoryx2::prelude::LogLevel::Error);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    peer::install_signal_handler();
    let result = match &cli.command {
        Command::Cacheline(c) => lead(c, &[job(c, Bench::Cacheline, 8, Wait::BusyPoll)], false),
        Command::Futex(c) => lead(c, &[job(c, Bench::Futex, 4, Wait::Blocking)], false),
        Command::Iceoryx2(a) => {
            let wait = match (a.blocking, a.waitset) {
                (false, _) => Wait::BusyPoll,
                (true, false) => Wait::Blocking,
                (true, true) => Wait::Waitset,
            };
            let c = &a.common;
            lead(c, &[job(c, Bench::Iceoryx2, a.payload, wait)], false)
        }
        Command::All(c) => lead(c, &all_jobs(c.placement), true),
        Command::Peer(args) => follow(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let role = if matches!(cli.command, Command::Peer(_)) {
                "follower"
            } else {
                "leader"
            };
            eprintln!("shmidl-peers ({role}): error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One bench with the placement asked for on the command line (default `free`).
fn job(common: &Common, bench: Bench, payload: usize, wait: Wait) -> Job {
    Job {
        bench,
        payload,
        wait,
        placement: common.placement.unwrap_or(Placement::Free),
    }
}

/// What `all` runs. Busy-poll benches run `free` (two spinning processes spread over the two
/// CPUs by themselves). Blocking benches run twice, `same` and `split`: on this machine the
/// cost of a wake-up depends mostly on whether it crosses CPUs, and a `free` run lands on
/// either side by chance. With `--placement`, every bench uses that placement instead.
fn all_jobs(placement: Option<Placement>) -> Vec<Job> {
    let busy = [
        (Bench::Cacheline, 8, Wait::BusyPoll),
        (Bench::Iceoryx2, 64, Wait::BusyPoll),
        (Bench::Iceoryx2, 4 << 20, Wait::BusyPoll),
    ];
    let blocking = [
        (Bench::Futex, 4, Wait::Blocking),
        (Bench::Iceoryx2, 64, Wait::Blocking),
        (Bench::Iceoryx2, 64, Wait::Waitset),
    ];
    let make = |(bench, payload, wait): (Bench, usize, Wait), placement| Job {
        bench,
        payload,
        wait,
        placement,
    };
    match placement {
        Some(p) => busy
            .into_iter()
            .chain(blocking)
            .map(|b| make(b, p))
            .collect(),
        None => {
            let mut jobs: Vec<Job> = busy.into_iter().map(|b| make(b, Placement::Free)).collect();
            for p in [Placement::Same, Placement::Split] {
                jobs.extend(blocking.into_iter().map(|b| make(b, p)));
            }
            jobs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_accepts_bytes_and_binary_units() {
        assert_eq!(parse_payload("64"), Ok(64));
        assert_eq!(parse_payload("64B"), Ok(64));
        assert_eq!(parse_payload("4MiB"), Ok(4 << 20));
        assert_eq!(parse_payload("4194304"), Ok(4 << 20));
        assert_eq!(parse_payload("64KiB"), Ok(65536));
        assert!(parse_payload("100").is_err());
        assert!(parse_payload("four").is_err());
    }

    #[test]
    fn follower_args_parse_back() {
        let plan = Plan {
            iterations: 10,
            warmup: 2,
            timeout: Duration::from_millis(500),
            follower_cpu: Some(1),
        };
        let args = plan.follower_args(Bench::Iceoryx2, "run-1", 4096, Wait::Waitset);
        let cli = Cli::try_parse_from(
            ["shmidl-peers", "__peer"]
                .into_iter()
                .map(String::from)
                .chain(args),
        )
        .expect("follower arguments parse");
        let Command::Peer(sut) = cli.command else {
            panic!("not a peer command");
        };
        assert_eq!(sut.bench, Bench::Iceoryx2);
        assert_eq!(sut.name, "run-1");
        assert_eq!(sut.total, 12);
        assert_eq!(sut.timeout_ms, 500);
        assert_eq!(sut.payload, 4096);
        assert_eq!(sut.wait, Wait::Waitset);
        assert_eq!(sut.cpu, Some(1));
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
