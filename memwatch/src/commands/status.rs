//! `memwatch status`: the daemon's view as one table.
use crate::{cli::ClientArgs, client::Client, show, status::StatusView};

pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let view: StatusView = Client::new(&args.socket).get_json("/status").await?;
    print!("{}", show::table::render(&view));
    Ok(())
}
