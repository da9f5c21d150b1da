//! Scores leak detection on labelled corpora: the engine's `leak_detected`
//! against the seed's rule alone, both from the same replay. Prints a
//! markdown table per corpus (`cargo xtask score` shows them) and fails if
//! the engine falls below [`FLOOR`] on any of them.
//!
//! The corpora: corpus/ (synthetic, `cargo xtask corpus`), the test half of
//! corpus/real/ (recorded from real runtimes, `corpus/real/regenerate.py`;
//! the engine's constants are never tuned on it), the Node case
//! recorded eight times (corpus/real/node_case/, `regenerate.py
//! --node-case`: leaks only, so its figures are its delays), and, when `cargo xtask
//! score` made one, a synthetic corpus from a seed drawn for that run
//! (SCORE_FRESH_CORPUS, its seed in SCORE_FRESH_SEED). SCORE_CORPUS scores
//! one directory alone.
//!
//! Two more tests replay the real and the synthetic corpus under limits
//! close to each trace's own figures, where the confirmation is shortened
//! by urgency: a leak an hour from its limit, a warm-up, a job or a JVM
//! peaking at 98% of it.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use memwatch::{
    config::Config,
    engine::{EngineOptions, Event, EventKind},
    pipeline::replay::events_of_v1,
    trace::{self, Trace, v1},
};

/// The corpus is replayed as if on a 16 GiB host, so scores do not depend on
/// the machine running the test (traces without a limit get the host's).
const HOST_MEMORY: u64 = 16 << 30;

struct Targets {
    precision: f64,
    recall: f64,
    median_delay_min: f64,
}

/// What the engine reaches today on the committed corpora, with a margin:
/// falling below it is a regression. It is not [`GOAL`]: the first build
/// of a timed job and a slow warm-up's first 20 minutes look like a leak's
/// start, and only waiting longer tells them apart, which costs delay
/// (docs/detection.md has the measured trade-off).
const FLOOR: Targets = Targets { precision: 0.82, recall: 0.95, median_delay_min: 16.0 };

/// The floor on a corpus from a fresh seed, wide enough for the spread of
/// seeds, so the test fails on a regression and not on a draw: over 263
/// seeds (docs/detection.md, "Measured") precision was 0.842-0.966, recall
/// 0.976-1, and the median delay 14.0-16.7 minutes. The median of 85
/// delays jumps from the 14-minute cluster of leaks from the start to the
/// next one when a seed makes a few of them slower.
const FRESH_SEED_FLOOR: Targets = Targets { precision: 0.82, recall: 0.95, median_delay_min: 18.0 };

/// Where the engine is going (issue 15): printed beside each score.
const GOAL: Targets = Targets { precision: 0.95, recall: 0.95, median_delay_min: 10.0 };

struct Label {
    file: String,
    leak: bool,
    shape: String,
    leak_start_s: Option<f64>,
    /// What a leak keeps per hour, as its generator or workload made it.
    rate_bytes_per_h: Option<f64>,
}

fn labels(dir: &Path) -> Vec<Label> {
    let path = dir.join("labels.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("file,key,leak,shape,leak_start_s,rate_bytes_per_h"), "{}", path.display());
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Label {
                file: f[0].to_owned(),
                leak: f[2] == "true",
                shape: f[3].to_owned(),
                leak_start_s: f[4].parse().ok(),
                rate_bytes_per_h: f[5].parse().ok(),
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

    /// The delay below which a share `q` of the found leaks were found
    /// (nearest rank).
    fn delay_quantile_min(&self, q: f64) -> Option<f64> {
        let mut delays = self.delays_s.clone();
        delays.sort_by(f64::total_cmp);
        let rank = ((q * delays.len() as f64).ceil() as usize).max(1);
        delays.get(rank - 1).map(|d| d / 60.0)
    }
}

/// A corpus to score: its name, directory, the fewest traces it must hold,
/// and the floor the engine must stay above on it.
struct Corpus {
    name: String,
    dir: PathBuf,
    fewest: usize,
    floor: &'static Targets,
}

fn corpora() -> Vec<Corpus> {
    let corpus = |name: &str, dir: PathBuf, fewest, floor| Corpus { name: name.to_owned(), dir, fewest, floor };
    if let Some(dir) = std::env::var_os("SCORE_CORPUS") {
        return vec![corpus("SCORE_CORPUS", PathBuf::from(dir), 1, &FLOOR)];
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut corpora = vec![
        corpus("synthetic (corpus/)", root.join("corpus"), 150, &FLOOR),
        corpus("real runtimes, test half (corpus/real/test/)", root.join("corpus/real/test"), 25, &FLOOR),
        corpus(
            "real node, the issue's case eight times (corpus/real/node_case/)",
            root.join("corpus/real/node_case"),
            8,
            &FLOOR,
        ),
    ];
    if let Some(dir) = std::env::var_os("SCORE_FRESH_CORPUS") {
        let seed = std::env::var("SCORE_FRESH_SEED").unwrap_or_else(|_| "?".into());
        corpora.push(corpus(&format!("synthetic, fresh seed {seed}"), PathBuf::from(dir), 150, &FRESH_SEED_FLOOR));
    }
    corpora
}

#[test]
fn the_engine_stays_above_its_floor_on_every_corpus() {
    let mut misses = Vec::new();
    for Corpus { name, dir, fewest, floor } in corpora() {
        let engine = score(&name, &dir, fewest);
        let delay = engine.median_delay_min().unwrap_or(f64::INFINITY);
        let meets = |t: &Targets| {
            engine.precision() >= t.precision && engine.recall() >= t.recall && delay < t.median_delay_min
        };
        println!(
            "{name}: {} the goal (precision >= {}, recall >= {}, median delay < {} min)\n",
            if meets(&GOAL) { "meets" } else { "does not yet meet" },
            GOAL.precision,
            GOAL.recall,
            GOAL.median_delay_min
        );
        if !meets(floor) {
            misses.push(format!(
                "{name}: precision {:.3}, recall {:.3}, median delay {delay:.1} min, below its floor \
                 (precision >= {}, recall >= {}, median delay < {} min)",
                engine.precision(),
                engine.recall(),
                floor.precision,
                floor.recall,
                floor.median_delay_min
            ));
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
}

/// A corpus trace: format 1, a row per reading.
fn corpus_trace(dir: &Path, label: &Label) -> v1::Trace {
    let Trace::V1(trace) = trace::read(&dir.join(&label.file)).unwrap() else {
        panic!("{}: a corpus is of format 1", label.file)
    };
    trace
}

/// When the events of `want`'s kind came.
fn times(events: &[Event], want: fn(&EventKind) -> bool) -> Vec<f64> {
    events.iter().filter(|e| want(&e.kind)).map(|e| e.t).collect()
}

/// A delay for the tables.
fn minutes(delay_min: Option<f64>) -> String {
    delay_min.map_or("n/a".to_owned(), |m| format!("{m:.1} min"))
}

/// Replays every trace of one corpus, prints its tables, returns the engine's score.
fn score(name: &str, dir: &Path, fewest: usize) -> Score {
    let labels = labels(dir);
    assert!(labels.len() >= fewest, "{name}: at least {fewest} traces");
    let (mut engine, mut seed) = (Score::default(), Score::default());
    let mut samples = 0usize;
    let mut replay_time = std::time::Duration::ZERO;
    for label in &labels {
        let trace = corpus_trace(dir, label);
        samples += trace.rows.len();
        let start = Instant::now();
        let events = events_of_v1(
            &trace,
            Config::default(),
            HOST_MEMORY,
            EngineOptions { seed_rule_events: true, ..Default::default() },
        );
        replay_time += start.elapsed();
        let found = times(&events, |k| matches!(k, EventKind::LeakDetected(_)));
        if std::env::var_os("SCORE_VERBOSE").is_some() {
            println!("{} {} start={:?} engine={:?}", label.file, label.shape, label.leak_start_s, found);
        }
        engine.add(label, &found);
        seed.add(label, &times(&events, |k| matches!(k, EventKind::SeedRule { .. })));
    }

    let leaks = engine.leaks;
    println!("\nLeak detection on {name} ({} traces: {leaks} leaks, {} not):\n", labels.len(), labels.len() - leaks);
    println!("| method | precision | recall | median delay | p90 delay | true pos. | false pos. |");
    println!("|---|---|---|---|---|---|---|");
    for (method, s) in [("memwatch engine", &engine), ("seed rule (>5 MB/check over 10 checks)", &seed)] {
        println!(
            "| {method} | {:.3} | {:.3} | {} | {} | {} | {} |",
            s.precision(),
            s.recall(),
            minutes(s.median_delay_min()),
            minutes(s.delay_quantile_min(0.9)),
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
    // Replay speed is printed, not asserted: a timing check would fail on a
    // busy CI machine for reasons that have nothing to do with the engine.
    engine
}

/// How far from its own figures a trace's limit is moved: a leak's an
/// hour of its rate above where it began, a non-leak's 2% above its peak
/// (a cache or a JVM warming up to 98% of its limit, a job building to it).
const LEAK_HOURS_TO_LIMIT: f64 = 1.0;
const PEAK_SHARE_OF_LIMIT: f64 = 0.98;

/// Replays every trace of `dir` but those of shape `skip`, each with its
/// limit moved close to its own figures when `close`, into `score`;
/// returns the non-leaks announced.
fn replay_corpus(dir: &Path, skip: &str, close: bool, score: &mut Score) -> Vec<String> {
    let mut flagged = Vec::new();
    for label in labels(dir).iter().filter(|l| l.shape != skip) {
        let mut trace = corpus_trace(dir, label);
        if close {
            let limit = if label.leak {
                let start = label.leak_start_s.expect("leaks have a start");
                let first = trace.rows.iter().filter(|r| r.t >= start && r.t < start + 120.0).map(|r| r.rss_bytes);
                let rate = label.rate_bytes_per_h.expect("leaks have a rate");
                first.min().expect("readings after the start") + (rate * LEAK_HOURS_TO_LIMIT) as u64
            } else {
                let peak = trace.rows.iter().map(|r| r.rss_bytes).max().expect("readings");
                (peak as f64 / PEAK_SHARE_OF_LIMIT) as u64
            };
            for row in &mut trace.rows {
                row.limit_bytes = Some(limit);
            }
        }
        let events = events_of_v1(&trace, Config::default(), HOST_MEMORY, EngineOptions::default());
        let found = times(&events, |k| matches!(k, EventKind::LeakDetected(_)));
        if !label.leak && !found.is_empty() {
            flagged.push(format!("{} ({})", label.file, label.shape));
        }
        score.add(label, &found);
    }
    flagged
}

/// Prints what a corpus replayed with limits close found.
fn print_limits_close(name: &str, close: &Score) {
    println!(
        "\n{name}, limits close: {} of {} leaks found {LEAK_HOURS_TO_LIMIT} h from their limit, median delay {}, \
         p90 {}; {} false alarms on non-leaks peaking at {:.0}% of their limit\n",
        close.true_positives,
        close.leaks,
        minutes(close.median_delay_min()),
        minutes(close.delay_quantile_min(0.9)),
        close.false_positives,
        PEAK_SHARE_OF_LIMIT * 100.0
    );
}

/// The real corpus, both halves, with every trace's limit moved close to
/// its own figures. Urgency shortens the confirmation there
/// (`leak::confirmation_secs`), and must not announce the warm-ups before
/// their levelling off shows. Jobs keeping a share of each cycle are left
/// out: their builds rise far above an hour of what they keep.
#[test]
fn limits_close_to_the_figures_hurry_leaks_and_not_warm_ups() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/real");
    let mut close = Score::default();
    let mut flagged = Vec::new();
    for half in ["tuning", "test"] {
        let half_flagged = replay_corpus(&root.join(half), "batch_rising", true, &mut close);
        flagged.extend(half_flagged.into_iter().map(|f| format!("{half}/{f}")));
    }
    print_limits_close("Real corpus", &close);
    assert_eq!(flagged, Vec::<String>::new(), "announced before their levelling off showed");
    assert_eq!(close.false_positives, 0, "a leak announced before it began");
    assert_eq!(close.true_positives, close.leaks, "every leak found");
}

/// The synthetic corpus the same way. Its caches and batch jobs top out
/// just under their limits there, where the lower envelope still rises
/// for two minutes after the readings stopped: urgency must not announce
/// them (`leak::still_rising`). The only false alarms limits close may add
/// to those at the host's memory are timed jobs' first builds: a build
/// still rising toward its limit is a leak's start as far as anything can
/// tell, and the limit hurries it.
#[test]
fn limits_close_add_no_false_alarm_on_shapes_that_top_out() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let skip = "leak_under_timed_job";
    let mut close = Score::default();
    let flagged_close = replay_corpus(&dir, skip, true, &mut close);
    let flagged_own = replay_corpus(&dir, skip, false, &mut Score::default());
    print_limits_close("Synthetic corpus", &close);
    let added: Vec<&String> =
        flagged_close.iter().filter(|f| !flagged_own.contains(f) && !f.ends_with("(timed_job)")).collect();
    assert_eq!(added, Vec::<&String>::new(), "announced near their limit only; flagged anyway: {flagged_own:?}");
    assert_eq!(close.true_positives, close.leaks, "every leak found");
}

/// The real corpus's JVMs growing their heap to `-Xmx`, with memory of
/// their own added over the full heap from the moment it filled, and
/// their limit where the ceiling is 97% of it: memory settling (30 MiB
/// more over the first hour, ever slower: metaspace, code cache, allocator
/// arenas) is set aside as the heap's, a native leak of 200 MiB/h is found
/// (`leak::Bounds::heap_sizing`).
#[test]
fn over_a_full_heap_settling_is_set_aside_and_a_native_leak_is_found() {
    const MIB: f64 = 1024.0 * 1024.0;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/real");
    let replay = |dir: &Path, label: &Label, added: &dyn Fn(f64) -> f64| {
        let mut trace = corpus_trace(dir, label);
        let ceiling = trace.rows[0].heap_ceiling_bytes.expect("the JVMs' traces carry their -Xmx");
        let filled = trace.rows.iter().find(|r| r.rss_bytes >= ceiling).expect("the heap fills").t;
        for row in &mut trace.rows {
            row.rss_bytes += added((row.t - filled).max(0.0)) as u64;
            row.limit_bytes = Some((ceiling as f64 / 0.97) as u64);
        }
        let events = events_of_v1(&trace, Config::default(), HOST_MEMORY, EngineOptions::default());
        times(&events, |k| matches!(k, EventKind::LeakDetected(_)))
    };
    let (mut jvms, mut flagged, mut missed) = (0, Vec::new(), Vec::new());
    for half in ["tuning", "test"] {
        let dir = root.join(half);
        for label in labels(&dir).iter().filter(|l| l.shape == "jvm_heap_to_xmx") {
            jvms += 1;
            let settling = |secs: f64| 30.0 * MIB * (1.0 - (-secs / 3600.0).exp());
            if !replay(&dir, label, &settling).is_empty() {
                flagged.push(format!("{half}/{}", label.file));
            }
            let leaking = |secs: f64| 200.0 * MIB * secs / 3600.0;
            if replay(&dir, label, &leaking).is_empty() {
                missed.push(format!("{half}/{}", label.file));
            }
        }
    }
    assert!(jvms >= 10, "the JVMs of both halves");
    assert_eq!(flagged, Vec::<String>::new(), "memory settling over a full heap announced");
    assert_eq!(missed, Vec::<String>::new(), "a native leak over a full heap missed");
}
