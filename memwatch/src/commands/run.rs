//! `memwatch run`: the daemon in the foreground.
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::MissedTickBehavior;

use crate::{
    cli::RunArgs,
    collect::Collector,
    config::Config,
    delta,
    procinfo::ProcFs,
    cache::CacheLimits,
    commands::observe::Observability,
    report::human_change,
    sample::Snapshot,
    shutdown,
};

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let mode_request = args.mode.unwrap_or(config.daemon.mode);
    let (mut collector, fallback) =
        Collector::open(mode_request, ProcFs::default(), config.daemon.large_mapping_bytes)
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

    // --- issue 5: view, exporters, API ---
    // The engine branch's `[cache]` table (CACHE_MAX_SIZE, CACHE_TTL) feeds
    // these limits once merged; until then the seed's defaults.
    let mut observe = Observability::start(&config, CacheLimits::default()).await?;
    collector.set_info_cache(observe.info_cache());
    observe.event(format!("monitoring started (mode {})", collector.mode()));
    // --- end issue 5 ---

    let mut previous = collector.snapshot().context("first reading")?;
    observe.update(&previous, &previous);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    // A slow round (a huge /proc) delays the next one instead of bunching them.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stop = shutdown::requested();
    tokio::pin!(stop);
    let mut failures = RateLimited::new(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            signal = &mut stop => {
                tracing::info!("{} received, stopping", signal.context("installing signal handlers")?);
                break;
            }
            // issue 5: cleanup / cache requests from the API, answered between readings.
            Some(request) = observe.next_request() => {
                observe.serve(request);
                continue;
            }
        }
        match collector.snapshot() {
            Ok(snapshot) => {
                log_summary(&previous, &snapshot, config.daemon.summary_top);
                observe.update(&previous, &snapshot); // issue 5
                previous = snapshot;
            }
            // One bad round (a /proc race, a transient map error) must not
            // stop the monitor; say so, at most once a minute.
            Err(e) => failures.warn(|| format!("reading failed, will retry next interval: {e:#}")),
        }
    }
    observe.stop().await; // issue 5
    drop(collector);
    tracing::info!("probes detached, memwatch stopped");
    Ok(())
}

/// One line per interval: how many processes, who grew most.
fn log_summary(previous: &Snapshot, now: &Snapshot, top: usize) {
    let rows = delta::diff(&previous.processes, &now.processes, &now.exited);
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

