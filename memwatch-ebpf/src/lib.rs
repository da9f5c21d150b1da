//! Types and names shared by memwatch's kernel programs and its daemon.
//!
//! Everything here is `#[repr(C)]` with explicit padding, because the kernel
//! side writes these bytes and the user side reads them back from maps and the
//! ring buffer: both must agree on the layout to the byte. The compile-time
//! size checks at the bottom catch an accidental change.
#![no_std]

/// The toolchain that builds these programs for `bpfel-unknown-none`: a dated
/// nightly (build-std needs nightly), named here once for both
/// `memwatch/build.rs` (aya-build's `Toolchain::Custom`) and `cargo xtask
/// setup`, which installs it. Never the plain `nightly` channel: it moves, and
/// a nightly on another LLVM major than bpf-linker's writes bitcode bpf-linker
/// cannot read. 2026-05-19 is 1.97.0-nightly on LLVM 22.1.4, the LLVM major of
/// Debian 12's llvm-22 that bpf-linker 0.13 is built against, and the nightly
/// the aya 0.14 / aya-ebpf 0.2.1 pins were verified with.
pub const BUILD_TOOLCHAIN: &str = "nightly-2026-05-19";

/// The LLVM major `BUILD_TOOLCHAIN` uses; bpf-linker must link the same one.
pub const BUILD_LLVM_MAJOR: u32 = 22;

/// Names of the maps and globals in the eBPF object. The daemon looks them up
/// by these strings; the kernel side's statics carry the same names, and a
/// test of the daemon parses the built object and checks each one.
pub mod names {
    /// Per-process counters, keyed by tgid (`LruHashMap<u32, ProcCounters>`).
    pub const PROCS: &str = "PROCS";
    /// Length of an in-flight mmap/munmap, keyed by the calling thread (only
    /// for the syscall tracepoints).
    pub const PENDING: &str = "PENDING";
    /// Rare events (process exit, very large mappings) as `ProcEvent`s.
    pub const EVENTS: &str = "EVENTS";
    /// Per-CPU counters of dropped work, indexed by `ErrorKind`.
    pub const ERRORS: &str = "ERRORS";
    /// Kernel struct offsets read from BTF at load time (`ProbeLayout`).
    pub const LAYOUT: &str = "LAYOUT";

    /// Every map the daemon opens.
    pub const MAPS: &[&str] = &[PROCS, PENDING, EVENTS, ERRORS];
}

/// What a group of programs gives the daemon. The programs of one feature
/// are attached together or not at all; a feature the kernel cannot give is
/// dropped alone, and the daemon reports that figure unknown.
///
/// RSS and page faults are not among them: the kernel already keeps both per
/// process, and the daemon reads them from /proc once per interval, which
/// costs nothing per page fault (a probe on the fault path cost 15-20% of a
/// fault's CPU time on 6.x kernels, where rss_stat fires once per page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// Bytes mapped by mmap (without: unknown).
    Mmap,
    /// Bytes unmapped by munmap (without: unknown).
    Munmap,
    /// Moves of the program break (without: unknown).
    Brk,
    /// Final figures of processes at exit (without: their last reading).
    Exits,
}

impl Feature {
    pub const ALL: [Feature; 4] = [Feature::Mmap, Feature::Munmap, Feature::Brk, Feature::Exits];

    pub const fn as_str(self) -> &'static str {
        match self {
            Feature::Mmap => "mmap",
            Feature::Munmap => "munmap",
            Feature::Brk => "brk",
            Feature::Exits => "exits",
        }
    }

    /// What the daemon does without it, for the line that says it is missing.
    pub const fn without(self) -> &'static str {
        match self {
            Feature::Mmap => "mmap bytes are unknown",
            Feature::Munmap => "munmap bytes are unknown",
            Feature::Brk => "brk moves are unknown",
            Feature::Exits => "a process that exits keeps its last reading",
        }
    }
}

/// Where a program attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachPoint {
    /// fexit of a syscall's entry function, named by the syscall (the daemon
    /// adds this architecture's prefix: `__x64_sys_mmap` on x86_64). It sees
    /// the arguments and the result together, and costs nothing to other
    /// syscalls. Needs a kernel that takes tracing programs.
    SyscallExit(&'static str),
    /// A raw tracepoint: no tracefs, no perf record built per event.
    RawTracepoint(&'static str),
    /// A classic tracepoint (`category`, `event`), through tracefs.
    Tracepoint(&'static str, &'static str),
}

/// One kernel program and where it attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSpec {
    /// Function name of the program in the eBPF object.
    pub program: &'static str,
    pub attach: AttachPoint,
    pub feature: Feature,
}

/// The programs memwatch attaches, in attach order. None of them runs on
/// the page-fault path or on any syscall but mmap, munmap and brk.
pub const PROBES: &[ProbeSpec] = &[
    probe("mmap_fexit", AttachPoint::SyscallExit("mmap"), Feature::Mmap),
    probe("munmap_fexit", AttachPoint::SyscallExit("munmap"), Feature::Munmap),
    probe("brk_fexit", AttachPoint::SyscallExit("brk"), Feature::Brk),
    probe("sched_process_exec", AttachPoint::RawTracepoint("sched_process_exec"), Feature::Brk),
    probe("sched_process_exit", AttachPoint::RawTracepoint("sched_process_exit"), Feature::Exits),
];

/// The same syscall figures through `syscalls:*` tracepoints, for kernels
/// that refuse tracing programs (fexit). Attaching any of them sets the
/// syscall-trace flag on every task, so every syscall of every process
/// takes the slow path while they are attached: used only when asked for.
pub const SYSCALL_TRACEPOINTS: &[ProbeSpec] = &[
    probe("sys_enter_mmap", AttachPoint::Tracepoint("syscalls", "sys_enter_mmap"), Feature::Mmap),
    probe("sys_exit_mmap", AttachPoint::Tracepoint("syscalls", "sys_exit_mmap"), Feature::Mmap),
    probe("sys_enter_munmap", AttachPoint::Tracepoint("syscalls", "sys_enter_munmap"), Feature::Munmap),
    probe("sys_exit_munmap", AttachPoint::Tracepoint("syscalls", "sys_exit_munmap"), Feature::Munmap),
    probe("sys_exit_brk", AttachPoint::Tracepoint("syscalls", "sys_exit_brk"), Feature::Brk),
];

const fn probe(program: &'static str, attach: AttachPoint, feature: Feature) -> ProbeSpec {
    ProbeSpec { program, attach, feature }
}

/// Capacity of `PROCS`. LRU maps evict the least recently updated process
/// when full, so a fork storm costs accuracy for idle processes rather than
/// failing updates.
pub const MAX_PROCS: u32 = 32_768;
/// Capacity of `PENDING`: one slot per thread inside mmap/munmap right now.
pub const MAX_PENDING: u32 = 16_384;
/// Ring buffer size in bytes (a power of two, a multiple of the page size).
/// The daemon maps it, so it counts in the daemon's RSS once written
/// through: 512 KiB hold 4,096 events (128 bytes each with the header), 800
/// exits a second at the 5 s interval; beyond that an exit's final figures
/// are lost (counted as `event_reserve`) and its last reading stands.
pub const EVENTS_BYTES: u32 = 1 << 19;

/// A value of `ProcCounters::rss_*` not read yet: the exit probe fills them
/// in, and only when the process still had its memory.
pub const RSS_UNKNOWN: i64 = -1;

/// What the kernel keeps per process (tgid). The syscall figures are
/// cumulative since the entry was created and only ever grow (the daemon
/// takes deltas); the RSS and fault figures are set once, at exit.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcCounters {
    pub rss_file: i64,
    pub rss_anon: i64,
    pub rss_swap: i64,
    pub rss_shmem: i64,
    /// Bytes returned by successful mmap calls.
    pub mmap_bytes: u64,
    /// Bytes released by successful munmap calls.
    pub munmap_bytes: u64,
    /// Sum of upward moves of the program break.
    pub brk_grow_bytes: u64,
    /// Sum of downward moves of the program break.
    pub brk_shrink_bytes: u64,
    /// The program break after the last brk call (0 before the first, and
    /// again after exec, whose new image has a break of its own).
    pub last_brk: u64,
    /// Page faults (minor + major) at exit.
    pub page_faults: u64,
}

impl ProcCounters {
    /// A fresh entry: RSS unknown until exit, counters at zero.
    pub const NEW: Self = Self {
        rss_file: RSS_UNKNOWN,
        rss_anon: RSS_UNKNOWN,
        rss_swap: RSS_UNKNOWN,
        rss_shmem: RSS_UNKNOWN,
        mmap_bytes: 0,
        munmap_bytes: 0,
        brk_grow_bytes: 0,
        brk_shrink_bytes: 0,
        last_brk: 0,
        page_faults: 0,
    };
}

/// Why a `ProcEvent` was sent.
pub mod event_kind {
    /// The thread-group leader exited; `counters` holds its final values.
    pub const EXIT: u32 = 1;
    /// One mmap of at least `ProbeLayout::large_mapping_bytes`.
    pub const LARGE_MAPPING: u32 = 2;
}

/// A rare event sent through the `EVENTS` ring buffer.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcEvent {
    /// One of `event_kind`.
    pub kind: u32,
    pub tgid: u32,
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC) at the event.
    pub timestamp_ns: u64,
    /// For `LARGE_MAPPING`, the mapping's length.
    pub bytes: u64,
    pub counters: ProcCounters,
    /// The task's `comm` at the event, NUL-padded (a short-lived process may
    /// be gone from /proc by the time the daemon reads this).
    pub comm: [u8; 16],
}

/// Kinds of work the kernel side had to drop; indexes into `ERRORS`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Creating a `PROCS` entry failed.
    ProcInsert = 0,
    /// Remembering an in-flight mmap/munmap length failed.
    PendingInsert = 1,
    /// A sys_exit without its sys_enter (attached mid-call, or evicted).
    PendingMissing = 2,
    /// The ring buffer was full: an exit or large-mapping event was lost.
    EventReserve = 3,
    /// Reading a syscall argument or a kernel struct field failed.
    FieldRead = 4,
}

impl ErrorKind {
    pub const COUNT: u32 = 5;
    pub const ALL: [ErrorKind; Self::COUNT as usize] = [
        ErrorKind::ProcInsert,
        ErrorKind::PendingInsert,
        ErrorKind::PendingMissing,
        ErrorKind::EventReserve,
        ErrorKind::FieldRead,
    ];

    /// Stable snake_case name, used in logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::ProcInsert => "proc_insert",
            ErrorKind::PendingInsert => "pending_insert",
            ErrorKind::PendingMissing => "pending_missing",
            ErrorKind::EventReserve => "event_reserve",
            ErrorKind::FieldRead => "field_read",
        }
    }
}

/// Kernel struct offsets (from the kernel's BTF, /sys/kernel/btf/vmlinux) and
/// tracepoint record offsets (from tracefs `format` files), read by the
/// daemon at load time and written into the programs' `LAYOUT` global, so the
/// probes do not depend on one kernel's layout.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeLayout {
    /// Offset of `len` in sys_enter_mmap and sys_enter_munmap.
    pub mmap_len: u32,
    pub munmap_len: u32,
    /// Offset of `ret` in sys_exit_* (the same for every syscall).
    pub syscall_ret: u32,
    /// Offset in `struct pt_regs` of a syscall's second argument (the length
    /// of mmap and munmap): `si` on x86_64.
    pub regs_arg1: u32,
    /// Offset of `mm` in `struct task_struct`.
    pub task_mm: u32,
    /// Where in `struct mm_struct` the RSS counter of member 0 sits, and the
    /// distance to the next member's (file, anon, swap entries, shmem).
    pub mm_rss_base: u32,
    pub mm_rss_stride: u32,
    /// `min_flt` and `maj_flt` in `struct task_struct` (the task's own).
    pub task_min_flt: u32,
    pub task_maj_flt: u32,
    /// `signal` in `struct task_struct`, and the faults of exited threads it
    /// keeps (`min_flt`, `maj_flt` in `struct signal_struct`).
    pub task_signal: u32,
    pub signal_min_flt: u32,
    pub signal_maj_flt: u32,
    /// log2 of the page size: the mm counters count pages.
    pub page_shift: u32,
    pub _pad: u32,
    /// mmaps at least this long are also sent as `LARGE_MAPPING` events.
    pub large_mapping_bytes: u64,
}

impl ProbeLayout {
    /// Placeholder until the daemon writes what BTF says; the exit probe
    /// reads nothing while `task_mm` is 0.
    pub const DEFAULT: Self = Self {
        mmap_len: 24,
        munmap_len: 24,
        syscall_ret: 16,
        regs_arg1: 0,
        task_mm: 0,
        mm_rss_base: 0,
        mm_rss_stride: 0,
        task_min_flt: 0,
        task_maj_flt: 0,
        task_signal: 0,
        signal_min_flt: 0,
        signal_maj_flt: 0,
        page_shift: 12,
        _pad: 0,
        large_mapping_bytes: 64 << 20,
    };
}

// The kernel reads and writes these through raw pointers: catch layout drift.
const _: () = assert!(core::mem::size_of::<ProcCounters>() == 80);
const _: () = assert!(core::mem::size_of::<ProcEvent>() == 120);
const _: () = assert!(core::mem::size_of::<ProbeLayout>() == 64);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all three are repr(C), made only of integers, with explicit
    // padding fields, so every bit pattern is a valid value.
    unsafe impl aya::Pod for super::ProcCounters {}
    unsafe impl aya::Pod for super::ProcEvent {}
    unsafe impl aya::Pod for super::ProbeLayout {}
}
