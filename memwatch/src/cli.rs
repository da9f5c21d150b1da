//! The command line.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::collect::ModeRequest;

/// eBPF memory monitor: per-process memory deltas, leak trends, threshold actions.
#[derive(Debug, Parser)]
#[command(name = "memwatch", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (Ctrl-C or SIGTERM stops it and detaches the probes).
    Run(RunArgs),
    /// Watch every process for a while, then print what changed, largest growth first.
    Probe(ProbeArgs),
    /// Ask the running daemon for one table: host, targets, levels, leaks, last actions.
    Status(ClientArgs),
    /// Live view of the running daemon (q quits).
    Top(ClientArgs),
}

/// How `status` and `top` reach the daemon: its API socket only.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The daemon's API socket (`api.socket` in its config).
    #[arg(long, default_value = crate::observe_config::DEFAULT_SOCKET, env = "MEMWATCH_SOCKET")]
    pub socket: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML).
    #[arg(long, short, default_value = "/etc/memwatch/config.toml", env = "MEMWATCH_CONFIG")]
    pub config: PathBuf,
    /// Override the config's `daemon.mode`.
    #[arg(long, value_enum)]
    pub mode: Option<ModeRequest>,
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Seconds to watch.
    #[arg(long, short, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: u64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only this process (shown even if nothing changed).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Option<u32>,
    /// Where figures come from: eBPF with /proc fallback (auto), eBPF only, or /proc only.
    #[arg(long, value_enum, default_value_t = ModeRequest::Auto)]
    pub mode: ModeRequest,
}
