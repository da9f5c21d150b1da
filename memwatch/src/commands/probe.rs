//! `memwatch probe`: watch for a while, print per-process changes.
use std::{io::Write as _, time::Duration};

use anyhow::Context as _;

use crate::{
    cli::ProbeArgs, config::DEFAULT_LARGE_MAPPING_BYTES, model::delta::ProcessDelta, shutdown,
    sources::collect::Collector, sources::ebpf::ProbeOptions, sources::procfs::ProcFs,
};

/// Exits are drained from the kernel this often during the window, so a burst
/// of short-lived processes cannot overflow the ring buffer.
const DRAIN_EVERY: Duration = Duration::from_secs(1);

pub async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let options = ProbeOptions {
        large_mapping_bytes: DEFAULT_LARGE_MAPPING_BYTES,
        syscall_tracepoints: args.syscall_tracepoints,
    };
    let (mut collector, fallback) =
        Collector::open(args.mode, ProcFs::default(), options).context("attaching the eBPF probes (--mode ebpf)")?;
    if let Some(reason) = fallback {
        tracing::warn!("eBPF probes not used: {reason}; falling back to /proc polling (mode=procfs)");
    }
    let base = collector.snapshot().context("first reading")?;
    // The window starts here (tests wait for this line before they act).
    tracing::info!(mode = %collector.mode(), seconds = args.duration, "watching");
    let mut exited = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.duration);
    let stop = shutdown::requested();
    tokio::pin!(stop);
    let mut last = base.clone();
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        let wake = (now + DRAIN_EVERY).min(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            signal = &mut stop => {
                tracing::info!("{} received, reporting what was seen so far", signal.unwrap_or("signal"));
                break;
            }
        }
        last = collector.snapshot().context("reading the probes")?;
        exited.append(&mut last.exited);
    }
    let mode = collector.mode();
    let dropped = last.dropped_total();
    drop(collector); // detach before printing

    let rows: Vec<ProcessDelta> = crate::model::delta::diff(&base.processes, &last.processes, &exited)
        .into_iter()
        .filter(|row| match args.pid {
            Some(pid) => row.id.pid == pid,
            None => row.is_active(),
        })
        .collect();
    if let Some(pid) = args.pid
        && rows.is_empty()
    {
        anyhow::bail!("no process with pid {pid} was seen during the window");
    }
    let output = if args.json {
        crate::view::probe_report::json_lines(&rows, mode)
    } else {
        crate::view::probe_report::table(&rows, mode)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(output.as_bytes()).context("writing to stdout")?;
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "the probes dropped some updates (maps full or ring buffer overrun); figures may be low"
        );
    }
    Ok(())
}
