//! `memwatch top`: a live view over the socket, refreshed each interval.
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use crate::{cli::ClientArgs, client::Client, view::StatusView};

/// Until the daemon says its interval.
const DEFAULT_REFRESH: Duration = Duration::from_secs(5);
/// How long one wait for a key may block the (single) runtime thread.
const KEY_POLL: Duration = Duration::from_millis(100);
/// Keys are read between fetches: a daemon slow to answer must not keep
/// `q` waiting for longer than this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.socket).with_timeout(FETCH_TIMEOUT);
    // Fail before taking over the terminal if the daemon is not there.
    let mut view: StatusView = client.get_json("/status").await?;
    let source = args.socket.display().to_string();
    let mut terminal = ratatui::init();
    let result = async {
        let mut error: Option<String> = None;
        let mut next_fetch = Instant::now();
        loop {
            if Instant::now() >= next_fetch {
                match client.get_json::<StatusView>("/status").await {
                    Ok(v) => {
                        view = v;
                        error = None;
                    }
                    // Keep the last screen and say why it is stale.
                    Err(e) => error = Some(e.to_string()),
                }
                let refresh =
                    if view.interval_s > 0.0 { Duration::from_secs_f64(view.interval_s) } else { DEFAULT_REFRESH };
                next_fetch = Instant::now() + refresh;
                terminal.draw(|f| crate::client::top::draw(f, &view, &source, error.as_deref()))?;
            }
            if event::poll(KEY_POLL)? {
                match event::read()? {
                    Event::Key(key) if key.kind == KeyEventKind::Press => {
                        let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                        if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                            return Ok::<(), anyhow::Error>(());
                        }
                    }
                    Event::Resize(..) => {
                        terminal.draw(|f| crate::client::top::draw(f, &view, &source, error.as_deref()))?;
                    }
                    _ => {}
                }
            }
        }
    }
    .await;
    ratatui::restore();
    result
}
