//! `memwatch incidents`: the incident log, as a table or raw JSON lines.
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::{
    actions::incident_log,
    bytes::human_bytes,
    cli::IncidentsArgs,
    config::parse_duration_secs,
    model::incident::{ActionKind, Incident, Outcome},
};

pub fn run(args: IncidentsArgs) -> anyhow::Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let since = args.since.as_deref().map(|s| parse_since(s, now)).transpose()?;
    let incidents = incident_log::read_all(&args.file)
        .with_context(|| format!("reading the incident log {}", args.file.display()))?;
    let shown: Vec<&Incident> = incidents.iter().filter(|i| since.is_none_or(|s| i.ended >= s)).collect();
    if args.json {
        for incident in shown {
            println!("{}", incident.to_json_line());
        }
        return Ok(());
    }
    println!(
        "{:<20} {:>9} {:<9} {:<10} {:>10} {:>10} {:<10} TARGET / ACTIONS",
        "STARTED (UTC)", "DURATION", "KIND", "PEAK", "PEAK USE", "FREED", "END"
    );
    for incident in &shown {
        println!(
            "{:<20} {:>8.1}s {:<9} {:<10} {:>10} {:>10} {:<10} {} ({}) {}",
            format_utc(incident.started),
            incident.duration_s,
            word(incident.kind),
            incident.peak_level.as_str(),
            human_bytes(incident.peak_usage_bytes),
            signed_bytes(incident.freed_bytes),
            word(incident.end),
            incident.target,
            incident.policy,
            summary(incident),
        );
    }
    if shown.is_empty() {
        println!("(no incidents{})", if since.is_some() { " in that period" } else { "" });
    }
    Ok(())
}

/// "signal x3, clamp, restore"; dry runs and failures marked.
fn summary(incident: &Incident) -> String {
    let mut parts: Vec<(ActionKind, Outcome, usize)> = Vec::new();
    for action in &incident.actions {
        match parts.last_mut() {
            Some((kind, outcome, n)) if *kind == action.action && *outcome == action.outcome => *n += 1,
            _ => parts.push((action.action, action.outcome, 1)),
        }
    }
    let text: Vec<String> = parts
        .iter()
        .map(|(kind, outcome, n)| {
            let mut s = word(kind);
            if *n > 1 {
                s.push_str(&format!(" x{n}"));
            }
            if *outcome != Outcome::Ok {
                s.push_str(&format!(" [{}]", word(outcome)));
            }
            s
        })
        .collect();
    if text.is_empty() { "no actions".to_owned() } else { text.join(", ") }
}

fn word(value: impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn signed_bytes(bytes: i64) -> String {
    if bytes < 0 { format!("-{}", human_bytes(bytes.unsigned_abs())) } else { human_bytes(bytes as u64) }
}

/// `--since`: a duration back from now ("2h", "90s", "3600"), or a time
/// ("2026-11-27T06:00:00Z", "2026-11-27 06:00", "2026-11-27"; UTC).
pub fn parse_since(text: &str, now: f64) -> anyhow::Result<f64> {
    if let Some(t) = parse_utc(text) {
        return Ok(t);
    }
    match parse_duration_secs(text) {
        Ok(secs) if secs >= 0.0 => Ok(now - secs),
        _ => anyhow::bail!(
            "--since {text:?}: not a duration (\"2h\", \"30m\", \"90s\") nor a UTC time (\"2026-11-27T06:00:00Z\")"
        ),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_utc(text: &str) -> Option<f64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00:00"));
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    if ymd.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || date.len() != 10 {
        return None;
    }
    let mut hms = time.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let min: i64 = hms.next()?.parse().ok()?;
    let s: f64 = hms.next().map_or(Some(0.0), |s| s.parse().ok())?;
    if !(0..24).contains(&h) || !(0..60).contains(&min) || !(0.0..61.0).contains(&s) {
        return None;
    }
    Some((days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60) as f64 + s)
}

fn format_utc(t: f64) -> String {
    let secs = t.floor() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_utc_times() {
        assert_eq!(parse_since("2h", 10_000.0).unwrap(), 2_800.0);
        assert_eq!(parse_since("90", 100.0).unwrap(), 10.0);
        // date -u -d 2026-11-27T06:00:00Z +%s
        assert_eq!(parse_since("2026-11-27T06:00:00Z", 0.0).unwrap(), 1_795_759_200.0);
        assert_eq!(parse_since("2026-11-27 06:00", 0.0).unwrap(), 1_795_759_200.0);
        assert_eq!(parse_since("1970-01-01", 0.0).unwrap(), 0.0);
        assert!(parse_since("yesterday", 0.0).is_err());
        assert!(parse_since("2026-13-01", 0.0).is_err());
    }

    #[test]
    fn utc_formatting_inverts_parsing() {
        for t in [0.0, 951_782_400.0, 1_795_759_200.0, 4_107_542_399.0] {
            assert_eq!(parse_utc(&format_utc(t)), Some(t), "{}", format_utc(t));
        }
        assert_eq!(format_utc(1_795_759_200.5), "2026-11-27 06:00:00");
    }
}
