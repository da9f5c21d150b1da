//! `memwatch run`: the daemon in the foreground.
use std::{collections::BTreeMap, time::Duration};

use anyhow::Context as _;
use tokio::time::MissedTickBehavior;

use crate::{
    actions::{self, Executor, Member, Readiness, Tick, control::ExecutorControl, effects::PidfdSignaller},
    bytes::{human_bytes, human_change},
    cache::CacheLimits,
    cli::RunArgs,
    config::Config,
    daemon::observe::Observability,
    engine::{EngineOptions, Event, EventKind, Level},
    model::sample::Snapshot,
    pipeline::monitor::Monitor,
    shutdown,
    sources::cgroupfs::Limits,
    sources::collect::Collector,
    sources::procfs::ProcFs,
};

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let mut stop = shutdown::install().context("installing signal handlers")?;
    let mode_request = args.mode.unwrap_or(config.daemon.mode);
    let (mut collector, fallback) = Collector::open(mode_request, ProcFs::default(), config.daemon.large_mapping_bytes)
        .context("attaching the eBPF probes (mode = \"ebpf\")")?;
    if let Some(reason) = &fallback {
        tracing::warn!("eBPF probes not used: {reason}; falling back to /proc polling (mode=procfs)");
    }
    let interval = config.daemon.interval();
    tracing::info!(
        mode = %collector.mode(),
        probes = %if collector.attached().is_empty() { "none".to_owned() } else { collector.attached().join(",") },
        interval = ?interval,
        config = %args.config.display(),
        "memwatch started"
    );

    let limits = Limits::default();
    let host_total = limits.host_total().context("reading MemTotal from /proc/meminfo")?;
    let mut monitor = Monitor::new(config.clone(), host_total, EngineOptions::default());
    let mut events = Vec::new();
    // Restores what a crashed predecessor left throttled before anything else.
    // The executor holds the flag; GET /health reads a clone of this handle.
    let readiness = Readiness::new();
    let mut executor = actions::start(&config.actions, readiness.clone()).context("starting the action executor")?;

    let cache_limits =
        CacheLimits { max_entries: config.cache.max_size, ttl: Duration::from_secs_f64(config.cache.ttl_secs) };
    let mut observe = Observability::start(&config, cache_limits, readiness.clone()).await?;
    let caches = observe.caches();
    collector.set_info_cache(observe.info_cache());
    observe.event(format!("monitoring started (mode {})", collector.mode()));

    let mut previous = collector.snapshot().context("first reading")?;
    let mut judged = judge(&mut monitor, &limits, &previous, &mut events, &mut executor);
    observe.record_actions(executor.take_performed());
    observe.update_judged(&previous, &previous, &judged.targets, &monitor, &limits, &events);
    events.clear();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    // A slow round (a huge /proc) delays the next one instead of bunching them.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failures = RateLimited::new(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            signal = stop.requested() => {
                tracing::info!("{signal} received, stopping");
                break;
            }
            // Cleanup / cache requests from the API, answered between
            // readings by the executor, borrowed for the one request.
            Some(request) = observe.next_request() => {
                let observed = judged.observed(monitor.config());
                let tick = Tick { t: unix_seconds(), started: std::time::Instant::now() };
                let mut control = ExecutorControl { executor: &mut executor, observed: &observed, caches: &caches, tick };
                observe.serve(request, &mut control);
                observe.record_actions(executor.take_performed());
                continue;
            }
        }
        match collector.snapshot() {
            Ok(snapshot) => {
                log_summary(&previous, &snapshot, config.daemon.summary_top);
                judged = judge(&mut monitor, &limits, &snapshot, &mut events, &mut executor);
                observe.settle_cleanups(|key, sent_at| executor.measured(key, sent_at));
                observe.record_actions(executor.take_performed());
                observe.update_judged(&previous, &snapshot, &judged.targets, &monitor, &limits, &events);
                events.clear();
                previous = snapshot;
            }
            // One bad round (a /proc race, a transient map error) must not
            // stop the monitor; say so, at most once a minute.
            Err(e) => failures.warn(|| format!("reading failed, will retry next interval: {e:#}")),
        }
    }
    executor.shutdown(unix_seconds());
    observe.stop().await;
    drop(collector);
    tracing::info!("limits restored, probes detached, memwatch stopped");
    Ok(())
}

/// One interval's targets, as the engine and the executor saw them: kept
/// until the next reading for the view and for requested cleanups.
struct Judged {
    targets: Vec<crate::model::targets::Target>,
    /// `limits[i]` is target i's resolved limit.
    limits: Vec<u64>,
    members: BTreeMap<String, Vec<Member>>,
}

impl Judged {
    fn observed<'a>(&'a self, config: &'a Config) -> Vec<actions::Observed<'a>> {
        actions::members::observed(config, &self.targets, &self.limits, &self.members)
    }
}

/// Feeds this interval's targets to the engine, acts on what it decided, and
/// logs it. The targets and `events` stay for the status view; the caller
/// clears `events`.
fn judge(
    monitor: &mut Monitor,
    limits: &Limits,
    snapshot: &Snapshot,
    events: &mut Vec<Event>,
    executor: &mut Executor<PidfdSignaller>,
) -> Judged {
    let tick = Tick { t: unix_seconds(), started: std::time::Instant::now() };
    let t = tick.t;
    let targets = crate::model::targets::build(&snapshot.processes, monitor.config());
    let mut resolved = Vec::with_capacity(targets.len());
    for target in &targets {
        let observed_limit = target.cgroup.as_deref().and_then(|c| limits.cgroup_limit(c));
        monitor.observe(t, &target.key, target.policy, target.usage_bytes, observed_limit, events);
        resolved.push(monitor.limit_bytes(target.policy, observed_limit));
    }

    // Targets are sorted by key: a binary search keeps this linear-ish.
    monitor.retain(|key| targets.binary_search_by(|t| t.key.as_str().cmp(key)).is_ok());
    // Act before logging: the time from the reading to the action is what
    // an emergency is judged by (the executor logs each action itself).
    let members = actions::members::group(&snapshot.processes, &targets);
    executor.tick(tick, events, &actions::members::observed(monitor.config(), &targets, &resolved, &members));
    for event in events.iter() {
        let policy = targets
            .binary_search_by(|t| t.key.as_str().cmp(&event.key))
            .ok()
            .and_then(|i| targets[i].policy)
            .map_or("defaults", |p| monitor.config().policies[p].name.as_str());
        log_event(event, policy);
    }
    Judged { targets, limits: resolved, members }
}

fn log_event(event: &Event, policy: &str) {
    match &event.kind {
        EventKind::State { from, to, usage_bytes, limit_bytes } => {
            let usage = human_bytes(*usage_bytes);
            let limit = human_bytes(*limit_bytes);
            // Rising into critical or emergency is what an operator must see.
            if to > from && *to >= Level::Critical {
                tracing::warn!(target_key = %event.key, %policy, %from, %to, %usage, %limit, "memory level raised");
            } else {
                tracing::info!(target_key = %event.key, %policy, %from, %to, %usage, %limit, "memory level changed");
            }
        }
        EventKind::LeakDetected(v) => tracing::warn!(
            target_key = %event.key,
            %policy,
            rate = %format!("{}/h", human_bytes((v.slope_bytes_per_s * 3600.0) as u64)),
            confidence = %format!("{:.4}", v.confidence),
            time_to_limit = %v.time_to_limit_s.map_or("never".to_owned(), |s| format!("{:.0}s", s)),
            window = %format!("{:.0}s", v.window_s),
            "memory leak detected"
        ),
        EventKind::LeakEnded { leaked_for_secs } => {
            tracing::info!(target_key = %event.key, %policy, leaked_for = %format!("{leaked_for_secs:.0}s"), "memory leak ended")
        }
        EventKind::SeedRule { .. } => {}
    }
}

fn unix_seconds() -> f64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.as_millis() as f64 / 1000.0
}

/// One line per interval: how many processes, who grew most.
fn log_summary(previous: &Snapshot, now: &Snapshot, top: usize) {
    let rows = crate::model::delta::diff(&previous.processes, &now.processes, &now.exited);
    let growers: Vec<String> = rows
        .iter()
        .filter(|r| r.rss_delta() > 0)
        .take(top)
        .map(|r| format!("{}/{} {}", r.id.pid, r.info.comm, human_change(r.rss_delta())))
        .collect();
    tracing::info!(
        mode = %now.mode,
        tracked = now.processes.len(),
        exited = now.exited.len(),
        dropped = now.dropped_total(),
        top_growers = %if growers.is_empty() { "none".to_owned() } else { growers.join(", ") },
        "interval"
    );
}

/// Logs a recurring failure at most once per period, counting the rest.
struct RateLimited {
    period: Duration,
    last: Option<tokio::time::Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn new(period: Duration) -> Self {
        Self { period, last: None, suppressed: 0 }
    }

    fn warn(&mut self, message: impl FnOnce() -> String) {
        let now = tokio::time::Instant::now();
        if self.last.is_some_and(|last| now - last < self.period) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(suppressed = self.suppressed, "{}", message());
        self.last = Some(now);
        self.suppressed = 0;
    }
}
