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
    // Two workers: the collector's /proc scan is synchronous, and the API
    // (and the OTLP exporter's gRPC channel, which the SDK requires to live
    // on a tokio runtime) must keep answering while it runs.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
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
            Command::Status(args) => commands::status::run(args).await,
            Command::Top(args) => commands::top::run(args).await,
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
