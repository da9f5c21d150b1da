//! Format 2: JSON lines, each one object with one key naming what it is.
//!
//! ```text
//! {"memwatch_trace":{"version":2,"host_memory":…,"daemon_pid":…,"interval_s":…}}
//! {"process":{"pid":…,"start_time":…,"comm":…,"cmdline":…,"cgroup":…,"unit":…,"heap_ceiling":{"bytes":…,"soft":…}}}   first sight of a process
//! {"tick":{"t":…,"rss":[[pid,start_time,bytes],…],"answers":{"limits":{…},"memory":{…},"knobs":{…},"signals":[…]}}}
//! {"applied":[{"outcome":"ok","detail":"…"},…]}                                  outcomes of the round before
//! {"request":{"t":…,"target":"cgroup:/…","answers":{…}}}                         POST /health/gc
//! {"done":{"t":…,"pass":…,"applied":[…]}}                                       a pass applied off the loop is done
//! {"shutdown":{"t":…}}                                                          memwatch stopped
//! ```
//!
//! `answers` are what the pipeline asked this round
//! (`pipeline::Facts`), so a replay can answer the same questions the same
//! way. A replay under another config may ask what was never read: it then
//! gets "unknown", which never leads to a signal.
use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    sync::Arc,
};

use serde::{Deserialize, Serialize};

use super::{TraceError, error};
use crate::{
    engine::planner::Applied,
    model::{
        cgroup::KnobReading,
        heap_ceiling::HeapCeiling,
        incident::Outcome,
        runtime::Runtime,
        sample::{Counters, ProcessId, ProcessInfo, ProcessSample},
        signals::SignalMasks,
        target_key::TargetKey,
        working_set::CgroupMemory,
    },
};

pub const VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub version: u32,
    /// MemTotal of the recording host: the default host memory of a replay.
    pub host_memory: u64,
    /// The recording daemon's pid: never signalled, in replay either.
    pub daemon_pid: u32,
    pub interval_s: f64,
}

/// The answers the pipeline got in one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Option<u64>>,
    /// What each cgroup target's cgroup was charged (and its pressure).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub memory: BTreeMap<String, Option<CgroupMemory>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub knobs: BTreeMap<String, KnobReading>,
    /// (pid, start time, masks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<(u32, u64, Option<SignalMasks>)>,
    /// (pid, start time, runtime).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtimes: Vec<(u32, u64, Option<Runtime>)>,
}

impl Answers {
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
            && self.memory.is_empty()
            && self.knobs.is_empty()
            && self.signals.is_empty()
            && self.runtimes.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessLine {
    pid: u32,
    start_time: u64,
    comm: String,
    cmdline: String,
    cgroup: Option<String>,
    unit: Option<String>,
    /// The heap ceiling the runtime declared, where it did: part of it may
    /// come from its environment, which the trace does not hold. Traces
    /// written before memwatch recorded it have none, and replay reads the
    /// command line's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    heap_ceiling: Option<HeapCeiling>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TickLine {
    t: f64,
    /// (pid, start time, resident bytes) of every live process.
    rss: Vec<(u32, u64, u64)>,
    #[serde(default, skip_serializing_if = "Answers::is_empty")]
    answers: Answers,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestLine {
    t: f64,
    target: TargetKey,
    #[serde(default, skip_serializing_if = "Answers::is_empty")]
    answers: Answers,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppliedLine {
    outcome: Outcome,
    detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    freed_bytes: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DoneLine {
    t: f64,
    pass: u64,
    applied: Vec<AppliedLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShutdownLine {
    t: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    MemwatchTrace(Header),
    Process(ProcessLine),
    Tick(TickLine),
    Applied(Vec<AppliedLine>),
    Request(RequestLine),
    Done(DoneLine),
    Shutdown(ShutdownLine),
}

/// One round of a recording, ready to replay.
#[derive(Debug, Clone)]
pub enum Round {
    Tick {
        t: f64,
        processes: Vec<ProcessSample>,
        answers: Answers,
        applied: Option<Vec<Applied>>,
    },
    Request {
        t: f64,
        target: TargetKey,
        answers: Answers,
        applied: Option<Vec<Applied>>,
    },
    /// The steps of cleanup pass `pass`, applied off the loop, are done.
    Done {
        t: f64,
        pass: u64,
        applied: Vec<Applied>,
    },
    Shutdown {
        t: f64,
        applied: Option<Vec<Applied>>,
    },
}

#[derive(Debug, Clone)]
pub struct Recording {
    pub header: Header,
    pub rounds: Vec<Round>,
}

impl Recording {
    /// Readings in the recording (one per process per interval).
    pub fn samples(&self) -> usize {
        self.rounds.iter().map(|r| if let Round::Tick { processes, .. } = r { processes.len() } else { 0 }).sum()
    }
}

pub fn parse(text: &str) -> Result<Recording, TraceError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let header = match lines.next().map(|(n, l)| (n, serde_json::from_str::<Line>(l))) {
        Some((_, Ok(Line::MemwatchTrace(header)))) if header.version == VERSION => header,
        Some((n, Ok(Line::MemwatchTrace(header)))) => {
            return Err(error(n, format!("format version {}: this memwatch reads version {VERSION}", header.version)));
        }
        Some((n, _)) => return Err(error(n, "expected the header line {\"memwatch_trace\":{…}}")),
        None => return Err(error(1, "empty file")),
    };
    let mut infos: HashMap<ProcessId, Arc<ProcessInfo>> = HashMap::new();
    let mut rounds: Vec<Round> = Vec::new();
    let mut last_t = f64::NEG_INFINITY;
    for (n, text) in lines {
        if text.is_empty() {
            return Err(error(n, "empty line"));
        }
        let line: Line = serde_json::from_str(text).map_err(|e| error(n, e.to_string()))?;
        let mut check_time = |t: f64| {
            if !t.is_finite() || t < last_t {
                return Err(error(n, format!("time {t} is not a finite time at or after {last_t}")));
            }
            last_t = t;
            Ok(())
        };
        match line {
            Line::MemwatchTrace(_) => return Err(error(n, "a second header line")),
            Line::Process(p) => {
                let id = ProcessId { pid: p.pid, start_time: p.start_time };
                if p.heap_ceiling.is_some_and(|c| c.bytes == 0) {
                    return Err(error(n, "heap_ceiling.bytes is 0: a ceiling must be above 0 (or absent for none)"));
                }
                // A line without one (recorded before ceilings were) gets
                // what its command line declares.
                let info = match p.heap_ceiling {
                    Some(ceiling) => ProcessInfo::with_heap_ceiling(p.comm, p.cmdline, p.cgroup, p.unit, Some(ceiling)),
                    None => ProcessInfo::new(p.comm, p.cmdline, p.cgroup, p.unit),
                };
                infos.insert(id, Arc::new(info));
            }
            Line::Tick(tick) => {
                check_time(tick.t)?;
                let mut processes = Vec::with_capacity(tick.rss.len());
                for (pid, start_time, rss) in tick.rss {
                    let id = ProcessId { pid, start_time };
                    let info = infos.get(&id).ok_or_else(|| {
                        error(n, format!("process {pid} (start time {start_time}) has no process line before it"))
                    })?;
                    let counters = Counters { rss_anon: rss, ..Counters::default() };
                    processes.push(ProcessSample { id, info: Arc::clone(info), counters });
                }
                rounds.push(Round::Tick { t: tick.t, processes, answers: tick.answers, applied: None });
            }
            Line::Request(request) => {
                check_time(request.t)?;
                rounds.push(Round::Request {
                    t: request.t,
                    target: request.target,
                    answers: request.answers,
                    applied: None,
                });
            }
            Line::Done(done) => {
                check_time(done.t)?;
                rounds.push(Round::Done { t: done.t, pass: done.pass, applied: from_lines(done.applied) });
            }
            Line::Shutdown(ShutdownLine { t }) => {
                check_time(t)?;
                rounds.push(Round::Shutdown { t, applied: None });
            }
            Line::Applied(outcomes) => {
                let applied = from_lines(outcomes);
                let slot = match rounds.last_mut() {
                    Some(
                        Round::Tick { applied, .. } | Round::Request { applied, .. } | Round::Shutdown { applied, .. },
                    ) => applied,
                    Some(Round::Done { .. }) => {
                        return Err(error(n, "outcomes after a done line, which holds its own"));
                    }
                    None => return Err(error(n, "outcomes before any round")),
                };
                if slot.replace(applied).is_some() {
                    return Err(error(n, "a second outcomes line for one round"));
                }
            }
        }
    }
    Ok(Recording { header, rounds })
}

fn from_lines(lines: Vec<AppliedLine>) -> Vec<Applied> {
    lines.into_iter().map(|a| Applied { freed_bytes: a.freed_bytes, ..Applied::new(a.outcome, a.detail) }).collect()
}

fn to_lines(applied: &[Applied]) -> Vec<AppliedLine> {
    applied
        .iter()
        .map(|a| AppliedLine { outcome: a.outcome, detail: a.detail.clone(), freed_bytes: a.freed_bytes })
        .collect()
}

/// Writes a recording line by line, as the rounds happen.
pub struct Recorder {
    out: Box<dyn Write + Send>,
    /// Processes whose process line is written (with the info it gave).
    known: HashMap<ProcessId, Arc<ProcessInfo>>,
}

impl Recorder {
    pub fn new(mut out: Box<dyn Write + Send>, header: Header) -> std::io::Result<Self> {
        write_line(&mut out, &Line::MemwatchTrace(header))?;
        Ok(Self { out, known: HashMap::new() })
    }

    pub fn tick(&mut self, t: f64, processes: &[ProcessSample], answers: Answers) -> std::io::Result<()> {
        for process in processes {
            // exec keeps the identity but changes the name: a new line then.
            if self
                .known
                .get(&process.id)
                .is_some_and(|known| Arc::ptr_eq(known, &process.info) || **known == *process.info)
            {
                continue;
            }
            let info = &process.info;
            let line = ProcessLine {
                pid: process.id.pid,
                start_time: process.id.start_time,
                comm: info.comm.clone(),
                cmdline: info.cmdline.clone(),
                cgroup: info.cgroup.clone(),
                unit: info.unit.clone(),
                heap_ceiling: info.heap_ceiling,
            };
            write_line(&mut self.out, &Line::Process(line))?;
            self.known.insert(process.id, Arc::clone(info));
        }
        // Forget the dead, so a long recording's memory stays bounded.
        if self.known.len() > 2 * processes.len() + 1024 {
            let live: std::collections::HashSet<ProcessId> = processes.iter().map(|p| p.id).collect();
            self.known.retain(|id, _| live.contains(id));
        }
        let rss = processes.iter().map(|p| (p.id.pid, p.id.start_time, p.counters.rss())).collect();
        write_line(&mut self.out, &Line::Tick(TickLine { t, rss, answers }))
    }

    pub fn request(&mut self, t: f64, target: &TargetKey, answers: Answers) -> std::io::Result<()> {
        write_line(&mut self.out, &Line::Request(RequestLine { t, target: target.clone(), answers }))
    }

    pub fn shutdown(&mut self, t: f64) -> std::io::Result<()> {
        write_line(&mut self.out, &Line::Shutdown(ShutdownLine { t }))
    }

    /// The outcomes of the round just written (nothing when it decided nothing).
    pub fn applied(&mut self, applied: &[Applied]) -> std::io::Result<()> {
        if applied.is_empty() {
            return self.out.flush();
        }
        write_line(&mut self.out, &Line::Applied(to_lines(applied)))?;
        self.out.flush()
    }

    /// Cleanup pass `pass`, applied off the loop, is done at `t`.
    pub fn done(&mut self, t: f64, pass: u64, applied: &[Applied]) -> std::io::Result<()> {
        write_line(&mut self.out, &Line::Done(DoneLine { t, pass, applied: to_lines(applied) }))?;
        self.out.flush()
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn write_line(out: &mut dyn Write, line: &Line) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(line).map_err(std::io::Error::other)?;
    text.push(b'\n');
    out.write_all(&text)
}

#[path = "v2_facts.rs"]
mod facts;
pub use facts::{RecordedFacts, RecordingFacts};

#[cfg(test)]
#[path = "v2_tests.rs"]
mod tests;
