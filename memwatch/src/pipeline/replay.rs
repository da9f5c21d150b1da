//! `memwatch replay`'s engine room: a recorded trace through the same
//! pipeline as the live daemon.
use super::Pipeline;
use crate::{
    config::Config,
    engine::{
        EngineOptions, Event,
        planner::{Applied, Decision, assume_success},
    },
    model::{heap_ceiling::HeapCeiling, targets::policy_for_key},
    pipeline::monitor::{Measured, Monitor},
    trace::{
        v1,
        v2::{RecordedFacts, Recording, Round},
    },
};

/// Every event the engine emits over a format-1 trace, in time order
/// (events of the same instant in file order).
pub fn events_of_v1(trace: &v1::Trace, config: Config, host_total: u64, options: EngineOptions) -> Vec<Event> {
    let policies: Vec<Option<usize>> = trace.keys.iter().map(|key| policy_for_key(&config, key)).collect();
    let mut monitor = Monitor::new(config, host_total, options);
    let mut events = Vec::new();
    for row in &trace.rows {
        let measured = Measured {
            usage_bytes: row.rss_bytes,
            cgroup_limit: row.limit_bytes,
            pressure: None,
            heap_ceiling: row.heap_ceiling_bytes.map(HeapCeiling::hard),
        };
        monitor.observe(row.t, &trace.keys[row.key], policies[row.key], measured, &mut events);
    }
    // Rows are in time order per key only; a stable sort makes the whole
    // output time-ordered without disturbing same-instant order.
    events.sort_by(|a, b| a.t.total_cmp(&b.t));
    events
}

/// What the pipeline made of a recording: the engine's events and the
/// planner's decisions, each in the order they were made.
#[derive(Debug, Default)]
pub struct Replayed {
    pub events: Vec<Event>,
    pub decisions: Vec<Decision>,
}

/// Runs a format-2 recording through the pipeline. Each round settles with
/// the outcomes recorded for it when they fit its decisions (the same
/// config: the same decisions), else as if every decision succeeded.
pub fn run_v2(recording: &Recording, config: Config, host_total: u64, options: EngineOptions) -> Replayed {
    let mut pipeline = Pipeline::new(config, host_total, options, recording.header.daemon_pid);
    let mut replayed = Replayed::default();
    for round in &recording.rounds {
        let (decisions, applied) = match round {
            Round::Tick { t, processes, answers, applied } => {
                let tick = pipeline.tick(*t, processes, &mut RecordedFacts { answers });
                replayed.events.extend(tick.events);
                (tick.decisions, applied)
            }
            Round::Request { t, target, answers, applied } => {
                match pipeline.request_cleanup(*t, target, &mut RecordedFacts { answers }) {
                    Some(Ok(decisions)) => (decisions, applied),
                    _ => continue,
                }
            }
            Round::Done { t, pass, applied } => {
                pipeline.pass_done(*t, *pass, applied);
                continue;
            }
            Round::Shutdown { t, applied } => (pipeline.planner_mut().shutdown(*t), applied),
        };
        let outcomes = outcomes_for(&decisions, applied.as_deref());
        pipeline.settle(&outcomes);
        replayed.decisions.extend(decisions);
    }
    replayed
}

fn outcomes_for(decisions: &[Decision], recorded: Option<&[Applied]>) -> Vec<Applied> {
    match recorded {
        Some(applied) if applied.len() == decisions.len() => applied.to_vec(),
        _ => assume_success(decisions),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    /// A format-1 trace of `rows` readings, each of a key of its own: the
    /// worst case for the engine's per-target state.
    fn distinct_keys(rows: usize) -> v1::Trace {
        let mut text = String::from("timestamp_s,key,rss_bytes,limit_bytes\n");
        for i in 0..rows {
            let _ = writeln!(text, "{},k{i},{},", i * 5, 1000 + i);
        }
        v1::parse(&text).unwrap()
    }

    #[test]
    fn replay_time_grows_linearly_with_rows_even_when_every_row_is_a_new_target() {
        let time = |rows| {
            let trace = distinct_keys(rows);
            let start = std::time::Instant::now();
            events_of_v1(&trace, Config::default(), 16 << 30, EngineOptions::default());
            start.elapsed().as_secs_f64()
        };
        let (small, large) = (time(25_000), time(100_000));
        // Linear is 4x (log n from the sorted map adds a little).
        assert!(large / small < 7.0, "25k rows: {small:.3} s, 100k rows: {large:.3} s");
    }
}
