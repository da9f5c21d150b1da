//! `memwatch record`: write a trace of the live system's targets, for
//! `memwatch replay` to judge later (with another policy, say).
use std::{path::Path, time::Duration};

use anyhow::Context as _;
use tokio::time::MissedTickBehavior;

use crate::{
    cli::RecordArgs,
    config::{self, Config},
    shutdown,
    sources::cgroupfs::Limits,
    sources::collect::Collector,
    sources::procfs::ProcFs,
    trace::{self, HEADER},
};

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::parse_with_env("", &config::env_from_process())
            .map_err(|errors| config::ConfigError::Invalid { path: "environment".into(), errors })?,
    };
    let (mut collector, fallback) =
        Collector::open(args.mode.unwrap_or(config.daemon.mode), ProcFs::default(), config.daemon.large_mapping_bytes)
            .context("attaching the eBPF probes (mode = \"ebpf\")")?;
    if let Some(reason) = &fallback {
        tracing::warn!("eBPF probes not used: {reason}; falling back to /proc polling (mode=procfs)");
    }
    // Fail now rather than after the whole recording.
    let dir = args.out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    anyhow::ensure!(dir.is_dir(), "cannot write {}: {} is not a directory", args.out.display(), dir.display());
    let limits = Limits::default();
    let interval = Duration::from_secs_f64(args.interval);
    let rounds = (args.duration as f64 / args.interval).floor().max(1.0) as u64;
    let mut out = format!("{HEADER}\n");
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
        let t = unix_seconds();
        for target in crate::model::targets::build(&snapshot.processes, &config) {
            // The observed limit only (the cgroup's), not the policy's, so a
            // replay with another policy can apply its own.
            let limit = target.cgroup.as_deref().and_then(|c| limits.cgroup_limit(c));
            trace::write_row(&mut out, t, &target.key, target.usage_bytes, limit);
        }
    }
    drop(collector);
    write_atomically(&args.out, out.as_bytes())
}

/// Seconds since the epoch, to the millisecond: traces from different
/// hosts or runs line up on a common clock.
fn unix_seconds() -> f64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (now.as_millis() as f64) / 1000.0
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: a reader never sees half a trace, and a crash leaves no torn file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?;
    let temp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = std::fs::write(&temp, bytes)
        .and_then(|()| std::fs::File::open(&temp)?.sync_all())
        .and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_the_file_whole_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.csv");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new contents").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new contents");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["trace.csv"]);
        assert!(write_atomically(&dir.path().join("missing/trace.csv"), b"x").is_err());
    }
}
