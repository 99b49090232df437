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
//! - `shmidl bench pubsub [--json]`: publish-subscribe latency and
//!   throughput between two processes, with baselines in the same run.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod bench;
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
    Spy {
        /// Stop after this long (e.g. 3s, 500ms, 2m); default: until
        /// interrupted.
        #[arg(long = "for", value_parser = spy::parse_duration)]
        duration: Option<std::time::Duration>,
        /// Print JSON lines even on a terminal.
        #[arg(long)]
        json: bool,
        /// UDP port.
        #[arg(long, default_value_t = shmidl::net::DEFAULT_PORT)]
        port: u16,
        /// Multicast group.
        #[arg(long, default_value_t = shmidl::net::DEFAULT_GROUP)]
        group: std::net::Ipv4Addr,
        /// Also listen on this IPv6 multicast group (ff02::7447 is
        /// shmidl's; needs --interface NAME).
        #[arg(long)]
        ipv6_group: Option<std::net::Ipv6Addr>,
        /// Interface, by name (eth0, lo) or IPv4 address; default: the
        /// routing table's choice.
        #[arg(long, value_parser = |s: &str| Ok::<_, String>(spy::parse_interface(s)))]
        interface: Option<shmidl::net::Interface>,
        /// Listen for broadcast, multicast or both.
        #[arg(long, default_value = "both", value_parser = spy::parse_transport)]
        transport: shmidl::net::Transport,
    },
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
    /// Publish-subscribe between two processes: busy-poll and blocking
    /// latency from 64 B to 4 MiB, throughput, and the cache-line and futex
    /// floors.
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
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Path of the `shmidl-peers` binary (built from bench/peers) to
        /// measure iceoryx2 in the same run, e.g.
        /// `/tmp/peers/release/shmidl-peers`.
        #[arg(long)]
        peers: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
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
                    json,
                    peers,
                },
        } => bench::pubsub(&bench::Options {
            iterations: iterations.max(1),
            warmup,
            stream: stream.max(1),
            json,
            peers,
        }),
        Command::BenchPeer { args } => bench::peer(&args),
        Command::Spy {
            duration,
            json,
            port,
            group,
            ipv6_group,
            interface,
            transport,
        } => {
            let mut config = shmidl::net::DiscoveryConfig::on_port(port).with_transport(transport);
            config.group = group;
            config.ipv6_group = ipv6_group;
            if let Some(interface) = interface {
                config.interface = interface;
            }
            spy::spy(spy::Options {
                duration,
                json,
                config,
            })
        }
        Command::Ls { json } => segments::ls(json),
        Command::Clean { dry_run } => segments::clean(dry_run),
    }
}
