//! Every committed fuzz input (`fuzz/corpus/<target>/*`: the seeds, the inputs the fuzzer
//! found that reach new code, and the crashes it found, now fixed) replayed through its
//! target as a normal test. This is the fuzzing that runs on every change, in seconds and
//! without an instrumented build; the coverage-guided fuzzer itself is `scripts/fuzz.sh`
//! (docs/fuzzing.md).

#[path = "../fuzz/src/targets.rs"]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    files
}

/// Runs every input of `name`'s corpus, then fails naming each input that panicked.
fn replay(name: &str) {
    let (_, target) = targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    let files = corpus(name);
    assert!(!files.is_empty(), "the {name} corpus is empty");
    let failed: Vec<String> = files
        .iter()
        .filter(|file| {
            let data = std::fs::read(file).expect("a corpus file");
            catch_unwind(AssertUnwindSafe(|| target(&data))).is_err()
        })
        .map(|file| file.display().to_string())
        .collect();
    eprintln!("{name}: replayed {} inputs", files.len());
    assert!(failed.is_empty(), "{name}: these inputs fail:\n{}", failed.join("\n"));
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        #[test]
        fn every_fuzz_target_has_a_replay_test() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in targets::TARGETS {
                assert!(tested.contains(name), "add {name} to replay_tests! in this file");
            }
        }
    };
}

replay_tests!(
    put_records,
    config,
    log_frames,
    log_recovery,
    snappy_framing,
    encrypted_object,
    transform_response,
    sigv4,
    record_processing,
    kinesis_requests,
);
