//! `memwatch probe` output: JSON lines for machines, an aligned table for people.
use std::fmt::Write as _;

use serde::Serialize;

use crate::bytes::{human_bytes, human_change};

use crate::{model::delta::ProcessDelta, model::sample::Mode};

/// One `--json` line. The field names are part of memwatch's interface.
#[derive(Debug, Serialize)]
pub struct ProbeRecord<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub rss_anon_bytes: u64,
    pub rss_anon_delta_bytes: i64,
    pub rss_file_bytes: u64,
    pub rss_file_delta_bytes: i64,
    /// `null` in procfs mode, which cannot see syscalls.
    pub mmap_bytes: Option<u64>,
    pub munmap_bytes: Option<u64>,
    pub brk_bytes: Option<u64>,
    pub page_faults: u64,
    pub mode: Mode,
}

impl<'a> ProbeRecord<'a> {
    pub fn new(row: &'a ProcessDelta, mode: Mode) -> Self {
        Self {
            pid: row.id.pid,
            comm: &row.info.comm,
            rss_anon_bytes: row.current.rss_anon,
            rss_anon_delta_bytes: row.rss_anon_delta,
            rss_file_bytes: row.current.rss_file,
            rss_file_delta_bytes: row.rss_file_delta,
            mmap_bytes: row.mmap_bytes,
            munmap_bytes: row.munmap_bytes,
            brk_bytes: row.brk_bytes,
            page_faults: row.page_faults,
            mode,
        }
    }
}

pub fn json_lines(rows: &[ProcessDelta], mode: Mode) -> String {
    let mut out = String::new();
    for row in rows {
        let line = serde_json::to_string(&ProbeRecord::new(row, mode))
            .expect("a struct of numbers and strings always serialises");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn optional_bytes(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), human_bytes)
}

pub fn table(rows: &[ProcessDelta], mode: Mode) -> String {
    let header = ["PID", "COMM", "ANON", "ΔANON", "FILE", "ΔFILE", "MMAP", "MUNMAP", "BRK", "FAULTS"];
    let body: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            let comm = if r.exited { format!("{} (exited)", r.info.comm) } else { r.info.comm.clone() };
            [
                r.id.pid.to_string(),
                comm,
                human_bytes(r.current.rss_anon),
                human_change(r.rss_anon_delta),
                human_bytes(r.current.rss_file),
                human_change(r.rss_file_delta),
                optional_bytes(r.mmap_bytes),
                optional_bytes(r.munmap_bytes),
                optional_bytes(r.brk_bytes),
                r.page_faults.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w - cell.chars().count();
            // Text columns (pid aside) left-aligned, figures right-aligned.
            if i == 1 {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{cell}", " ".repeat(pad));
            }
            out.push_str(if i + 1 == cells.len() { "\n" } else { "  " });
        }
    };
    line(&header);
    for row in &body {
        line(&row.each_ref().map(String::as_str));
    }
    if body.is_empty() {
        out.push_str("(no process changed in the window)\n");
    }
    let _ = writeln!(out, "mode={mode}");
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::sample::{Counters, ProcessId, ProcessInfo};

    fn row() -> ProcessDelta {
        ProcessDelta {
            id: ProcessId { pid: 42, start_time: 1 },
            info: Arc::new(ProcessInfo { comm: "leaky".into(), ..Default::default() }),
            current: Counters { rss_anon: 256 << 20, rss_file: 4096, ..Default::default() },
            rss_anon_delta: 250 << 20,
            rss_file_delta: 0,
            rss_shmem_delta: 0,
            mmap_bytes: Some(256 << 20),
            munmap_bytes: Some(0),
            brk_bytes: None,
            page_faults: 65_536,
            exited: false,
        }
    }

    #[test]
    fn json_lines_carry_exactly_the_documented_fields() {
        let out = json_lines(&[row()], Mode::Ebpf);
        let value: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        let mut keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "brk_bytes",
                "comm",
                "mmap_bytes",
                "mode",
                "munmap_bytes",
                "page_faults",
                "pid",
                "rss_anon_bytes",
                "rss_anon_delta_bytes",
                "rss_file_bytes",
                "rss_file_delta_bytes",
            ]
        );
        assert_eq!(value["rss_anon_delta_bytes"], 250 << 20);
        assert_eq!(value["brk_bytes"], serde_json::Value::Null);
        assert_eq!(value["mode"], "ebpf");
    }

    #[test]
    fn table_shows_changes_with_signs_and_unknowns_as_dashes() {
        let out = table(&[row()], Mode::Procfs);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("PID  COMM"));
        assert!(lines[1].contains("+250.0 MiB"), "{out}");
        assert!(lines[1].contains(" - "), "brk unknown shows as a dash: {out}");
        assert_eq!(lines.last(), Some(&"mode=procfs"));
    }
}
