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
    /// `kmem:rss_stat` mm_id -> owning tgid, for RSS updates that happen
    /// outside the owner's context (reclaim, exit teardown).
    pub const MM_OWNERS: &str = "MM_OWNERS";
    /// Length of an in-flight mmap/munmap, keyed by the calling thread.
    pub const PENDING: &str = "PENDING";
    /// Rare events (process exit, very large mappings) as `ProcEvent`s.
    pub const EVENTS: &str = "EVENTS";
    /// Per-CPU counters of dropped work, indexed by `ErrorKind`.
    pub const ERRORS: &str = "ERRORS";
    /// Field offsets read from tracefs at load time (`TracepointLayout`).
    pub const LAYOUT: &str = "LAYOUT";

    /// Every map the daemon opens.
    pub const MAPS: &[&str] = &[PROCS, MM_OWNERS, PENDING, EVENTS, ERRORS];
}

/// What a group of programs gives the daemon. The programs of one feature
/// are attached together or not at all (an mmap enter without its exit
/// would count nothing); a feature the kernel cannot give is dropped alone,
/// and the daemon takes that figure from /proc or reports it unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// The kernel's own RSS counters (without: /proc/PID/status each interval).
    Rss,
    /// User page faults (without: /proc/PID/stat's minflt + majflt).
    Faults,
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
    pub const ALL: [Feature; 6] =
        [Feature::Rss, Feature::Faults, Feature::Mmap, Feature::Munmap, Feature::Brk, Feature::Exits];

    pub const fn as_str(self) -> &'static str {
        match self {
            Feature::Rss => "rss",
            Feature::Faults => "faults",
            Feature::Mmap => "mmap",
            Feature::Munmap => "munmap",
            Feature::Brk => "brk",
            Feature::Exits => "exits",
        }
    }

    /// What the daemon does without it, for the line that says it is missing.
    pub const fn without(self) -> &'static str {
        match self {
            Feature::Rss => "RSS is read from /proc each interval",
            Feature::Faults => "page faults are read from /proc",
            Feature::Mmap => "mmap bytes are unknown",
            Feature::Munmap => "munmap bytes are unknown",
            Feature::Brk => "brk moves are unknown",
            Feature::Exits => "a process that exits keeps its last reading",
        }
    }
}

/// One kernel program and the tracepoint it attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSpec {
    /// Function name of the program in the eBPF object.
    pub program: &'static str,
    pub category: &'static str,
    pub event: &'static str,
    /// Attached as a raw tracepoint: the program gets the tracepoint's
    /// arguments directly, with no perf record built per event. Used where
    /// the event fires once per page fault and the program needs no fields.
    pub raw: bool,
    pub feature: Feature,
}

/// `kmem:rss_stat` as a raw tracepoint: it reads the mm's counter itself
/// (offsets from the kernel's BTF) instead of having the kernel build a perf
/// record per event, which is most of the per-fault cost. Attached in place
/// of `PROBES`' classic `rss_stat` when the kernel's BTF provides the offsets.
pub const RSS_STAT_BTF: ProbeSpec =
    ProbeSpec { program: "rss_stat_btf", category: "kmem", event: "rss_stat", raw: true, feature: Feature::Rss };

/// Every program memwatch attaches, in attach order.
pub const PROBES: &[ProbeSpec] = &[
    probe("rss_stat", "kmem", "rss_stat", false, Feature::Rss),
    probe("page_fault_user", "exceptions", "page_fault_user", true, Feature::Faults),
    probe("sys_enter_mmap", "syscalls", "sys_enter_mmap", false, Feature::Mmap),
    probe("sys_exit_mmap", "syscalls", "sys_exit_mmap", false, Feature::Mmap),
    probe("sys_enter_munmap", "syscalls", "sys_enter_munmap", false, Feature::Munmap),
    probe("sys_exit_munmap", "syscalls", "sys_exit_munmap", false, Feature::Munmap),
    probe("sys_exit_brk", "syscalls", "sys_exit_brk", false, Feature::Brk),
    probe("sched_process_exec", "sched", "sched_process_exec", false, Feature::Brk),
    probe("sched_process_exit", "sched", "sched_process_exit", false, Feature::Exits),
];

const fn probe(
    program: &'static str,
    category: &'static str,
    event: &'static str,
    raw: bool,
    feature: Feature,
) -> ProbeSpec {
    ProbeSpec { program, category, event, raw, feature }
}

/// Capacity of `PROCS` (and `MM_OWNERS`). LRU maps evict the least recently
/// updated process when full, so a fork storm costs accuracy for idle
/// processes rather than failing updates.
pub const MAX_PROCS: u32 = 32_768;
/// Capacity of `PENDING`: one slot per thread inside mmap/munmap right now.
pub const MAX_PENDING: u32 = 16_384;
/// Ring buffer size in bytes (a power of two, a multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 20;

/// `kmem:rss_stat`'s `member` values (the kernel's `NR_MM_COUNTERS` order,
/// stable since the tracepoint was added in 5.5).
pub mod rss_member {
    pub const FILE: i32 = 0;
    pub const ANON: i32 = 1;
    pub const SWAP_ENTRIES: i32 = 2;
    pub const SHMEM: i32 = 3;
}

/// The probe reads this many bytes of each `kmem:rss_stat` record in one
/// helper call, so its fields must lie within them (the daemon checks).
pub const RSS_STAT_RECORD_BYTES: u32 = 32;

/// A value of `ProcCounters::rss_*` that no `rss_stat` event has set yet: the
/// daemon then takes the figure from /proc instead.
pub const RSS_UNKNOWN: i64 = -1;

/// What the kernel keeps per process (tgid). RSS fields are absolute bytes as
/// last reported by `kmem:rss_stat`; the rest are cumulative since the entry
/// was created and only ever grow (the daemon takes deltas).
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
    /// User-mode page faults.
    pub page_faults: u64,
    /// The key of this process's mm in `MM_OWNERS` (rss_stat's `mm_id`, or the
    /// mm's address for the BTF probe), so exit can drop the owner entry.
    pub mm: u64,
}

impl ProcCounters {
    /// A fresh entry: RSS unknown until the first `rss_stat`, counters at zero.
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
        mm: 0,
    };
}

/// Why a `ProcEvent` was sent.
pub mod event_kind {
    /// The thread-group leader exited; `counters` holds its final values.
    pub const EXIT: u32 = 1;
    /// One mmap of at least `TracepointLayout::large_mapping_bytes`.
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
    /// Reading a tracepoint field failed.
    FieldRead = 4,
    /// Recording an mm_id -> tgid owner failed.
    OwnerInsert = 5,
}

impl ErrorKind {
    pub const COUNT: u32 = 6;
    pub const ALL: [ErrorKind; Self::COUNT as usize] = [
        ErrorKind::ProcInsert,
        ErrorKind::PendingInsert,
        ErrorKind::PendingMissing,
        ErrorKind::EventReserve,
        ErrorKind::FieldRead,
        ErrorKind::OwnerInsert,
    ];

    /// Stable snake_case name, used in logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::ProcInsert => "proc_insert",
            ErrorKind::PendingInsert => "pending_insert",
            ErrorKind::PendingMissing => "pending_missing",
            ErrorKind::EventReserve => "event_reserve",
            ErrorKind::FieldRead => "field_read",
            ErrorKind::OwnerInsert => "owner_insert",
        }
    }
}

/// Tracepoint field offsets, read by the daemon from tracefs `format` files at
/// load time and written into the program's `LAYOUT` global, so the probes do
/// not depend on one kernel's struct layout.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracepointLayout {
    pub rss_stat_mm_id: u32,
    pub rss_stat_curr: u32,
    pub rss_stat_member: u32,
    pub rss_stat_size: u32,
    /// Offset of `len` in sys_enter_mmap.
    pub mmap_len: u32,
    /// Offset of `len` in sys_enter_munmap.
    pub munmap_len: u32,
    /// Offset of `ret` in sys_exit_* (the same for every syscall).
    pub syscall_ret: u32,
    /// For the BTF rss_stat probe (from /sys/kernel/btf/vmlinux): where in
    /// `struct mm_struct` the counter of member 0 sits, and the distance to
    /// the next member's counter.
    pub mm_rss_base: u32,
    pub mm_rss_stride: u32,
    /// Offset of `mm` in `struct task_struct`.
    pub task_mm: u32,
    /// log2 of the page size: the mm counters count pages.
    pub page_shift: u32,
    pub _pad: u32,
    /// mmaps at least this long are also sent as `LARGE_MAPPING` events.
    pub large_mapping_bytes: u64,
}

impl TracepointLayout {
    /// The layout of kernel 6.x on x86_64, used only until the daemon
    /// overrides it with what tracefs says.
    pub const DEFAULT: Self = Self {
        rss_stat_mm_id: 8,
        rss_stat_curr: 12,
        rss_stat_member: 16,
        rss_stat_size: 24,
        mmap_len: 24,
        munmap_len: 24,
        syscall_ret: 16,
        mm_rss_base: 0,
        mm_rss_stride: 0,
        task_mm: 0,
        page_shift: 12,
        _pad: 0,
        large_mapping_bytes: 64 << 20,
    };
}

// The kernel reads and writes these through raw pointers: catch layout drift.
const _: () = assert!(core::mem::size_of::<ProcCounters>() == 88);
const _: () = assert!(core::mem::size_of::<ProcEvent>() == 128);
const _: () = assert!(core::mem::size_of::<TracepointLayout>() == 56);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all three are repr(C), made only of integers, with explicit
    // padding fields, so every bit pattern is a valid value.
    unsafe impl aya::Pod for super::ProcCounters {}
    unsafe impl aya::Pod for super::ProcEvent {}
    unsafe impl aya::Pod for super::TracepointLayout {}
}
