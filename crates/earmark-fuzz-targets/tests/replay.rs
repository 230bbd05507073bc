//! Every committed fuzz seed and every crash fixture, replayed through its
//! target's body: a regression in a parser shows here in seconds, with no
//! cargo-fuzz build. The fuzz workspace's lock file is checked against the
//! main one, so that fuzzing builds the versions the product ships.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use earmark_fuzz_targets::TARGETS;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The files in `dir`, sorted; a missing or empty folder fails.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    files
}

/// Runs `name`'s body on each file, naming the file that fails.
fn replay(name: &str, files: &[PathBuf]) {
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    for file in files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| (target.run)(&data));
        assert!(outcome.is_ok(), "{name} fails on {}", file.display());
    }
}

fn corpus(name: &str) -> Vec<PathBuf> {
    files_in(&repository().join("fuzz/corpus").join(name))
}

#[test]
fn every_target_has_seeds_and_a_cargo_fuzz_binary() {
    let on_disk = |dir: &str, strip: &str| -> BTreeSet<String> {
        std::fs::read_dir(repository().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().replace(strip, ""))
            .collect()
    };
    let listed: BTreeSet<String> = TARGETS.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(on_disk("fuzz/corpus", ""), listed);
    assert_eq!(on_disk("fuzz/fuzz_targets", ".rs"), listed);
}

#[test]
fn attack_chain_seeds() {
    replay("attack_chain", &corpus("attack_chain"));
}

/// The seeds, then every malformed file that once crashed the front.
#[test]
fn audio_front_seeds_and_crash_fixtures() {
    earmark_fuzz_targets::audio_front_init();
    replay("audio_front", &corpus("audio_front"));
    replay(
        "audio_front",
        &files_in(&repository().join("tests/fixtures/malformed")),
    );
}

#[test]
fn key_file_seeds() {
    replay("key_file", &corpus("key_file"));
}

#[test]
fn landmark_index_seeds() {
    replay("landmark_index", &corpus("landmark_index"));
}

#[test]
fn ledger_edits_seeds() {
    replay("ledger_edits", &corpus("ledger_edits"));
}

#[test]
fn recipient_csv_seeds() {
    replay("recipient_csv", &corpus("recipient_csv"));
}

#[test]
fn slot_rules_seeds() {
    replay("slot_rules", &corpus("slot_rules"));
}

#[test]
fn transcript_seeds() {
    replay("transcript", &corpus("transcript"));
}

/// Each package's versions in a Cargo.lock, by name.
fn locked_versions(lock: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(lock).unwrap();
    let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in text.split("[[package]]").skip(1) {
        let field = |key: &str| {
            package.lines().find_map(|line| {
                line.strip_prefix(key)
                    .and_then(|rest| rest.trim().strip_prefix('='))
                    .map(|value| value.trim().trim_matches('"').to_string())
            })
        };
        if let (Some(name), Some(version)) = (field("name "), field("version ")) {
            versions.entry(name).or_default().insert(version);
        }
    }
    versions
}

/// Every package the fuzz workspace shares with the main one is locked at
/// versions the main one locks (`scripts/fuzz-lock.sh` brings it back in line).
#[test]
fn the_fuzz_lock_file_agrees_with_the_workspace_lock_file() {
    let main = locked_versions(&repository().join("Cargo.lock"));
    let fuzz = locked_versions(&repository().join("fuzz/Cargo.lock"));
    let disagreeing: Vec<String> = fuzz
        .iter()
        .filter_map(|(name, versions)| {
            let ours = main.get(name)?;
            (!versions.is_subset(ours))
                .then(|| format!("{name}: fuzz {versions:?}, workspace {ours:?}"))
        })
        .collect();
    assert!(disagreeing.is_empty(), "{}", disagreeing.join("\n"));
    assert!(fuzz.contains_key("libfuzzer-sys"), "not the fuzz lock file");
}
