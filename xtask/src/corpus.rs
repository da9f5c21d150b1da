//! `cargo xtask corpus`: writes the labelled synthetic traces the detection
//! scorer runs on (corpus/*.csv, corpus/labels.csv).
//!
//! It lives in xtask rather than memwatch because it is a developer tool with
//! no place in the daemon, and it must not depend on memwatch (xtask has to
//! build before `cargo xtask setup` has installed the eBPF tool chain). The
//! output is committed; regenerating it gives the same bytes, because every
//! trace draws from its own fixed-seed generator.
//!
//! Shapes (2 h at 5 s each; MB here means MiB):
//! - leaks: linear (20 MB/h .. 4 GB/h, log-spaced), linear under a GC
//!   sawtooth, stepwise, accelerating;
//! - not leaks: GC sawtooth on a flat baseline, cache warm-up to a plateau,
//!   one large kept allocation, periodic batch jobs that free what they took,
//!   pure noise with rare spikes;
//! - jobs on a timer building for 5-20 minutes, returning to their baseline
//!   (not a leak) or keeping a part of each cycle (a leak), and warm-ups with
//!   time constants of 15-60 minutes (not a leak).
use std::{fmt::Write as _, path::Path};

use anyhow::Context as _;

use crate::shell;

const STEP_S: f64 = 5.0;
const SAMPLES: usize = 1440; // 2 h
const MB: f64 = 1024.0 * 1024.0;
const HOUR: f64 = 3600.0;
const PAGE: f64 = 4096.0;

/// SplitMix64: tiny, fast, and fully determined by its seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
    fn log_range(&mut self, low: f64, high: f64) -> f64 {
        (low.ln() + (high.ln() - low.ln()) * self.unit()).exp()
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

struct Trace {
    name: String,
    shape: &'static str,
    leak: bool,
    /// When the leak begins (leaks only).
    leak_start_s: Option<f64>,
    /// Average leak rate over the leaking part, bytes per hour (leaks only).
    rate_per_h: Option<f64>,
    usage: Vec<f64>,
}

fn times() -> impl Iterator<Item = f64> {
    (0..SAMPLES).map(|i| i as f64 * STEP_S)
}

/// A sawtooth: grows linearly over each cycle, drops back at its end. Cycle
/// lengths and peak heights jitter by +-30%, as a real collector's do.
fn sawtooth(rng: &mut Rng, amplitude: f64, period: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(SAMPLES);
    let (mut cycle_start, mut cycle_len, mut peak) = (rng.range(-period, 0.0), period, amplitude);
    for t in times() {
        while t >= cycle_start + cycle_len {
            cycle_start += cycle_len;
            cycle_len = period * rng.range(0.7, 1.3);
            peak = amplitude * rng.range(0.7, 1.3);
        }
        out.push(peak * (t - cycle_start) / cycle_len);
    }
    out
}

fn leak_start(rng: &mut Rng, index: usize) -> f64 {
    // Half start leaking at once (a leak present from start-up), half after a
    // flat 10-40 minutes (a leak triggered by some later request).
    if index.is_multiple_of(2) { 0.0 } else { (rng.range(10.0, 40.0) * 60.0 / STEP_S).round() * STEP_S }
}

fn linear(index: usize, count: usize, rng: &mut Rng) -> Trace {
    // Log-spaced over the range, so every decade is covered evenly.
    let rate = 20.0 * MB * (200.0f64).powf(index as f64 / (count - 1) as f64);
    let base = rng.range(50.0, 2000.0) * MB;
    let sigma = rng.range(0.5, 4.0) * MB;
    let start = leak_start(rng, index);
    let usage = times().map(|t| base + rate / HOUR * (t - start).max(0.0) + sigma * rng.normal()).collect();
    Trace {
        name: format!("lin{index:02}"),
        shape: "leak_linear",
        leak: true,
        leak_start_s: Some(start),
        rate_per_h: Some(rate),
        usage,
    }
}

fn gc_leak(index: usize, rng: &mut Rng) -> Trace {
    let rate = rng.log_range(150.0 * MB, 4096.0 * MB);
    let base = rng.range(100.0, 2000.0) * MB;
    let (amplitude, period) = (rng.range(20.0, 150.0) * MB, rng.range(20.0, 300.0));
    let saw = sawtooth(rng, amplitude, period);
    let start = leak_start(rng, index);
    let usage =
        times().zip(saw).map(|(t, s)| base + s + rate / HOUR * (t - start).max(0.0) + MB * rng.normal()).collect();
    Trace {
        name: format!("gcl{index:02}"),
        shape: "leak_under_gc",
        leak: true,
        leak_start_s: Some(start),
        rate_per_h: Some(rate),
        usage,
    }
}

fn stepwise(index: usize, rng: &mut Rng) -> Trace {
    let step = rng.range(4.0, 64.0) * MB;
    let every = rng.range(1.0, 10.0) * 60.0;
    let base = rng.range(50.0, 1500.0) * MB;
    let start = leak_start(rng, index);
    let usage = times().map(|t| base + step * ((t - start).max(0.0) / every).floor() + MB * rng.normal()).collect();
    Trace {
        name: format!("stp{index:02}"),
        shape: "leak_stepwise",
        leak: true,
        leak_start_s: Some(start),
        rate_per_h: Some(step * HOUR / every),
        usage,
    }
}

fn accelerating(index: usize, rng: &mut Rng) -> Trace {
    // The rate climbs linearly from an eighth of its final value.
    let final_rate = rng.log_range(100.0 * MB, 4096.0 * MB) / HOUR;
    let first_rate = final_rate / 8.0;
    let base = rng.range(50.0, 1500.0) * MB;
    let sigma = rng.range(0.5, 3.0) * MB;
    let start = leak_start(rng, index);
    let span = SAMPLES as f64 * STEP_S - start;
    let grown = |d: f64| first_rate * d + (final_rate - first_rate) * d * d / (2.0 * span);
    let usage = times().map(|t| base + grown((t - start).max(0.0)) + sigma * rng.normal()).collect();
    Trace {
        name: format!("acc{index:02}"),
        shape: "leak_accelerating",
        leak: true,
        leak_start_s: Some(start),
        rate_per_h: Some(grown(span) / span * HOUR),
        usage,
    }
}

fn not_leak(name: String, shape: &'static str, usage: Vec<f64>) -> Trace {
    Trace { name, shape, leak: false, leak_start_s: None, rate_per_h: None, usage }
}

fn gc_flat(index: usize, rng: &mut Rng) -> Trace {
    let base = rng.range(100.0, 2000.0) * MB;
    let (amplitude, period) = (rng.range(20.0, 400.0) * MB, rng.range(15.0, 360.0));
    let saw = sawtooth(rng, amplitude, period);
    let usage = saw.into_iter().map(|s| base + s + MB * rng.normal()).collect();
    not_leak(format!("gcf{index:02}"), "gc_sawtooth", usage)
}

fn warm_up(index: usize, rng: &mut Rng) -> Trace {
    let base = rng.range(50.0, 1000.0) * MB;
    let plateau = rng.range(100.0, 2048.0) * MB;
    let tau = rng.range(2.0, 12.0) * 60.0;
    let start = if index.is_multiple_of(2) { 0.0 } else { rng.range(10.0, 60.0) * 60.0 };
    let sigma = rng.range(1.0, 4.0) * MB;
    let usage = times()
        .map(|t| {
            let warmed = if t < start { 0.0 } else { plateau * (1.0 - (-(t - start) / tau).exp()) };
            base + warmed + sigma * rng.normal()
        })
        .collect();
    not_leak(format!("wrm{index:02}"), "cache_warmup", usage)
}

fn kept_allocation(index: usize, rng: &mut Rng) -> Trace {
    let base = rng.range(50.0, 1500.0) * MB;
    let size = rng.log_range(50.0 * MB, 2048.0 * MB);
    let at = rng.range(20.0, 100.0) * 60.0;
    // Touching a big buffer takes a moment: the step is a short ramp.
    let ramp = rng.range(5.0, 120.0);
    let sigma = rng.range(0.5, 4.0) * MB;
    let usage = times().map(|t| base + size * ((t - at) / ramp).clamp(0.0, 1.0) + sigma * rng.normal()).collect();
    not_leak(format!("alc{index:02}"), "kept_allocation", usage)
}

fn batch(index: usize, rng: &mut Rng) -> Trace {
    let base = rng.range(50.0, 1500.0) * MB;
    let size = rng.range(100.0, 1024.0) * MB;
    let period = rng.range(10.0, 40.0) * 60.0;
    let ramp = rng.range(1.0, 8.0) * 60.0;
    let hold = rng.range(0.0, 5.0) * 60.0;
    let offset = rng.range(0.0, period);
    let sigma = rng.range(0.5, 4.0) * MB;
    let usage = times()
        .map(|t| {
            let phase = (t + offset) % period;
            let job = if phase < ramp {
                size * phase / ramp
            } else if phase < ramp + hold {
                size
            } else {
                0.0
            };
            base + job + sigma * rng.normal()
        })
        .collect();
    not_leak(format!("bat{index:02}"), "batch_jobs", usage)
}

/// A job on a timer (a report builder, a cache rebuilt every so often):
/// builds `size` over 5-20 minutes, frees it all, rests 2-10 minutes and
/// starts again, each cycle keeping `kept` for good. Returns the usage, the
/// cycle's length and when the first cycle frees (from then on what it kept
/// shows).
fn timed_job(rng: &mut Rng, kept: f64) -> (Vec<f64>, f64, f64) {
    let base = rng.range(50.0, 1500.0) * MB;
    let size = rng.range(100.0, 1024.0) * MB;
    let build = rng.range(5.0, 20.0) * 60.0;
    let period = build + rng.range(2.0, 10.0) * 60.0;
    let offset = rng.range(0.0, period);
    let sigma = rng.range(0.5, 4.0) * MB;
    let usage = times()
        .map(|t| {
            let (cycle, phase) = (((t + offset) / period).floor(), (t + offset) % period);
            // What a cycle keeps stays once it has freed the rest.
            let job = if phase < build { size * phase / build } else { kept };
            base + cycle * kept + job + sigma * rng.normal()
        })
        .collect();
    let first_free = if offset < build { build - offset } else { period - offset + build };
    (usage, period, (first_free / STEP_S).ceil() * STEP_S)
}

fn timed_job_returning(index: usize, rng: &mut Rng) -> Trace {
    not_leak(format!("job{index:02}"), "timed_job", timed_job(rng, 0.0).0)
}

fn timed_job_rising(index: usize, rng: &mut Rng) -> Trace {
    let kept = rng.range(20.0, 100.0) * MB;
    let (usage, period, first_free) = timed_job(rng, kept);
    Trace {
        name: format!("jbr{index:02}"),
        shape: "leak_under_timed_job",
        leak: true,
        leak_start_s: Some(first_free),
        rate_per_h: Some(kept * HOUR / period),
        usage,
    }
}

/// A warm-up with a long time constant (15-60 minutes): a JVM growing its
/// heap to -Xmx, a database filling its buffer cache.
fn slow_warm_up(index: usize, rng: &mut Rng) -> Trace {
    let base = rng.range(50.0, 1000.0) * MB;
    let plateau = rng.range(200.0, 2048.0) * MB;
    let tau = rng.range(15.0, 60.0) * 60.0;
    let sigma = rng.range(1.0, 4.0) * MB;
    let usage = times().map(|t| base + plateau * (1.0 - (-t / tau).exp()) + sigma * rng.normal()).collect();
    not_leak(format!("slw{index:02}"), "slow_warmup", usage)
}

fn noise(index: usize, rng: &mut Rng) -> Trace {
    let base = rng.range(50.0, 2000.0) * MB;
    let sigma = rng.log_range(1.0, 40.0) * MB;
    let usage = times()
        .map(|_| {
            // 1% of readings catch a short burst of up to 5 sigma.
            let spike = if rng.unit() < 0.01 { rng.range(0.0, 5.0) * sigma } else { 0.0 };
            base + sigma * rng.normal() + spike
        })
        .collect();
    not_leak(format!("noi{index:02}"), "noise", usage)
}

fn all_traces(seed: u64) -> Vec<Trace> {
    // (count, generator) per shape: 85 leaks, 95 not. New shapes go last,
    // so the traces of the others stay as they were.
    type Make = fn(usize, &mut Rng) -> Trace;
    let linear_count = 27;
    let shapes: [(usize, Make); 12] = [
        (linear_count, |i, rng| linear(i, 27, rng)),
        (18, gc_leak),
        (15, stepwise),
        (15, accelerating),
        (18, gc_flat),
        (15, warm_up),
        (14, kept_allocation),
        (14, batch),
        (14, noise),
        (10, timed_job_returning),
        (10, timed_job_rising),
        (10, slow_warm_up),
    ];
    // Scramble the seed first, so nearby seeds (1, 2, 3) give unrelated corpora.
    let seed = Rng(seed).next_u64();
    let mut traces = Vec::new();
    for (shape_index, (count, make)) in shapes.into_iter().enumerate() {
        for i in 0..count {
            // One seed per trace: regenerating one shape never shifts another.
            let mut rng = Rng(seed ^ ((shape_index as u64) << 32) ^ i as u64);
            traces.push(make(i, &mut rng));
        }
    }
    traces
}

/// The committed corpus's seed ("memwatch" in ASCII).
pub const CORPUS_SEED: u64 = 0x6d65_6d77_6174_6368;

/// Writes the corpus made from `seed` into `dir` (default: the repo's
/// corpus/). Another seed gives a held-out corpus of the same shapes, to
/// check that the detector's constants were not fitted to the committed one.
pub fn generate(seed: Option<u64>, dir: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| shell::workspace_root().join("corpus"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let traces = all_traces(seed.unwrap_or(CORPUS_SEED));
    let mut labels = String::from("file,key,leak,shape,leak_start_s,rate_bytes_per_h\n");
    for trace in &traces {
        write_trace(&dir, trace)?;
        writeln!(
            labels,
            "{}.csv,{},{},{},{},{}",
            trace.name,
            trace.name,
            trace.leak,
            trace.shape,
            trace.leak_start_s.map(|s| format!("{s:.0}")).unwrap_or_default(),
            trace.rate_per_h.map(|r| format!("{r:.0}")).unwrap_or_default(),
        )?;
    }
    std::fs::write(dir.join("labels.csv"), labels).context("writing corpus/labels.csv")?;
    write_periodic_examples(&dir.join("examples"))?;
    println!("wrote {} traces to {} and the periodic examples to its examples/", traces.len(), dir.display());
    Ok(())
}

/// The periodic job of docs/detection.md, for `memwatch replay`: five
/// cycles of 20 minutes on a 1 GiB limit (build 300 MiB over 12 minutes on
/// 200 MiB, free it all, rest 8 minutes), returning to its baseline
/// (periodic_job.csv) or keeping 5% of the limit each cycle
/// (periodic_job_rising.csv).
fn write_periodic_examples(dir: &Path) -> anyhow::Result<()> {
    const LIMIT: f64 = 1024.0 * MB;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, kept) in [("periodic_job", 0.0), ("periodic_job_rising", 0.05 * LIMIT)] {
        let mut rng = Rng(CORPUS_SEED);
        let mut out = String::from("timestamp_s,key,rss_bytes,limit_bytes\n");
        for t in (0..5 * 240).map(|i| f64::from(i) * STEP_S) {
            let (cycle, phase) = ((t / 1200.0).floor(), t % 1200.0);
            // What a cycle keeps stays once it has freed the rest.
            let job = if phase < 720.0 { 300.0 * MB * phase / 720.0 } else { kept };
            let usage = 200.0 * MB + cycle * kept + job + 2.0 * MB * rng.normal();
            writeln!(out, "{t:.0},{name},{},{LIMIT:.0}", ((usage / PAGE).round() * PAGE) as u64)?;
        }
        let path = dir.join(format!("{name}.csv"));
        std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn write_trace(dir: &Path, trace: &Trace) -> anyhow::Result<()> {
    // limit_bytes is left empty: the corpus's config.toml sets the limit, so
    // the rows stay short and the limit can be changed without regenerating.
    let mut out = String::with_capacity(SAMPLES * 28);
    out.push_str("timestamp_s,key,rss_bytes,limit_bytes\n");
    for (t, usage) in times().zip(&trace.usage) {
        // RSS is counted in pages.
        let bytes = ((usage.max(0.0) / PAGE).round() * PAGE) as u64;
        writeln!(out, "{t:.0},{},{bytes},", trace.name)?;
    }
    let path = dir.join(format!("{}.csv", trace.name));
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))
}
