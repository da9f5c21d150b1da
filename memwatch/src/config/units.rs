//! Human-friendly values: sizes ("512MiB"), shares of host memory ("25%"),
//! durations ("30m").

/// Bytes from a size string: a number with an optional unit. Binary units
/// (KiB, MiB, GiB, TiB, and bare K, M, G, T as systemd reads them) are powers
/// of 1024; decimal units (KB, MB, GB, TB) are powers of 1000; B or nothing
/// is bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 1073741824, \"512MiB\", \"2G\", \"25%\")"))?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "K" | "KiB" => 1024.0,
        "M" | "MiB" => 1024.0 * 1024.0,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        other => {
            return Err(format!("unknown size unit {other:?} in {text:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"));
        }
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    if bytes.fract() != 0.0 {
        return Err(format!("{text:?} is not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

/// A share of host memory from "NN%" (None when the text has no '%').
pub fn parse_percent(text: &str) -> Option<Result<f64, String>> {
    let number = text.trim().strip_suffix('%')?;
    Some(number.trim().parse::<f64>().map_err(|_| format!("{text:?} is not a percentage")).and_then(|p| {
        if p > 0.0 && p <= 100.0 {
            Ok(p / 100.0)
        } else {
            Err(format!("{text:?}: a percentage of host memory must be more than 0% and at most 100%"))
        }
    }))
}

/// The longest duration any setting takes: a year, far beyond any
/// sensible value and far below where converting it could overflow.
pub const MAX_DURATION_SECS: f64 = 365.0 * 86_400.0;

/// `secs` if it is at most [`MAX_DURATION_SECS`]: every duration a setting
/// takes, from the file or the environment, passes through here.
pub fn at_most_max_duration(secs: f64) -> Result<f64, String> {
    if secs > MAX_DURATION_SECS {
        return Err(format!("{secs} seconds is more than {} days", MAX_DURATION_SECS / 86_400.0));
    }
    Ok(secs)
}

/// Seconds from "90", "90s", "30m", "2h" or "1d".
pub fn parse_duration_secs(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1.0),
        Some((i, 'm')) => (&text[..i], 60.0),
        Some((i, 'h')) => (&text[..i], 3600.0),
        Some((i, 'd')) => (&text[..i], 86400.0),
        _ => (text, 1.0),
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(|n| n * scale)
        .ok_or_else(|| format!("{text:?} is not a duration (examples: 1800, \"90s\", \"30m\", \"2h\")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_binary_and_decimal_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert!(parse_size("12 parsecs").unwrap_err().contains("unknown size unit"));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0.1B").unwrap_err().contains("whole number of bytes"));
    }

    #[test]
    fn percentages_and_durations() {
        assert_eq!(parse_percent("25%"), Some(Ok(0.25)));
        assert_eq!(parse_percent("512MiB"), None);
        assert!(parse_percent("0%").unwrap().is_err());
        assert!(parse_percent("150%").unwrap().is_err());
        assert_eq!(parse_duration_secs("30m"), Ok(1800.0));
        assert_eq!(parse_duration_secs("2h"), Ok(7200.0));
        assert_eq!(parse_duration_secs("45"), Ok(45.0));
        assert!(parse_duration_secs("soon").is_err());
        assert_eq!(at_most_max_duration(86_400.0), Ok(86_400.0));
        assert!(at_most_max_duration(1e300).unwrap_err().contains("more than 365 days"));
    }
}
