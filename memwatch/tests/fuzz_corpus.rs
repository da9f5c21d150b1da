//! Replays every input of the fuzz corpus (fuzz/corpus/<target>/) through
//! its target: what the fuzzer once found (or was seeded with) must keep
//! going through without a panic.
use std::path::Path;

/// A fuzz target: bytes in, no panic.
type Target = fn(&[u8]);

#[test]
fn every_corpus_input_goes_through_its_target_without_a_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let targets: [(&str, Target); 3] =
        [("config", memwatch::fuzzing::config), ("trace", memwatch::fuzzing::trace), ("http", memwatch::fuzzing::http)];
    for (name, target) in targets {
        let dir = corpus.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).collect();
        inputs.sort_by_key(|e| e.as_ref().map(|e| e.path()).ok());
        assert!(inputs.len() >= 3, "{name}: a corpus of at least 3 inputs in {}", dir.display());
        for input in inputs {
            let path = input.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            target(&data);
        }
    }
}
