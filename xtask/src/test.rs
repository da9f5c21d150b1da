//! The whole test suite, as CI runs it.
use std::process::Command;

use crate::{setup, shell, vm};

pub fn all() -> anyhow::Result<()> {
    setup::build_chain()?;
    let root = shell::workspace_root();
    let cargo = |args: &[&str]| {
        let mut cmd = Command::new("cargo");
        cmd.args(args).current_dir(&root);
        cmd
    };
    // Unit tests of every crate, then the privileged eBPF integration tests
    // (they skip without root, and fail instead of skipping under CI=true).
    shell::run(&mut cargo(&["test", "--workspace", "--release"]))?;
    shell::run(&mut cargo(&["clippy", "--workspace", "--release", "--all-targets", "--", "-D", "warnings"]))?;
    // Last: the same integration tests on a second kernel with a real
    // cgroup v2 memory controller, which this machine kind lacks.
    vm::run(vm::DEFAULT_TIMEOUT)
}
