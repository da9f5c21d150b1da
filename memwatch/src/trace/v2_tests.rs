use super::*;
use crate::{
    model::cgroup::{Knob, Limit},
    pipeline::Facts,
};

fn process(pid: u32, comm: &str, rss: u64) -> ProcessSample {
    ProcessSample {
        id: ProcessId { pid, start_time: 77 },
        info: Arc::new(ProcessInfo::new(
            comm.into(),
            format!("/usr/bin/{comm} --serve"),
            Some("/app.slice/api.service".into()),
            Some("api.service".into()),
        )),
        counters: Counters { rss_anon: rss, ..Default::default() },
    }
}

/// A Write that hands its bytes to the test.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn header() -> Header {
    Header { version: VERSION, host_memory: 16 << 30, daemon_pid: 999, interval_s: 5.0 }
}

#[test]
fn a_recording_reads_back_round_by_round_with_its_answers_and_outcomes() {
    let out = Shared::default();
    let mut recorder = Recorder::new(Box::new(out.clone()), header()).unwrap();
    let procs = [process(10, "api", 100), process(11, "worker", 50)];
    let mut answers = Answers::default();
    answers.limits.insert("/app.slice/api.service".into(), Some(1 << 30));
    answers.knobs.insert(
        "/app.slice/api.service".into(),
        KnobReading::Read { knob: Knob::MemoryHigh, limit: Limit::Max, usage: Some(4096), reclaim: true },
    );
    answers.signals.push((10, 77, Some(SignalMasks { caught: 1 << 9, ..Default::default() })));
    let pressure = crate::model::working_set::Pressure { some_avg10: 12.5, some_avg60: 3.0, ..Default::default() };
    let memory = CgroupMemory { charged_bytes: 9 << 20, inactive_file_bytes: 1 << 20, pressure: Some(pressure) };
    answers.memory.insert("/app.slice/api.service".into(), Some(memory));
    answers.memory.insert("/app.slice/gone.service".into(), None);
    recorder.tick(1000.5, &procs, answers.clone()).unwrap();
    recorder
        .applied(&[Applied {
            outcome: Outcome::Ok,
            detail: "SIGUSR1 (pass 1) to 1 of 2 process(es)".into(),
            done_after_s: 0.003,
            freed_bytes: None,
        }])
        .unwrap();
    // The same processes again: no second process line.
    recorder.tick(1005.5, &procs, Answers::default()).unwrap();
    recorder.request(1006.0, &TargetKey::cgroup("/app.slice/api.service"), Answers::default()).unwrap();
    let freed = Applied { freed_bytes: Some(4096), ..Applied::new(Outcome::Ok, "memory.reclaim asked for 8 KiB") };
    recorder.done(1006.5, 3, std::slice::from_ref(&freed)).unwrap();
    recorder.shutdown(1007.0).unwrap();
    recorder.finish().unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("{\"process\"")).count(), 2, "{text}");

    let recording = parse(&text).unwrap();
    assert_eq!(recording.header, header());
    assert_eq!(recording.rounds.len(), 5);
    assert_eq!(recording.samples(), 4);
    let Round::Tick { t, processes, answers: read, applied } = &recording.rounds[0] else { panic!("a tick first") };
    assert_eq!(*t, 1000.5);
    assert_eq!(processes.iter().map(|p| (p.id.pid, p.counters.rss())).collect::<Vec<_>>(), [(10, 100), (11, 50)]);
    assert_eq!(processes[0].info.unit.as_deref(), Some("api.service"));
    assert_eq!(read, &answers);
    assert_eq!(applied.as_ref().unwrap()[0].outcome, Outcome::Ok);
    assert!(matches!(&recording.rounds[2], Round::Request { t, .. } if *t == 1006.0));
    assert!(
        matches!(&recording.rounds[3], Round::Done { t, pass: 3, applied } if *t == 1006.5 && applied[..] == [freed.clone()]),
        "{:?}",
        recording.rounds[3]
    );
    assert!(matches!(&recording.rounds[4], Round::Shutdown { t, applied: None } if *t == 1007.0));

    let mut facts = RecordedFacts { answers: &answers };
    assert_eq!(facts.cgroup_limit("/app.slice/api.service"), Some(1 << 30));
    assert_eq!(facts.cgroup_limit("/other"), None);
    assert!(facts.signals(ProcessId { pid: 10, start_time: 77 }).is_some());
    assert_eq!(facts.signals(ProcessId { pid: 10, start_time: 78 }), None, "another process with that pid");
    assert!(matches!(facts.knob("/other"), KnobReading::Unreadable { gone: false, .. }));
}

#[test]
fn a_ceiling_the_environment_declared_replays_as_it_was_read() {
    let out = Shared::default();
    let mut recorder = Recorder::new(Box::new(out.clone()), header()).unwrap();
    let mut go = process(20, "api", 100);
    // GOMEMLIMIT: not on the command line.
    Arc::make_mut(&mut go.info).heap_ceiling = Some(HeapCeiling { bytes: 768 << 20, soft: true });
    let jvm = ProcessSample {
        info: Arc::new(ProcessInfo::new("java".into(), "java -Xmx1g Main".into(), None, None)),
        ..process(21, "java", 50)
    };
    recorder.tick(5.0, &[go, jvm, process(22, "sh", 10)], Answers::default()).unwrap();
    recorder.finish().unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let Round::Tick { processes, .. } = &parse(&text).unwrap().rounds[0] else { panic!("a tick") };
    let ceilings: Vec<Option<HeapCeiling>> = processes.iter().map(|p| p.info.heap_ceiling).collect();
    let (go, jvm) = (HeapCeiling { bytes: 768 << 20, soft: true }, HeapCeiling::hard(1 << 30));
    assert_eq!(ceilings, [Some(go), Some(jvm), None], "{text}");

    // A recording made before ceilings were recorded: the command line's.
    let old = format!(
        "{}\n{}\n{}\n",
        r#"{"memwatch_trace":{"version":2,"host_memory":17179869184,"daemon_pid":999,"interval_s":5.0}}"#,
        r#"{"process":{"pid":21,"start_time":77,"comm":"java","cmdline":"java -Xmx1g Main","cgroup":null,"unit":null}}"#,
        r#"{"tick":{"t":5.0,"rss":[[21,77,50]]}}"#,
    );
    let Round::Tick { processes, .. } = &parse(&old).unwrap().rounds[0] else { panic!("a tick") };
    assert_eq!(processes[0].info.heap_ceiling, Some(HeapCeiling::hard(1 << 30)));
    let zero = old.replace(r#""unit":null}"#, r#""unit":null,"heap_ceiling":{"bytes":0}}"#);
    assert!(parse(&zero).unwrap_err().to_string().contains("heap_ceiling.bytes is 0"), "{zero}");
}

#[test]
fn malformed_recordings_name_their_line() {
    let head = serde_json::to_string(&Line::MemwatchTrace(header())).unwrap();
    let cases = [
        (String::new(), 1, "empty file"),
        ("timestamp_s,key".to_owned(), 1, "header line"),
        (format!("{head}\n{{\"tick\":{{\"t\":5,\"rss\":[[1,2,3]]}}}}"), 2, "no process line"),
        (
            format!("{head}\n{{\"tick\":{{\"t\":5,\"rss\":[]}}}}\n{{\"tick\":{{\"t\":4,\"rss\":[]}}}}"),
            3,
            "at or after 5",
        ),
        (format!("{head}\n{{\"applied\":[]}}"), 2, "before any round"),
        (
            format!("{head}\n{{\"done\":{{\"t\":5,\"pass\":1,\"applied\":[]}}}}\n{{\"applied\":[]}}"),
            3,
            "after a done line",
        ),
        (format!("{head}\n{{\"tick\":{{\"t\":5,\"rss\":[],\"extra\":1}}}}"), 2, "unknown field"),
        (format!("{head}\n\n"), 2, "empty line"),
        (head.replace("\"version\":2", "\"version\":3"), 1, "version 3"),
    ];
    for (text, line, needle) in cases {
        let e = parse(&text).expect_err(&text);
        assert_eq!(e.line, line, "{text}: {e}");
        assert!(e.message.contains(needle), "{text}: {e}");
    }
}
