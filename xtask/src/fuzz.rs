//! `cargo xtask fuzz`: each fuzz target (fuzz/, cargo-fuzz) for a while, on a
//! copy of the committed corpus, with the eBPF crate's dated nightly.
use std::{fs, path::Path, process::Command, time::Duration};

use anyhow::{Context as _, bail};
use memwatch_ebpf::BUILD_TOOLCHAIN;

use crate::shell;

/// cargo-fuzz's version, installed with `--locked` like every tool here.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
pub const TARGETS: [&str; 3] = ["config", "trace", "http"];

pub fn run(per_target: Duration) -> anyhow::Result<()> {
    crate::setup::build_chain()?;
    cargo_fuzz()?;
    let root = shell::workspace_root();
    fuzz_lock_is_complete(&root)?;
    let mut summary = Vec::new();
    for target in TARGETS {
        // A scratch copy: what a run adds stays out of the repository's corpus.
        let corpus = root.join("target/fuzz-corpus").join(target);
        let _ = fs::remove_dir_all(&corpus);
        copy_dir(&root.join("fuzz/corpus").join(target), &corpus)?;
        let mut cmd = Command::new("cargo");
        cmd.arg(format!("+{BUILD_TOOLCHAIN}"))
            .args(["fuzz", "run", "--sanitizer", "none", "--fuzz-dir"])
            .arg(root.join("fuzz"))
            .arg(target)
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={}", per_target.as_secs().max(1)))
            .args(["-rss_limit_mb=2048", "-timeout=10", "-print_final_stats=1"])
            // The targets need no kernel programs.
            .env("AYA_BUILD_SKIP", "1")
            .env_remove("RUSTUP_TOOLCHAIN")
            .current_dir(&root);
        eprintln!("+ {}", shell::describe(&cmd));
        let out = cmd.output().with_context(|| format!("starting {}", shell::describe(&cmd)))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let runs = stderr.lines().find_map(|l| l.strip_prefix("Done ")).unwrap_or("no run count").to_owned();
        if !out.status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
            bail!(
                "fuzz target {target} failed ({}):\n{}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        summary.push(format!("{target}: {runs}, no crash"));
    }
    for line in &summary {
        eprintln!("fuzz {line}");
    }
    Ok(())
}

/// `cargo fuzz` has no `--locked`, and on a lock file that misses a crate
/// it resolves one of the day's versions and writes it in. Cargo's own
/// `--locked` check comes first, so that missing crate fails the run by
/// name instead.
fn fuzz_lock_is_complete(root: &Path) -> anyhow::Result<()> {
    let manifest = root.join("fuzz/Cargo.toml");
    let mut check = Command::new("cargo");
    check
        .arg(format!("+{BUILD_TOOLCHAIN}"))
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(&manifest)
        .env_remove("RUSTUP_TOOLCHAIN");
    let out = check.output().with_context(|| format!("starting {}", shell::describe(&check)))?;
    if !out.status.success() {
        bail!(
            "fuzz/Cargo.lock does not pin every crate the fuzz targets build: add them (cargo \
             +{BUILD_TOOLCHAIN} metadata --format-version 1 --manifest-path {} > /dev/null), set any that \
             `cargo test -p xtask` names to Cargo.lock's version (cargo +{BUILD_TOOLCHAIN} update \
             --manifest-path fuzz/Cargo.toml -p NAME --precise VERSION), and commit it\n{}",
            manifest.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn cargo_fuzz() -> anyhow::Result<()> {
    let version = shell::output(Command::new("cargo").args(["fuzz", "--version"])).unwrap_or_default();
    if version.contains(CARGO_FUZZ_VERSION) {
        return Ok(());
    }
    shell::run(
        Command::new("cargo")
            .args(["install", "--locked", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION])
            .current_dir(shell::workspace_root()),
    )
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        fs::copy(&path, to.join(path.file_name().unwrap_or_default()))
            .with_context(|| format!("copying {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The (name, version) of every package a Cargo.lock lists.
    fn packages(lock: &str) -> BTreeSet<(String, String)> {
        let field = |block: &str, key: &str| {
            block
                .lines()
                .find_map(|line| Some(line.strip_prefix(key)?.strip_prefix(" = \"")?.strip_suffix('"')?.to_owned()))
        };
        lock.split("[[package]]")
            .skip(1)
            .map(|block| (field(block, "name").expect("a name"), field(block, "version").expect("a version")))
            .collect()
    }

    #[test]
    fn the_fuzz_targets_build_the_crate_versions_the_project_does() {
        let root = crate::shell::workspace_root();
        let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let project = packages(&read("Cargo.lock"));
        let fuzz = packages(&read("fuzz/Cargo.lock"));
        assert!(fuzz.iter().any(|(name, _)| name == "memwatch"), "a fuzz lock without memwatch: {fuzz:?}");
        let names: BTreeSet<&str> = project.iter().map(|(name, _)| name.as_str()).collect();
        let other: Vec<_> =
            fuzz.iter().filter(|package| names.contains(package.0.as_str()) && !project.contains(*package)).collect();
        assert!(other.is_empty(), "fuzz/Cargo.lock has other versions than Cargo.lock: {other:?}");
    }
}
