//! Benchmarks. Not timed tests: `--quick` (what CI runs) only proves they
//! still work; the full run gives the figures quoted in the README.
use std::process::Command;

use anyhow::bail;

use crate::{setup, shell};

pub fn run(quick: bool) -> anyhow::Result<()> {
    setup::build_chain()?;
    setup::apt_packages(setup::BENCH_PACKAGES)?;
    if !shell::is_root() {
        bail!("the benchmarks attach the eBPF probes: run them as root");
    }
    let root = shell::workspace_root();
    shell::run(
        Command::new("cargo")
            .args([
                "build",
                "--release",
                "-p",
                "memwatch",
                "-p",
                "memwatch-tests",
                "--bin",
                "memwatch",
                "--bin",
                "overhead-bench",
            ])
            .current_dir(&root),
    )?;
    let mut bench = Command::new(root.join("target/release/overhead-bench"));
    if quick {
        bench.arg("--quick");
    }
    shell::run(&mut bench)
}
