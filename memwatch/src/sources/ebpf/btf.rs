//! Kernel struct offsets from the kernel's own BTF (/sys/kernel/btf/vmlinux),
//! for the probes that read kernel structs: the syscall probes read a
//! length from the caller's `struct pt_regs`, the exit probe the task's
//! fault counts and its mm's RSS counters.
//!
//! The RSS counters' layout differs between kernels: 6.2+ keep an array of
//! `struct percpu_counter` (`rss_stat[i].count`), earlier ones a
//! `struct mm_rss_stat` of `atomic_long_t` (`rss_stat.count[i].counter`).
//! Both come down to "base + member * stride", which is all the probe needs.
use std::path::Path;

use btfparse::{Offset, Readable, TypeInformation};
use memwatch_ebpf::ProbeLayout;

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The `struct pt_regs` member holding a syscall's second argument.
#[cfg(target_arch = "x86_64")]
const REGS_ARG1: &str = "si";
#[cfg(target_arch = "aarch64")]
const REGS_ARG1: &str = "regs[1]";

/// BTF bytes held in memory for btfparse (which reads through this trait).
struct Bytes(Vec<u8>);

impl Readable for Bytes {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let source = start
            .checked_add(buffer.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or_else(|| btfparse::Error::new(btfparse::ErrorKind::EOF, "read past the end of the BTF"))?;
        buffer.copy_from_slice(source);
        Ok(())
    }
}

fn byte_offset(types: &TypeInformation, type_name: &str, path: &str) -> Result<u32, String> {
    let id = types.id_of(type_name).ok_or_else(|| format!("no struct {type_name}"))?;
    match types.offset_of(id, path) {
        Ok((_, Offset::ByteOffset(offset))) => Ok(offset),
        Ok((_, Offset::BitOffsetAndSize(..))) => Err(format!("{type_name}.{path} is a bitfield")),
        Err(e) => Err(format!("{type_name}.{path}: {e:?}")),
    }
}

/// The counter of member `i` under either layout.
fn counter_paths(i: u32) -> [String; 2] {
    [format!("rss_stat[{i}].count"), format!("rss_stat.count[{i}].counter")]
}

/// Reads every offset the probes need from a BTF file into `layout` (whose
/// other fields are kept). `Err` says what was missing; the BTF is dropped
/// before returning either way (it is megabytes, needed only here).
pub fn fill_layout(btf_path: &Path, layout: &mut ProbeLayout) -> Result<(), String> {
    let bytes = std::fs::read(btf_path).map_err(|e| format!("reading {}: {e}", btf_path.display()))?;
    let types = TypeInformation::new(&Bytes(bytes)).map_err(|e| format!("parsing {}: {e:?}", btf_path.display()))?;
    let counter = |i: u32| {
        let mut reasons = Vec::new();
        for path in counter_paths(i) {
            match byte_offset(&types, "mm_struct", &path) {
                Ok(offset) => return Ok(offset),
                Err(reason) => reasons.push(reason),
            }
        }
        Err(reasons.join("; "))
    };
    let (first, second) = (counter(0)?, counter(1)?);
    let task = |path| byte_offset(&types, "task_struct", path);
    let signal = |path| byte_offset(&types, "signal_struct", path);
    *layout = ProbeLayout {
        regs_arg1: byte_offset(&types, "pt_regs", REGS_ARG1)?,
        task_mm: task("mm")?,
        mm_rss_base: first,
        mm_rss_stride: second - first,
        task_min_flt: task("min_flt")?,
        task_maj_flt: task("maj_flt")?,
        task_signal: task("signal")?,
        signal_min_flt: signal("min_flt")?,
        signal_maj_flt: signal("maj_flt")?,
        ..*layout
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_btf_file_is_a_reason_not_a_panic() {
        let mut layout = ProbeLayout::DEFAULT;
        let err = fill_layout(Path::new("/nonexistent/vmlinux"), &mut layout).unwrap_err();
        assert!(err.contains("/nonexistent/vmlinux"), "{err}");
        assert_eq!(layout, ProbeLayout::DEFAULT, "nothing half-filled");
    }

    /// Runs against this machine's kernel (every kernel memwatch supports
    /// ships BTF; the file is world-readable).
    #[test]
    fn this_kernels_offsets_are_found() {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("SKIPPED: {VMLINUX_BTF} missing (kernel built without BTF)");
            return;
        }
        let mut layout = ProbeLayout { large_mapping_bytes: 7, ..ProbeLayout::DEFAULT };
        fill_layout(Path::new(VMLINUX_BTF), &mut layout).unwrap();
        // A percpu_counter is at least a lock and an s64; an atomic_long_t is 8.
        assert!(layout.mm_rss_stride >= 8 && layout.mm_rss_stride <= 64, "{layout:?}");
        assert!(layout.mm_rss_base > 0 && layout.task_mm > 0 && layout.task_signal > 0, "{layout:?}");
        assert_eq!(layout.task_maj_flt, layout.task_min_flt + 8, "adjacent unsigned longs: {layout:?}");
        assert_eq!(layout.signal_maj_flt, layout.signal_min_flt + 8, "{layout:?}");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(layout.regs_arg1, 13 * 8, "pt_regs.si is the 14th register of the x86_64 frame");
        assert_eq!(layout.large_mapping_bytes, 7, "fields not from BTF are kept");
    }
}
