//! Building what goes into the VM: the static daemon and test executables.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use super::{HOST_ONLY, MUSL_TARGET, vm_tests};
use crate::shell;

/// What goes into the VM, each at its host path (see `pack`).
pub struct Artifacts {
    pub binaries: Vec<PathBuf>,
    /// (name, executable) of every test some lane runs.
    pub tests: Vec<(String, PathBuf)>,
}

fn cargo(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(args).args(["--release", "--locked", "--target", MUSL_TARGET]).current_dir(root);
    // An empty stand-in object would make every probe test fail confusingly.
    cmd.env_remove("AYA_BUILD_SKIP");
    cmd
}

/// The static daemon (also the container image's binary): aya-build
/// embeds the kernel programs in it exactly as for the host (it keys on the
/// target's arch and endianness, which musl shares with the host).
pub fn static_daemon(root: &Path) -> anyhow::Result<PathBuf> {
    shell::run(&mut cargo(root, &["build", "-p", "memwatch"]))?;
    ebpf_object_embedded(&root.join("target").join(MUSL_TARGET).join("release/build"))?;
    Ok(root.join("target").join(MUSL_TARGET).join("release/memwatch"))
}

pub fn build(root: &Path) -> anyhow::Result<Artifacts> {
    // The daemon: the CLI tests run it.
    let daemon = static_daemon(root)?;

    // The integration tests themselves, not a separate VM-only binary: the
    // same assertions then hold on both kernels. Cargo reports each built
    // executable as a JSON message; the helper binaries come along because
    // the tests name them with CARGO_BIN_EXE_*.
    let mut cmd =
        cargo(root, &["test", "-p", "memwatch-tests", "--no-run", "--message-format=json-render-diagnostics"]);
    eprintln!("+ {}", shell::describe(&cmd));
    let output = cmd.stderr(Stdio::inherit()).output().context("running cargo test --no-run")?;
    if !output.status.success() {
        bail!("building the test executables for {MUSL_TARGET} failed: {}", output.status);
    }
    let mut binaries = vec![daemon];
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(executable) = message["executable"].as_str() else {
            continue;
        };
        // Package ids look like "path+file:///repo/tests#memwatch-tests@0.1.0".
        let package = message["package_id"].as_str().unwrap_or_default();
        if message["reason"] != "compiler-artifact" || !package.contains("#memwatch-tests@") {
            continue;
        }
        let kinds = message["target"]["kind"].as_array().cloned().unwrap_or_default();
        let name = message["target"]["name"].as_str().unwrap_or_default().to_owned();
        if kinds.iter().any(|k| k == "test") {
            found.push((name, PathBuf::from(executable)));
        } else if kinds.iter().any(|k| k == "bin") {
            binaries.push(PathBuf::from(executable));
        }
    }
    let mut tests = Vec::new();
    for name in vm_tests() {
        let position = found.iter().position(|(n, _)| n == name);
        tests.push(found.remove(position.with_context(|| format!("cargo built no test executable `{name}`"))?));
    }
    found.retain(|(name, _)| !HOST_ONLY.iter().any(|(host_only, _)| host_only == name));
    if !found.is_empty() {
        let names: Vec<_> = found.iter().map(|(n, _)| n.as_str()).collect();
        bail!(
            "test executables no lane of xtask/src/vm.rs runs: {names:?}; add them to a lane's tests (or to HOST_ONLY, saying why)"
        );
    }
    Ok(Artifacts { binaries, tests })
}

/// Fails unless memwatch's build script left a real (non-empty) kernel
/// object for `include_bytes_aligned!`: an empty stand-in would only show up
/// later, as probe tests failing in the VM for no obvious reason.
fn ebpf_object_embedded(build_dir: &Path) -> anyhow::Result<()> {
    let newest = fs::read_dir(build_dir)
        .with_context(|| format!("reading {}", build_dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("memwatch-"))
        .filter_map(|e| {
            let object = e.path().join("out/memwatch-probes");
            let meta = fs::metadata(&object).ok()?;
            Some((meta.modified().ok()?, meta.len(), object))
        })
        .max();
    match newest {
        Some((_, len, object)) if len > 0 => {
            eprintln!("  kernel programs: {} ({len} bytes)", object.display());
            Ok(())
        }
        Some((_, _, object)) => bail!("{} is empty: the daemon was built without its eBPF programs", object.display()),
        None => bail!("no memwatch-probes object under {}: did memwatch's build script run?", build_dir.display()),
    }
}
