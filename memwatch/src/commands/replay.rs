//! `memwatch replay`: a recorded trace through the same pipeline as the
//! live daemon; its events (or, with `--actions`, its decisions) as JSON lines.
use std::io::Write as _;

use anyhow::Context as _;

use crate::{
    cli::ReplayArgs,
    config::{self, Config},
    engine::EngineOptions,
    pipeline::replay::{events_of_v1, run_v2},
    sources::{meminfo, procfs::ProcFs},
    trace::{self, Trace, TraceFileError, error},
};

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::parse_with_env("", &config::env_from_process())
            .map_err(|errors| config::ConfigError::Invalid { path: "environment".into(), errors })?,
    };
    let host_memory = args.host_memory;
    let options = EngineOptions { seed_rule_events: args.seed_rule, leak_evaluations: args.explain };
    let lines: Vec<String> = match trace::read(&args.trace)? {
        Trace::V1(_) if args.actions => {
            let message = "format 1 (CSV) holds no processes, knobs or outcomes, so no actions can be \
                           replayed from it: record it with `memwatch record` or `memwatch run --record`";
            return Err(
                TraceFileError::Invalid { path: args.trace.display().to_string(), source: error(1, message) }.into()
            );
        }
        Trace::V1(trace) => {
            let host = match host_memory {
                Some(bytes) => bytes,
                None => {
                    meminfo::read(ProcFs::default().root())
                        .context("reading MemTotal from /proc/meminfo (or pass --host-memory)")?
                        .total
                }
            };
            events_of_v1(&trace, config, host, options).iter().map(|e| e.to_json_line()).collect()
        }
        Trace::V2(recording) => {
            let host = host_memory.unwrap_or(recording.header.host_memory);
            let replayed = run_v2(&recording, config, host, options);
            if args.actions {
                replayed.decisions.iter().map(|d| d.to_json_line()).collect()
            } else {
                let mut events = replayed.events;
                events.sort_by(|a, b| a.t.total_cmp(&b.t));
                events.iter().map(|e| e.to_json_line()).collect()
            }
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in &lines {
        writeln!(out, "{line}").context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}
