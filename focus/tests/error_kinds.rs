//! `tutti_focus_errors_total{kind}` is exported for every kind from the start (at 0), from
//! `room::ERROR_KINDS`: that list must name every kind the focus counts, or a dashboard's
//! selector for a missing one would read nothing until it first happens.

use std::path::Path;

use tutti_focus::room::ERROR_KINDS;
use tutti_focus::stanzas::Refusal;

#[test]
fn every_refusal_kind_is_listed() {
    let refusals = [
        Refusal::UnknownSession,
        Refusal::BadRequest(String::new()),
        Refusal::ServiceUnavailable(String::new()),
        Refusal::NotAllowed(String::new()),
        Refusal::OutOfOrder(String::new()),
        Refusal::NotImplemented(String::new()),
        Refusal::Internal(String::new()),
        Refusal::ResourceConstraint(String::new()),
    ];
    for refusal in &refusals {
        assert!(ERROR_KINDS.contains(&refusal.kind()), "{refusal:?}");
    }
}

fn sources(dir: &Path, files: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            files.push((path.display().to_string(), text));
        }
    }
}

/// Every literal kind the sources count (`Metric::Error("…")`, `metrics.error("…")`).
#[test]
fn every_counted_literal_kind_is_listed() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut found = 0;
    for (path, text) in &files {
        for call in ["Metric::Error(\"", ".error(\""] {
            for (at, _) in text.match_indices(call) {
                let rest = &text[at + call.len()..];
                let kind = &rest[..rest.find('"').unwrap()];
                assert!(
                    ERROR_KINDS.contains(&kind),
                    "{path}: kind {kind:?} is not in room::ERROR_KINDS"
                );
                found += 1;
            }
        }
    }
    assert!(
        found >= 8,
        "only {found} counted kinds found in the sources"
    );
}
