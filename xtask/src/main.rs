//! memwatch's developer tasks. `cargo xtask <task>`; every task installs what
//! it needs first (idempotently), so each works on a fresh Debian 12 machine.
mod bench;
mod build;
mod corpus;
mod deb;
mod fresh_check;
mod fuzz;
mod initramfs;
mod install;
mod setup;
mod shell;
mod test;
mod vm;
mod vm_systemd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "memwatch's developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the build chain: apt packages, the pinned stable toolchain, the
    /// dated eBPF nightly with rust-src, bpf-linker (checked against its LLVM).
    Setup,
    /// Set-up and release build with empty rustup and cargo homes; fails if a
    /// toolchain named by a moving channel was installed.
    FreshCheck,
    /// Build the release daemon (kernel programs included).
    Build,
    /// Build, then run the daemon in the foreground on the repo's config.toml.
    Run {
        /// Extra arguments for `memwatch run`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build and install the daemon as a systemd service on this host
    /// (binary, unit, /etc/memwatch/config.toml if there is none).
    Install {
        /// Where the binary goes, as the running system sees it.
        #[arg(long, default_value = "/usr/local")]
        prefix: std::path::PathBuf,
        /// Stage the files under this directory instead, leaving systemd alone.
        #[arg(long, default_value = "/")]
        root: std::path::PathBuf,
    },
    /// Stop and remove what `install` put there; the config (and any
    /// incident records) stay.
    Uninstall {
        #[arg(long, default_value = "/usr/local")]
        prefix: std::path::PathBuf,
        #[arg(long, default_value = "/")]
        root: std::path::PathBuf,
    },
    /// Build the Debian package: target/debian/memwatch_<version>_amd64.deb.
    Deb,
    /// Run the whole test suite: unit, privileged eBPF integration, lints,
    /// the benchmark in quick mode, then the VM lane.
    Test,
    /// Regenerate the labelled synthetic traces in corpus/ (deterministic).
    Corpus {
        /// Another seed makes a held-out corpus of the same shapes.
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write (default: corpus/ in the repository).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Score the leak detector and the seed's rule on corpus/, the real
    /// runtimes' test half, the Node case recorded eight times and a
    /// fresh synthetic corpus (prints markdown tables).
    Score {
        /// Score this corpus directory alone (e.g. a held-out one).
        #[arg(long, conflicts_with = "seed")]
        corpus: Option<std::path::PathBuf>,
        /// The fresh corpus's seed (default: drawn from the clock, printed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run each fuzz target (config, trace, http) on a copy of fuzz/corpus.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// What watching costs the watched, beside bpftrace, and the daemon's
    /// footprint beside earlyoom, nohang and process-exporter (needs root).
    Bench {
        /// A few rounds only, to prove the benchmark works (what CI runs).
        #[arg(long)]
        quick: bool,
    },
    /// Boot Debian's kernels under qemu and run the integration tests inside
    /// (real cgroup v2 memory controller, 6.1 and 6.12, 2 and 16 vCPUs).
    VmTest {
        /// Kill the VM and fail after this many seconds.
        #[arg(long, default_value_t = vm::DEFAULT_TIMEOUT.as_secs())]
        timeout_secs: u64,
        /// Only the lanes whose name contains this (e.g. "6.12").
        #[arg(long)]
        lane: Option<String>,
    },
    /// Install the .deb on a Debian 12 VM with systemd as PID 1 and run the
    /// service scenarios (READY, reload, MemoryHigh through systemd,
    /// watchdog, capabilities, purge).
    VmSystemdTest {
        /// Kill the VM and fail after this many seconds.
        #[arg(long, default_value_t = vm_systemd::DEFAULT_TIMEOUT.as_secs())]
        timeout_secs: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::build_chain(),
        Task::FreshCheck => fresh_check::run(),
        Task::Build => build::release(),
        Task::Run { args } => build::run(&args),
        Task::Install { prefix, root } => install::install(&install::Layout { root, prefix }),
        Task::Uninstall { prefix, root } => install::uninstall(&install::Layout { root, prefix }),
        Task::Deb => deb::build().map(drop),
        Task::Test => test::all(),
        Task::Corpus { seed, out } => corpus::generate(seed, out),
        Task::Score { corpus, seed } => test::score(corpus.as_deref(), seed),
        Task::Bench { quick } => bench::run(quick),
        Task::Fuzz { seconds } => fuzz::run(std::time::Duration::from_secs(seconds)),
        Task::VmTest { timeout_secs, lane } => vm::run(std::time::Duration::from_secs(timeout_secs), lane.as_deref()),
        Task::VmSystemdTest { timeout_secs } => vm_systemd::run(std::time::Duration::from_secs(timeout_secs)),
    }
}
