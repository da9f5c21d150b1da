//! Tracepoints are attached by id, read from tracefs; a fresh host may not
//! have tracefs mounted, so memwatch mounts it where the kernel expects it.
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, mount};

/// Where tracefs lives on current kernels.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// Where older set-ups reach it, through debugfs.
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

fn has_events(dir: &Path) -> bool {
    dir.join("events").is_dir()
}

/// The tracefs `events` folder, mounting tracefs first if needed. `Err` is a
/// sentence saying what failed and what to do.
pub fn ensure_mounted() -> Result<PathBuf, String> {
    for dir in [TRACEFS, DEBUGFS_TRACING].map(Path::new) {
        if has_events(dir) {
            return Ok(dir.join("events"));
        }
    }
    let target = Path::new(TRACEFS);
    if !target.is_dir() {
        return Err(format!("tracefs is not mounted and {TRACEFS} does not exist (kernel without CONFIG_TRACING?)"));
    }
    mount("nodev", target, "tracefs", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC, None).map_err(
        |e| {
            format!(
                "tracefs is not mounted at {TRACEFS} and mounting it failed ({e}); mount it with \
                 `mount -t tracefs nodev {TRACEFS}` (or add it to /etc/fstab) and start memwatch again"
            )
        },
    )?;
    tracing::info!(path = TRACEFS, "mounted tracefs");
    if has_events(target) {
        Ok(target.join("events"))
    } else {
        Err(format!("mounted tracefs at {TRACEFS} but it has no events/ folder"))
    }
}
