//! `memwatch record`: a trace (format 2) of the live system, for `memwatch
//! replay` to judge later (with another policy, say). It runs the same
//! pipeline as the daemon, acting on nothing, so it reads and records what
//! the daemon would have read.
use std::{
    fs::File,
    io::BufWriter,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use tokio::time::MissedTickBehavior;

use crate::{
    cli::RecordArgs,
    config::{self, Config},
    engine::{EngineOptions, planner::assume_success},
    pipeline::{Pipeline, facts::SystemFacts},
    shutdown,
    sources::{collect::Collector, meminfo, procfs::ProcFs},
    trace::v2::{self, Recorder, RecordingFacts},
};

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::parse_with_env("", &config::env_from_process())
            .map_err(|errors| config::ConfigError::Invalid { path: "environment".into(), errors })?,
    };
    let (mut collector, fallback) =
        Collector::open(args.mode.unwrap_or(config.daemon.mode), ProcFs::default(), config.daemon.probe_options())
            .context("attaching the eBPF probes (mode = \"ebpf\")")?;
    if let Some(reason) = &fallback {
        tracing::warn!("eBPF probes not used: {reason}; falling back to /proc polling (mode=procfs)");
    }
    let host = meminfo::read(ProcFs::default().root()).context("reading MemTotal from /proc/meminfo")?;
    let temp = Temp::beside(&args.out)?;
    let file = File::create(&temp.0).with_context(|| format!("creating {}", temp.0.display()))?;
    let header = v2::Header {
        version: v2::VERSION,
        host_memory: host.total,
        daemon_pid: std::process::id(),
        interval_s: args.interval,
    };
    let mut recorder = Recorder::new(Box::new(BufWriter::new(file)), header).context("writing the trace")?;
    let mut pipeline = Pipeline::new(config, host.total, EngineOptions::default(), std::process::id());
    let mut facts = SystemFacts::default();

    let interval = Duration::from_secs_f64(args.interval);
    let rounds = (args.duration as f64 / args.interval).floor().max(1.0) as u64;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stop = shutdown::requested();
    tokio::pin!(stop);
    for _ in 0..rounds {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => {
                tracing::warn!("stopped early: writing what was recorded");
                break;
            }
        }
        let snapshot = collector.snapshot().context("reading the targets")?;
        let t = crate::daemon::unix_seconds();
        let mut recording = RecordingFacts::new(&mut facts);
        let tick = pipeline.tick(t, &snapshot.processes, &mut recording);
        let answers = recording.answers;
        // Nothing is applied: the planner goes on as if all of it worked,
        // so it asks next what it would ask live.
        pipeline.settle(&assume_success(&tick.decisions));
        recorder.tick(t, &snapshot.processes, answers).context("writing the trace")?;
    }
    drop(collector);
    recorder.finish().context("writing the trace")?;
    temp.commit(&args.out)
}

/// A temporary file beside the trace: renamed over it once complete, so a
/// reader never sees half a trace, and removed if recording fails.
struct Temp(PathBuf);

impl Temp {
    fn beside(path: &Path) -> anyhow::Result<Self> {
        // Fail now rather than after the whole recording.
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        anyhow::ensure!(dir.is_dir(), "cannot write {}: {} is not a directory", path.display(), dir.display());
        let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?;
        Ok(Self(dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()))))
    }

    fn commit(self, path: &Path) -> anyhow::Result<()> {
        let result = File::open(&self.0).and_then(|f| f.sync_all()).and_then(|()| std::fs::rename(&self.0, path));
        result.with_context(|| format!("writing {}", path.display()))?;
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn a_committed_file_replaces_the_old_one_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        std::fs::write(&path, "old").unwrap();
        let temp = Temp::beside(&path).unwrap();
        File::create(&temp.0).unwrap().write_all(b"new contents").unwrap();
        temp.commit(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new contents");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["trace.jsonl"]);
        assert!(Temp::beside(&dir.path().join("missing/trace.jsonl")).is_err());
        // Dropped without commit (a failed recording): nothing left behind.
        let temp = Temp::beside(&path).unwrap();
        File::create(&temp.0).unwrap();
        drop(temp);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
