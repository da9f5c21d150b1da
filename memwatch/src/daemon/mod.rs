//! The daemon (`memwatch run`): every interval one reading goes through the
//! pipeline, the executor applies what the planner decided, and the view,
//! exporters and API show it. Control requests from the API are answered
//! between readings by the same pipeline and executor.
mod footprint;
pub mod observe;
mod reload;
mod requests;
mod round;
pub use round::unix_seconds;
mod service_manager;
#[cfg(feature = "fault-injection")]
mod stall;
mod summary;

use std::{
    fs::File,
    io::BufWriter,
    path::PathBuf,
    time::{Duration, Instant},
};

use tokio::{sync::mpsc::UnboundedReceiver, time::MissedTickBehavior};

use crate::{
    actions::{self, Executor, PassDone, PidfdSignaller, Readiness, Signaller, passes, sys::ActError},
    config::Config,
    engine::{EngineOptions, planner::Performed},
    model::sample::{ProcessSample, Snapshot},
    pipeline::{Facts, Pipeline, Tick, facts::SystemFacts},
    shutdown,
    sources::{
        collect::{CollectError, Collector, ModeRequest},
        ebpf::ProbeError,
        meminfo,
        procfs::ProcFs,
    },
    trace::v2::{self, Recorder, RecordingFacts},
};
use observe::{Observability, ObserveError};
use requests::Responder;
use service_manager::ServiceManager;
use summary::{RateLimited, log_summary};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("attaching the eBPF probes (mode = \"ebpf\"): {0}")]
    Probes(#[from] ProbeError),
    #[error("reading MemTotal from /proc/meminfo: {0}")]
    HostMemory(std::io::Error),
    #[error("starting the action executor: {0}")]
    Executor(#[from] ActError),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error("first reading: {0}")]
    FirstReading(CollectError),
    #[error("recording to {path}: {source}")]
    Record { path: PathBuf, source: std::io::Error },
}

/// How to run, beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Overrides the config's `daemon.mode`.
    pub mode: Option<ModeRequest>,
    /// Writes every pipeline input to this trace (format 2) as it goes.
    pub record: Option<PathBuf>,
    /// Shown in the banner.
    pub config_path: PathBuf,
}

pub async fn run(config: Config, options: Options) -> Result<(), DaemonError> {
    let mut signals = shutdown::install().map_err(DaemonError::Signals)?;
    let mut service = ServiceManager::from_env();
    let mode_request = options.mode.unwrap_or(config.daemon.mode);
    let (mut collector, fallback) = Collector::open(mode_request, ProcFs::default(), config.daemon.probe_options())?;
    if let Some(reason) = &fallback {
        tracing::warn!("eBPF probes not used: {reason}; falling back to /proc polling (mode=procfs)");
    }
    let interval = config.daemon.interval();
    tracing::info!(
        mode = %collector.mode(),
        probes = %if collector.attached().is_empty() { "none".to_owned() } else { collector.attached().join(",") },
        interval = ?interval,
        config = %options.config_path.display(),
        "memwatch started"
    );
    for warning in crate::config::signal_warnings(&config) {
        tracing::warn!("{warning}");
    }

    let host = meminfo::read(ProcFs::default().root()).map_err(DaemonError::HostMemory)?;
    let recorder = match &options.record {
        Some(path) => Some(start_recording(path, host.total, config.daemon.interval_secs)?),
        None => None,
    };
    // Restores what a crashed predecessor left throttled before anything else.
    // The executor holds the flag; GET /health reads a clone of this handle.
    let readiness = Readiness::new();
    let mut executor = actions::start(&config.actions, readiness.clone())?;
    let mut passes_done = executor.take_pass_results().expect("a new executor's pass results are not taken yet");
    let mut observe = Observability::start(&config, readiness).await?;
    collector.set_info_cache(observe.info_cache());
    observe.event(format!("monitoring started (mode {})", collector.mode()));

    let mut summary_top = config.daemon.summary_top;
    let pipeline = Pipeline::new(config, host.total, EngineOptions::default(), std::process::id());
    let mut daemon = Daemon { pipeline, executor, facts: SystemFacts::default(), recorder, capped: false };
    let mut previous = collector.snapshot().map_err(DaemonError::FirstReading)?;
    daemon.on_reading(&previous, &previous, &mut observe);
    footprint::shed_start_up_memory();
    service.ready(daemon.status_line(&collector));

    let mut ticker = ticker(interval);
    // The pings come from this loop, between its readings: a loop that
    // stalls (a hung read, a deadlock) stops them, and systemd restarts it.
    let mut watchdog = service.watchdog_every().map(self::ticker);
    #[cfg(feature = "fault-injection")]
    let stall = stall::Stall::from_env();
    let mut failures = RateLimited::new(Duration::from_secs(60));
    loop {
        let answer_due = observe.next_answer_deadline();
        tokio::select! {
            _ = ticker.tick() => {}
            // A cleanup answer whose re-measure no reading brings in time
            // (an interval longer than the answer may wait): sent as it is.
            () = until(answer_due) => {
                observe.settle_cleanups(|key, sent_at| daemon.pipeline.planner().measured(key, sent_at));
                continue;
            }
            () = tick_if_any(&mut watchdog) => {
                service.watchdog();
                continue;
            }
            signal = signals.next() => match signal {
                shutdown::Request::Stop(name) => {
                    tracing::info!("{name} received, stopping");
                    break;
                }
                shutdown::Request::Reload => {
                    service.reloading();
                    let running_interval = daemon.pipeline.config().daemon.interval();
                    if let Some(config) = daemon.reload(&options.config_path, &mut observe) {
                        summary_top = config.daemon.summary_top;
                        if let Some(cache) = observe.reconfigure(&config) {
                            collector.set_info_cache(cache);
                        }
                        if config.daemon.interval() != running_interval {
                            ticker = self::ticker(config.daemon.interval());
                        }
                        daemon.pipeline.set_config(config);
                    }
                    service.ready(daemon.status_line(&collector));
                    // The new config is read with the next reading, on the
                    // ticker: a reading taken now would count towards the
                    // levels' hysteresis, which counts readings, and a few
                    // reloads in a row would end an episode in a second.
                    // Until then no request acts (`targets_fit_to_act_on`).
                    continue;
                }
            },
            // A cleanup pass applied off the loop is done: its outcomes.
            Some(done) = passes_done.recv() => {
                let performed = daemon.pass_done(done);
                observe.record_performed(&performed);
                continue;
            }
            // Cleanup / cache requests from the API, answered between readings.
            Some(request) = observe.next_request() => {
                let caches = observe.caches();
                let mut responder = Responder::new(&mut daemon, &caches, round::unix_seconds());
                observe.serve(request, &mut responder);
                let performed = responder.into_performed();
                observe.record_performed(&performed);
                continue;
            }
        }
        match collector.snapshot() {
            Ok(snapshot) => {
                log_summary(&previous, &snapshot, summary_top);
                daemon.on_reading(&previous, &snapshot, &mut observe);
                previous = snapshot;
                service.status(daemon.status_line(&collector));
                footprint::return_freed_heap();
            }
            // One bad round (a /proc race, a transient map error) must not
            // stop the monitor; say so, at most once a minute.
            Err(e) => failures.warn(|| format!("reading failed, will retry next interval: {e}")),
        }
        #[cfg(feature = "fault-injection")]
        stall.stall_if_due();
    }
    service.stopping();
    daemon.shutdown(&mut passes_done);
    observe.stop().await;
    drop(collector);
    tracing::info!("limits restored, probes detached, memwatch stopped");
    Ok(())
}

/// A reading every `interval`, the first one interval from now. A slow round
/// (a huge /proc) delays the next one instead of bunching them.
fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// Resolves at `ticker`'s next tick; never, without one.
async fn tick_if_any(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves at `deadline`; never, without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn start_recording(path: &std::path::Path, host_memory: u64, interval_s: f64) -> Result<Recorder, DaemonError> {
    let error = |source| DaemonError::Record { path: path.to_path_buf(), source };
    let file = File::create(path).map_err(error)?;
    let header = v2::Header { version: v2::VERSION, host_memory, daemon_pid: std::process::id(), interval_s };
    Recorder::new(Box::new(BufWriter::new(file)), header).map_err(error)
}

/// What the loop owns between readings: the pipeline (engine and planner),
/// the executor, the system it reads, and the recording, if any. Generic
/// over the signaller and the facts for tests (a fake and fixtures).
pub(crate) struct Daemon<S = PidfdSignaller, F = SystemFacts> {
    pipeline: Pipeline,
    executor: Executor<S>,
    facts: F,
    recorder: Option<Recorder>,
    /// `daemon.max_targets` was reached (said once).
    capped: bool,
}

impl<S: Signaller, F: Facts> Daemon<S, F> {
    /// What `systemctl status` shows: how many targets, the worst level.
    fn status_line(&self, collector: &Collector) -> String {
        let targets = self.pipeline.targets();
        let worst = targets.iter().map(|t| t.level).max().unwrap_or_default();
        service_manager::status_line(collector.mode(), targets.len(), worst)
    }

    /// One reading: decide, act at once (the time from the reading to the
    /// action is what an emergency is judged by), then log and show it.
    fn on_reading(&mut self, previous: &Snapshot, now: &Snapshot, observe: &mut Observability) {
        let (tick, performed) = self.read(round::unix_seconds(), Instant::now(), &now.processes);
        observe.settle_cleanups(|key, sent_at| self.pipeline.planner().measured(key, sent_at));
        observe.record_performed(&performed);
        observe.update(previous, now, self.pipeline.targets(), &tick.events);
    }

    /// The reading of `processes` taken at `t` (`started`): through the
    /// pipeline, applied, recorded, logged.
    fn read(&mut self, t: f64, started: Instant, processes: &[ProcessSample]) -> (Tick, Vec<Performed>) {
        let (tick, answers) = match self.recorder {
            Some(_) => {
                let mut recording = RecordingFacts::new(&mut self.facts);
                let tick = self.pipeline.tick(t, processes, &mut recording);
                (tick, Some(recording.answers))
            }
            None => (self.pipeline.tick(t, processes, &mut self.facts), None),
        };
        let judged = started.elapsed();
        let (applied, performed) = round::apply(&tick.decisions, started, &mut self.pipeline, &mut self.executor);
        if !tick.decisions.is_empty() {
            // Where the time from a reading to its actions goes (the budget
            // is 50 ms): at debug, for `MEMWATCH_LOG=memwatch::daemon=debug`.
            tracing::debug!(
                decisions = tick.decisions.len(),
                judged_ms = judged.as_secs_f64() * 1e3,
                acted_ms = (started.elapsed() - judged).as_secs_f64() * 1e3,
                "reading judged and acted on"
            );
        }
        if let (Some(recorder), Some(answers)) = (&mut self.recorder, answers) {
            round::record(recorder.tick(t, processes, answers).and_then(|()| recorder.applied(&applied)));
        }
        round::log_events(&tick.events, &self.pipeline);
        if tick.folded > 0 && !std::mem::replace(&mut self.capped, true) {
            tracing::warn!(
                "more targets than daemon.max_targets ({}): {} beyond it are folded into their cgroups' targets \
                 (or left unjudged); said once",
                self.pipeline.config().daemon.max_targets,
                tick.folded
            );
        }
        (tick, performed)
    }

    /// A pass applied off the loop is done: its records get the outcomes,
    /// logged and recorded like any round's.
    fn pass_done(&mut self, done: PassDone) -> Vec<Performed> {
        let t = round::unix_seconds();
        let performed = self.pipeline.pass_done(t, done.pass, &done.results);
        round::log_performed(&performed);
        if let Some(recorder) = &mut self.recorder {
            round::record(recorder.done(t, done.pass, &done.results));
        }
        performed
    }

    /// SIGHUP: the config at `path` again. Returns the config to run with
    /// when it is good; a bad one is logged with every error and the running
    /// one stays. Either way `memwatch status` shows the outcome.
    fn reload(&mut self, path: &std::path::Path, observe: &mut Observability) -> Option<Config> {
        match reload::reload(path, self.pipeline.config()) {
            reload::Reloaded::Rejected { errors } => {
                tracing::error!(
                    "config reload rejected, still running on the previous config: {}: {} error(s)",
                    path.display(),
                    errors.len()
                );
                for error in &errors {
                    tracing::error!("  {error}");
                }
                observe.record_reload(errors, Vec::new());
                None
            }
            reload::Reloaded::Applied { config, restart_needed } => {
                for key in &restart_needed {
                    tracing::warn!("config reload: {key} changed; the running value stays until memwatch restarts");
                }
                tracing::info!(config = %path.display(), "config reloaded");
                for warning in crate::config::signal_warnings(&config) {
                    tracing::warn!("{warning}");
                }
                observe.record_reload(Vec::new(), restart_needed.iter().map(|k| (*k).to_owned()).collect());
                Some(*config)
            }
        }
    }

    /// Clean exit: passes under way get a moment to finish (their outcomes
    /// belong in the incident records), then every open episode ends and
    /// what it lowered is restored.
    fn shutdown(&mut self, passes_done: &mut UnboundedReceiver<PassDone>) {
        self.executor.stop_passes();
        let deadline = Instant::now() + passes::EXIT_WAIT;
        while self.pipeline.planner().passes_running() > 0 && Instant::now() < deadline {
            match passes_done.try_recv() {
                Ok(done) => drop(self.pass_done(done)),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        let (t, started) = (round::unix_seconds(), Instant::now());
        let decisions = self.pipeline.planner_mut().shutdown(t);
        let (applied, _) = round::apply(&decisions, started, &mut self.pipeline, &mut self.executor);
        self.executor.shutdown();
        if let Some(mut recorder) = self.recorder.take() {
            round::record(
                recorder.shutdown(t).and_then(|()| recorder.applied(&applied)).and_then(|()| recorder.finish()),
            );
        }
    }
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod requests_tests;
