//! `optical index` + `optical search` on BEIR SciFact, and BM25 nDCG@10 on its test split.
mod common;

use std::process::Command;

use optical::engine::{Bm25Fields, Index};
use optical::eval::{Averaging, BeirCollection, Metric, Run, evaluate};

fn optical() -> Command {
    Command::new(env!("CARGO_BIN_EXE_optical"))
}

#[test]
fn scifact_bm25_ndcg_at_10() {
    let Some(data) = common::shared_data() else { return };
    let set = data.join("eval/scifact");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scifact");

    let out = optical()
        .args(["index"])
        .arg(&dir)
        .arg("--input")
        .arg(set.join("corpus.jsonl.gz"))
        .args(["--lang", "eng"])
        .output()
        .unwrap();
    assert!(out.status.success(), "optical index failed: {}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("indexed 5183 documents"), "{said}");

    // The CLI search answers a test claim with its cited abstract near the top.
    let out = optical()
        .arg("search")
        .arg(&dir)
        .arg("0-dimensional biomaterials show inductive properties.")
        .args(["-k", "10", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "optical search failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hits = v["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 10);
    let out = optical().arg("info").arg(&dir).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("documents    5183"));

    let split = BeirCollection::open(&set).unwrap().load_split("test", None).unwrap();
    assert_eq!(split.queries.len(), 300);
    let index = Index::open_read_only(&dir).unwrap();
    let snap = index.snapshot();
    let mut results = Vec::new();
    // All SciFact documents are English: the stemmed fields carry them, the words fields are empty.
    for (name, fields) in [("eng-stemmed", Bm25Fields::English), ("default", Bm25Fields::Both)] {
        let mut run = Run::default();
        for query in &split.queries {
            let hits = snap.bm25_candidates(&query.text, 10, None, fields).unwrap();
            let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
            let keys = snap.keys_of(&ids, &hits).unwrap();
            run.insert(&query.id, keys.into_iter().zip(&hits).map(|(k, h)| (k, f64::from(h.score)))).unwrap();
        }
        let ndcg = evaluate(&run, &split.qrels, &[Metric::Ndcg(10)], Averaging::AllQrels).mean[0];
        eprintln!("scifact test (300 queries) BM25 nDCG@10 [{name}] = {ndcg:.4}");
        results.push((fields, ndcg));
    }
    let default = results.iter().find(|(f, _)| *f == Bm25Fields::default()).unwrap().1;
    assert!((results[0].1 - default).abs() < 1e-9, "empty words fields changed the scores");
    // BEIR's BM25 reports 0.665 on SciFact; a broken analyzer or scorer falls far below.
    assert!(default > 0.62, "default BM25 nDCG@10 = {default:.4}");
}
