//! Byte counts for people: every log line, table and event message that shows
//! a size or a change of size formats it here, so they all read alike.

/// Bytes in binary units with one decimal ("12.5 MiB"), for people.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// A signed change with its sign always shown ("+240.0 MiB", "-4.0 KiB", "0 B").
pub fn human_change(change: i64) -> String {
    match change {
        0 => "0 B".to_owned(),
        c if c > 0 => format!("+{}", human_bytes(c as u64)),
        c => format!("-{}", human_bytes(c.unsigned_abs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_change(-(3 << 30)), "-3.0 GiB");
        assert_eq!(human_change(0), "0 B");
    }
}
