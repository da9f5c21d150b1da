use clap::Parser as _;
use memwatch::{
    cli::{Cli, Command},
    commands, logging,
};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(match cli.command {
        Command::Run(_) => "info",
        _ => "warn",
    });
    // One thread is plenty: the work is a few reads every interval.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("memwatch: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run::run(args).await,
            Command::Probe(args) => commands::probe::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memwatch: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
