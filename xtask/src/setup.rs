//! Idempotent installs. Each step checks first and does nothing when the
//! machine already has what it needs, so running a task twice costs seconds.
//!
//! Every toolchain is named by a date or a version number, never by a channel
//! (`stable`, `nightly`): a channel moves on its own, and a moved nightly on a
//! newer LLVM than bpf-linker's is how a fresh machine stopped building.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use memwatch_ebpf::{BUILD_LLVM_MAJOR, BUILD_TOOLCHAIN};

use crate::shell::{self, output, run};

/// bpf-linker 0.13 is the newest that builds here with LLVM 22 (../shared/TOOLCHAIN.md).
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Debian packages the eBPF build needs: LLVM (the major bpf-linker links)
/// for bpf-linker's build, plus sudo because the README's privileged commands
/// are written with it.
fn build_packages() -> Vec<String> {
    let llvm = BUILD_LLVM_MAJOR;
    [format!("llvm-{llvm}-dev"), format!("libpolly-{llvm}-dev")]
        .into_iter()
        .chain(["libzstd-dev", "zlib1g-dev", "sudo"].map(String::from))
        .collect()
}

/// Real software the tests run next to memwatch, from Debian's packages:
/// the runtimes whose signals the cleanup guard must respect, and the
/// Node.js example service's runtime.
/// systemd brings systemd-analyze, which checks the shipped unit;
/// prometheus (2.42, with promtool) evaluates the shipped alert rules.
pub const TEST_PACKAGES: &[&str] = &["nodejs", "openjdk-17-jre-headless", "python3", "systemd", "prometheus"];

/// The peers the benchmarks measure memwatch beside.
pub const BENCH_PACKAGES: &[&str] = &["bpftrace", "earlyoom", "nohang", "prometheus-process-exporter"];

/// Installs whichever of `packages` are missing (one apt-get update first).
pub fn apt_packages<S: AsRef<str>>(packages: &[S]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .map(AsRef::as_ref)
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

/// The stable toolchain of `rust-toolchain.toml`, with its components and
/// targets. rustup installs it on first use anyway; asking explicitly also
/// adds a component or target the file gained after the toolchain was
/// installed (rustup does not do that by itself).
fn stable_toolchain() -> anyhow::Result<()> {
    // Under `cargo xtask` rustup has set RUSTUP_TOOLCHAIN; without it the
    // toolchain file decides, components and targets included.
    run(Command::new("rustup")
        .args(["toolchain", "install"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .current_dir(shell::workspace_root()))
}

/// The eBPF nightly with rust-src (build-std), checked against bpf-linker's LLVM.
fn ebpf_toolchain() -> anyhow::Result<()> {
    let installed =
        output(Command::new("rustup").args(["component", "list", "--installed", "--toolchain", BUILD_TOOLCHAIN]))
            .unwrap_or_default();
    if !installed.lines().any(|l| l.starts_with("rust-src")) {
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            BUILD_TOOLCHAIN,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))?;
    }
    let version = output(Command::new("rustc").arg(format!("+{BUILD_TOOLCHAIN}")).arg("-vV"))?;
    let llvm = version.lines().find_map(|l| l.strip_prefix("LLVM version: ")).map(str::trim);
    let major = llvm.and_then(|v| v.split('.').next()?.parse::<u32>().ok());
    if major != Some(BUILD_LLVM_MAJOR) {
        bail!(
            "{BUILD_TOOLCHAIN} uses LLVM {}, but bpf-linker is built against LLVM {BUILD_LLVM_MAJOR}: it could not \
             read the probes' bitcode. Pick a nightly whose `rustc +nightly-YYYY-MM-DD -vV` says LLVM \
             {BUILD_LLVM_MAJOR}.x and set BUILD_TOOLCHAIN in memwatch-ebpf/src/lib.rs to it",
            llvm.unwrap_or("(none reported)")
        );
    }
    Ok(())
}

/// Where `cargo install` puts binaries.
fn cargo_bin() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    home.join("bin")
}

/// The LLVM major a bpf-linker binary links, from the libLLVM its dynamic
/// linker loads (`libLLVM.so.22.1`, or `libLLVM-22.so` on older packaging).
/// `bpf-linker --version` does not say it.
fn linked_llvm_major(binary: &Path) -> Option<u32> {
    llvm_major_in_ldd(&output(Command::new("ldd").arg(binary)).ok()?)
}

fn llvm_major_in_ldd(libs: &str) -> Option<u32> {
    libs.split_whitespace().find_map(|word| {
        let name = word.rsplit('/').next()?;
        let rest = name.strip_prefix("libLLVM.so.").or_else(|| name.strip_prefix("libLLVM-"))?;
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    })
}

/// What is wrong with the bpf-linker at `binary`, if anything.
fn bpf_linker_problem(binary: &Path) -> Option<String> {
    let version = output(Command::new(binary).arg("--version")).unwrap_or_default();
    if !version.contains(BPF_LINKER_VERSION) {
        return Some(format!("it is version {:?}, not {BPF_LINKER_VERSION}", version.trim()));
    }
    match linked_llvm_major(binary) {
        Some(BUILD_LLVM_MAJOR) => None,
        Some(other) => Some(format!("it links LLVM {other}, not LLVM {BUILD_LLVM_MAJOR} ({BUILD_TOOLCHAIN}'s)")),
        None => Some(format!("ldd shows no libLLVM, so its LLVM cannot be checked against {BUILD_TOOLCHAIN}'s")),
    }
}

/// bpf-linker at the pinned version, linking the nightly's LLVM major. One
/// left on the machine is checked, not trusted for being on PATH; a wrong one
/// in cargo's bin directory is replaced.
fn bpf_linker() -> anyhow::Result<()> {
    let installed = cargo_bin().join("bpf-linker");
    if let Some(found) = shell::which("bpf-linker") {
        let Some(problem) = bpf_linker_problem(&found) else {
            return Ok(());
        };
        if found != installed {
            bail!(
                "the bpf-linker first on PATH, {}, cannot build the probes: {problem}. Remove it (or put {} \
                 first on PATH) and run `cargo xtask setup` again",
                found.display(),
                installed.parent().unwrap_or(&installed).display()
            );
        }
        eprintln!("replacing {}: {problem}", found.display());
    }
    let llvm_bin = format!("/usr/lib/llvm-{BUILD_LLVM_MAJOR}/bin");
    let path = std::env::join_paths(
        std::iter::once(PathBuf::from(&llvm_bin))
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )?;
    // --locked: bpf-linker's own Cargo.lock, so its dependencies cannot move
    // either. LLVM's bin first on PATH, or bpf-linker's build finds another
    // llvm-config and fails to link -lLLVM.
    run(Command::new("cargo")
        .args(["install", "--locked", "--force", "bpf-linker", "--version", BPF_LINKER_VERSION])
        .args(["--no-default-features", "--features", &format!("llvm-{BUILD_LLVM_MAJOR}")])
        .env("PATH", path)
        .current_dir(shell::workspace_root()))
    .context("installing bpf-linker")?;
    match shell::which("bpf-linker") {
        Some(found) if found == installed => match bpf_linker_problem(&found) {
            None => Ok(()),
            Some(problem) => bail!("the bpf-linker just installed at {} is unusable: {problem}", found.display()),
        },
        _ => bail!(
            "bpf-linker was installed at {} but that is not what PATH finds: add {} to PATH",
            installed.display(),
            cargo_bin().display()
        ),
    }
}

/// Everything `cargo build -p memwatch` needs to build the kernel programs.
pub fn build_chain() -> anyhow::Result<()> {
    apt_packages(&build_packages())?;
    stable_toolchain()?;
    ebpf_toolchain()?;
    bpf_linker()
}

#[cfg(test)]
mod tests {
    use super::llvm_major_in_ldd;

    #[test]
    fn reads_the_llvm_major_from_ldd() {
        let debian =
            "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibLLVM.so.22.1 => /usr/lib/llvm-22/lib/libLLVM.so.22.1 (0x7f)\n";
        assert_eq!(llvm_major_in_ldd(debian), Some(22));
        assert_eq!(llvm_major_in_ldd("\tlibLLVM-19.so => /usr/lib/libLLVM-19.so (0x7f)\n"), Some(19));
        assert_eq!(llvm_major_in_ldd("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n"), None);
    }
}
