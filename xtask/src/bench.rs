//! Benchmarks. Not timed tests: `--quick` (what CI runs) only proves they
//! still work; the full run gives the figures quoted in the README.
use std::{path::PathBuf, process::Command};

use anyhow::{Context as _, bail};

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
                "--locked",
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
    let build = CrateToBuild::find()?;
    bench.arg("--rustc").arg(build.rustc).arg("--crate").arg(build.source).args(["--edition", &build.edition]);
    shell::run(&mut bench)
}

/// The crate the mixed workload compiles: one of the workspace's own
/// dependencies with no dependencies of its own (so rustc alone builds it),
/// from the sources cargo already fetched, with the pinned toolchain's rustc.
const CRATE_TO_BUILD: &str = "regex-syntax";

struct CrateToBuild {
    rustc: PathBuf,
    source: PathBuf,
    edition: String,
}

impl CrateToBuild {
    fn find() -> anyhow::Result<Self> {
        let root = shell::workspace_root();
        let rustc = shell::output(Command::new("rustup").args(["which", "rustc"]).current_dir(&root))?;
        let metadata = shell::output(
            Command::new("cargo").args(["metadata", "--format-version", "1", "--locked"]).current_dir(&root),
        )?;
        let metadata: serde_json::Value = serde_json::from_str(&metadata).context("parsing cargo metadata")?;
        let package = metadata["packages"]
            .as_array()
            .and_then(|packages| packages.iter().find(|p| p["name"] == CRATE_TO_BUILD))
            .with_context(|| {
                format!("{CRATE_TO_BUILD} is no longer among the workspace's dependencies: pick another")
            })?;
        let manifest = PathBuf::from(package["manifest_path"].as_str().context("manifest_path")?);
        Ok(Self {
            rustc: rustc.trim().into(),
            source: manifest.parent().context("manifest_path has a parent")?.to_path_buf(),
            edition: package["edition"].as_str().context("edition")?.to_owned(),
        })
    }
}
