//! `optical index` + `optical search` on BEIR SciFact, and BM25 nDCG@10 on its test split.
mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use optical::engine::{Bm25Fields, Index};

fn optical() -> Command {
    Command::new(env!("CARGO_BIN_EXE_optical"))
}

/// qrels/<split>.tsv: query id -> relevant doc ids (binary relevance).
fn read_qrels(path: &Path) -> HashMap<String, HashSet<String>> {
    let mut q: HashMap<String, HashSet<String>> = HashMap::new();
    for (i, line) in std::fs::read_to_string(path).unwrap().lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        if i == 0 && f[0] == "query-id" {
            continue;
        }
        if f.len() >= 3 && f[2].trim().parse::<f64>().unwrap_or(0.0) > 0.0 {
            q.entry(f[0].to_string()).or_default().insert(f[1].to_string());
        }
    }
    q
}

fn read_queries(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["_id"].as_str().unwrap().to_string(), v["text"].as_str().unwrap().to_string())
        })
        .collect()
}

/// nDCG@k with binary gains (the BEIR / trec_eval definition: log2(rank + 1) discount).
fn ndcg_at_k(ranked: &[String], relevant: &HashSet<String>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, d)| relevant.contains(*d))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(k)).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
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

    let qrels = read_qrels(&set.join("qrels/test.tsv"));
    let queries = read_queries(&set.join("queries.jsonl"));
    let index = Index::open_read_only(&dir).unwrap();
    let snap = index.snapshot();
    let mut results = Vec::new();
    // All SciFact documents are English: the stemmed fields carry them, the words fields are empty.
    for (name, fields) in [("eng-stemmed", Bm25Fields::English), ("default", Bm25Fields::Both)] {
        let mut total = 0.0;
        for (qid, rel) in &qrels {
            let hits = snap.bm25_with(&queries[qid], 10, None, fields).unwrap();
            let ranked: Vec<String> = hits.into_iter().map(|h| h.key).collect();
            total += ndcg_at_k(&ranked, rel, 10);
        }
        let ndcg = total / qrels.len() as f64;
        eprintln!("scifact test ({} queries) BM25 nDCG@10 [{name}] = {ndcg:.4}", qrels.len());
        results.push((fields, ndcg));
    }
    assert_eq!(qrels.len(), 300);
    let default = results.iter().find(|(f, _)| *f == Bm25Fields::default()).unwrap().1;
    assert!((results[0].1 - default).abs() < 1e-9, "empty words fields changed the scores");
    // BEIR's BM25 reports 0.665 on SciFact; a broken analyzer or scorer falls far below.
    assert!(default > 0.62, "default BM25 nDCG@10 = {default:.4}");
}
