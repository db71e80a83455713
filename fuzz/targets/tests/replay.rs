//! Replays every stored input — the seed corpora (`fuzz/corpus/<target>/`) and the inputs that
//! once crashed a target (`fuzz/regressions/<target>/`) — through its target on the stable
//! toolchain, so `cargo test` checks them all without a fuzzer build.

use std::path::Path;

#[test]
fn every_corpus_and_regression_input_runs_clean() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut replayed = 0;
    for (name, target) in tutti_fuzz_targets::TARGETS {
        let mut seeds = 0;
        for kind in ["corpus", "regressions"] {
            let dir = fuzz.join(kind).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                let input = std::fs::read(&path).expect("a readable input");
                eprintln!("{}", path.display());
                target(&input);
                if kind == "corpus" {
                    seeds += 1;
                }
                replayed += 1;
            }
        }
        assert!(seeds > 0, "target {name} has no seed corpus");
    }
    eprintln!("{replayed} inputs replayed");
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz_targets");
    for (name, _) in tutti_fuzz_targets::TARGETS {
        let source = std::fs::read_to_string(dir.join(format!("{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz_targets/{name}.rs: {e}"));
        assert!(
            source.contains(&format!("tutti_fuzz_targets::{name}(")),
            "fuzz_targets/{name}.rs calls its target"
        );
    }
}
