//! Loads the kernel programs, attaches them, and reads their maps.
use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::{RawTracePoint, TracePoint},
};
use memwatch_ebpf::{
    ErrorKind, Feature, PROBES, ProbeSpec, ProcCounters, ProcEvent, RSS_STAT_BTF, TracepointLayout, names,
};

use super::{btf, format, privileges, tracefs};

/// The kernel programs, built by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/memwatch-probes"));

/// Why the probes could not be used. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    NotPermitted(String),
    #[error("{0}")]
    Tracefs(String),
    #[error(
        "tracepoint {category}:{event} does not exist in this kernel ({path} is missing); \
         memwatch needs kernel {category} tracepoints (CONFIG_FTRACE_SYSCALLS for syscalls)"
    )]
    MissingTracepoint { category: &'static str, event: &'static str, path: PathBuf },
    #[error("cannot read tracepoint format {path}: {detail}")]
    Format { path: PathBuf, detail: String },
    #[error(
        "this memwatch binary was built without its kernel programs (AYA_BUILD_SKIP); \
         rebuild it with `cargo xtask build`"
    )]
    NoObject,
    #[error("loading the eBPF object failed: {0}")]
    Load(#[source] aya::EbpfError),
    #[error("the eBPF object has no {kind} named {name}")]
    Missing { kind: &'static str, name: &'static str },
    #[error("{action} program {name} failed: {source}")]
    Program { action: &'static str, name: &'static str, source: aya::programs::ProgramError },
    #[error("{0}")]
    Setting(String),
    #[error("opening map {name} failed: {source}")]
    Map { name: &'static str, source: aya::maps::MapError },
}

/// An exit or large-mapping event, decoded from the ring buffer.
#[derive(Debug, Clone, Copy)]
pub struct Event(pub ProcEvent);

impl Event {
    pub fn comm(&self) -> String {
        let comm = &self.0.comm;
        let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        String::from_utf8_lossy(&comm[..end]).into_owned()
    }
}

/// What one program has cost so far.
#[derive(Debug, Clone, Copy)]
pub struct ProgramStats {
    pub program: &'static str,
    pub runs: u64,
    pub run_time: std::time::Duration,
}

/// Attached kernel programs. Dropping this detaches them.
pub struct Probes {
    ebpf: Ebpf,
    events: RingBuf<MapData>,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    /// The programs attached, in order.
    specs: Vec<ProbeSpec>,
    attached: Vec<String>,
    features: BTreeSet<Feature>,
}

impl Probes {
    /// Checks privileges and tracefs, loads the object, then attaches the
    /// programs of `memwatch_ebpf::PROBES` feature by feature: a feature
    /// the kernel cannot give (a missing tracepoint, an unreadable format, a
    /// program that will not load) is dropped alone, with its reason logged,
    /// and its figures come from /proc or are reported unknown. Only when no
    /// feature at all can be attached is it an error.
    pub fn attach(large_mapping_bytes: u64) -> Result<Self, ProbeError> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NoObject);
        }
        privileges::check().map_err(ProbeError::NotPermitted)?;
        let events_dir = tracefs::ensure_mounted().map_err(ProbeError::Tracefs)?;
        let (mut layout, mut unusable) = format::layout(&events_dir, large_mapping_bytes);
        for probe in PROBES {
            let path = events_dir.join(probe.category).join(probe.event);
            if !path.is_dir() {
                let missing = ProbeError::MissingTracepoint { category: probe.category, event: probe.event, path };
                unusable.entry(probe.feature).or_insert(missing);
            }
        }
        let rss_stat = choose_rss_stat(&mut layout, unusable.remove(&Feature::Rss))?;
        let specs: Vec<ProbeSpec> = PROBES
            .iter()
            .filter_map(|p| match (p.feature, &rss_stat) {
                (Feature::Rss, Ok(chosen)) => Some(*chosen),
                (Feature::Rss, Err(_)) => None,
                _ => Some(*p),
            })
            .collect();
        if let Err(e) = rss_stat {
            unusable.insert(Feature::Rss, e);
        }
        raise_memlock_limit();

        let mut ebpf =
            EbpfLoader::new().override_global(names::LAYOUT, &layout, true).load(OBJECT).map_err(ProbeError::Load)?;
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(e) => {
                tracing::debug!("probe diagnostics unavailable: {e}");
                None
            }
        };
        let mut attached_specs = Vec::with_capacity(specs.len());
        for feature in Feature::ALL {
            if unusable.contains_key(&feature) {
                continue;
            }
            let group: Vec<ProbeSpec> = specs.iter().copied().filter(|p| p.feature == feature).collect();
            match attach_feature(&mut ebpf, &group) {
                Ok(()) => attached_specs.extend(group),
                Err(e) => {
                    unusable.insert(feature, e);
                }
            }
        }
        if attached_specs.is_empty() {
            let (_, first) = unusable.into_iter().next().expect("every feature failed, so some reason was kept");
            return Err(first);
        }
        for (feature, reason) in &unusable {
            tracing::warn!("probes for {} not attached: {reason}; {}", feature.as_str(), feature.without());
        }
        let attached = attached_specs
            .iter()
            .map(|p| format!("{}:{}{}", p.category, p.event, if p.raw { "(raw)" } else { "" }))
            .collect();
        let features = attached_specs.iter().map(|p| p.feature).collect();
        let events = ebpf.take_map(names::EVENTS).ok_or(ProbeError::Missing { kind: "map", name: names::EVENTS })?;
        let events = RingBuf::try_from(events).map_err(|source| ProbeError::Map { name: names::EVENTS, source })?;
        Ok(Self { ebpf, events, logger, specs: attached_specs, attached, features })
    }

    /// What the attached probes give.
    pub fn features(&self) -> &BTreeSet<Feature> {
        &self.features
    }

    /// "category:event" of every attached tracepoint, "(raw)" marking raw ones.
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// Every process entry the kernel holds now, by tgid.
    pub fn processes(&self) -> Result<HashMap<u32, ProcCounters>, ProbeError> {
        let map = self.ebpf.map(names::PROCS).ok_or(ProbeError::Missing { kind: "map", name: names::PROCS })?;
        let procs: BpfHashMap<_, u32, ProcCounters> =
            BpfHashMap::try_from(map).map_err(|source| ProbeError::Map { name: names::PROCS, source })?;
        // An entry deleted between the key walk and its lookup (the process
        // exited) is skipped; its final figures come through the exit event.
        Ok(procs.iter().filter_map(Result::ok).collect())
    }

    /// Events sent since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(item) = self.events.next() {
            if item.len() < size_of::<ProcEvent>() {
                tracing::warn!(len = item.len(), "short record in the event ring buffer, ignored");
                continue;
            }
            // SAFETY: the kernel wrote a ProcEvent (a Pod, repr(C)) at the
            // start of the record; read_unaligned copes with any alignment.
            let event = unsafe { item.as_ptr().cast::<ProcEvent>().read_unaligned() };
            out.push(Event(event));
        }
        out
    }

    /// Dropped kernel-side work so far, summed over CPUs, by kind.
    pub fn dropped(&self) -> Result<Vec<(&'static str, u64)>, ProbeError> {
        let map = self.ebpf.map(names::ERRORS).ok_or(ProbeError::Missing { kind: "map", name: names::ERRORS })?;
        let errors: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(|source| ProbeError::Map { name: names::ERRORS, source })?;
        ErrorKind::ALL
            .iter()
            .map(|&kind| {
                let per_cpu =
                    errors.get(&(kind as u32), 0).map_err(|source| ProbeError::Map { name: names::ERRORS, source })?;
                Ok((kind.name(), per_cpu.iter().sum()))
            })
            .collect()
    }

    /// Each program's run count and total run time, as the kernel accounts
    /// them while BPF statistics are enabled (`aya::sys::enable_stats`); zero
    /// otherwise. For measuring what the probes cost.
    pub fn program_stats(&self) -> Result<Vec<ProgramStats>, ProbeError> {
        self.specs
            .iter()
            .map(|probe| {
                let program = self
                    .ebpf
                    .program(probe.program)
                    .ok_or(ProbeError::Missing { kind: "program", name: probe.program })?;
                let info = program.info().map_err(|source| ProbeError::Program {
                    action: "querying",
                    name: probe.program,
                    source,
                })?;
                Ok(ProgramStats { program: probe.program, runs: info.run_count(), run_time: info.run_time() })
            })
            .collect()
    }

    /// Forwards the probes' own diagnostics (aya-log) into memwatch's log.
    pub fn flush_diagnostics(&mut self) {
        if let Some(logger) = &mut self.logger {
            logger.flush();
        }
    }
}

/// Which rss_stat program to attach, filling in what it needs. The BTF one
/// costs a fraction of the classic one per page fault; the classic one works
/// without BTF (unless its tracefs format was unusable: `classic`).
/// MEMWATCH_RSS_STAT=btf|tracepoint forces one (for testing both); a forced
/// choice that cannot be met is an error, a bad value too. `Ok(Err(_))`:
/// neither can be attached, the feature is dropped.
fn choose_rss_stat(
    layout: &mut TracepointLayout,
    classic_unusable: Option<ProbeError>,
) -> Result<Result<ProbeSpec, ProbeError>, ProbeError> {
    let classic = PROBES.iter().copied().find(|p| p.program == "rss_stat").expect("rss_stat is in PROBES");
    let classic = match classic_unusable {
        None => Ok(classic),
        Some(e) => Err(e),
    };
    let wanted = std::env::var(RSS_STAT_ENV).unwrap_or_else(|_| "auto".to_owned());
    match wanted.as_str() {
        "tracepoint" => return Ok(classic),
        "auto" | "btf" => {}
        _ => return Err(ProbeError::Setting(format!("{RSS_STAT_ENV}={wanted}: expected auto, btf or tracepoint"))),
    }
    match btf::mm_layout(Path::new(btf::VMLINUX_BTF)) {
        Ok(mm) => {
            layout.mm_rss_base = mm.rss_base;
            layout.mm_rss_stride = mm.rss_stride;
            layout.task_mm = mm.task_mm;
            layout.page_shift = rustix::param::page_size().trailing_zeros();
            Ok(Ok(RSS_STAT_BTF))
        }
        Err(reason) if wanted == "auto" => {
            tracing::info!("kmem:rss_stat through the classic tracepoint (slower per fault): {reason}");
            Ok(classic)
        }
        Err(reason) => {
            Err(ProbeError::Setting(format!("{RSS_STAT_ENV}=btf but the kernel's BTF is unusable: {reason}")))
        }
    }
}

/// Environment variable choosing the rss_stat program.
pub const RSS_STAT_ENV: &str = "MEMWATCH_RSS_STAT";

/// Attaches every program of one feature, or none: on a failure, the ones
/// already attached are unloaded again.
fn attach_feature(ebpf: &mut Ebpf, group: &[ProbeSpec]) -> Result<(), ProbeError> {
    for (done, probe) in group.iter().enumerate() {
        if let Err(e) = attach_one(ebpf, probe) {
            for earlier in &group[..done] {
                unload(ebpf, earlier);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn attach_one(ebpf: &mut Ebpf, probe: &ProbeSpec) -> Result<(), ProbeError> {
    let name = probe.program;
    let program = ebpf.program_mut(name).ok_or(ProbeError::Missing { kind: "program", name })?;
    let failed = |action| move |source| ProbeError::Program { action, name, source };
    if probe.raw {
        let program: &mut RawTracePoint = program.try_into().map_err(failed("typing"))?;
        program.load().map_err(failed("loading"))?;
        program.attach(probe.event).map_err(failed("attaching"))?;
    } else {
        let program: &mut TracePoint = program.try_into().map_err(failed("typing"))?;
        program.load().map_err(failed("loading"))?;
        program.attach(probe.category, probe.event).map_err(failed("attaching"))?;
    }
    Ok(())
}

/// Detaches and unloads one program (best effort: it is being given up on).
fn unload(ebpf: &mut Ebpf, probe: &ProbeSpec) {
    let Some(program) = ebpf.program_mut(probe.program) else { return };
    let result = if probe.raw {
        <&mut RawTracePoint>::try_from(program).and_then(|p| p.unload())
    } else {
        <&mut TracePoint>::try_from(program).and_then(|p| p.unload())
    };
    if let Err(e) = result {
        tracing::debug!("unloading {}: {e}", probe.program);
    }
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones to the
/// memory cgroup, where raising the limit is unnecessary and may be refused.
fn raise_memlock_limit() {
    let unlimited = rustix::process::Rlimit { current: None, maximum: None };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Memlock, unlimited) {
        tracing::debug!("could not raise RLIMIT_MEMLOCK ({e}); fine on kernels >= 5.11");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel side names its maps by its statics' identifiers and its
    /// programs by their functions'; the daemon looks them up by the
    /// constants of `memwatch_ebpf`. This ties the two to one definition.
    #[test]
    fn the_built_object_has_every_map_and_program_the_daemon_names() {
        if OBJECT.is_empty() {
            assert!(std::env::var_os("CI").is_none(), "built without the kernel programs (AYA_BUILD_SKIP) under CI");
            eprintln!("SKIPPED: built without the kernel programs (AYA_BUILD_SKIP)");
            return;
        }
        let object = aya_obj::Object::parse(OBJECT).expect("the built eBPF object parses");
        for name in names::MAPS {
            assert!(object.maps.contains_key(*name), "map {name} missing; the object has {:?}", object.maps.keys());
        }
        for probe in PROBES.iter().chain([&RSS_STAT_BTF]) {
            assert!(
                object.programs.contains_key(probe.program),
                "program {} missing; the object has {:?}",
                probe.program,
                object.programs.keys()
            );
        }
    }
}
