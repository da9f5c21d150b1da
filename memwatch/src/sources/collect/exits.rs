//! Matching the kernel's exit events with the processes /proc stopped showing.
//!
//! The two arrive out of step: a process read alive by one scan may exit a
//! moment later, so its exit event is drained in the same round in which
//! /proc still listed it. Reconciling them here, apart from any I/O, keeps
//! every exit reported exactly once.
use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
};

use memwatch_ebpf::{Feature, ProcCounters};

use super::ebpf::exit_counters;
use crate::model::sample::{Counters, ProcessId, ProcessInfo, ProcessSample};

/// A process's final figures, from its exit event.
#[derive(Debug, Clone)]
pub struct Exit {
    counters: ProcCounters,
    comm: String,
    /// Already held back one round because /proc still showed the pid.
    waited: bool,
}

impl Exit {
    pub fn new(counters: ProcCounters, comm: String) -> Self {
        Self { counters, comm, waited: false }
    }
}

/// The processes that exited this round, each once.
///
/// `vanished` are last round's samples of processes /proc no longer shows,
/// `alive` the pids it still shows, `exits` the exit events not yet used
/// (matched ones are removed; ones held back for a round stay).
pub fn reconcile(
    vanished: Vec<ProcessSample>,
    alive: &HashSet<u32>,
    exits: &mut HashMap<u32, Exit>,
    features: &BTreeSet<Feature>,
) -> Vec<ProcessSample> {
    // Gone since the last scan: the final kernel figures if the exit event
    // came, else the last sample (the event was lost; `dropped` says so).
    let mut exited: Vec<ProcessSample> = vanished
        .into_iter()
        .map(|mut last| {
            if let Some(exit) = exits.remove(&last.id.pid) {
                last.counters = exit_counters(&exit.counters, features, last.counters);
            }
            last
        })
        .collect();

    // An exit of a process this scan still saw alive waits one round, to
    // meet its vanishing then. Any other exit is of a process born and gone
    // between two scans: /proc never showed it, so its start time is unknown
    // (0) and its name is the one at exit.
    let mut short_lived = Vec::new();
    for (pid, mut exit) in std::mem::take(exits) {
        if alive.contains(&pid) && !exit.waited {
            exit.waited = true;
            exits.insert(pid, exit);
            continue;
        }
        short_lived.push(ProcessSample {
            id: ProcessId { pid, start_time: 0 },
            info: Arc::new(ProcessInfo { comm: exit.comm, ..Default::default() }),
            counters: exit_counters(&exit.counters, features, Counters::default()),
        });
    }
    short_lived.sort_by_key(|s| s.id);
    exited.append(&mut short_lived);
    exited
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_sample(pid: u32, faults: u64) -> ProcessSample {
        ProcessSample {
            id: ProcessId { pid, start_time: 77 },
            info: Arc::new(ProcessInfo { comm: "worker".into(), ..Default::default() }),
            counters: Counters { rss_anon: 4096, page_faults: faults, ..Default::default() },
        }
    }

    fn all() -> BTreeSet<Feature> {
        Feature::ALL.into_iter().collect()
    }

    /// An exit whose probe read the process's memory (RSS 8 KiB of anon).
    fn exit(faults: u64) -> Exit {
        let read = ProcCounters { rss_anon: 8192, rss_file: 0, rss_swap: 0, rss_shmem: 0, ..ProcCounters::NEW };
        Exit::new(ProcCounters { page_faults: faults, ..read }, "worker".into())
    }

    #[test]
    fn a_vanished_process_takes_its_final_figures_from_the_exit_event() {
        let mut exits = HashMap::from([(10, exit(900))]);
        let out = reconcile(vec![last_sample(10, 500)], &HashSet::new(), &mut exits, &all());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id.start_time, 77, "keeps the identity /proc gave it");
        assert_eq!(out[0].counters.page_faults, 900);
        assert_eq!(out[0].counters.rss_anon, 8192, "the RSS read at exit, not the last reading's");
        assert!(exits.is_empty());
    }

    #[test]
    fn without_an_exit_event_the_last_sample_is_reported() {
        let out = reconcile(vec![last_sample(11, 500)], &HashSet::new(), &mut HashMap::new(), &all());
        assert_eq!(out[0].counters.page_faults, 500);
    }

    #[test]
    fn an_exit_racing_the_scan_is_reported_once_a_round_later() {
        let mut exits = HashMap::from([(12, exit(300))]);
        // Round 1: /proc still showed pid 12 alive; nothing is reported yet.
        let round1 = reconcile(vec![], &HashSet::from([12]), &mut exits, &all());
        assert!(round1.is_empty());
        assert_eq!(exits.len(), 1);
        // Round 2: it vanished; the held event supplies the final figures.
        let round2 = reconcile(vec![last_sample(12, 100)], &HashSet::new(), &mut exits, &all());
        assert_eq!(round2.len(), 1);
        assert_eq!(round2[0].counters.page_faults, 300);
        assert!(exits.is_empty(), "reported once, then forgotten");
    }

    #[test]
    fn a_process_never_seen_by_proc_is_reported_with_its_name_at_exit() {
        let mut exits = HashMap::from([(13, exit(42))]);
        let out = reconcile(vec![], &HashSet::new(), &mut exits, &all());
        assert_eq!(out[0].id, ProcessId { pid: 13, start_time: 0 });
        assert_eq!(out[0].info.comm, "worker");
        assert_eq!(out[0].counters.page_faults, 42);
    }

    #[test]
    fn a_held_exit_whose_pid_is_reused_still_reports_once() {
        let mut exits = HashMap::from([(14, exit(5))]);
        reconcile(vec![], &HashSet::from([14]), &mut exits, &all());
        // Round 2: the pid belongs to a new process now (still "alive"), and
        // the old one's vanishing was missed: report the exit, don't hold it again.
        let out = reconcile(vec![], &HashSet::from([14]), &mut exits, &all());
        assert_eq!(out.len(), 1);
        assert!(exits.is_empty());
    }
}
