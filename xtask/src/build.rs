//! Building and running the daemon.
use std::{os::unix::process::CommandExt as _, process::Command};

use crate::{setup, shell};

pub fn release() -> anyhow::Result<()> {
    setup::build_chain()?;
    shell::run(
        Command::new("cargo")
            .args(["build", "--release", "--locked", "-p", "memwatch"])
            .current_dir(shell::workspace_root()),
    )
}

/// Builds, then becomes the daemon (exec), so Ctrl-C and SIGTERM reach it
/// directly and it detaches its probes cleanly.
pub fn run(extra: &[String]) -> anyhow::Result<()> {
    release()?;
    let root = shell::workspace_root();
    let mut daemon = Command::new(root.join("target/release/memwatch"));
    daemon.args(["run", "--config"]).arg(root.join("config.toml")).args(extra).current_dir(&root);
    eprintln!("+ {}", shell::describe(&daemon));
    let err = daemon.exec();
    Err(anyhow::anyhow!("starting {}: {err}", shell::describe(&daemon)))
}
