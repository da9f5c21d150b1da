//! `memwatch status`: the daemon's view as one table.
use crate::{cli::ClientArgs, client::Client, view::StatusView};

pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let view: StatusView = Client::new(&args.socket).get_json("/status").await?;
    print!("{}", crate::client::table::render(&view));
    Ok(())
}
