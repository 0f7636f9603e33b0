//! `optical index --model` and `optical search` through the binary: a cross-lingual (Hausa →
//! English) hybrid search with the index's own encoder, JSON output with explanations, and the
//! refusals (another document encoder, a query encoder from another embedding space, dense
//! search on a text-only index, a file with a bad line).
mod common;

use std::path::Path;
use std::process::{Command, Output};

fn optical(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_optical")).args(args).output().expect("running optical")
}

fn ok(args: &[&str]) -> String {
    let out = optical(args);
    assert!(out.status.success(), "optical {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = optical(args);
    assert!(!out.status.success(), "optical {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first 40 passages of the sample plus the Kano Pillars article.
fn small_corpus(path: &Path) {
    let sample = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample/corpus.jsonl")).unwrap();
    let mut lines: Vec<&str> = sample.lines().take(40).collect();
    let kano = sample.lines().find(|l| l.contains("\"p9ff9b4b9b003\"")).expect("Kano Pillars passage in the sample");
    if !lines.contains(&kano) {
        lines.push(kano);
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn index_with_a_model_then_search_across_languages() {
    let e5 = common::model_dir("multilingual-e5-small");
    let minilm = common::model_dir("all-minilm-l6-v2");
    let (e5, minilm) = (e5.to_str().unwrap(), minilm.to_str().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs.jsonl");
    small_corpus(&docs);
    let idx = tmp.path().join("idx");
    let (docs, idx) = (docs.to_str().unwrap(), idx.to_str().unwrap());

    let out = ok(&["index", idx, "--input", docs, "--model", e5, "--lang", "eng"]);
    assert!(out.contains("encoded by multilingual-e5-small"), "{out}");
    let info = ok(&["info", idx]);
    assert!(info.contains("encoder      multilingual-e5-small"), "{info}");

    // No --mode, no --model: hybrid with the encoder recorded at indexing time.
    let json = ok(&["search", idx, "A wace shekara aka kafa Kano pillars?", "-k", "3", "--explain", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mode"], "hybrid");
    let top = &v["hits"][0];
    assert_eq!(top["key"], "p9ff9b4b9b003", "{json}");
    assert!(top["explain"]["dense_score"].as_f64().unwrap() > 0.5, "{json}");
    assert!(top["snippet"].as_str().unwrap().contains("Kano"), "{json}");

    // Dense only, human-readable: rank, score, key, title, snippet.
    let text = ok(&["search", idx, "Kano Pillars kulob", "--mode", "dense", "-k", "2", "--model", e5]);
    assert!(text.contains("  1. ") && text.contains("Kano Pillars F.C."), "{text}");

    // A query encoder from another embedding space, and another document encoder: refused.
    let err = fails(&["search", idx, "Kano", "--model", minilm]);
    assert!(err.contains("embedding space"), "{err}");
    let err = fails(&["index", idx, "--input", docs, "--model", minilm]);
    assert!(err.contains("refusing to mix"), "{err}");

    // Without --model, re-indexing uses the recorded encoder; a bad line still indexes nothing.
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\":\"x1\",\"text\":\"Nairobi is the capital of Kenya.\"}\nnot json\n").unwrap();
    let err = fails(&["index", idx, "--input", bad.to_str().unwrap()]);
    assert!(err.contains("bad.jsonl:2") && err.contains("nothing was indexed"), "{err}");
    let before = ok(&["info", idx, "--json"]);
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert_eq!(before["documents"], 41);
    let out = ok(&["index", idx, "--input", bad.to_str().unwrap(), "--skip-invalid"]);
    assert!(out.contains("encoded by"), "{out}");
    let hits = ok(&["search", idx, "Mji mkuu wa Kenya ni upi?", "--mode", "dense", "-k", "1"]);
    assert!(hits.contains("x1"), "the new document was encoded and is found by meaning: {hits}");
}

#[test]
fn text_only_index_searches_bm25_and_refuses_dense() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs.jsonl");
    small_corpus(&docs);
    let idx = tmp.path().join("idx");
    let (docs, idx) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    ok(&["index", idx, "--input", docs, "--lang", "eng"]);
    let json = ok(&["search", idx, "Kano Pillars", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mode"], "bm25");
    assert_eq!(v["hits"][0]["key"], "p9ff9b4b9b003");
    let err = fails(&["search", idx, "Kano", "--mode", "dense"]);
    assert!(err.contains("text-only"), "{err}");
}
