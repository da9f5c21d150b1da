//! Tracepoint `format` files: where each field of an event record sits.
//!
//! Offsets differ between kernels (rss_stat's changed in 6.2), so the probes
//! get them from tracefs at load time instead of trusting one kernel's layout.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use memwatch_ebpf::{RSS_STAT_RECORD_BYTES, TracepointLayout};

use super::ProbeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub offset: u32,
    pub size: u32,
}

/// Fields of one event by name, from the text of its `format` file.
///
/// Lines look like `\tfield:unsigned long len;\toffset:24;\tsize:8;\tsigned:0;`;
/// the name is the last word of the declaration, minus any array suffix.
pub fn parse(text: &str) -> Result<HashMap<String, Field>, String> {
    let mut fields = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else { continue };
        let mut declaration = None;
        let mut offset = None;
        let mut size = None;
        for part in rest.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(v) = part.strip_prefix("offset:") {
                offset = v.parse::<u32>().ok();
            } else if let Some(v) = part.strip_prefix("size:") {
                size = v.parse::<u32>().ok();
            } else if !part.contains(':') || declaration.is_none() {
                declaration.get_or_insert(part);
            }
        }
        let (Some(declaration), Some(offset), Some(size)) = (declaration, offset, size) else {
            return Err(format!("line {}: cannot read field from {line:?}", number + 1));
        };
        let name = declaration.rsplit(|c: char| c.is_whitespace() || c == '*').next().unwrap_or(declaration);
        let name = name.split('[').next().unwrap_or(name);
        fields.insert(name.to_owned(), Field { offset, size });
    }
    Ok(fields)
}

/// The fields of one event, read from `events/<event>/format`.
struct EventFormat {
    path: PathBuf,
    fields: HashMap<String, Field>,
}

impl EventFormat {
    fn read(events: &Path, event: &str) -> Result<Self, ProbeError> {
        let path = events.join(event).join("format");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ProbeError::Format { path: path.clone(), detail: e.to_string() })?;
        let fields = parse(&text).map_err(|detail| ProbeError::Format { path: path.clone(), detail })?;
        Ok(Self { path, fields })
    }

    /// The offset of `name`, which must be one of `sizes` bytes long.
    fn offset(&self, name: &str, sizes: &[u32]) -> Result<u32, ProbeError> {
        let error = |detail: String| ProbeError::Format { path: self.path.clone(), detail };
        let field = self.fields.get(name).ok_or_else(|| error(format!("no field `{name}`")))?;
        if !sizes.contains(&field.size) {
            return Err(error(format!("field `{name}` is {} bytes, expected one of {sizes:?}", field.size)));
        }
        Ok(field.offset)
    }

    /// Like `offset`, for a field the probe reads from the record's first
    /// `RSS_STAT_RECORD_BYTES` (see memwatch-ebpf's rss probe).
    fn offset_within_head(&self, name: &str, sizes: &[u32]) -> Result<u32, ProbeError> {
        let offset = self.offset(name, sizes)?;
        let end = offset + self.fields[name].size;
        if end > RSS_STAT_RECORD_BYTES {
            return Err(ProbeError::Format {
                path: self.path.clone(),
                detail: format!(
                    "field `{name}` ends at byte {end}, past the {RSS_STAT_RECORD_BYTES} bytes the probe reads; \
                     this kernel's rss_stat layout is not supported yet"
                ),
            });
        }
        Ok(offset)
    }
}

/// The offsets the probes need, read from `events` (tracefs's events/ folder).
pub fn layout(events: &Path, large_mapping_bytes: u64) -> Result<TracepointLayout, ProbeError> {
    let rss_stat = EventFormat::read(events, "kmem/rss_stat")?;
    let enter_mmap = EventFormat::read(events, "syscalls/sys_enter_mmap")?;
    let enter_munmap = EventFormat::read(events, "syscalls/sys_enter_munmap")?;
    let exit_brk = EventFormat::read(events, "syscalls/sys_exit_brk")?;
    Ok(TracepointLayout {
        rss_stat_mm_id: rss_stat.offset_within_head("mm_id", &[4])?,
        rss_stat_curr: rss_stat.offset_within_head("curr", &[1, 4])?,
        rss_stat_member: rss_stat.offset_within_head("member", &[4])?,
        rss_stat_size: rss_stat.offset_within_head("size", &[8])?,
        mmap_len: enter_mmap.offset("len", &[8])?,
        munmap_len: enter_munmap.offset("len", &[8])?,
        syscall_ret: exit_brk.offset("ret", &[8])?,
        large_mapping_bytes,
        // The BTF rss_stat probe's offsets come from the kernel's BTF, not
        // from tracefs (see ebpf/btf.rs); these defaults leave them unset.
        ..TracepointLayout::DEFAULT
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS_STAT_6_18: &str = "name: rss_stat\nID: 646\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:unsigned int mm_id;\toffset:8;\tsize:4;\tsigned:0;\n\
        \tfield:unsigned int curr;\toffset:12;\tsize:4;\tsigned:0;\n\
        \tfield:int member;\toffset:16;\tsize:4;\tsigned:1;\n\
        \tfield:long size;\toffset:24;\tsize:8;\tsigned:1;\n\n\
        print fmt: \"mm_id=%u curr=%d type=%s size=%ldB\", REC->mm_id\n";

    /// Kernel 6.1 keeps `curr` as a bool, so `member` and `size` move.
    const RSS_STAT_6_1: &str = "format:\n\
        \tfield:unsigned int mm_id;\toffset:8;\tsize:4;\tsigned:0;\n\
        \tfield:bool curr;\toffset:12;\tsize:1;\tsigned:0;\n\
        \tfield:int member;\toffset:16;\tsize:4;\tsigned:1;\n\
        \tfield:long size;\toffset:24;\tsize:8;\tsigned:1;\n";

    #[test]
    fn parses_field_offsets_and_sizes() {
        let fields = parse(RSS_STAT_6_18).unwrap();
        assert_eq!(fields["mm_id"], Field { offset: 8, size: 4 });
        assert_eq!(fields["size"], Field { offset: 24, size: 8 });
        assert_eq!(fields["common_pid"], Field { offset: 4, size: 4 });
        assert_eq!(parse(RSS_STAT_6_1).unwrap()["curr"], Field { offset: 12, size: 1 });
    }

    #[test]
    fn array_and_pointer_declarations_keep_their_bare_names() {
        let fields = parse(
            "\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
             \tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n",
        )
        .unwrap();
        assert_eq!(fields["comm"], Field { offset: 8, size: 16 });
        assert_eq!(fields["filename"], Field { offset: 24, size: 8 });
    }

    #[test]
    fn a_field_line_without_offset_is_an_error_naming_the_line() {
        let err = parse("format:\n\tfield:int member;\tsize:4;\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn layout_reads_every_needed_event() {
        let dir = tempfile::tempdir().unwrap();
        let write = |event: &str, text: &str| {
            let path = dir.path().join(event);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("format"), text).unwrap();
        };
        write("kmem/rss_stat", RSS_STAT_6_1);
        let args = "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
                    \tfield:unsigned long addr;\toffset:16;\tsize:8;\tsigned:0;\n\
                    \tfield:unsigned long len;\toffset:24;\tsize:8;\tsigned:0;\n";
        write("syscalls/sys_enter_mmap", args);
        write("syscalls/sys_enter_munmap", args);
        write("syscalls/sys_exit_brk", "\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;\n");
        let read = layout(dir.path(), 1 << 26).unwrap();
        assert_eq!(read.rss_stat_curr, 12);
        assert_eq!(read.rss_stat_size, 24);
        assert_eq!(read.mmap_len, 24);
        assert_eq!(read.syscall_ret, 16);
        assert_eq!(read.large_mapping_bytes, 1 << 26);

        write("syscalls/sys_exit_brk", "\tfield:int ret;\toffset:16;\tsize:4;\tsigned:1;\n");
        let err = layout(dir.path(), 0).unwrap_err().to_string();
        assert!(err.contains("sys_exit_brk") && err.contains("`ret` is 4 bytes"), "{err}");

        write("kmem/rss_stat", &RSS_STAT_6_1.replace("offset:24;", "offset:32;"));
        let err = layout(dir.path(), 0).unwrap_err().to_string();
        assert!(err.contains("`size` ends at byte 40"), "{err}");
    }
}
