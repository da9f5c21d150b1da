//! `memwatch replay`: the engine over a recorded trace, events as JSON lines.
use std::{io::Write as _, path::Path};

use anyhow::Context as _;

use crate::{
    cli::ReplayArgs,
    config::{self, Config},
    engine::{EngineOptions, Event},
    pipeline::monitor::Monitor,
    sources::cgroupfs::Limits,
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
        None => {
            Limits::default().host_total().context("reading MemTotal from /proc/meminfo (or pass --host-memory)")?
        }
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
    let policies: Vec<Option<usize>> =
        trace.keys.iter().map(|key| crate::model::targets::policy_for_key(&config, key)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_trace(name: &str) -> Trace {
        read_trace(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus").join(name)).unwrap()
    }

    fn lines(trace: &Trace) -> Vec<String> {
        replay(trace, Config::default(), 16 << 30, EngineOptions { seed_rule_events: true })
            .iter()
            .map(Event::to_json_line)
            .collect()
    }

    #[test]
    fn replay_is_deterministic_and_time_ordered_across_interleaved_keys() {
        // Two corpus traces interleaved row by row into one.
        let (a, b) = (corpus_trace("lin20.csv"), corpus_trace("gcf03.csv"));
        let mut merged = Trace { keys: vec![a.keys[0].clone(), b.keys[0].clone()], rows: Vec::new() };
        for (ra, rb) in a.rows.iter().zip(&b.rows) {
            merged.rows.push(ra.clone());
            merged.rows.push(trace::TraceRow { key: 1, ..rb.clone() });
        }
        let first = lines(&merged);
        assert_eq!(first, lines(&merged), "same input, same output");
        assert!(first.iter().any(|l| l.contains("\"key\":\"lin20\"") && l.contains("leak_detected")), "{first:#?}");
        assert!(!first.iter().any(|l| l.contains("\"key\":\"gcf03\"") && l.contains("leak_detected")), "{first:#?}");
        // The same verdicts as each trace alone: targets do not influence each other.
        let alone: Vec<String> = lines(&a).into_iter().filter(|l| l.contains("leak_")).collect();
        let together: Vec<String> =
            first.into_iter().filter(|l| l.contains("\"key\":\"lin20\"") && l.contains("leak_")).collect();
        assert_eq!(alone, together);
    }
}
