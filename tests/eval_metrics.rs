//! Every metric against pytrec_eval, on the committed fixture in `tests/fixtures/eval/`.
//!
//! `expected.json` was produced once by `scripts/make_metric_fixture.py` (pytrec_eval-terrier
//! 0.5.11); this test reads the same run and qrels files with our readers, recomputes everything
//! and compares to 1e-6. The fixture covers ties in score, a query with no relevant document,
//! graded and negative relevance, a run-only query, a qrels-only query and short rankings.
use std::path::PathBuf;

use optical::eval::{Averaging, Metric, Qrels, Run, evaluate};
use serde_json::Value;

const TOL: f64 = 1e-6;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval").join(name)
}

struct Fixture {
    run: Run,
    qrels: Qrels,
    metrics: Vec<Metric>,
    expected: Value,
}

fn load() -> Fixture {
    let run = Run::read_trec(&fixture("run.trec")).unwrap();
    let qrels = Qrels::read_trec(&fixture("qrels.trec")).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let metrics: Vec<Metric> = expected["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| {
            let name = name.as_str().unwrap();
            let metric: Metric = name.parse().unwrap();
            // The table/JSON names are exactly the fixture's names.
            assert_eq!(metric.to_string(), name);
            metric
        })
        .collect();
    assert_eq!(metrics.len(), 17, "fixture lists every metric at several cut-offs");
    Fixture { run, qrels, metrics, expected }
}

#[test]
fn per_query_values_match_pytrec_eval() {
    let f = load();
    let eval = evaluate(&f.run, &f.qrels, &f.metrics, Averaging::RunAndQrels);
    let expected = f.expected["per_query"].as_object().unwrap();
    // Same set of queries: run ∩ qrels, as pytrec_eval returns.
    let ours: Vec<&String> = eval.per_query.keys().collect();
    let theirs: Vec<&String> = expected.keys().collect();
    assert_eq!(ours, theirs);
    let mut checked = 0;
    for (qid, values) in &eval.per_query {
        for (metric, value) in f.metrics.iter().zip(values) {
            let want = expected[qid][metric.to_string()].as_f64().unwrap();
            assert!(
                (value - want).abs() <= TOL,
                "query {qid} {metric}: ours {value}, pytrec_eval {want}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 30 * 17);
}

#[test]
fn means_match_pytrec_eval_under_both_averagings() {
    let f = load();
    for (averaging, key) in
        [(Averaging::RunAndQrels, "run_and_qrels"), (Averaging::AllQrels, "all_qrels")]
    {
        let eval = evaluate(&f.run, &f.qrels, &f.metrics, averaging);
        let want = &f.expected[key];
        assert_eq!(eval.num_queries as u64, want["num_queries"].as_u64().unwrap(), "{key}");
        for (metric, value) in f.metrics.iter().zip(&eval.mean) {
            let w = want["mean"][metric.to_string()].as_f64().unwrap();
            assert!((value - w).abs() <= TOL, "{key} mean {metric}: ours {value}, expected {w}");
            assert_eq!(eval.mean_of(*metric), Some(*value));
        }
    }
}

#[test]
fn edge_cases_are_the_ones_the_fixture_claims() {
    let f = load();
    let eval = evaluate(&f.run, &f.qrels, &f.metrics, Averaging::RunAndQrels);
    // Run-only and qrels-only queries are not scored.
    assert!(f.run.contains("q-runonly") && !f.qrels.contains("q-runonly"));
    assert!(!eval.per_query.contains_key("q-runonly"));
    assert!(f.qrels.contains("q-qrelsonly") && !f.run.contains("q-qrelsonly"));
    assert!(!eval.per_query.contains_key("q-qrelsonly"));
    // A query with only non-relevant judgements is scored, as zeros.
    assert_eq!(f.qrels.num_relevant("q-norel"), 0);
    assert!(eval.per_query["q-norel"].iter().all(|&v| v == 0.0));
    // Ties: five documents at 1.0, ranked by docid descending byte-wise; the rank column of the
    // file (shuffled) is ignored.
    let ranking: Vec<&str> =
        f.run.ranking("q-ties").unwrap().iter().map(|d| d.doc_id.as_str()).collect();
    assert_eq!(&ranking[..5], &["é1", "x", "d9", "d10", "Z"]);
    assert_eq!(eval.query_value("q-ties", Metric::Precision(1)), Some(1.0));
    // Graded: nDCG@1 of q-ties is gain 1 over ideal gain 3.
    let ndcg1 = eval.query_value("q-ties", Metric::Ndcg(1)).unwrap();
    assert!((ndcg1 - 1.0 / 3.0).abs() < 1e-12);
    // MRR is cut at k: the first relevant document of q-late is at rank 12.
    assert_eq!(eval.query_value("q-late", Metric::Mrr(10)), Some(0.0));
    let mrr = eval.query_value("q-late", Metric::Mrr(1000)).unwrap();
    assert!((mrr - 1.0 / 12.0).abs() < 1e-12);
}

#[test]
fn beir_and_trec_qrels_of_the_fixture_agree() {
    let f = load();
    let beir = Qrels::read_beir(&fixture("qrels.tsv")).unwrap();
    assert_eq!(beir, f.qrels);
    assert_eq!(beir.num_judgements(), f.qrels.num_judgements());
}

#[test]
fn written_run_and_qrels_read_back_identical() {
    let f = load();
    let dir = tempfile::tempdir().unwrap();
    let run_path = dir.path().join("run.trec");
    f.run.write_trec_file(&run_path, "roundtrip").unwrap();
    let back = Run::read_trec(&run_path).unwrap();
    for qid in f.run.query_ids() {
        // Same documents, same scores bit for bit, same order.
        assert_eq!(back.ranking(qid), f.run.ranking(qid), "query {qid}");
    }
    // Written ranks are 1.. in trec_eval order.
    let text = std::fs::read_to_string(&run_path).unwrap();
    let first_ties: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| l.starts_with("q-ties "))
        .map(|l| {
            let cols: Vec<&str> = l.split(' ').collect();
            (cols[2], cols[3])
        })
        .take(2)
        .collect();
    assert_eq!(first_ties, vec![("é1", "1"), ("x", "2")]);

    let qrels_path = dir.path().join("qrels.trec");
    f.qrels.write_trec_file(&qrels_path).unwrap();
    assert_eq!(Qrels::read_trec(&qrels_path).unwrap(), f.qrels);

    let a = evaluate(&f.run, &f.qrels, &f.metrics, Averaging::AllQrels);
    let b = evaluate(&back, &f.qrels, &f.metrics, Averaging::AllQrels);
    assert_eq!(a, b);
}

#[test]
fn empty_ranking_counts_as_zero_like_pytrec_eval() {
    // pytrec_eval scores a query whose run dict is empty as all zeros (it is averaged).
    let mut qrels = Qrels::new();
    qrels.insert("q1", "d1", 1).unwrap();
    qrels.insert("q2", "d2", 1).unwrap();
    let mut run = Run::new();
    run.insert("q1", vec![("d1".to_string(), 1.0)]).unwrap();
    run.insert("q2", Vec::new()).unwrap();
    let eval = evaluate(&run, &qrels, &[Metric::Ndcg(10)], Averaging::RunAndQrels);
    assert_eq!(eval.num_queries, 2);
    assert_eq!(eval.mean, vec![0.5]);
}
