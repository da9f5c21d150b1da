//! Tracepoint `format` files: where each field of an event record sits.
//!
//! Offsets can differ between kernels, so the syscall tracepoint probes get
//! them from tracefs at load time instead of trusting one kernel's layout.
use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use memwatch_ebpf::{Feature, ProbeLayout};

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
}

/// The record offsets the syscall tracepoint probes need, read from
/// `events` (tracefs's events/ folder) into `layout`, and why each feature
/// whose fields cannot be read is unusable.
pub fn fill_syscall_layout(events: &Path, layout: &mut ProbeLayout) -> BTreeMap<Feature, ProbeError> {
    let mut unusable = BTreeMap::new();
    // Every syscall exit record has `ret` at the same offset; each feature
    // reads it from its own exit event, and they must agree.
    let mut ret_offset: Option<u32> = None;
    let syscalls = [
        (Feature::Mmap, Some("syscalls/sys_enter_mmap"), "syscalls/sys_exit_mmap"),
        (Feature::Munmap, Some("syscalls/sys_enter_munmap"), "syscalls/sys_exit_munmap"),
        (Feature::Brk, None, "syscalls/sys_exit_brk"),
    ];
    for (feature, enter, exit) in syscalls {
        let read = (|| {
            let len = enter.map(|e| EventFormat::read(events, e)?.offset("len", &[8])).transpose()?;
            let exit = EventFormat::read(events, exit)?;
            let ret = exit.offset("ret", &[8])?;
            if let Some(seen) = ret_offset.filter(|&seen| seen != ret) {
                let detail = format!("`ret` is at offset {ret}, the other syscall exits have it at {seen}");
                return Err(ProbeError::Format { path: exit.path, detail });
            }
            Ok((len, ret))
        })();
        match read {
            Ok((len, ret)) => {
                ret_offset = Some(ret);
                layout.syscall_ret = ret;
                match feature {
                    Feature::Mmap => layout.mmap_len = len.unwrap_or_default(),
                    Feature::Munmap => layout.munmap_len = len.unwrap_or_default(),
                    _ => {}
                }
            }
            Err(e) => {
                unusable.insert(feature, e);
            }
        }
    }
    unusable
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS_ENTER_MMAP: &str = "name: sys_enter_mmap\nID: 101\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
        \tfield:unsigned long addr;\toffset:16;\tsize:8;\tsigned:0;\n\
        \tfield:unsigned long len;\toffset:24;\tsize:8;\tsigned:0;\n\n\
        print fmt: \"addr: 0x%08lx, len: 0x%08lx\", REC->addr, REC->len\n";

    #[test]
    fn parses_field_offsets_and_sizes() {
        let fields = parse(SYS_ENTER_MMAP).unwrap();
        assert_eq!(fields["__syscall_nr"], Field { offset: 8, size: 4 });
        assert_eq!(fields["len"], Field { offset: 24, size: 8 });
        assert_eq!(fields["common_pid"], Field { offset: 4, size: 4 });
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
    fn layout_reads_every_needed_event_and_names_the_feature_it_cannot_serve() {
        let dir = tempfile::tempdir().unwrap();
        let write = |event: &str, text: &str| {
            let path = dir.path().join(event);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("format"), text).unwrap();
        };
        let args = "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
                    \tfield:unsigned long addr;\toffset:16;\tsize:8;\tsigned:0;\n\
                    \tfield:unsigned long len;\toffset:24;\tsize:8;\tsigned:0;\n";
        let ret = "\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;\n";
        write("syscalls/sys_enter_mmap", args);
        write("syscalls/sys_enter_munmap", args);
        for exit in ["sys_exit_mmap", "sys_exit_munmap", "sys_exit_brk"] {
            write(&format!("syscalls/{exit}"), ret);
        }
        let mut read =
            ProbeLayout { mmap_len: 0, syscall_ret: 0, large_mapping_bytes: 1 << 26, ..ProbeLayout::DEFAULT };
        let unusable = fill_syscall_layout(dir.path(), &mut read);
        assert!(unusable.is_empty(), "{unusable:?}");
        assert_eq!(read.mmap_len, 24);
        assert_eq!(read.syscall_ret, 16);
        assert_eq!(read.large_mapping_bytes, 1 << 26, "other fields kept");

        write("syscalls/sys_exit_brk", "\tfield:int ret;\toffset:16;\tsize:4;\tsigned:1;\n");
        let unusable = fill_syscall_layout(dir.path(), &mut { ProbeLayout::DEFAULT });
        assert_eq!(unusable.keys().copied().collect::<Vec<_>>(), [Feature::Brk], "only brk's probes are lost");
        let err = unusable[&Feature::Brk].to_string();
        assert!(err.contains("sys_exit_brk") && err.contains("`ret` is 4 bytes"), "{err}");

        std::fs::remove_dir_all(dir.path().join("syscalls/sys_enter_munmap")).unwrap();
        let unusable = fill_syscall_layout(dir.path(), &mut { ProbeLayout::DEFAULT });
        assert!(unusable[&Feature::Munmap].to_string().contains("sys_enter_munmap"), "{unusable:?}");
        assert!(!unusable.contains_key(&Feature::Mmap));
    }
}
