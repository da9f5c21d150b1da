//! The heap ceiling a runtime was started with, from its command line and
//! the environment variables it reads its options from: a JVM's `-Xmx` (or
//! `-XX:MaxHeapSize=`), also in `JAVA_TOOL_OPTIONS`, `JDK_JAVA_OPTIONS` and
//! `_JAVA_OPTIONS`, or without one the heap HotSpot sizes from the share
//! of memory it was given there (`-XX:MaxRAMPercentage`, `hotspot`);
//! Node's `--max-old-space-size`, also in `NODE_OPTIONS`; a Go program's
//! `GOMEMLIMIT`.
//!
//! A runtime grows its heap towards that ceiling as it warms up (a JVM
//! commits heap it will keep, whether or not the objects in it live), so
//! resident memory climbing to the ceiling says nothing about a leak. A
//! JVM's and V8's ceilings are hard: the heap cannot grow past them, and
//! what is left to grow is the runtime's own memory. Go's is soft: its
//! collector works harder near it, and a leak goes on past it. The leak
//! detector uses each that way (`engine::leak`). The command line is read
//! as /proc gives it, words joined by spaces: an argument holding a space
//! ends the runtime's options early, and a ceiling after it is missed
//! (never one made up).
//!
//! Environments are inherited by everything a service starts: a JVM's and
//! Node's option variables count only for a process whose program is
//! `java` or `node`, and `GOMEMLIMIT` (with `GOGC=off`) only for a Go
//! executable (a shell of the same unit holding them has no such heap).
use serde::{Deserialize, Serialize};

use super::{hotspot, hotspot::MemoryShare, option_words};

/// How large a runtime's heap may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeapCeiling {
    pub bytes: u64,
    /// Go's `GOMEMLIMIT`: a target the collector aims at, which a leak
    /// passes, rather than a bound the heap stops at.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub soft: bool,
}

impl HeapCeiling {
    pub const fn hard(bytes: u64) -> Self {
        Self { bytes, soft: false }
    }

    /// The ceiling of a target holding both: their sum, soft if either is
    /// (growth past a soft share of it may be a leak). `None` on overflow.
    pub fn plus(self, other: Self) -> Option<Self> {
        Some(Self { bytes: self.bytes.checked_add(other.bytes)?, soft: self.soft || other.soft })
    }
}

/// Options of `java` and `node` that take the next word as their value.
const VALUE_OPTIONS: &[&str] = &[
    "-cp",
    "-classpath",
    "--class-path",
    "-p",
    "--module-path",
    "--upgrade-module-path",
    "--add-modules",
    "--add-opens",
    "--add-exports",
    "--add-reads",
    "--patch-module",
    "--limit-modules",
    "-r",
    "--require",
];

/// The variables a runtime reads its heap ceiling from, the only ones
/// memwatch looks for in a process's environment.
pub const ENVIRONMENT_NAMES: [&str; 6] =
    ["GOMEMLIMIT", "GOGC", "NODE_OPTIONS", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"];

/// The ceiling declared on `cmdline` (arguments joined by spaces). Only
/// the runtime's own options count: those before the main class, the
/// `-jar` file or the script (what follows is the program's). The last of
/// several wins, as it does for the runtimes.
pub fn declared(cmdline: &str) -> Option<HeapCeiling> {
    declared_with(cmdline, |_| None, || false, |_| None)
}

/// The ceiling declared on `cmdline` or in the environment variable
/// `environment` gives for a name of [`ENVIRONMENT_NAMES`], in the order the
/// runtime applies them: a JVM reads `JAVA_TOOL_OPTIONS`, then
/// `JDK_JAVA_OPTIONS`, then its command line, then `_JAVA_OPTIONS` (the last
/// word wins), and without a heap size takes the share of memory it was
/// given (`hotspot::MemoryShare`) of what `memory` says it sees, asked only
/// then (its cgroup's limit or the host's memory when asked with container
/// support, the host's without); Node reads `NODE_OPTIONS` before its
/// command line; a Go program (`is_go`, asked only of a process holding
/// both) whose `GOGC` is `off` collects only when its memory reaches
/// `GOMEMLIMIT`, so grows to it whatever its live data, as a JVM grows its
/// heap to `-Xmx`. (With the collector on, Go's memory follows its live
/// data, and reaching the limit says what any growth says.)
pub fn declared_with<'a>(
    cmdline: &str,
    environment: impl Fn(&str) -> Option<&'a str>,
    is_go: impl FnOnce() -> bool,
    memory: impl FnOnce(bool) -> Option<u64>,
) -> Option<HeapCeiling> {
    let mut words = cmdline.split(' ').filter(|w| !w.is_empty());
    let program = words.next().map(|p| p.rsplit('/').next().unwrap_or(p));
    let hard = match program {
        Some("java") => return jvm(words, environment, memory),
        Some("node" | "nodejs") => last_in_options(words).or_else(|| {
            let words = option_words::node(environment("NODE_OPTIONS")?)?;
            last_in_options(words.iter().map(String::as_str))
        }),
        _ => last_in_options(words),
    };
    if let Some(bytes) = hard {
        return Some(HeapCeiling::hard(bytes));
    }
    let soft = environment("GOMEMLIMIT").and_then(go_memory_limit).filter(|_| environment("GOGC") == Some("off"))?;
    is_go().then_some(HeapCeiling { bytes: soft, soft: true })
}

/// A JVM's ceiling (see `declared_with`).
fn jvm<'c, 'e>(
    command_line: impl Iterator<Item = &'c str>,
    environment: impl Fn(&str) -> Option<&'e str>,
    memory: impl FnOnce(bool) -> Option<u64>,
) -> Option<HeapCeiling> {
    let variable = |name: &str| environment(name).and_then(option_words::jvm).unwrap_or_default();
    let (tool, launcher, late) =
        (variable("JAVA_TOOL_OPTIONS"), variable("JDK_JAVA_OPTIONS"), variable("_JAVA_OPTIONS"));
    fn words(value: &[String]) -> Vec<&str> {
        value.iter().map(String::as_str).collect()
    }
    let sources = [words(&tool), words(&launcher), command_line.collect(), words(&late)];
    if let Some(bytes) = sources.iter().filter_map(|source| last_in_options(source.iter().copied())).next_back() {
        return Some(HeapCeiling::hard(bytes));
    }
    let mut share = MemoryShare::default();
    for source in &sources {
        each_option(source.iter().copied(), |word, _| share.take(word));
    }
    share.max_heap(memory).map(HeapCeiling::hard)
}

/// Calls `visit` with each of a runtime's own options on `words`, up to
/// the first word that is not one (the main class, the `-jar` file, the
/// script), with the words after it so an option can take the next as its
/// value.
fn each_option<'a, W: Iterator<Item = &'a str>>(mut words: W, mut visit: impl FnMut(&'a str, &mut W)) {
    while let Some(word) = words.next() {
        if !word.starts_with('-') || word == "-jar" || word == "--" {
            break;
        }
        if VALUE_OPTIONS.contains(&word) {
            words.next();
            continue;
        }
        visit(word, &mut words);
    }
}

/// The last ceiling among a runtime's options.
fn last_in_options<'a>(words: impl Iterator<Item = &'a str>) -> Option<u64> {
    let mut ceiling = None;
    each_option(words, |word, words| {
        let found = if let Some(size) = word.strip_prefix("-Xmx") {
            hotspot::size(size)
        } else if let Some(size) = word.strip_prefix("-XX:MaxHeapSize=") {
            hotspot::size(size)
        } else if let Some(flag) =
            ["--max-old-space-size", "--max_old_space_size"].iter().find(|f| word.starts_with(**f))
        {
            let mib = match &word[flag.len()..] {
                "" => words.next().unwrap_or_default(),
                rest => match rest.strip_prefix('=') {
                    Some(value) => value,
                    None => return,
                },
            };
            mib.parse::<u64>().ok().and_then(|m| m.checked_mul(1 << 20))
        } else {
            return;
        };
        if let Some(bytes) = found.filter(|&b| b > 0) {
            ceiling = Some(bytes);
        }
    });
    ceiling
}

/// Go's `GOMEMLIMIT`: digits and an optional `B`, `KiB`, `MiB`, `GiB` or
/// `TiB` (the runtime's own grammar); `off`, 0 and the maximum (what `off`
/// means) declare nothing.
fn go_memory_limit(text: &str) -> Option<u64> {
    let units: [(&str, u32); 5] = [("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40), ("B", 0)];
    let (digits, shift) =
        units.iter().find_map(|(unit, shift)| Some((text.strip_suffix(unit)?, *shift))).unwrap_or((text, 0));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift).filter(|&b| b > 0 && b < i64::MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn hard(bytes: u64) -> Option<HeapCeiling> {
        Some(HeapCeiling::hard(bytes))
    }

    #[test]
    fn jvm_and_node_ceilings_are_read_in_their_own_units() {
        assert_eq!(declared("/usr/bin/java -Xmx460m Service.java"), hard(460 * MIB));
        assert_eq!(declared("java -Xms64m -Xmx2G -jar app.jar"), hard(2 << 30));
        assert_eq!(declared("java -cp /opt/lib -Xmx300m Main"), hard(300 * MIB), "past an option's value");
        assert_eq!(declared("java --add-opens java.base/java.lang=ALL-UNNAMED -Xmx1g -jar a.jar"), hard(1 << 30));
        assert_eq!(declared("java -XX:MaxHeapSize=524288k -jar app.jar"), hard(512 * MIB));
        assert_eq!(declared("java -Xmx1073741824 Main"), hard(1 << 30), "no suffix: bytes");
        assert_eq!(declared("node --max-old-space-size=1536 server.js"), hard(1536 * MIB));
        assert_eq!(declared("node --max_old_space_size 512 server.js"), hard(512 * MIB));
        assert_eq!(declared("java -Xmx256m -Xmx1g Main"), hard(1 << 30), "the last one wins");
    }

    /// An environment holding `vars`, as the process reader passes it.
    fn environment<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// `declared_with` for a process that is not a Go executable.
    fn not_go<'a>(cmdline: &str, vars: &'a [(&'a str, &'a str)]) -> Option<HeapCeiling> {
        declared_with(cmdline, environment(vars), || false, |_| None)
    }

    #[test]
    fn runtimes_read_their_option_variables_in_their_own_order() {
        let java = [("JAVA_TOOL_OPTIONS", "-Dfile.encoding=UTF-8 -Xmx256m"), ("JDK_JAVA_OPTIONS", "-Xmx384m")];
        assert_eq!(not_go("/usr/bin/java -jar app.jar", &java[..1]), hard(256 * MIB));
        assert_eq!(not_go("java -jar app.jar", &java), hard(384 * MIB), "the launcher's after the tool's");
        assert_eq!(not_go("java -Xmx1g -jar app.jar", &java), hard(1 << 30), "the command line after both");
        let overriding = [("JAVA_TOOL_OPTIONS", "-Xmx256m"), ("_JAVA_OPTIONS", "-Xmx2g")];
        assert_eq!(not_go("java -Xmx1g Main", &overriding), hard(2 << 30), "_JAVA_OPTIONS last");
        let node = [("NODE_OPTIONS", "--require /opt/trace.js --max-old-space-size=768")];
        assert_eq!(not_go("/usr/bin/node server.js", &node), hard(768 * MIB));
        assert_eq!(not_go("node --max-old-space-size=512 server.js", &node), hard(512 * MIB));
    }

    #[test]
    fn option_variables_are_split_as_the_runtimes_split_them() {
        let quoted = [("JAVA_TOOL_OPTIONS", r#"-Dbanner="start -Xmx4g now" -Xmx512m '-Dsecret=a b'"#)];
        assert_eq!(not_go("java Main", &quoted), hard(512 * MIB), "a quoted -Xmx4g is part of another option");
        let only_quoted = [("NODE_OPTIONS", r#"--title="x --max-old-space-size=4096""#)];
        assert_eq!(not_go("node a.js", &only_quoted), None);
    }

    #[test]
    fn an_inherited_variable_is_no_ceiling_for_another_program() {
        let all = [
            ("NODE_OPTIONS", "--max-old-space-size=768"),
            ("JAVA_TOOL_OPTIONS", "-Xmx1g"),
            ("GOMEMLIMIT", "1GiB"),
            ("GOGC", "off"),
        ];
        for cmdline in ["/bin/sh -c exec node server.js", "python3 worker.py", "/usr/bin/java-wrapper", ""] {
            assert_eq!(not_go(cmdline, &all), None, "{cmdline:?}");
        }
    }

    #[test]
    fn a_go_programs_memory_limit_is_read_in_gos_grammar_as_a_soft_ceiling() {
        let go = |value: &str| {
            let vars = [("GOMEMLIMIT", value), ("GOGC", "off")];
            declared_with("/usr/local/bin/api --listen :80", environment(&vars), || true, |_| None)
                .map(|c| (c.bytes, c.soft))
        };
        assert_eq!(go("1GiB"), Some((1 << 30, true)));
        assert_eq!(go("750MiB"), Some((750 * MIB, true)));
        assert_eq!(go("524288KiB"), Some((512 * MIB, true)));
        assert_eq!(go("1073741824"), Some((1 << 30, true)));
        assert_eq!(go("1073741824B"), Some((1 << 30, true)));
        for not_a_limit in ["off", "0", "9223372036854775807", "1GB", "1.5GiB", "-1", "MiB", "1 GiB", "lots", ""] {
            assert_eq!(go(not_a_limit), None, "{not_a_limit:?}");
        }
        let collected = [("GOMEMLIMIT", "1GiB"), ("GOGC", "100")];
        assert_eq!(
            declared_with("api", environment(&collected), || true, |_| None),
            None,
            "the collector on: no ceiling"
        );
        assert_eq!(
            declared_with("api", environment(&collected[..1]), || true, |_| None),
            None,
            "GOGC's default is 100"
        );
        let java_and_go = [("JAVA_TOOL_OPTIONS", "-Xmx256m"), ("GOMEMLIMIT", "1GiB"), ("GOGC", "off")];
        let asked = std::cell::Cell::new(false);
        let jvm = declared_with(
            "java Main",
            environment(&java_and_go),
            || {
                asked.set(true);
                true
            },
            |_| None,
        );
        assert_eq!(jvm, hard(256 * MIB), "the runtime's own");
        assert!(!asked.get(), "whether it is Go is asked only where it could matter");
    }

    #[test]
    fn a_jvm_given_a_share_of_memory_has_the_heap_hotspot_sizes_from_it() {
        /// A JVM in a 1 GiB cgroup on a 16 GiB host.
        fn jvm(cmdline: &str, vars: &[(&str, &str)]) -> Option<HeapCeiling> {
            declared_with(
                cmdline,
                environment(vars),
                || false,
                |container| Some(if container { 1 << 30 } else { 16 << 30 }),
            )
        }
        assert_eq!(jvm("java -XX:MaxRAMPercentage=75 -jar app.jar", &[]), hard(768 * MIB));
        assert_eq!(jvm("java -jar app.jar", &[("JAVA_TOOL_OPTIONS", "-XX:MaxRAMPercentage=50")]), hard(512 * MIB));
        assert_eq!(jvm("java -XX:MaxRAMPercentage=75 -XX:-UseContainerSupport Main", &[]), hard(12 << 30));
        let sized = [("_JAVA_OPTIONS", "-Xmx256m")];
        assert_eq!(jvm("java -XX:MaxRAMPercentage=75 Main", &sized), hard(256 * MIB), "a size wherever given wins");
        assert_eq!(jvm("java -Xmx256m -XX:MaxRAMPercentage=75 Main", &[]), hard(256 * MIB));
        assert_eq!(jvm("java -jar app.jar -XX:MaxRAMPercentage=75", &[]), None, "the program's own argument");
        assert_eq!(jvm("node -XX:MaxRAMPercentage=75 a.js", &[]), None);
        assert_eq!(jvm("java -Xms1g -XX:+UseG1GC Main", &[]), None, "HotSpot's default quarter is not declared");
        let asked = std::cell::Cell::new(false);
        let memory = |_| {
            asked.set(true);
            Some(1 << 30)
        };
        assert_eq!(declared_with("java -Xms1g Main", environment(&[]), || false, memory), None);
        assert!(!asked.get(), "what memory it sees is asked only of a JVM given a share of it");
        assert_eq!(declared("java -XX:MaxRAMPercentage=75 Main"), None, "a command line alone does not say");
    }

    #[test]
    fn a_targets_ceiling_is_soft_where_any_members_is() {
        let sum = HeapCeiling::hard(MIB).plus(HeapCeiling { bytes: 2 * MIB, soft: true });
        assert_eq!(sum, Some(HeapCeiling { bytes: 3 * MIB, soft: true }));
        assert_eq!(HeapCeiling::hard(MIB).plus(HeapCeiling::hard(MIB)), hard(2 * MIB));
        assert_eq!(HeapCeiling::hard(u64::MAX).plus(HeapCeiling::hard(1)), None);
    }

    #[test]
    fn nothing_is_read_from_what_is_not_a_ceiling() {
        for cmdline in [
            "",
            "/usr/bin/python3 service.py --leak-kb 14",
            "java -Xmxlots Main",
            "java -Xmx Main",
            "java -Xmx0m Main",
            "java -Xmx99999999999999t Main",
            "node --max-old-space-sizes=10 a.js",
            "node --max-old-space-size=abc a.js",
            "sh -c run -- -Xmx4g",
            "java -jar app.jar -Xmx4g",
            "java -cp -Xmx4g Main",
            "java Main -Xmx4g",
            "node server.js --max-old-space-size=4096",
        ] {
            assert_eq!(declared(cmdline), None, "{cmdline:?}");
        }
    }
}
