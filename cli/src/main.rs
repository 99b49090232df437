//! `shmidl`: the command-line tool.
//!
//! - `shmidl check FILE... [-I DIR]... [-v]`: validate schemas (exit 1 with
//!   diagnostics on stderr when invalid);
//! - `shmidl fmt FILE [--check]`: print a schema in canonical formatting, or
//!   check that it is;
//! - `shmidl gen FILE... [-I DIR]... -o DIR`: generate Rust, as build.rs does;
//! - `shmidl ls [--json]` / `shmidl clean [--dry-run]`: segments in
//!   `/dev/shm`, and removal of those whose participants all died;
//! - `shmidl spy [--for DURATION] [--json]`: the topics announced on the
//!   network (discovery), as a table refreshed each second on a terminal,
//!   or as JSON lines (one object per topic per refresh) when piped;
//! - `shmidl announce --topic NAME… [--type T] [--fingerprint FP] [--for D]`:
//!   announce topics as a program would;
//! - `shmidl bench pubsub [--json]`: publish-subscribe latency and
//!   throughput between two processes, with baselines in the same run.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod bench;
mod bench_bridge;
mod bench_net;
mod bench_topics;
mod bridge;
mod gen;
mod schema;
mod segments;
mod spy;

#[derive(Parser)]
#[command(name = "shmidl", version, about = "Zero-copy messaging toolchain")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check .shmidl schemas; prints nothing when they are valid.
    Check {
        /// Schema files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Directories searched for imports.
        #[arg(short = 'I', long = "include")]
        includes: Vec<PathBuf>,
        /// Print a summary of every type (size, alignment, fingerprint).
        #[arg(short, long)]
        verbose: bool,
    },
    /// List shmidl segments in /dev/shm: objects, pools, participants.
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Milliseconds between the two looks that give each port's
        /// message rate (0: no rates, one look).
        #[arg(long, default_value_t = 250)]
        interval_ms: u64,
    },
    /// Remove segments whose participants are all dead (never one with a
    /// live participant), and temporary files of creators that died.
    Clean {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Watch topic announcements on the network: a table refreshed each
    /// second on a terminal; JSON lines (one object per topic per refresh)
    /// with --json or when stdout is not a terminal.
    ///
    /// RATE (`rate_hz`) is the announcing process's announcement rounds per
    /// second, not its message rate. ENDPOINT is where its websocket serves
    /// the topic (none for a topic it only has in shared memory);
    /// `connectable` is false when the fingerprint is not the one expected
    /// for that name.
    Spy {
        /// Stop after this long (e.g. 3s, 500ms, 2m); default: until
        /// interrupted.
        #[arg(long = "for", value_parser = spy::parse_duration)]
        duration: Option<std::time::Duration>,
        /// Print JSON lines even on a terminal.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        net: spy::NetArgs,
    },
    /// Announce topics on the network, as a program would (for trying out
    /// listeners, `shmidl spy`, or a peer in another language). Says goodbye
    /// at the end of --for; interrupted, its topics expire after the lease.
    Announce {
        /// Topic names.
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
        /// The topics' schema type name.
        #[arg(long = "type", default_value = "")]
        type_name: String,
        /// The type's fingerprint, as `shmidl check -v` prints it (0x…).
        #[arg(long, default_value = "0", value_parser = spy::parse_fingerprint)]
        fingerprint: u64,
        /// Announce as a subscriber rather than a publisher.
        #[arg(long)]
        subscriber: bool,
        /// Websocket port (0: none).
        #[arg(long, default_value_t = 0)]
        ws_port: u16,
        /// Websocket path.
        #[arg(long, default_value = "")]
        ws_path: String,
        /// Stop after this long (e.g. 10s); default: until interrupted.
        #[arg(long = "for", value_parser = spy::parse_duration)]
        duration: Option<std::time::Duration>,
        /// Time between announcements (the lease is three of them).
        #[arg(long, default_value = "1s", value_parser = spy::parse_duration)]
        interval: std::time::Duration,
        #[command(flatten)]
        net: spy::NetArgs,
    },
    /// Bridge topics of a schema between a domain's shared memory and the
    /// network (websockets, found through discovery), with no Rust code:
    /// --out forwards local messages to the network, --in publishes
    /// network messages to local subscribers. Reports counters every
    /// --interval; stops cleanly on Ctrl-C or SIGTERM.
    Bridge(bridge::Args),
    /// Measure shmidl against baselines in the same run.
    Bench {
        #[command(subcommand)]
        which: BenchKind,
    },
    /// (internal) The second process of a benchmark.
    #[command(hide = true)]
    BenchPeer {
        /// Role and parameters.
        args: Vec<String>,
    },
    /// Print a schema in canonical formatting (needs only the file: imports
    /// are not loaded).
    Fmt {
        /// Schema file.
        file: PathBuf,
        /// Accepted for compatibility; formatting does not read imports.
        #[arg(short = 'I', long = "include", hide = true)]
        includes: Vec<PathBuf>,
        /// Print nothing and exit 0 if the file is formatted; else print a
        /// diff and exit 1.
        #[arg(long)]
        check: bool,
    },
    /// Generate Rust from schemas: one `<package>.rs` per package, as
    /// `shmidl_codegen::compile` does in build.rs.
    Gen {
        /// Schema files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Directories searched for imports.
        #[arg(short = 'I', long = "include")]
        includes: Vec<PathBuf>,
        /// Output directory.
        #[arg(short = 'o', long = "out", required = true)]
        out: PathBuf,
        /// Path of the runtime crate in the generated code (default `::shmidl`).
        #[arg(long)]
        runtime_crate: Option<String>,
        /// Do not generate topic modules.
        #[arg(long)]
        no_topics: bool,
    },
}

#[derive(Subcommand)]
enum BenchKind {
    /// The websocket transport against raw TCP on loopback, same payloads
    /// and batching: messages/s at 64 B and bytes/s at 64 KiB, to one and
    /// to four receivers.
    Net {
        /// Messages per run at 64 B.
        #[arg(long, default_value_t = 1_000_000)]
        small: u64,
        /// Messages per run at 64 KiB.
        #[arg(long, default_value_t = 20_000)]
        large: u64,
        /// Runs of each case (websocket, raw TCP, direct TCP in turn);
        /// the figures are the medians.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Shared memory → bridge → websocket → bridge → shared memory on
    /// loopback (two bridge processes) against the plain websocket: one-way
    /// latency and throughput at 64 B, in the same run.
    Bridge {
        /// One-at-a-time messages for the latency.
        #[arg(long, default_value_t = 2_000)]
        iterations: u32,
        /// Messages in the throughput stream.
        #[arg(long, default_value_t = 100_000)]
        stream: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What opening a topic costs as a domain fills up: one process creates
    /// --topics topics in a new domain, another joins each. Prints, in µs,
    /// the mean of the first ten and of the last ten, the median and the
    /// 99th percentile, and last/first.
    Topics {
        /// Topics to create and join (the domain is made to hold them; each
        /// open topic keeps a file descriptor, and the limit is raised as
        /// far as the hard limit allows).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        topics: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Publish-subscribe between processes: busy-poll and blocking latency
    /// from 64 B to 4 MiB, one-to-one throughput, one publisher to one and
    /// to four subscribers (latency to the last, streams with the CPU time
    /// per message), runtime-sized frames, and the cache-line and futex
    /// floors. docs/performance.md explains the rows.
    Pubsub {
        /// Measured round trips per benchmark.
        #[arg(long, default_value_t = 20_000)]
        iterations: u32,
        /// Unmeasured round trips before measuring.
        #[arg(long, default_value_t = 2_000)]
        warmup: u32,
        /// Messages in the throughput run.
        #[arg(long, default_value_t = 2_000_000)]
        stream: u64,
        /// Runs of each one-to-one throughput stream; the figure is the
        /// median, with the range.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Path of the `shmidl-peers` binary (built from bench/peers) to
        /// measure iceoryx2 in the same run, e.g.
        /// `/tmp/peers/release/shmidl-peers`.
        #[arg(long)]
        peers: Option<PathBuf>,
        /// Run only these groups of benchmarks (the floors always run).
        #[arg(long, value_delimiter = ',', value_parser = ["poll", "slice", "block", "throughput", "fanout"])]
        only: Vec<String>,
    },
}

fn main() -> ExitCode {
    // The library logs through `tracing`: RUST_LOG=shmidl=debug shows it,
    // on stderr (stdout carries each command's output).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    match Cli::parse().command {
        Command::Check {
            files,
            includes,
            verbose,
        } => schema::check(&files, &includes, verbose),
        Command::Fmt {
            file,
            includes: _,
            check,
        } => schema::fmt(&file, check),
        Command::Gen {
            files,
            includes,
            out,
            runtime_crate,
            no_topics,
        } => gen::gen(&files, &includes, &out, runtime_crate.as_deref(), no_topics),
        Command::Bench {
            which:
                BenchKind::Pubsub {
                    iterations,
                    warmup,
                    stream,
                    runs,
                    json,
                    peers,
                    only,
                },
        } => bench::pubsub(&bench::Options {
            iterations: iterations.max(1),
            warmup,
            stream: stream.max(1),
            runs: runs.max(1),
            json,
            peers,
            only,
        }),
        Command::Bench {
            which:
                BenchKind::Bridge {
                    iterations,
                    stream,
                    json,
                },
        } => bench_bridge::run(&bench_bridge::Options {
            iterations: iterations.max(1),
            stream: stream.max(1),
            json,
        }),
        Command::Bench {
            which:
                BenchKind::Net {
                    small,
                    large,
                    runs,
                    json,
                },
        } => bench_net::run(&bench_net::Options {
            small: small.max(1),
            large: large.max(1),
            runs: runs.max(1),
            json,
        }),
        Command::Bench {
            which: BenchKind::Topics { topics, json },
        } => bench_topics::run(&bench_topics::Options {
            topics: topics.max(1),
            json,
        }),
        Command::BenchPeer { args } => bench::peer(&args),
        Command::Bridge(args) => bridge::run(&args),
        Command::Spy {
            duration,
            json,
            net,
        } => match net.config() {
            Ok(config) => spy::spy(spy::Options {
                duration,
                json,
                config,
            }),
            Err(e) => {
                eprintln!("shmidl spy: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Announce {
            topics,
            type_name,
            fingerprint,
            subscriber,
            ws_port,
            ws_path,
            duration,
            interval,
            net,
        } => {
            let role = if subscriber {
                shmidl::net::Role::Subscriber
            } else {
                shmidl::net::Role::Publisher
            };
            let topics = topics
                .into_iter()
                .map(|name| shmidl::net::AnnouncedTopic {
                    name,
                    type_name: type_name.clone(),
                    fingerprint,
                    role,
                    ws_port,
                    ws_path: ws_path.clone(),
                })
                .collect();
            match net.config() {
                Ok(config) => spy::announce(config.with_interval(interval), topics, duration),
                Err(e) => {
                    eprintln!("shmidl announce: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ls { json, interval_ms } => {
            segments::ls(json, std::time::Duration::from_millis(interval_ms))
        }
        Command::Clean { dry_run } => segments::clean(dry_run),
    }
}
