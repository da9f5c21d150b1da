use std::process::ExitCode;

use clap::Parser as _;
use memwatch::{
    actions::incident_log::IncidentLogError,
    cli::{Cli, Command},
    commands,
    config::ConfigError,
    logging,
    trace::TraceFileError,
};

/// sysexits.h: the configuration is unusable.
const EX_CONFIG: u8 = 78;
/// sysexits.h: the input data (a trace, the incident log) is malformed.
const EX_DATAERR: u8 = 65;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        // A one-shot command whose reader went away (`memwatch check-config
        // F | head -1`) ends quietly, as Unix tools do, instead of failing
        // on EPIPE. The daemon keeps SIGPIPE ignored: a client closing its
        // socket must never end it.
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
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
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run::run(args).await,
            Command::Probe(args) => commands::probe::run(args).await,
            Command::Status(args) => commands::status::run(args).await,
            Command::Top(args) => commands::top::run(args).await,
            Command::CheckConfig(args) => commands::check_config::run(args),
            Command::Replay(args) => commands::replay::run(args),
            Command::Record(args) => commands::record::run(args).await,
            Command::Incidents(args) => commands::incidents::run(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memwatch: {}", describe(&e));
            // Scripts and service managers tell a bad config (fix the file,
            // do not restart in a loop) from a failure at run time.
            if e.chain().any(|cause| cause.downcast_ref::<ConfigError>().is_some()) {
                ExitCode::from(EX_CONFIG)
            } else if e.chain().any(|cause| {
                cause.downcast_ref::<TraceFileError>().is_some_and(|e| matches!(e, TraceFileError::Invalid { .. }))
                    || cause.downcast_ref::<IncidentLogError>().is_some()
            }) {
                ExitCode::from(EX_DATAERR)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The error and its causes, each cause once: an error whose message
/// already quotes its source (as "reading X: Is a directory") does not get
/// it appended a second time.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if !text.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
    }
    text
}
