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
