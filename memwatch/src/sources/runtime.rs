//! What runtime a process is, from what it is rather than what it is called:
//! a JVM maps `libjvm.so`; a Go program carries the `.note.go.buildid` note;
//! node, Python, Ruby, Apache, PostgreSQL and PHP export the C symbols their
//! native extensions link against (`napi_module_register`, `Py_Initialize`,
//! ...), which a renamed binary keeps. nginx and Redis export nothing of the
//! kind and are known by their executable's name.
use std::{collections::HashMap, fs::File, os::unix::fs::MetadataExt as _, path::Path};

use object::{Object as _, ObjectSymbol as _, read::ReadCache};

use super::procfs::ProcFs;
use crate::model::{runtime::Runtime, sample::ProcessId};

/// Libraries whose mapping names the runtime.
const MAPPED: &[(&str, Runtime)] = &[
    ("/libjvm.so", Runtime::Jvm),
    ("/libruby", Runtime::Ruby),
    ("/libpython3", Runtime::Python),
    ("/libnode.so", Runtime::Node),
];

/// Exported symbols only a runtime's own binary (or library) has.
const EXPORTED: &[(&str, Runtime)] = &[
    ("napi_module_register", Runtime::Node),
    ("Py_Initialize", Runtime::Python),
    ("ruby_init", Runtime::Ruby),
    ("ap_run_handler", Runtime::Apache),
    ("PostmasterMain", Runtime::Postgres),
    ("zend_execute", Runtime::PhpFpm),
    ("JNI_CreateJavaVM", Runtime::Jvm),
];

/// Sections only a Go toolchain writes.
const GO_SECTIONS: &[&str] = &[".note.go.buildid", ".go.buildinfo"];

/// Executable names, for what exports nothing to know it by.
const NAMED: &[(&str, Runtime)] = &[
    ("nginx", Runtime::Nginx),
    ("redis-server", Runtime::Redis),
    ("redis-sentinel", Runtime::Redis),
    ("postgres", Runtime::Postgres),
    ("postmaster", Runtime::Postgres),
    ("apache2", Runtime::Apache),
    ("httpd", Runtime::Apache),
];

/// `identify` with what is costly kept: reading a runtime's symbol table
/// takes tens of milliseconds (node's binary is ~100 MB), so each
/// executable (by device, inode and mtime) is read once, however many
/// processes run it; a process found to map a runtime's library is
/// remembered. The mappings of the others are read again each time (a
/// launcher maps libjvm.so a moment after it starts).
#[derive(Debug, Clone, Default)]
pub struct RuntimeCache {
    executables: HashMap<(u64, u64, i64), Option<Runtime>>,
    mapped: HashMap<ProcessId, Runtime>,
}

impl RuntimeCache {
    /// Entries kept at most in each map: cleared beyond (a rebuild costs one read each).
    const MAX: usize = 4096;

    pub fn identify(&mut self, procfs: &ProcFs, id: ProcessId) -> Option<Runtime> {
        if let Some(runtime) = self.mapped.get(&id) {
            return Some(*runtime);
        }
        let dir = procfs.root().join(id.pid.to_string());
        if let Some(runtime) = std::fs::read_to_string(dir.join("maps")).ok().as_deref().and_then(mapped) {
            bounded_insert(&mut self.mapped, id, runtime);
            return Some(runtime);
        }
        let exe = dir.join("exe");
        let meta = std::fs::metadata(&exe).ok()?;
        let key = (meta.dev(), meta.ino(), meta.mtime());
        if let Some(runtime) = self.executables.get(&key) {
            return *runtime;
        }
        let runtime = by_executable(&exe);
        bounded_insert(&mut self.executables, key, runtime);
        runtime
    }
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= RuntimeCache::MAX {
        map.clear();
    }
    map.insert(key, value);
}

/// The runtime of process `pid`, or `None` for anything else (or a process
/// that is gone).
pub fn identify(procfs: &ProcFs, pid: u32) -> Option<Runtime> {
    let dir = procfs.root().join(pid.to_string());
    if let Some(runtime) = std::fs::read_to_string(dir.join("maps")).ok().as_deref().and_then(mapped) {
        return Some(runtime);
    }
    by_executable(&dir.join("exe"))
}

/// Like `identify`, but an error when what the process runs cannot be read
/// at all (another user's process, to a reader without CAP_SYS_PTRACE):
/// unknown is not the same as "no runtime" to a caller about to signal it.
pub fn identify_readable(procfs: &ProcFs, pid: u32) -> Result<Option<Runtime>, std::io::Error> {
    let dir = procfs.root().join(pid.to_string());
    if let Err(e) = std::fs::read_link(dir.join("exe"))
        && e.kind() == std::io::ErrorKind::PermissionDenied
    {
        return Err(e);
    }
    Ok(identify(procfs, pid))
}

/// From the executable: its ELF, else its name.
fn by_executable(exe: &Path) -> Option<Runtime> {
    executable(exe).or_else(|| {
        let target = std::fs::read_link(exe).ok()?;
        let name = target.file_name()?.to_str()?.trim_end_matches(" (deleted)");
        named(name)
    })
}

fn mapped(maps: &str) -> Option<Runtime> {
    maps.lines().find_map(|line| {
        let path = line.split_whitespace().nth(5)?;
        MAPPED.iter().find(|(marker, _)| path.contains(marker)).map(|(_, runtime)| *runtime)
    })
}

fn named(name: &str) -> Option<Runtime> {
    if name.starts_with("php-fpm") {
        return Some(Runtime::PhpFpm);
    }
    NAMED.iter().find(|(n, _)| *n == name).map(|(_, runtime)| *runtime)
}

/// Whether the executable `exe` (a process's /proc/PID/exe, opened) was
/// built by Go's toolchain: its sections say, whatever it is called.
pub fn is_go(exe: File) -> bool {
    let cache = ReadCache::new(exe);
    object::File::parse(&cache).is_ok_and(|elf| has_go_sections(&elf))
}

fn has_go_sections<'data, R: object::ReadRef<'data>>(elf: &object::File<'data, R>) -> bool {
    GO_SECTIONS.iter().any(|name| elf.section_by_name(name).is_some())
}

/// From the ELF file itself: Go's sections, then the exported symbols. Only
/// the headers, section and dynamic symbol tables are read, not the code.
fn executable(path: &Path) -> Option<Runtime> {
    let file = File::open(path).ok()?;
    let cache = ReadCache::new(file);
    let elf = object::File::parse(&cache).ok()?;
    if has_go_sections(&elf) {
        return Some(Runtime::Go);
    }
    elf.dynamic_symbols().filter(|s| !s.is_undefined()).find_map(|symbol| {
        let name = symbol.name().ok()?;
        EXPORTED.iter().find(|(exported, _)| *exported == name).map(|(_, runtime)| *runtime)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_and_names_tell_the_runtime() {
        let jvm = "7f00-7f01 r-xp 00000000 08:01 123 /usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so\n";
        assert_eq!(mapped(jvm), Some(Runtime::Jvm));
        assert_eq!(mapped("7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"), None);
        assert_eq!(named("nginx"), Some(Runtime::Nginx));
        assert_eq!(named("php-fpm8.2"), Some(Runtime::PhpFpm));
        assert_eq!(named("myapp"), None);
    }

    #[test]
    fn this_test_binary_is_no_runtime_of_the_table() {
        assert_eq!(identify(&ProcFs::default(), std::process::id()), None);
        assert!(!is_go(File::open("/proc/self/exe").unwrap()), "Rust, not Go");
    }
}

#[cfg(test)]
mod real_binaries {
    use super::*;

    /// The binaries of Debian's packages, where installed (the project's
    /// set-up installs nodejs and python3; the runtimes test runs them).
    #[test]
    fn debian_binaries_are_told_by_their_exports_and_go_by_its_sections() {
        // Debian's prometheus (a test package) is built by Go.
        for (path, go) in [("/usr/bin/prometheus", true), ("/usr/bin/python3", false)] {
            match File::open(path) {
                Ok(exe) => assert_eq!(is_go(exe), go, "{path}"),
                Err(_) => eprintln!("SKIPPED {path}: not installed"),
            }
        }
        for (path, runtime) in [("/usr/bin/node", Runtime::Node), ("/usr/bin/python3", Runtime::Python)] {
            if !Path::new(path).exists() {
                eprintln!("SKIPPED {path}: not installed");
                continue;
            }
            let started = std::time::Instant::now();
            assert_eq!(executable(Path::new(path)), Some(runtime), "{path}");
            eprintln!("{path}: {:?} in {:?}", runtime, started.elapsed());
        }
    }
}
