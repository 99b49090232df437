//! `shmidl`: the command-line tool.
//!
//! - `shmidl check FILE... [-I DIR]... [-v]`: validate schemas (exit 1 with
//!   diagnostics on stderr when invalid);
//! - `shmidl fmt FILE [-I DIR]...`: print a schema in canonical formatting.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod schema;

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
    /// Print a schema in canonical formatting.
    Fmt {
        /// Schema file.
        file: PathBuf,
        /// Directories searched for imports.
        #[arg(short = 'I', long = "include")]
        includes: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check {
            files,
            includes,
            verbose,
        } => schema::check(&files, &includes, verbose),
        Command::Fmt { file, includes } => schema::fmt(&file, &includes),
    }
}
