//! Kernel struct offsets from the kernel's own BTF (/sys/kernel/btf/vmlinux),
//! for the raw rss_stat probe, which reads the mm's counters directly.
//!
//! The counters' layout differs between kernels: 6.2+ keep an array of
//! `struct percpu_counter` (`rss_stat[i].count`), earlier ones a
//! `struct mm_rss_stat` of `atomic_long_t` (`rss_stat.count[i].counter`). Both
//! come down to "base + member * stride", which is all the probe needs.
use std::path::Path;

use btfparse::{Offset, Readable, TypeInformation};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Where the probe finds what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmLayout {
    /// Byte offset in `struct mm_struct` of member 0's counter.
    pub rss_base: u32,
    /// Bytes from one member's counter to the next one's.
    pub rss_stride: u32,
    /// Byte offset of `mm` in `struct task_struct`.
    pub task_mm: u32,
}

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

/// Reads the offsets from a BTF file. `Err` says what was missing.
pub fn mm_layout(btf_path: &Path) -> Result<MmLayout, String> {
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
    let task_mm = byte_offset(&types, "task_struct", "mm")?;
    Ok(MmLayout { rss_base: first, rss_stride: second - first, task_mm })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_btf_file_is_a_reason_not_a_panic() {
        let err = mm_layout(Path::new("/nonexistent/vmlinux")).unwrap_err();
        assert!(err.contains("/nonexistent/vmlinux"), "{err}");
    }

    /// Runs against this machine's kernel (every kernel memwatch supports
    /// ships BTF; the file is world-readable).
    #[test]
    fn this_kernels_mm_counters_are_found() {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("SKIPPED: {VMLINUX_BTF} missing (kernel built without BTF)");
            return;
        }
        let layout = mm_layout(Path::new(VMLINUX_BTF)).unwrap();
        // A percpu_counter is at least a lock and an s64; an atomic_long_t is 8.
        assert!(layout.rss_stride >= 8 && layout.rss_stride <= 64, "{layout:?}");
        assert!(layout.rss_base > 0 && layout.task_mm > 0, "{layout:?}");
    }
}
