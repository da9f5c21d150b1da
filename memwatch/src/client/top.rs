//! `memwatch top`'s screen, drawn from one view. Pure drawing (no I/O), so it
//! is tested by rendering into ratatui's TestBackend.
use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Gauge, List, ListItem, Paragraph, Sparkline},
};

use super::table::{growth, leak, short_name, truncate};
use crate::{
    bytes::human_bytes,
    view::{Level, StatusView, TargetView},
};

pub fn level_style(level: Level) -> Style {
    match level {
        Level::Normal => Style::new().fg(Color::Green),
        Level::Warning => Style::new().fg(Color::Yellow),
        Level::Critical => Style::new().fg(Color::LightRed),
        Level::Emergency => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

/// Targets, fastest growing first.
pub fn by_growth(view: &StatusView) -> Vec<&TargetView> {
    let mut targets: Vec<&TargetView> = view.targets.iter().collect();
    targets
        .sort_by(|a, b| b.growth_bytes_per_s.total_cmp(&a.growth_bytes_per_s).then(b.usage_bytes.cmp(&a.usage_bytes)));
    targets
}

/// Readings relative to their own minimum, so a 1% change still shows as
/// a slope (against zero every sparkline would be a flat full bar).
fn spark_data(history: &[u64]) -> (Vec<u64>, u64) {
    let min = history.iter().copied().min().unwrap_or(0);
    let max = history.iter().copied().max().unwrap_or(0);
    (history.iter().map(|v| v - min + 1).collect(), max - min + 1)
}

const NAME_W: u16 = 28;
const LEVEL_W: u16 = 10;
const USAGE_W: u16 = 24;
const GROWTH_W: u16 = 14;

pub fn draw(frame: &mut Frame, view: &StatusView, source: &str, error: Option<&str>) {
    let events_height = (view.events.len().min(6) as u16) + 2;
    let [header, gauge, targets, events] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Min(4),
        Constraint::Length(events_height.max(3)),
    ])
    .areas(frame.area());

    let mut title = vec![
        Span::styled("memwatch top", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("  mode {}  {} targets  from {source}  (q quits)", view.mode, view.targets.len())),
    ];
    if let Some(error) = error {
        title.push(Span::styled(format!("  {error}"), Style::new().fg(Color::Red)));
    }
    frame.render_widget(Paragraph::new(Line::from(title)), header);

    let host = &view.host;
    let host_level = view.thresholds.level_for(host.usage_ratio);
    frame.render_widget(
        Gauge::default()
            .block(Block::default().borders(Borders::ALL).title("host memory"))
            .gauge_style(level_style(host_level))
            .ratio(host.usage_ratio.clamp(0.0, 1.0))
            .label(format!(
                "{} / {} ({:.1}%)",
                human_bytes(host.used),
                human_bytes(host.total),
                host.usage_ratio * 100.0
            )),
        gauge,
    );

    let block = Block::default().borders(Borders::ALL).title("targets by growth (last 60 readings)");
    let inner = block.inner(targets);
    frame.render_widget(block, targets);
    let head = Line::from(format!(
        "{:<nw$}{:<lw$}{:<uw$}{:<gw$}HISTORY / LEAK",
        "TARGET",
        "LEVEL",
        "USAGE / LIMIT",
        "GROWTH",
        nw = NAME_W as usize,
        lw = LEVEL_W as usize,
        uw = USAGE_W as usize,
        gw = GROWTH_W as usize
    ))
    .style(Style::new().add_modifier(Modifier::BOLD));
    frame.render_widget(Paragraph::new(head), Rect { height: 1.min(inner.height), ..inner });
    for (i, t) in by_growth(view).into_iter().enumerate() {
        let y = inner.y + 1 + i as u16;
        if y >= inner.y + inner.height {
            break;
        }
        draw_target(frame, Rect { y, height: 1, ..inner }, t);
    }

    let items: Vec<ListItem> = view
        .events
        .iter()
        .rev()
        .take(6)
        .map(|e| ListItem::new(format!("{}  {}", clock(e.at_unix_s), e.message)))
        .collect();
    frame.render_widget(List::new(items).block(Block::default().borders(Borders::ALL).title("last events")), events);
}

/// UTC time of day: enough to place an event among the last few minutes'.
fn clock(unix_s: u64) -> String {
    let s = unix_s % 86_400;
    format!("{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

fn draw_target(frame: &mut Frame, row: Rect, t: &TargetView) {
    let [name, level, usage, rate, spark] = Layout::horizontal([
        Constraint::Length(NAME_W),
        Constraint::Length(LEVEL_W),
        Constraint::Length(USAGE_W),
        Constraint::Length(GROWTH_W),
        Constraint::Min(1),
    ])
    .areas(row);
    frame.render_widget(Paragraph::new(truncate(&short_name(t), NAME_W as usize - 1)), name);
    frame.render_widget(Paragraph::new(t.level.as_str()).style(level_style(t.level)), level);
    frame.render_widget(
        Paragraph::new(format!("{} / {}", human_bytes(t.usage_bytes), human_bytes(t.limit_bytes))),
        usage,
    );
    frame.render_widget(Paragraph::new(growth(t)), rate);
    // The sparkline takes what the leak verdict leaves.
    let verdict = if t.leak.is_some() { format!(" leak {}", leak(t)) } else { String::new() };
    let spark_width = spark.width.saturating_sub(verdict.chars().count() as u16).max(1);
    let (data, max) = spark_data(&t.history);
    // Newest readings on the right; keep only what fits.
    let shown = &data[data.len().saturating_sub(spark_width as usize)..];
    frame.render_widget(
        Sparkline::default().data(shown).max(max).style(level_style(t.level)),
        Rect { width: spark_width, ..spark },
    );
    if !verdict.is_empty() {
        frame.render_widget(
            Paragraph::new(verdict),
            Rect { x: spark.x + spark_width, width: spark.width - spark_width, ..spark },
        );
    }
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::view::EventView;

    fn target(name: &str, level: Level, growth: f64, history: Vec<u64>) -> TargetView {
        TargetView {
            name: name.into(),
            kind: "unit".into(),
            usage_bytes: *history.last().unwrap(),
            charged_bytes: None,
            pressure: None,
            limit_bytes: 1 << 30,
            level,
            growth_bytes_per_s: growth,
            leak: None,
            last_action: None,
            processes: 1,
            history,
            container: None,
        }
    }

    #[test]
    fn the_screen_has_the_gauge_targets_by_growth_sparklines_and_events() {
        let view = StatusView {
            mode: "procfs".into(),
            monitoring: true,
            host: crate::view::HostView { used: 6 << 30, total: 8 << 30, usage_ratio: 0.75, ..Default::default() },
            targets: vec![
                target("slow.service", Level::Normal, 10.0, vec![100 << 20; 5]),
                target("leaky.service", Level::Critical, 5000.0, (1..=60).map(|i| i << 20).collect()),
            ],
            events: vec![EventView {
                at_unix_s: 1_700_000_000,
                target: None,
                message: "leaky.service: warning -> critical".into(),
            }],
            ..Default::default()
        };
        let mut terminal = Terminal::new(TestBackend::new(120, 20)).unwrap();
        terminal.draw(|f| draw(f, &view, "/run/memwatch/memwatch.sock", None)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let lines: Vec<String> = (0..buffer.area.height)
            .map(|y| (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_owned()).collect())
            .collect();
        let screen = lines.join("\n");
        assert!(screen.contains("6.0 GiB / 8.0 GiB (75.0%)"), "{screen}");
        let leaky = lines.iter().position(|l| l.contains("leaky.service")).expect(&screen);
        let slow = lines.iter().position(|l| l.contains("slow.service")).expect(&screen);
        assert!(leaky < slow, "fastest grower first:\n{screen}");
        // A rising history draws a rising sparkline: several bar heights, full last.
        let row = &lines[leaky];
        let bars: std::collections::BTreeSet<char> = row.chars().filter(|c| ('▁'..='█').contains(c)).collect();
        assert!(
            bars.len() >= 3 && row.trim_end().trim_end_matches('│').ends_with('█'),
            "no rising sparkline in {row:?}"
        );
        assert!(screen.contains("22:13:20Z  leaky.service: warning -> critical"), "{screen}");
        // Level colours: the critical level's cell is light red.
        let x = row.find("critical").map(|b| row[..b].chars().count() as u16).unwrap();
        assert_eq!(buffer[(x, leaky as u16)].fg, Color::LightRed);
    }
}
