//! Builds the kernel programs (memwatch-ebpf's `memwatch-probes` binary) with
//! aya-build and leaves the object in OUT_DIR for `include_bytes_aligned!`.
use std::{env, fs, path::PathBuf, process::Command};

use anyhow::{Context as _, anyhow};

const EBPF_PACKAGE: &str = "memwatch-ebpf";
const EBPF_BINARY: &str = "memwatch-probes";

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR").context("OUT_DIR")?);
    let ebpf_dir =
        manifest_dir.parent().ok_or_else(|| anyhow!("no parent for {}", manifest_dir.display()))?.join(EBPF_PACKAGE);

    // AYA_BUILD_SKIP=1 is for quick host-only checks (clippy, docs): the
    // daemon then carries an empty object, fails to load it at run time and
    // says so, falling back to /proc polling.
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    if env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        fs::write(out_dir.join(EBPF_BINARY), []).context("writing the empty eBPF stub")?;
        return Ok(());
    }

    if Command::new("bpf-linker").arg("--version").output().is_err() {
        return Err(anyhow!(
            "bpf-linker is not on PATH. Run `cargo xtask setup` (it installs bpf-linker, the \
             eBPF nightly {} with rust-src, and LLVM), or set AYA_BUILD_SKIP=1 to build \
             without the kernel programs",
            memwatch_ebpf::BUILD_TOOLCHAIN
        ));
    }

    let package = aya_build::Package {
        name: EBPF_PACKAGE,
        root_dir: ebpf_dir.to_str().context("non-UTF-8 path to memwatch-ebpf")?,
        ..Default::default()
    };
    // The dated nightly `cargo xtask setup` installs, never the moving channel.
    aya_build::build_ebpf([package], aya_build::Toolchain::Custom(memwatch_ebpf::BUILD_TOOLCHAIN))
}
