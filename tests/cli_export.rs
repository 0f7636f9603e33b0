//! `optical export --to opensearch-bulk`: the `_bulk` NDJSON, the mapping and the hybrid search
//! pipeline of a small index, compared with the committed golden files in
//! `tests/fixtures/opensearch/` (no OpenSearch server installs here). Regenerate them after an
//! intended change with `OPTICAL_UPDATE_GOLDEN=1 cargo test --test cli_export`.
mod common;

use std::path::Path;
use std::process::Command;

use optical::engine::{Document, Index, IndexConfig};

const FILES: [&str; 3] = ["bulk.ndjson", "mapping.json", "search-pipeline.json"];

#[test]
fn opensearch_bulk_matches_the_golden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = Index::create(&dir, IndexConfig::with_vectors(4)).unwrap();
    let mut w = index.writer().unwrap();
    let docs = [
        ("kano", "Kano Pillars", "Kano Pillars F.C. was founded in 1990.", "eng"),
        ("nairobi", "Nairobi", "Nairobi is the capital of Kenya.", "eng"),
        ("hau-1", "", "Kano birni ne a arewacin Najeriya.\nSabon layi.", "hau"),
        ("gone", "Deleted", "This one is deleted before the export.", "eng"),
    ];
    for (key, title, body, lang) in docs {
        w.add(Document::new(key, body).with_title(title).with_lang(lang).with_vector(common::hashed_vector(key, 4))).unwrap();
    }
    w.commit().unwrap();
    w.delete("gone").unwrap();
    w.commit().unwrap();
    drop(w);
    drop(index);

    let out = tmp.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_optical"))
        .arg("export")
        .arg(&dir)
        .args(["--to", "opensearch-bulk"])
        .arg(&out)
        .args(["--collection", "sample"])
        .output()
        .unwrap();
    assert!(run.status.success(), "optical export failed: {}", String::from_utf8_lossy(&run.stderr));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/opensearch");
    for f in FILES {
        let got = std::fs::read_to_string(out.join(f)).unwrap();
        if std::env::var_os("OPTICAL_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(golden.join(f), &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(golden.join(f)).unwrap_or_else(|e| panic!("{}: {e}", golden.join(f).display()));
        assert_eq!(got, want, "{f} differs from {}", golden.join(f).display());
    }
    // Each action line is followed by its source; the deleted document is not exported.
    let bulk = std::fs::read_to_string(out.join("bulk.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = bulk.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6);
    assert!(!bulk.contains("\"gone\""));
    assert_eq!(lines[1]["vector"].as_array().unwrap().len(), 4);
}

#[test]
fn milvus_export_names_what_it_needs() {
    // A python without the package: the error says what to install, and nothing else happens.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    Index::create(&dir, IndexConfig::with_vectors(4)).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_optical"))
        .arg("export")
        .arg(&dir)
        .args(["--to", "milvus", "--uri", "http://127.0.0.1:9", "--collection", "c"])
        .env("OPTICAL_PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("OPTICAL_PYTHON") && stderr.contains("pymilvus"), "{stderr}");
}
