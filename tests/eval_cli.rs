//! `optical eval` end to end, on the sample collection shipped in `examples/sample`.
use std::path::{Path, PathBuf};
use std::process::Command;

use optical::eval::{Metric, Qrels, ResultsTable};

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/sample")
}

fn optical(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_optical"))
        .args(args)
        .output()
        .unwrap()
}

/// A TREC run that ranks each query's judged documents by relevance, for every `keep`-th query.
fn oracle_run(path: &Path, keep: usize) -> usize {
    let qrels = Qrels::read_beir(&sample().join("qrels/dev.tsv")).unwrap();
    let mut text = String::new();
    let mut kept = 0;
    for (i, qid) in qrels.query_ids().enumerate() {
        if i % keep != 0 {
            continue;
        }
        kept += 1;
        let mut docs: Vec<(&String, &i32)> = qrels.judgements(qid).unwrap().iter().collect();
        docs.sort_by(|a, b| b.1.cmp(a.1));
        for (rank, (doc, rel)) in docs.into_iter().enumerate() {
            text.push_str(&format!("{qid} Q0 {doc} {} {rel} oracle\n", rank + 1));
        }
    }
    std::fs::write(path, text).unwrap();
    kept
}

#[test]
fn scores_run_files_and_writes_tables() {
    let dir = tempfile::tempdir().unwrap();
    let oracle = dir.path().join("oracle.trec");
    oracle_run(&oracle, 1);
    let half = dir.path().join("half.trec");
    let kept = oracle_run(&half, 2);
    let out = dir.path().join("out");
    let md = dir.path().join("results.md");
    let o = optical(&[
        "eval",
        "--collection",
        sample().to_str().unwrap(),
        "--run",
        oracle.to_str().unwrap(),
        half.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // The half run misses queries; they are announced and count 0.
    assert!(stderr.contains("half.trec has no line for"), "{stderr}");

    let table = ResultsTable::read_json(&out.join("results.json")).unwrap();
    assert_eq!(table.rows.len(), 2);
    let row = |mode: &str| table.rows.iter().find(|r| r.mode == mode).unwrap();
    let n = row("oracle").num_queries;
    assert_eq!(n, 100);
    assert_eq!(row("oracle").score(Metric::Ndcg(10)), Some(1.0));
    assert_eq!(row("oracle").score(Metric::Map), Some(1.0));
    let half_ndcg = row("half").score(Metric::Ndcg(10)).unwrap();
    assert!(
        (half_ndcg - kept as f64 / n as f64).abs() < 1e-12,
        "{half_ndcg}"
    );
    assert_eq!(row("half").split, "dev", "the only split is the default");
    // The second run is tested against the first: missing half the queries is significant.
    assert_eq!(row("half").baseline.as_deref(), Some("oracle"));
    assert!(row("half").significant(Metric::Ndcg(10)));
    assert!(row("oracle").p_values.is_empty());

    let doc = std::fs::read_to_string(&md).unwrap();
    assert_eq!(
        doc,
        std::fs::read_to_string(out.join("results.md")).unwrap()
    );
    assert!(doc.starts_with("# Retrieval results"));
    assert!(
        doc.contains("| sample | dev | queries.jsonl | 0.500† | **1.000** |"),
        "{doc}"
    );
    assert!(out.join("per-query/sample.dev.oracle.json").is_file());
    // The table is also printed on stdout.
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("| sample | dev | queries.jsonl | oracle |")
    );

    // A second invocation adds to the same results.json instead of replacing it.
    let o = optical(&[
        "eval",
        "--collection",
        sample().to_str().unwrap(),
        "--queries",
        "queries.eng.jsonl",
        "--run",
        oracle.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = ResultsTable::read_json(&out.join("results.json")).unwrap();
    assert_eq!(table.rows.len(), 3);
    assert!(table.rows.iter().any(|r| r.queries == "queries.eng.jsonl"));
}

#[test]
fn refuses_bad_requests_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sample = sample();
    let s = sample.to_str().unwrap();
    let o = out.to_str().unwrap();
    let err = |args: &[&str]| {
        let r = optical(args);
        assert!(!r.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&r.stderr).into_owned()
    };
    assert!(
        err(&["eval", "--collection", s, "--modes", "bm26", "--out", o]).contains("unknown mode")
    );
    assert!(
        err(&["eval", "--collection", s, "--split", "test", "--out", o]).contains("splits: dev")
    );
    assert!(
        err(&["eval", "--collection", s, "--metrics", "ndcg@x", "--out", o]).contains("ndcg@x")
    );
    assert!(
        err(&["eval", "--collection", s, "--modes", "bm25", "--rerank", "maxsim", "--out", o]).contains("--rerank reranks the rows of a dense or hybrid search")
    );
    assert!(err(&["eval", "--collection", s, "--modes", "hybrid", "--rerank", "maxsim:0", "--out", o]).contains("at least 1"));
    let foreign = dir.path().join("foreign.trec");
    std::fs::write(&foreign, "other-q Q0 d 1 1.0 t\n").unwrap();
    let msg = err(&[
        "eval",
        "--collection",
        s,
        "--run",
        foreign.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert!(
        msg.contains("foreign.trec") && msg.contains("none of its 1 queries"),
        "{msg}"
    );
    let broken = dir.path().join("broken.trec");
    std::fs::write(&broken, "q Q0 d 1 1.0 t\nq Q0 e 2\n").unwrap();
    assert!(
        err(&[
            "eval",
            "--collection",
            s,
            "--run",
            broken.to_str().unwrap(),
            "--out",
            o
        ])
        .contains("broken.trec:2:")
    );
}

#[test]
fn bm25_mode_builds_reuses_the_index_and_its_run_reproduces_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let s = sample();
    let run = |queries: &str| {
        let o = optical(&[
            "eval",
            "--collection",
            s.to_str().unwrap(),
            "--queries",
            queries,
            "--modes",
            "bm25",
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{stderr}");
        stderr
    };
    let first = run("queries.eng.jsonl");
    assert!(first.contains("indexing"), "{first}");
    let second = run("queries.jsonl");
    assert!(second.contains("reusing index"), "{second}");

    let table = ResultsTable::read_json(&out.join("results.json")).unwrap();
    let row = |q: &str| {
        table
            .rows
            .iter()
            .find(|r| r.queries == q && r.mode == "bm25")
            .unwrap()
    };
    let eng = row("queries.eng.jsonl");
    let native = row("queries.jsonl");
    assert_eq!((eng.num_queries, native.num_queries), (100, 100));
    // English questions against their English gold passages: BM25 finds most of them; the
    // Hausa/Yoruba/Igbo/Zulu originals share far fewer words with English passages.
    let (e, n) = (
        eng.score(Metric::Ndcg(10)).unwrap(),
        native.score(Metric::Ndcg(10)).unwrap(),
    );
    assert!(e > 0.5 && n < e, "eng {e}, native {n}");
    assert!(eng.timing.as_ref().unwrap().queries == 100);

    // The written run is the record: trec_eval semantics on it give the table's numbers.
    let trec = out.join("runs/sample.dev.queries.eng.bm25.trec");
    let qrels = Qrels::read_beir(&s.join("qrels/dev.tsv")).unwrap();
    let metrics = table.metrics.clone();
    let again = optical::eval::evaluate(
        &optical::eval::Run::read_trec(&trec).unwrap(),
        &qrels,
        &metrics,
        optical::eval::Averaging::AllQrels,
    );
    for (m, v) in metrics.iter().zip(&again.mean) {
        assert!((eng.score(*m).unwrap() - v).abs() < 1e-12, "{m}");
    }
}
