//! Idempotent installs. Each step checks first and does nothing when the
//! machine already has what it needs, so running a task twice costs seconds.
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::shell::{self, output, run, succeeds};

/// LLVM that bpf-linker links against; it must match the nightly's LLVM (22).
const LLVM_VERSION: &str = "22";
/// bpf-linker 0.13 is the newest that builds here with LLVM 22 (../shared/TOOLCHAIN.md).
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Debian packages the eBPF build needs: LLVM for bpf-linker, plus sudo
/// because the README's privileged commands are written with it.
const BUILD_PACKAGES: &[&str] = &["llvm-22-dev", "libpolly-22-dev", "libzstd-dev", "zlib1g-dev", "sudo"];

/// Installs whichever of `packages` are missing (one apt-get update first).
pub fn apt_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_ok_and(|s| s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !shell::is_root() {
        bail!("these Debian packages are missing: {}; run as root (or install them)", missing.join(" "));
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn rust_src() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["component", "list", "--installed", "--toolchain", "nightly"]))
        .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    // `toolchain install` is a no-op for an installed nightly and adds the
    // component; on a machine without one it fetches it.
    run(Command::new("rustup").args([
        "toolchain",
        "install",
        "nightly",
        "--profile",
        "minimal",
        "--component",
        "rust-src",
    ]))
}

fn bpf_linker() -> anyhow::Result<()> {
    let version = output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if version.contains(BPF_LINKER_VERSION) {
        return Ok(());
    }
    let llvm_bin = format!("/usr/lib/llvm-{LLVM_VERSION}/bin");
    let path = format!("{llvm_bin}:{}", std::env::var("PATH").unwrap_or_default());
    // Without LLVM 22's bin first on PATH, bpf-linker's build finds another
    // llvm-config and fails to link -lLLVM.
    run(Command::new("cargo")
        .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION, "--no-default-features"])
        .args(["--features", &format!("llvm-{LLVM_VERSION}")])
        .env("PATH", path))
    .context("installing bpf-linker")
}

/// Everything `cargo build -p memwatch` needs to build the kernel programs.
pub fn build_chain() -> anyhow::Result<()> {
    apt_packages(BUILD_PACKAGES)?;
    rust_src()?;
    bpf_linker()?;
    if !succeeds(Command::new("bpf-linker").arg("--version")) {
        bail!("bpf-linker was installed but is not on PATH: add ~/.cargo/bin to PATH");
    }
    Ok(())
}
