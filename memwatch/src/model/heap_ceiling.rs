//! The heap ceiling a runtime was started with, from its command line: a
//! JVM's `-Xmx` (or `-XX:MaxHeapSize=`), Node's `--max-old-space-size`.
//!
//! A runtime grows its heap towards that ceiling as it warms up (a JVM
//! commits heap it will keep, whether or not the objects in it live), so
//! resident memory climbing to the ceiling says nothing about a leak; once
//! there, the heap cannot grow further, and what is left to grow is the
//! runtime's own memory. The leak detector uses it that way
//! (`engine::leak`). Read from the command line only: `JAVA_TOOL_OPTIONS`,
//! `NODE_OPTIONS` and Go's `GOMEMLIMIT` live in the environment, which
//! memwatch does not read (another process's environment holds its
//! secrets). The command line is read as /proc gives it, words joined by
//! spaces: an argument holding a space ends the runtime's options early,
//! and a ceiling after it is missed (never one made up).

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

/// The ceiling declared on `cmdline` (arguments joined by spaces), in
/// bytes. Only the runtime's own options count: those before the main
/// class, the `-jar` file or the script (what follows is the program's).
/// The last of several wins, as it does for the runtimes.
pub fn declared(cmdline: &str) -> Option<u64> {
    let mut words = cmdline.split(' ').filter(|w| !w.is_empty()).skip(1);
    let mut ceiling = None;
    while let Some(word) = words.next() {
        if !word.starts_with('-') || word == "-jar" || word == "--" {
            break;
        }
        if VALUE_OPTIONS.contains(&word) {
            words.next();
            continue;
        }
        let found = if let Some(size) = word.strip_prefix("-Xmx") {
            jvm_size(size)
        } else if let Some(size) = word.strip_prefix("-XX:MaxHeapSize=") {
            jvm_size(size)
        } else if let Some(flag) =
            ["--max-old-space-size", "--max_old_space_size"].iter().find(|f| word.starts_with(**f))
        {
            let mib = match &word[flag.len()..] {
                "" => words.next().unwrap_or_default(),
                rest => match rest.strip_prefix('=') {
                    Some(value) => value,
                    None => continue,
                },
            };
            mib.parse::<u64>().ok().and_then(|m| m.checked_mul(1 << 20))
        } else {
            continue;
        };
        if let Some(bytes) = found.filter(|&b| b > 0) {
            ceiling = Some(bytes);
        }
    }
    ceiling
}

/// A HotSpot size: digits and an optional k, m, g or t (either case).
fn jvm_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 10),
        (i, 'm' | 'M') => (&text[..i], 20),
        (i, 'g' | 'G') => (&text[..i], 30),
        (i, 't' | 'T') => (&text[..i], 40),
        _ => (text, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn jvm_and_node_ceilings_are_read_in_their_own_units() {
        assert_eq!(declared("/usr/bin/java -Xmx460m Service.java"), Some(460 * MIB));
        assert_eq!(declared("java -Xms64m -Xmx2G -jar app.jar"), Some(2 << 30));
        assert_eq!(declared("java -cp /opt/lib -Xmx300m Main"), Some(300 * MIB), "past an option's value");
        assert_eq!(declared("java --add-opens java.base/java.lang=ALL-UNNAMED -Xmx1g -jar a.jar"), Some(1 << 30));
        assert_eq!(declared("java -XX:MaxHeapSize=524288k -jar app.jar"), Some(512 * MIB));
        assert_eq!(declared("java -Xmx1073741824 Main"), Some(1 << 30), "no suffix: bytes");
        assert_eq!(declared("node --max-old-space-size=1536 server.js"), Some(1536 * MIB));
        assert_eq!(declared("node --max_old_space_size 512 server.js"), Some(512 * MIB));
        assert_eq!(declared("java -Xmx256m -Xmx1g Main"), Some(1 << 30), "the last one wins");
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
