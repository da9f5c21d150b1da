//! `cargo xtask fresh-check`: the set-up and the release build with empty
//! rustup and cargo homes, so nothing this machine already holds (a nightly,
//! a bpf-linker, the crate cache) can make the build pass. Afterwards every
//! toolchain rustup installed must be named by a date or a version number:
//! one named by a channel means a moving channel decided the build.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, bail};

use crate::shell;

/// The system directories a fresh Debian 12 root has on PATH: no cargo home.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let root = shell::workspace_root();
    let scratch = root.join("target/fresh-check");
    if scratch.exists() {
        fs::remove_dir_all(&scratch).with_context(|| format!("emptying {}", scratch.display()))?;
    }
    let homes = Homes::create(&scratch)?;

    // The stable toolchain first: these machines run rustup with
    // RUSTUP_AUTO_INSTALL=0, so cargo would not install it on first use
    // (a machine of this kind comes with it; the empty home does not).
    shell::run(homes.command("rustup").args(["toolchain", "install"]).current_dir(&root))?;
    // What a new user runs: the README's set-up, then the release build.
    shell::run(homes.command("cargo").args(["xtask", "setup"]).current_dir(&root))?;
    shell::run(homes.command("cargo").args(["build", "--release", "--locked", "-p", "memwatch"]).current_dir(&root))?;

    let listed = shell::output(homes.command("rustup").args(["toolchain", "list"]))?;
    let moving: Vec<&str> = listed.lines().map(str::trim).filter(|l| !l.is_empty() && !is_pinned(l)).collect();
    if !moving.is_empty() {
        bail!("the fresh build installed toolchains named by a channel, not a date or version: {}", moving.join(", "));
    }
    let daemon = homes.target.join("release/memwatch");
    let version = shell::output(Command::new(&daemon).arg("--version"))?;
    eprintln!(
        "fresh-check passed in {:.0} s: {} built with empty homes in {}; toolchains: {}",
        started.elapsed().as_secs_f64(),
        version.trim(),
        scratch.display(),
        listed.lines().map(str::trim).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// Empty rustup and cargo homes and a target directory of their own.
struct Homes {
    rustup: PathBuf,
    cargo: PathBuf,
    target: PathBuf,
    /// `rustup-init`: a link to this machine's rustup binary, which installs
    /// itself and its proxies into the empty cargo home when called by that
    /// name. The machine's cargo bin directory stays off PATH: it holds a
    /// bpf-linker.
    init: PathBuf,
}

impl Homes {
    fn create(scratch: &Path) -> anyhow::Result<Self> {
        let homes = Self {
            rustup: scratch.join("rustup"),
            cargo: scratch.join("cargo"),
            target: scratch.join("target"),
            init: scratch.join("init"),
        };
        for dir in [&homes.rustup, &homes.cargo, &homes.target, &homes.init] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let rustup =
            shell::which("rustup").context("rustup is not on PATH: the machine's rustup runs the fresh homes")?;
        let rustup = fs::canonicalize(&rustup).with_context(|| format!("resolving {}", rustup.display()))?;
        let init = homes.init.join("rustup-init");
        std::os::unix::fs::symlink(&rustup, &init).with_context(|| format!("linking {}", init.display()))?;
        // No default toolchain: rust-toolchain.toml is to choose every one.
        shell::run(homes.command(&init).args(["-y", "--no-modify-path", "--default-toolchain", "none"]))?;
        Ok(homes)
    }

    /// `program` from the fresh cargo home (or a path), in the fresh homes.
    fn command(&self, program: impl AsRef<Path>) -> Command {
        let program = program.as_ref();
        let bin = self.cargo.join("bin");
        let mut cmd = Command::new(if program.is_absolute() { program.to_path_buf() } else { bin.join(program) });
        let path = format!("{}:{SYSTEM_PATH}", bin.display());
        cmd.env("RUSTUP_HOME", &self.rustup)
            .env("CARGO_HOME", &self.cargo)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("PATH", path)
            // Set by the cargo that runs this task; the fresh homes must
            // choose their toolchain from rust-toolchain.toml alone.
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTC")
            .env_remove("CARGO")
            .env_remove("AYA_BUILD_SKIP");
        cmd
    }
}

/// `nightly-2026-05-19-x86_64-unknown-linux-gnu` or `1.95.0-x86_64-…`, as
/// `rustup toolchain list` prints them (maybe followed by "(active)").
fn is_pinned(listed: &str) -> bool {
    let name = listed.split_whitespace().next().unwrap_or_default();
    let dated = name.strip_prefix("nightly-").or_else(|| name.strip_prefix("beta-")).is_some_and(starts_with_date);
    let numbered = name.split('-').next().is_some_and(|v| {
        let parts: Vec<&str> = v.split('.').collect();
        parts.len() >= 2 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    dated || numbered
}

fn starts_with_date(rest: &str) -> bool {
    let b = rest.as_bytes();
    b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

#[cfg(test)]
mod tests {
    use super::is_pinned;

    #[test]
    fn only_dated_or_numbered_toolchains_are_pinned() {
        assert!(is_pinned("nightly-2026-05-19-x86_64-unknown-linux-gnu"));
        assert!(is_pinned("1.95.0-x86_64-unknown-linux-gnu (active)"));
        assert!(!is_pinned("nightly-x86_64-unknown-linux-gnu"));
        assert!(!is_pinned("stable-x86_64-unknown-linux-gnu (default)"));
        assert!(!is_pinned("beta-x86_64-unknown-linux-gnu"));
    }
}
