//! The pipeline's questions (`pipeline::Facts`) answered from a recording
//! (replay), or asked of the system and kept (recording).
use super::Answers;
use crate::{
    model::{
        cgroup::KnobReading, runtime::Runtime, sample::ProcessId, signals::SignalMasks, working_set::CgroupMemory,
    },
    pipeline::Facts,
};

/// Answers a round's questions from what the recording holds.
pub struct RecordedFacts<'a> {
    pub answers: &'a Answers,
}

impl Facts for RecordedFacts<'_> {
    fn cgroup_limit(&mut self, cgroup: &str) -> Option<u64> {
        self.answers.limits.get(cgroup).copied().flatten()
    }

    /// A recording made before memwatch read it has none: the processes'
    /// RSS stands in, as it did live then.
    fn cgroup_memory(&mut self, cgroup: &str) -> Option<CgroupMemory> {
        self.answers.memory.get(cgroup).copied().flatten()
    }

    fn knob(&mut self, cgroup: &str) -> KnobReading {
        self.answers.knobs.get(cgroup).cloned().unwrap_or_else(|| KnobReading::Unreadable {
            gone: false,
            detail: format!("cgroup {cgroup}: its knob is not in the recording"),
        })
    }

    fn signals(&mut self, id: ProcessId) -> Option<SignalMasks> {
        self.answers
            .signals
            .iter()
            .find(|(pid, start, _)| *pid == id.pid && *start == id.start_time)
            .and_then(|(_, _, m)| *m)
    }

    fn runtime(&mut self, id: ProcessId) -> Option<Runtime> {
        self.answers
            .runtimes
            .iter()
            .find(|(pid, start, _)| *pid == id.pid && *start == id.start_time)
            .and_then(|(_, _, r)| *r)
    }
}

/// Asks `inner` and keeps every answer, for the recording.
pub struct RecordingFacts<'a> {
    pub inner: &'a mut dyn Facts,
    pub answers: Answers,
}

impl<'a> RecordingFacts<'a> {
    pub fn new(inner: &'a mut dyn Facts) -> Self {
        Self { inner, answers: Answers::default() }
    }
}

impl Facts for RecordingFacts<'_> {
    fn cgroup_limit(&mut self, cgroup: &str) -> Option<u64> {
        let limit = self.inner.cgroup_limit(cgroup);
        self.answers.limits.insert(cgroup.to_owned(), limit);
        limit
    }

    fn cgroup_memory(&mut self, cgroup: &str) -> Option<CgroupMemory> {
        let memory = self.inner.cgroup_memory(cgroup);
        self.answers.memory.insert(cgroup.to_owned(), memory);
        memory
    }

    fn knob(&mut self, cgroup: &str) -> KnobReading {
        let knob = self.inner.knob(cgroup);
        self.answers.knobs.insert(cgroup.to_owned(), knob.clone());
        knob
    }

    fn signals(&mut self, id: ProcessId) -> Option<SignalMasks> {
        let masks = self.inner.signals(id);
        self.answers.signals.push((id.pid, id.start_time, masks));
        masks
    }

    fn runtime(&mut self, id: ProcessId) -> Option<Runtime> {
        let runtime = self.inner.runtime(id);
        self.answers.runtimes.push((id.pid, id.start_time, runtime));
        runtime
    }
}
