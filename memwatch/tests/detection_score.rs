//! Scores leak detection on the labelled corpus (corpus/, made by `cargo
//! xtask corpus`): the engine's `leak_detected` against the seed's rule
//! alone, both from the same replay. Prints a markdown table (`cargo xtask
//! score` shows it) and fails if the engine misses its targets:
//! precision >= 0.95, recall >= 0.90, median detection delay < 15 minutes.
use std::{collections::BTreeMap, path::PathBuf, time::Instant};

use memwatch::{
    config::Config,
    engine::{EngineOptions, EventKind},
    pipeline::replay::events_of_v1,
    trace::{self, Trace},
};

/// The corpus is replayed as if on a 16 GiB host, so scores do not depend on
/// the machine running the test.
const HOST_MEMORY: u64 = 16 << 30;

struct Label {
    file: String,
    leak: bool,
    shape: String,
    leak_start_s: Option<f64>,
}

/// The committed corpus, or SCORE_CORPUS (`cargo xtask score --corpus DIR`).
fn corpus_dir() -> PathBuf {
    std::env::var_os("SCORE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus"))
}

fn labels() -> Vec<Label> {
    let text =
        std::fs::read_to_string(corpus_dir().join("labels.csv")).expect("corpus/labels.csv (cargo xtask corpus)");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("file,key,leak,shape,leak_start_s,rate_bytes_per_h"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Label {
                file: f[0].to_owned(),
                leak: f[2] == "true",
                shape: f[3].to_owned(),
                leak_start_s: f[4].parse().ok(),
            }
        })
        .collect()
}

#[derive(Default)]
struct Score {
    true_positives: usize,
    false_positives: usize,
    leaks: usize,
    delays_s: Vec<f64>,
    /// Per shape: (traces flagged, traces).
    by_shape: BTreeMap<String, (usize, usize)>,
}

impl Score {
    /// `detections`: times the method said "leak" on one trace.
    fn add(&mut self, label: &Label, detections: &[f64]) {
        let entry = self.by_shape.entry(label.shape.clone()).or_default();
        entry.1 += 1;
        if label.leak {
            self.leaks += 1;
            let start = label.leak_start_s.expect("leaks have a start");
            // A detection before the leak began is a false alarm, whatever follows.
            if detections.iter().any(|&t| t < start) {
                self.false_positives += 1;
            }
            if let Some(&first) = detections.iter().find(|&&t| t >= start) {
                self.true_positives += 1;
                self.delays_s.push(first - start);
                entry.0 += 1;
            }
        } else if !detections.is_empty() {
            self.false_positives += 1;
            entry.0 += 1;
        }
    }

    fn precision(&self) -> f64 {
        let flagged = self.true_positives + self.false_positives;
        if flagged == 0 { 0.0 } else { self.true_positives as f64 / flagged as f64 }
    }

    fn recall(&self) -> f64 {
        self.true_positives as f64 / self.leaks as f64
    }

    fn median_delay_min(&self) -> Option<f64> {
        let mut delays = self.delays_s.clone();
        if delays.is_empty() {
            return None;
        }
        delays.sort_by(f64::total_cmp);
        let n = delays.len();
        let median = if n % 2 == 1 { delays[n / 2] } else { (delays[n / 2 - 1] + delays[n / 2]) / 2.0 };
        Some(median / 60.0)
    }
}

#[test]
fn the_engine_meets_its_targets_and_beats_the_seed_rule() {
    let labels = labels();
    assert!(labels.len() >= 150, "the corpus has at least 150 traces");
    let (mut engine, mut seed) = (Score::default(), Score::default());
    let mut samples = 0usize;
    let mut replay_time = std::time::Duration::ZERO;
    for label in &labels {
        let Trace::V1(trace) = trace::read(&corpus_dir().join(&label.file)).unwrap() else {
            panic!("{}: the corpus is of format 1", label.file)
        };
        assert_eq!(trace.rows.len(), 1440, "{}: 2 h at 5 s", label.file);
        samples += trace.rows.len();
        let start = Instant::now();
        let events = events_of_v1(&trace, Config::default(), HOST_MEMORY, EngineOptions { seed_rule_events: true });
        replay_time += start.elapsed();
        let times = |want: fn(&EventKind) -> bool| -> Vec<f64> {
            events.iter().filter(|e| want(&e.kind)).map(|e| e.t).collect()
        };
        let found = times(|k| matches!(k, EventKind::LeakDetected(_)));
        if std::env::var_os("SCORE_VERBOSE").is_some() {
            println!("{} {} start={:?} engine={:?}", label.file, label.shape, label.leak_start_s, found.first());
        }
        engine.add(label, &found);
        seed.add(label, &times(|k| matches!(k, EventKind::SeedRule { .. })));
    }

    let leaks = engine.leaks;
    println!(
        "\nLeak detection on corpus/ ({} traces: {leaks} leaks, {} not), `cargo xtask score`:\n",
        labels.len(),
        labels.len() - leaks
    );
    println!("| method | precision | recall | median delay | true pos. | false pos. |");
    println!("|---|---|---|---|---|---|");
    for (name, s) in [("memwatch engine", &engine), ("seed rule (>5 MB/check over 10 checks)", &seed)] {
        println!(
            "| {name} | {:.3} | {:.3} | {} | {} | {} |",
            s.precision(),
            s.recall(),
            s.median_delay_min().map_or("n/a".to_owned(), |m| format!("{m:.1} min")),
            s.true_positives,
            s.false_positives
        );
    }
    println!("\n| shape | leak? | traces | flagged by engine | flagged by seed rule |");
    println!("|---|---|---|---|---|");
    for (shape, (flagged, total)) in &engine.by_shape {
        let leak = labels.iter().find(|l| &l.shape == shape).is_some_and(|l| l.leak);
        println!(
            "| {shape} | {} | {total} | {flagged} | {} |",
            if leak { "yes" } else { "no" },
            seed.by_shape[shape].0
        );
    }
    println!(
        "\nreplay: {samples} samples in {:.3} s ({:.2} M samples/s, {} build, excluding parsing)\n",
        replay_time.as_secs_f64(),
        samples as f64 / replay_time.as_secs_f64() / 1e6,
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );

    assert!(engine.precision() >= 0.95, "engine precision {:.3}", engine.precision());
    assert!(engine.recall() >= 0.90, "engine recall {:.3}", engine.recall());
    let delay = engine.median_delay_min().expect("some leaks found");
    assert!(delay < 15.0, "engine median delay {delay:.1} min");
    // Replay speed (the issue asks for a million samples per second) is
    // printed above, not asserted: a timing check would fail on a busy CI
    // machine for reasons that have nothing to do with the engine.
}
