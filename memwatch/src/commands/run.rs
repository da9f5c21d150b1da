//! `memwatch run`: the daemon in the foreground (`daemon`).
use crate::{cli::RunArgs, config::Config, daemon};

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load_for_daemon(&args.config)?;
    let options = daemon::Options { mode: args.mode, record: args.record, config_path: args.config };
    daemon::run(config, options).await?;
    Ok(())
}
