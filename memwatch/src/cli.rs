//! The command line.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::sources::collect::ModeRequest;

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
    /// Validate a configuration file without starting (exit 78 with every error if it is bad).
    CheckConfig(CheckConfigArgs),
    /// Run the detection engine over a recorded trace; print its events as JSON lines.
    Replay(ReplayArgs),
    /// Record the live targets' memory into a trace file for `replay`.
    Record(RecordArgs),
    /// Print the incident log (critical/emergency episodes and kills), oldest first.
    Incidents(IncidentsArgs),
    /// Ask the running daemon for one table: host, targets, levels, leaks, last actions.
    Status(ClientArgs),
    /// Live view of the running daemon (q quits).
    Top(ClientArgs),
}

#[derive(Debug, clap::Args)]
pub struct IncidentsArgs {
    /// Only incidents that ended in the last DURATION ("2h", "30m") or since a UTC TIMESTAMP ("2026-11-27T06:00:00Z").
    #[arg(long, value_name = "DURATION|TIMESTAMP")]
    pub since: Option<String>,
    /// The incident log (rotated files beside it are read too).
    #[arg(long, default_value = crate::config::actions::DEFAULT_INCIDENT_LOG)]
    pub file: PathBuf,
    /// The records as JSON lines, as stored.
    #[arg(long)]
    pub json: bool,
}

/// How `status` and `top` reach the daemon: its API socket only.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The daemon's API socket (`api.socket` in its config).
    #[arg(long, default_value = crate::config::observe::DEFAULT_SOCKET, env = "MEMWATCH_SOCKET")]
    pub socket: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// Configuration file (TOML).
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Trace: format 2 (JSON lines from `record` or `run --record`), or
    /// format 1 (CSV: timestamp_s,key,rss_bytes,limit_bytes).
    #[arg(long)]
    pub trace: PathBuf,
    /// Configuration whose policies to apply (default: built-in defaults).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Host memory for "NN%" limits and targets without a limit (bytes or
    /// "16GiB"; default: the recording host's, or for format 1 this host's
    /// MemTotal). Set it to replay the same way on any host.
    #[arg(long, value_parser = parse_host_memory)]
    pub host_memory: Option<u64>,
    /// Also print when the seed's rule (growth > 5 MB per check over 10 checks) starts firing.
    #[arg(long)]
    pub seed_rule: bool,
    /// Print the actions memwatch would have taken (one JSON line per
    /// decision, as the daemon logs them) instead of the engine's events.
    /// Needs a trace of format 2 (`record`, `run --record`).
    #[arg(long)]
    pub actions: bool,
    /// Also print, at every minute the leak detector evaluates a target, what
    /// each window found and the test that vetoed it (`leak_evaluation` lines).
    #[arg(long, conflicts_with = "actions")]
    pub explain: bool,
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// Seconds to record.
    #[arg(long, short, value_parser = clap::value_parser!(u64).range(1..=7 * 86_400))]
    pub duration: u64,
    /// Trace file to write (replaced whole when recording ends).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Seconds between readings.
    #[arg(long, default_value_t = 5.0, value_parser = parse_interval)]
    pub interval: f64,
    /// Configuration whose policies decide the targets (default: built-in defaults).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Where figures come from (default: the config's `daemon.mode`).
    #[arg(long, value_enum)]
    pub mode: Option<ModeRequest>,
}

fn parse_host_memory(text: &str) -> Result<u64, String> {
    match crate::config::parse_size(text)? {
        0 => Err(format!("{text:?}: a host has more than 0 bytes of memory")),
        bytes => Ok(bytes),
    }
}

fn parse_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 3600.0 => Ok(secs),
        _ => Err(format!("{text:?}: must be more than 0 and at most 3600 seconds")),
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML).
    #[arg(long, short, default_value = "/etc/memwatch/config.toml", env = "MEMWATCH_CONFIG")]
    pub config: PathBuf,
    /// Override the config's `daemon.mode`.
    #[arg(long, value_enum)]
    pub mode: Option<ModeRequest>,
    /// Also write every input of the pipeline to FILE (a trace of format 2,
    /// replaced), so `memwatch replay --actions` can show later what this
    /// run decided, or what another config would have.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
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
    /// Where the kernel refuses fexit programs, count mmap/munmap/brk through
    /// the syscalls tracepoints (every syscall on the host is slower while
    /// they are attached).
    #[arg(long)]
    pub syscall_tracepoints: bool,
}
