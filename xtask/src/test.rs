//! The whole test suite, as CI runs it.
use std::process::Command;

use crate::{bench, fresh_check, fuzz, setup, shell, vm, vm_systemd};

pub fn all() -> anyhow::Result<()> {
    setup::build_chain()?;
    setup::apt_packages(setup::TEST_PACKAGES)?;
    let root = shell::workspace_root();
    let cargo = |args: &[&str]| {
        let mut cmd = Command::new("cargo");
        cmd.args(args).current_dir(&root);
        cmd
    };
    // The CLI tests run the release binary itself.
    shell::run(&mut cargo(&["build", "--release", "--locked", "-p", "memwatch"]))?;
    // Unit tests of every crate, then the privileged eBPF integration tests
    // (they skip without root, and fail instead of skipping under CI=true).
    shell::run(&mut cargo(&["test", "--workspace", "--release", "--locked", "--no-fail-fast"]))?;
    shell::run(&mut cargo(&[
        "clippy",
        "--workspace",
        "--release",
        "--locked",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The detection targets once more, on a synthetic corpus of a fresh seed.
    score(None, None)?;
    // A minute per fuzz target: the config reader, the trace parsers with
    // the pipeline behind them, the HTTP API.
    fuzz::run(std::time::Duration::from_secs(60))?;
    if shell::is_root() {
        bench::run(true)?;
    } else {
        eprintln!("SKIPPED benchmarks (quick mode): they attach the eBPF probes and need root");
    }
    // The same integration tests on a second kernel with a real cgroup v2
    // memory controller, which this machine kind lacks.
    vm::run(vm::DEFAULT_TIMEOUT, None)?;
    // The package under real systemd as PID 1.
    vm_systemd::run(vm_systemd::DEFAULT_TIMEOUT)?;
    // Last, being the slowest: the set-up and build from empty toolchain
    // homes, proving nothing this machine holds made the above pass.
    fresh_check::run()
}

/// The detection scorer is a memwatch integration test (so CI enforces its
/// targets); this runs it alone, in release mode, with its tables shown:
/// on `corpus` alone if given, else on the committed corpora and on a
/// synthetic one generated from `seed` (drawn now and printed if none), so
/// every run also faces traces nobody tuned on.
pub fn score(corpus: Option<&std::path::Path>, seed: Option<u64>) -> anyhow::Result<()> {
    let mut cmd = Command::new("cargo");
    if let Some(dir) = corpus {
        // The test reads SCORE_CORPUS; a relative path must survive cargo's cwd change.
        cmd.env("SCORE_CORPUS", std::path::absolute(dir)?);
    } else {
        let seed = seed.unwrap_or_else(drawn_seed);
        println!("fresh synthetic corpus from seed {seed} (again: cargo xtask score --seed {seed})");
        let dir = shell::workspace_root().join("target/score-fresh");
        crate::corpus::generate(Some(seed), Some(dir.clone()))?;
        cmd.env("SCORE_FRESH_CORPUS", dir).env("SCORE_FRESH_SEED", seed.to_string());
    }
    cmd.args(["test", "--release", "--locked", "-p", "memwatch", "--test", "detection_score", "--", "--nocapture"])
        .current_dir(shell::workspace_root());
    shell::run(&mut cmd)
}

/// A seed no run has used before: the clock's nanoseconds.
fn drawn_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.as_nanos() as u64 % 1_000_000_000
}
