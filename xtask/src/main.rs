//! memwatch's developer tasks. `cargo xtask <task>`; every task installs what
//! it needs first (idempotently), so each works on a fresh Debian 12 machine.
mod bench;
mod build;
mod setup;
mod shell;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "memwatch's developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the build chain: apt packages, nightly rust-src, bpf-linker.
    Setup,
    /// Build the release daemon (kernel programs included).
    Build,
    /// Build, then run the daemon in the foreground on the repo's config.toml.
    Run {
        /// Extra arguments for `memwatch run`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the whole test suite: unit, privileged eBPF integration, lints,
    /// and the benchmarks in quick mode.
    Test,
    /// Measure what the probes add to a page fault (needs root).
    Bench {
        /// A few rounds only, to prove the benchmark works (what CI runs).
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::build_chain(),
        Task::Build => build::release(),
        Task::Run { args } => build::run(&args),
        Task::Test => test::all(),
        Task::Bench { quick } => bench::run(quick),
    }
}
