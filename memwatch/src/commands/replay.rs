//! `memwatch replay`: the engine over a recorded trace, events as JSON lines.
use std::{io::Write as _, path::Path};

use anyhow::Context as _;

use crate::{
    cli::ReplayArgs,
    config::{self, Config},
    engine::{EngineOptions, Event},
    limits::Limits,
    monitor::Monitor,
    targets,
    trace::{self, Trace},
};

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::parse_with_env("", &config::env_from_process())
            .map_err(|errors| config::ConfigError::Invalid { path: "environment".into(), errors })?,
    };
    let host_total = match &args.host_memory {
        Some(size) => config::parse_size(size).map_err(|e| anyhow::anyhow!("--host-memory: {e}"))?,
        None => Limits::default().host_total().context("reading MemTotal from /proc/meminfo (or pass --host-memory)")?,
    };
    let trace = read_trace(&args.trace)?;
    let events = replay(&trace, config, host_total, EngineOptions { seed_rule_events: args.seed_rule });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for event in &events {
        writeln!(out, "{}", event.to_json_line()).context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}

pub fn read_trace(path: &Path) -> anyhow::Result<Trace> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading trace {}", path.display()))?;
    trace::parse(&text).map_err(|e| anyhow::Error::new(e).context(format!("trace {}", path.display())))
}

/// Every event the engine emits over `trace`, in time order (events of the
/// same instant in file order). The same `Monitor` path as `memwatch run`.
pub fn replay(trace: &Trace, config: Config, host_total: u64, options: EngineOptions) -> Vec<Event> {
    let policies: Vec<Option<usize>> = trace.keys.iter().map(|key| targets::policy_for_key(&config, key)).collect();
    let mut monitor = Monitor::new(config, host_total, options);
    let mut events = Vec::new();
    for row in &trace.rows {
        monitor.observe(row.t, &trace.keys[row.key], policies[row.key], row.rss_bytes, row.limit_bytes, &mut events);
    }
    // Rows are in time order per key only; a stable sort makes the whole
    // output time-ordered without disturbing same-instant order.
    events.sort_by(|a, b| a.t.total_cmp(&b.t));
    events
}
