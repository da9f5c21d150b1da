//! Traces of the first format: CSV with the header `timestamp_s,key,rss_bytes,limit_bytes`,
//! one reading per row, keys interleaved in any order but each key's
//! timestamps increasing. `limit_bytes` may be empty (then the policy's or the
//! host's limit applies). A fifth column, `heap_ceiling_bytes`, may follow
//! (header and every row): the heap ceiling the target's runtime declared
//! (`model::heap_ceiling`), empty where it declared none.
//!
//! Parsing is strict: every malformed row is an error naming its line, and
//! nothing is skipped, because a replay that quietly dropped rows would give
//! verdicts about a trace that never happened.
use std::collections::HashMap;

pub const HEADER: &str = "timestamp_s,key,rss_bytes,limit_bytes";
pub const HEADER_WITH_CEILING: &str = "timestamp_s,key,rss_bytes,limit_bytes,heap_ceiling_bytes";

#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    /// 1-based line in the file.
    pub line: usize,
    pub t: f64,
    /// Index into `Trace::keys`.
    pub key: usize,
    pub rss_bytes: u64,
    pub limit_bytes: Option<u64>,
    pub heap_ceiling_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub keys: Vec<TargetKey>,
    pub rows: Vec<TraceRow>,
}

use super::{TraceError, error};
use crate::model::target_key::TargetKey;

pub fn parse(text: &str) -> Result<Trace, TraceError> {
    let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)));
    let header = match lines.next() {
        Some((_, header)) if header == HEADER || header == HEADER_WITH_CEILING => header,
        Some((_, "")) => {
            return Err(error(1, format!("empty file: expected the header {HEADER:?}")));
        }
        Some((_, header)) => {
            return Err(error(1, format!("bad header {header:?}: expected {HEADER:?} or {HEADER_WITH_CEILING:?}")));
        }
        None => unreachable!("split yields at least one item"),
    };
    let columns = header.split(',').count();
    let mut trace = Trace::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    // Per key: the last timestamp and its line.
    let mut last: Vec<(f64, usize)> = Vec::new();
    let total_lines = text.split('\n').count();
    for (line, row) in lines {
        if row.is_empty() {
            // The newline ending the last row leaves one empty piece; any
            // other empty line is an error, like any other malformed row.
            if line == total_lines {
                break;
            }
            return Err(error(line, "empty line"));
        }
        let fields: Vec<&str> = row.split(',').collect();
        if fields.len() != columns {
            return Err(error(line, format!("expected {columns} columns ({header}), found {}", fields.len())));
        }
        let t = parse_timestamp(fields[0]).map_err(|m| error(line, m))?;
        let key_text = fields[1];
        if key_text.is_empty() {
            return Err(error(line, "key is empty"));
        }
        let rss_bytes = parse_bytes("rss_bytes", fields[2]).map_err(|m| error(line, m))?;
        let limit_bytes = match fields[3] {
            "" => None,
            text => match parse_bytes("limit_bytes", text).map_err(|m| error(line, m))? {
                0 => {
                    return Err(error(line, "limit_bytes is 0: a limit must be above 0 (or empty for none)"));
                }
                limit => Some(limit),
            },
        };
        let heap_ceiling_bytes = match fields.get(4).copied() {
            None | Some("") => None,
            Some(text) => match parse_bytes("heap_ceiling_bytes", text).map_err(|m| error(line, m))? {
                0 => return Err(error(line, "heap_ceiling_bytes is 0: a ceiling must be above 0 (or empty for none)")),
                ceiling => Some(ceiling),
            },
        };
        let key = match index.get(key_text) {
            Some(&key) => {
                let (previous, previous_line) = last[key];
                if t <= previous {
                    return Err(error(
                        line,
                        format!(
                            "timestamp {} is not after {} (line {previous_line}) for key {key_text:?}: timestamps must increase per key",
                            fields[0],
                            format_seconds(previous)
                        ),
                    ));
                }
                key
            }
            None => {
                let key = trace.keys.len();
                trace.keys.push(TargetKey::from(key_text));
                index.insert(key_text.to_owned(), key);
                last.push((t, line));
                key
            }
        };
        last[key] = (t, line);
        trace.rows.push(TraceRow { line, t, key, rss_bytes, limit_bytes, heap_ceiling_bytes });
    }
    Ok(trace)
}

fn parse_timestamp(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("timestamp_s {text:?} is not a number"))?;
    if !value.is_finite() {
        return Err(format!("timestamp_s {text:?} is not a finite number"));
    }
    if value < 0.0 {
        return Err(format!("timestamp_s {text} is negative"));
    }
    Ok(value)
}

fn parse_bytes(column: &str, text: &str) -> Result<u64, String> {
    if text.starts_with('-') {
        return Err(format!("{column} {text} is negative"));
    }
    text.parse().map_err(|_| format!("{column} {text:?} is not a whole number of bytes"))
}

fn format_seconds(t: f64) -> String {
    if t.fract() == 0.0 { format!("{t:.0}") } else { format!("{t:.3}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(text: &str) -> TraceError {
        parse(text).expect_err("must be rejected")
    }

    #[test]
    fn parses_interleaved_keys_and_empty_limits() {
        let trace = parse("timestamp_s,key,rss_bytes,limit_bytes\n0,a,10,100\n0,b,20,\n5.5,a,11,100\n").unwrap();
        assert_eq!(trace.keys, [TargetKey::from("a"), TargetKey::from("b")]);
        assert_eq!(trace.rows.len(), 3);
        assert_eq!(
            trace.rows[1],
            TraceRow { line: 3, t: 0.0, key: 1, rss_bytes: 20, limit_bytes: None, heap_ceiling_bytes: None }
        );
        assert_eq!(trace.rows[2].t, 5.5);
        assert!(parse("timestamp_s,key,rss_bytes,limit_bytes\r\n0,a,1,\r\n").is_ok(), "CRLF files");
    }

    #[test]
    fn header_problems_are_line_one() {
        assert_eq!(fails("").line, 1);
        let e = fails("time,key,rss,limit\n0,a,1,\n");
        assert_eq!(e.line, 1);
        assert!(e.message.contains("bad header"), "{e}");
    }

    #[test]
    fn each_malformed_row_names_its_line_and_problem() {
        let h = "timestamp_s,key,rss_bytes,limit_bytes\n0,a,1,\n";
        let cases = [
            ("5,a,1\n", "expected 4 columns"),
            ("5,a,1,2,3\n", "expected 4 columns"),
            ("five,a,1,\n", "timestamp_s \"five\" is not a number"),
            ("-5,b,1,\n", "negative"),
            ("5,a,-1,\n", "rss_bytes -1 is negative"),
            ("5,a,1.5,\n", "not a whole number"),
            ("5,a,1,x\n", "limit_bytes \"x\""),
            ("5,a,1,0\n", "limit_bytes is 0"),
            ("5,,1,\n", "key is empty"),
            ("0,a,1,\n", "not after 0 (line 2)"),
            ("\n5,a,1,\n", "empty line"),
        ];
        for (row, needle) in cases {
            let e = fails(&format!("{h}{row}"));
            assert_eq!(e.line, 3, "{row:?}: {e}");
            assert!(e.to_string().starts_with("line 3: ") && e.message.contains(needle), "{row:?}: {e}");
        }
        let h = "timestamp_s,key,rss_bytes,limit_bytes,heap_ceiling_bytes\n0,a,1,,\n";
        for (row, needle) in [
            ("5,a,1,\n", "expected 5 columns"),
            ("5,a,1,,x\n", "heap_ceiling_bytes \"x\""),
            ("5,a,1,,0\n", "heap_ceiling_bytes is 0"),
        ] {
            let e = fails(&format!("{h}{row}"));
            assert!(e.line == 3 && e.message.contains(needle), "{row:?}: {e}");
        }
    }

    #[test]
    fn a_fifth_column_carries_the_heap_ceiling_where_one_was_declared() {
        let trace =
            parse("timestamp_s,key,rss_bytes,limit_bytes,heap_ceiling_bytes\n0,jvm,10,100,80\n0,sh,5,100,\n").unwrap();
        let ceilings: Vec<Option<u64>> = trace.rows.iter().map(|r| r.heap_ceiling_bytes).collect();
        assert_eq!(ceilings, [Some(80), None]);
    }
}
