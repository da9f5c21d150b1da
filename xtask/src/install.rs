//! `cargo xtask install` / `uninstall`: the release daemon as a systemd
//! service on this host.
//!
//! | file | mode | on uninstall |
//! |---|---|---|
//! | `<prefix>/bin/memwatch` | 0755 | removed |
//! | `/etc/systemd/system/memwatch.service` (ExecStart= names the binary) | 0644 | removed |
//! | `/etc/memwatch/config.toml` (the repo's, never over an existing one) | 0644 | kept |
//! | `/var/lib/memwatch/` (state file, incident log) | 0750 | removed if empty, else kept |
//!
//! The socket directory is the unit's `RuntimeDirectory=`: systemd makes it.
//! `--root` stages the files under another directory (as a package build
//! does) and leaves systemd alone.
use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{build, shell};

/// The unit as shipped: its ExecStart= names the Debian package's binary.
pub const UNIT_SOURCE: &str = "packaging/systemd/memwatch.service";
pub const UNIT_NAME: &str = "memwatch.service";
const PACKAGED_BINARY: &str = "/usr/bin/memwatch";
const CONFIG_DIR: &str = "etc/memwatch";
const UNIT_DIR: &str = "etc/systemd/system";
const STATE_DIR: &str = "var/lib/memwatch";

/// Where the files go.
pub struct Layout {
    /// Staging root ("/" for this host).
    pub root: PathBuf,
    /// Install prefix as the running system sees it ("/usr/local").
    pub prefix: PathBuf,
}

impl Layout {
    fn binary(&self) -> PathBuf {
        self.prefix.join("bin/memwatch")
    }

    fn under_root(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    fn unit(&self) -> PathBuf {
        self.root.join(UNIT_DIR).join(UNIT_NAME)
    }

    fn config(&self) -> PathBuf {
        self.root.join(CONFIG_DIR).join("config.toml")
    }

    fn live(&self) -> bool {
        self.root == Path::new("/")
    }
}

pub fn install(layout: &Layout) -> anyhow::Result<()> {
    if layout.live() && !shell::is_root() {
        bail!("installing a system service: run it as root (or stage it with --root DIR)");
    }
    build::release()?;
    let built = shell::workspace_root().join("target/release/memwatch");
    install_files(layout, &built)?;
    if layout.live() && systemd_runs() {
        shell::run(Command::new("systemctl").arg("daemon-reload"))?;
        eprintln!("installed; start it with: systemctl enable --now memwatch");
    }
    Ok(())
}

/// The files of `layout`, from the binary at `built`.
pub fn install_files(layout: &Layout, built: &Path) -> anyhow::Result<()> {
    let binary = layout.under_root(&layout.binary());
    copy_with_mode(built, &binary, 0o755)?;

    let unit = fs::read_to_string(shell::workspace_root().join(UNIT_SOURCE)).context(UNIT_SOURCE)?;
    let unit = unit_for(&unit, &layout.binary())?;
    write_with_mode(&layout.unit(), unit.as_bytes(), 0o644)?;

    let config = layout.config();
    if config.exists() {
        eprintln!("kept {} (an existing config is never overwritten)", config.display());
    } else {
        copy_with_mode(&shell::workspace_root().join("config.toml"), &config, 0o644)?;
    }
    let state = layout.root.join(STATE_DIR);
    fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    fs::set_permissions(&state, fs::Permissions::from_mode(0o750))?;
    Ok(())
}

/// The shipped unit with ExecStart= naming `binary`.
pub fn unit_for(unit: &str, binary: &Path) -> anyhow::Result<String> {
    let exec_start = format!("ExecStart={PACKAGED_BINARY} ");
    if !unit.contains(&exec_start) {
        bail!("{UNIT_SOURCE} has no line starting `{exec_start}`");
    }
    Ok(unit.replace(&exec_start, &format!("ExecStart={} ", binary.display())))
}

pub fn uninstall(layout: &Layout) -> anyhow::Result<()> {
    if layout.live() && !shell::is_root() {
        bail!("removing a system service: run it as root");
    }
    if layout.live() && systemd_runs() && layout.unit().exists() {
        // Stopping restores every limit it lowered before the binary goes.
        shell::run(Command::new("systemctl").args(["disable", "--now", UNIT_NAME]))?;
    }
    remove_files(layout)?;
    if layout.live() && systemd_runs() {
        shell::run(Command::new("systemctl").arg("daemon-reload"))?;
    }
    Ok(())
}

pub fn remove_files(layout: &Layout) -> anyhow::Result<()> {
    for file in [layout.under_root(&layout.binary()), layout.unit()] {
        match fs::remove_file(&file) {
            Ok(()) => eprintln!("removed {}", file.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", file.display())),
        }
    }
    let state = layout.root.join(STATE_DIR);
    // An empty state directory goes; incident records are the user's.
    if fs::remove_dir(&state).is_err() && state.exists() {
        eprintln!("kept {} (it holds the incident log or a throttle record)", state.display());
    }
    eprintln!("kept {}", layout.config().display());
    Ok(())
}

/// systemd is PID 1 here (sd_booted(3)'s test).
fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn copy_with_mode(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write_with_mode(to, &bytes, mode)
}

/// Writes through a temporary file and a rename, so a running binary is
/// replaced rather than overwritten in place (ETXTBSY) and no half-written
/// file is ever seen.
fn write_with_mode(to: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = to.parent().context("a file to install has a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let staged = to.with_extension("xtask-new");
    fs::write(&staged, bytes).with_context(|| format!("writing {}", staged.display()))?;
    fs::set_permissions(&staged, fs::Permissions::from_mode(mode))?;
    fs::rename(&staged, to).with_context(|| format!("moving {} into place", to.display()))?;
    eprintln!("installed {} ({mode:o})", to.display());
    Ok(())
}

#[cfg(test)]
#[path = "install_tests.rs"]
mod tests;
