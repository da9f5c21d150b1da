//! Keeps docs/ARCHITECTURE.md true: every module its table names exists,
//! and every top-level module of the daemon is named there.
use std::{collections::BTreeSet, path::Path};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ARCHITECTURE.md");
const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// The first cell of each table row, when it is a backticked path.
fn named_modules(doc: &str) -> Vec<String> {
    doc.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(path, _)| path.to_owned()))
        .collect()
}

#[test]
fn every_module_the_architecture_names_exists_and_every_top_level_module_is_named() {
    let doc = std::fs::read_to_string(DOC).expect("docs/ARCHITECTURE.md");
    let named = named_modules(&doc);
    assert!(named.len() >= 20, "the module table was not found: {named:?}");
    for path in &named {
        let full = Path::new(SRC).join(path);
        let exists = if path.ends_with('/') { full.join("mod.rs").is_file() } else { full.is_file() };
        assert!(exists, "docs/ARCHITECTURE.md names {path}, which is not a module in memwatch/src");
    }
    let top: BTreeSet<String> = named.iter().map(|p| p.split('/').next().unwrap().to_owned()).collect();
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    let declared: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';')).collect();
    assert!(declared.len() >= 10, "no modules found in lib.rs");
    for module in declared {
        let as_file = format!("{module}.rs");
        assert!(
            top.contains(module) || top.contains(&as_file),
            "top-level module `{module}` is missing from docs/ARCHITECTURE.md's table"
        );
    }
}
