//! Loads the kernel programs, attaches them, and reads their maps.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::Path,
};

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::{FExit, RawTracePoint, TracePoint},
};
use memwatch_ebpf::{
    AttachPoint, ErrorKind, Feature, PROBES, ProbeLayout, ProbeSpec, ProcCounters, ProcEvent, SYSCALL_TRACEPOINTS,
    names,
};

use super::{btf, format, privileges, tracefs};

/// The kernel programs, built by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/memwatch-probes"));

/// Why the probes could not be used. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    NotPermitted(String),
    #[error("the kernel's BTF is unusable ({0}); fexit probes need a kernel built with CONFIG_DEBUG_INFO_BTF")]
    Btf(String),
    #[error("{0}")]
    Tracefs(String),
    #[error("cannot read tracepoint format {path}: {detail}")]
    Format { path: std::path::PathBuf, detail: String },
    #[error(
        "this kernel refuses tracing (fexit) programs ({0}), and the syscall tracepoints, which slow \
         every syscall of every process, are off (`daemon.syscall_tracepoints = true`, or `probe \
         --syscall-tracepoints`, uses them)"
    )]
    NoFexit(String),
    #[error(
        "this memwatch binary was built without its kernel programs (AYA_BUILD_SKIP); \
         rebuild it with `cargo xtask build`"
    )]
    NoObject,
    #[error("loading the eBPF object failed: {0}")]
    Load(#[source] aya::EbpfError),
    #[error("the eBPF object has no {kind} named {name}")]
    Missing { kind: &'static str, name: &'static str },
    #[error("{action} program {name} ({at}) failed: {source}")]
    // Boxed: aya's error is large, and this enum travels in every Result.
    Program { action: &'static str, name: &'static str, at: String, source: Box<aya::programs::ProgramError> },
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

/// How the probes are to be attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// mmaps at least this long are logged as they happen.
    pub large_mapping_bytes: u64,
    /// Where the kernel refuses fexit programs, count mmap/munmap/brk through
    /// the `syscalls:*` tracepoints, at a cost to every syscall on the host.
    pub syscall_tracepoints: bool,
}

impl Probes {
    /// Checks privileges, loads the object, then attaches the programs of
    /// `memwatch_ebpf::PROBES` feature by feature: a syscall feature whose
    /// fexit program the kernel refuses falls back to its `syscalls:*`
    /// tracepoints when `options` allow, and a feature the kernel cannot
    /// give at all is dropped alone, with its reason logged, and its figures
    /// reported unknown. Only when no feature at all can be attached is it
    /// an error.
    pub fn attach(options: ProbeOptions) -> Result<Self, ProbeError> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NoObject);
        }
        privileges::check().map_err(ProbeError::NotPermitted)?;
        let mut layout = ProbeLayout {
            large_mapping_bytes: options.large_mapping_bytes,
            page_shift: rustix::param::page_size().trailing_zeros(),
            ..ProbeLayout::DEFAULT
        };
        // Without BTF offsets the exit probe still reports exits, without
        // their final figures; fexit cannot load at all.
        let btf_usable = match btf::fill_layout(Path::new(btf::VMLINUX_BTF), &mut layout) {
            Ok(()) => Ok(()),
            Err(reason) => Err(ProbeError::Btf(reason)),
        };
        let mut tracepoints_unusable = BTreeMap::new();
        if options.syscall_tracepoints {
            match tracefs::ensure_mounted() {
                Ok(events) => tracepoints_unusable = format::fill_syscall_layout(&events, &mut layout),
                Err(reason) => {
                    for feature in SYSCALL_FEATURES {
                        tracepoints_unusable.insert(feature, ProbeError::Tracefs(reason.clone()));
                    }
                }
            }
        }
        raise_memlock_limit();
        // The kernel's BTF, parsed, is most of the daemon's peak heap: needed
        // to load the programs, dropped when `plan` is (the daemon then hands
        // the freed heap back: daemon/footprint.rs).
        let kernel_btf = btf_usable.and_then(|()| Btf::from_sys_fs().map_err(|e| ProbeError::Btf(e.to_string())));
        let plan = Plan { kernel_btf, options, tracepoints_unusable };
        Self::load_and_attach(plan, &layout)
    }

    fn load_and_attach(mut plan: Plan, layout: &ProbeLayout) -> Result<Self, ProbeError> {
        let mut ebpf = EbpfLoader::new()
            .btf(plan.kernel_btf.as_ref().ok())
            .override_global(names::LAYOUT, layout, true)
            .load(OBJECT)
            .map_err(ProbeError::Load)?;
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(e) => {
                tracing::debug!("probe diagnostics unavailable: {e}");
                None
            }
        };
        let mut unusable = Vec::new();
        let mut attached_specs = Vec::with_capacity(PROBES.len());
        for feature in Feature::ALL {
            match plan.attach_feature(&mut ebpf, feature) {
                Ok(group) => attached_specs.extend(group),
                Err(e) => unusable.push((feature, e)),
            }
        }
        if attached_specs.is_empty() {
            let (_, first) = unusable.into_iter().next().expect("every feature failed, so some reason was kept");
            return Err(first);
        }
        warn_unusable(&unusable);
        let attached = attached_specs.iter().map(|p| describe(p.attach)).collect();
        let features = attached_specs.iter().map(|p| p.feature).collect();
        let events = ebpf.take_map(names::EVENTS).ok_or(ProbeError::Missing { kind: "map", name: names::EVENTS })?;
        let events = RingBuf::try_from(events).map_err(|source| ProbeError::Map { name: names::EVENTS, source })?;
        Ok(Self { ebpf, events, logger, specs: attached_specs, attached, features })
    }

    /// What the attached probes give.
    pub fn features(&self) -> &BTreeSet<Feature> {
        &self.features
    }

    /// Where each attached program sits, as `fexit:__x64_sys_mmap`,
    /// `raw_tp:sched_process_exit` or `syscalls:sys_enter_mmap`.
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
                    at: describe(probe.attach),
                    source: Box::new(source),
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

/// The kernel function a syscall's probe attaches to on this architecture.
fn syscall_symbol(syscall: &str) -> String {
    #[cfg(target_arch = "x86_64")]
    const PREFIX: &str = "__x64_sys_";
    #[cfg(target_arch = "aarch64")]
    const PREFIX: &str = "__arm64_sys_";
    format!("{PREFIX}{syscall}")
}

/// How the banner and errors name an attach point.
fn describe(at: AttachPoint) -> String {
    match at {
        AttachPoint::SyscallExit(syscall) => format!("fexit:{}", syscall_symbol(syscall)),
        AttachPoint::Tracepoint(category, event) => format!("{category}:{event}"),
        AttachPoint::RawTracepoint(event) => format!("raw_tp:{event}"),
    }
}

/// One line per reason a feature is missing; the syscall features refused
/// for want of fexit share one line (they fail alike).
fn warn_unusable(unusable: &[(Feature, ProbeError)]) {
    let no_fexit: Vec<&str> =
        unusable.iter().filter(|(_, e)| matches!(e, ProbeError::NoFexit(_))).map(|(f, _)| f.as_str()).collect();
    if let Some((_, first)) = unusable.iter().find(|(_, e)| matches!(e, ProbeError::NoFexit(_))) {
        tracing::warn!("{} figures unknown: {first}", no_fexit.join(", "));
    }
    for (feature, reason) in unusable.iter().filter(|(_, e)| !matches!(e, ProbeError::NoFexit(_))) {
        tracing::warn!("probes for {} not attached: {reason}; {}", feature.as_str(), feature.without());
    }
}

/// The features whose figures come from syscalls.
const SYSCALL_FEATURES: [Feature; 3] = [Feature::Mmap, Feature::Munmap, Feature::Brk];

/// What the programs may be attached with.
struct Plan {
    kernel_btf: Result<Btf, ProbeError>,
    options: ProbeOptions,
    /// Why a syscall feature cannot use its tracepoints (when allowed at all).
    tracepoints_unusable: BTreeMap<Feature, ProbeError>,
}

impl Plan {
    /// Attaches the programs of `feature`, the fexit ones first, then (where
    /// allowed) its tracepoints. Returns the group attached.
    fn attach_feature(&mut self, ebpf: &mut Ebpf, feature: Feature) -> Result<Vec<ProbeSpec>, ProbeError> {
        let preferred: Vec<ProbeSpec> = PROBES.iter().copied().filter(|p| p.feature == feature).collect();
        let fexit_failed = match attach_group(ebpf, self.kernel_btf.as_ref().ok(), &preferred) {
            Ok(()) => return Ok(preferred),
            Err(e) if !SYSCALL_FEATURES.contains(&feature) => return Err(e),
            Err(e) => e,
        };
        if !self.options.syscall_tracepoints {
            return Err(ProbeError::NoFexit(fexit_failed.to_string()));
        }
        if let Some(reason) = self.tracepoints_unusable.remove(&feature) {
            return Err(reason);
        }
        // The feature's other programs (exec's, for brk) stay as they are.
        let fallback: Vec<ProbeSpec> = preferred
            .iter()
            .filter(|p| !matches!(p.attach, AttachPoint::SyscallExit(_)))
            .chain(SYSCALL_TRACEPOINTS.iter().filter(|p| p.feature == feature))
            .copied()
            .collect();
        tracing::info!(
            "{}: fexit refused ({fexit_failed}); using the syscalls tracepoints (every syscall pays for them)",
            feature.as_str()
        );
        attach_group(ebpf, self.kernel_btf.as_ref().ok(), &fallback)?;
        Ok(fallback)
    }
}

/// Attaches every program of one group, or none: on a failure, the ones
/// already attached are unloaded again.
fn attach_group(ebpf: &mut Ebpf, kernel_btf: Option<&Btf>, group: &[ProbeSpec]) -> Result<(), ProbeError> {
    for (done, probe) in group.iter().enumerate() {
        if let Err(e) = attach_one(ebpf, kernel_btf, probe) {
            for earlier in &group[..done] {
                unload(ebpf, earlier);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn attach_one(ebpf: &mut Ebpf, kernel_btf: Option<&Btf>, probe: &ProbeSpec) -> Result<(), ProbeError> {
    let name = probe.program;
    let program = ebpf.program_mut(name).ok_or(ProbeError::Missing { kind: "program", name })?;
    let failed = |action| {
        move |source| ProbeError::Program { action, name, at: describe(probe.attach), source: Box::new(source) }
    };
    match probe.attach {
        AttachPoint::SyscallExit(syscall) => {
            let kernel_btf = kernel_btf
                .ok_or_else(|| ProbeError::Btf(format!("{VMLINUX} did not parse", VMLINUX = btf::VMLINUX_BTF)))?;
            let program: &mut FExit = program.try_into().map_err(failed("typing"))?;
            program.load(&syscall_symbol(syscall), kernel_btf).map_err(failed("loading"))?;
            program.attach().map_err(failed("attaching"))?;
        }
        AttachPoint::Tracepoint(category, event) => {
            let program: &mut TracePoint = program.try_into().map_err(failed("typing"))?;
            program.load().map_err(failed("loading"))?;
            program.attach(category, event).map_err(failed("attaching"))?;
        }
        AttachPoint::RawTracepoint(event) => {
            let program: &mut RawTracePoint = program.try_into().map_err(failed("typing"))?;
            program.load().map_err(failed("loading"))?;
            program.attach(event).map_err(failed("attaching"))?;
        }
    }
    Ok(())
}

/// Detaches and unloads one program (best effort: it is being given up on).
fn unload(ebpf: &mut Ebpf, probe: &ProbeSpec) {
    let Some(program) = ebpf.program_mut(probe.program) else { return };
    let result = match probe.attach {
        AttachPoint::SyscallExit(_) => <&mut FExit>::try_from(program).and_then(|p| p.unload()),
        AttachPoint::Tracepoint(..) => <&mut TracePoint>::try_from(program).and_then(|p| p.unload()),
        AttachPoint::RawTracepoint(_) => <&mut RawTracePoint>::try_from(program).and_then(|p| p.unload()),
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
        for probe in PROBES.iter().chain(SYSCALL_TRACEPOINTS) {
            assert!(
                object.programs.contains_key(probe.program),
                "program {} missing; the object has {:?}",
                probe.program,
                object.programs.keys()
            );
        }
    }
}
