//! `cargo xtask deb`: the Debian package, `target/debian/memwatch_<version>_amd64.deb`,
//! built by cargo-deb from `[package.metadata.deb]` in memwatch/Cargo.toml.
use std::{path::PathBuf, process::Command};

use anyhow::{Context as _, bail};

use crate::{build, shell};

/// Pinned like bpf-linker: a newer cargo-deb may lay the package out
/// differently (unit directory, maintainer-script snippets).
const CARGO_DEB_VERSION: &str = "3.7.0";

pub fn build() -> anyhow::Result<PathBuf> {
    build::release()?;
    cargo_deb()?;
    let root = shell::workspace_root();
    // --no-build: the release build above is the one with the kernel programs.
    let printed = shell::output(
        Command::new("cargo").args(["deb", "--package", "memwatch", "--no-build", "--locked"]).current_dir(&root),
    )?;
    let deb = printed.lines().rev().map(str::trim).find(|l| l.ends_with(".deb")).map(PathBuf::from);
    let deb = deb.context("cargo deb printed no package path")?;
    eprintln!("built {}", deb.display());
    Ok(deb)
}

/// cargo-deb at the pinned version, installed with its own lock file.
fn cargo_deb() -> anyhow::Result<()> {
    let version = shell::output(Command::new("cargo").args(["deb", "--version"])).unwrap_or_default();
    if version.contains(CARGO_DEB_VERSION) {
        return Ok(());
    }
    shell::run(
        Command::new("cargo")
            .args(["install", "--locked", "--force", "cargo-deb", "--version", CARGO_DEB_VERSION])
            .current_dir(shell::workspace_root()),
    )
    .context("installing cargo-deb")?;
    let version = shell::output(Command::new("cargo").args(["deb", "--version"]))?;
    if !version.contains(CARGO_DEB_VERSION) {
        bail!("cargo deb --version says {:?} after installing {CARGO_DEB_VERSION}", version.trim());
    }
    Ok(())
}
