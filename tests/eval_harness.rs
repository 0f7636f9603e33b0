//! The evaluation harness and results tables, driven by a real (if simple) retrieval function:
//! idf-weighted term overlap over the sample collection shipped in `examples/sample`.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use optical::eval::{
    Averaging, BeirCollection, Metric, Query, ResultRow, ResultsTable, Run, evaluate,
    evaluate_system,
};

fn sample() -> BeirCollection {
    BeirCollection::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/sample")).unwrap()
}

fn terms(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| t.len() > 2)
        .map(str::to_lowercase)
        .collect()
}

/// Term-overlap retrieval with idf weights: a real ranking function, no index needed.
struct Overlap {
    docs: Vec<(String, HashSet<String>)>,
    idf: HashMap<String, f64>,
}

impl Overlap {
    fn new(corpus: &Path) -> Overlap {
        let mut docs = Vec::new();
        for line in std::fs::read_to_string(corpus).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = format!("{} {}", v["title"].as_str().unwrap(), v["text"].as_str().unwrap());
            docs.push((v["_id"].as_str().unwrap().to_string(), terms(&text)));
        }
        let mut df: HashMap<String, usize> = HashMap::new();
        for (_, t) in &docs {
            for term in t {
                *df.entry(term.clone()).or_default() += 1;
            }
        }
        let n = docs.len() as f64;
        let idf = df.into_iter().map(|(t, d)| (t, (n / d as f64).ln())).collect();
        Overlap { docs, idf }
    }

    fn search(&self, query: &Query, k: usize) -> Vec<(String, f64)> {
        let q = terms(&query.text);
        let mut hits: Vec<(String, f64)> = self
            .docs
            .iter()
            .map(|(id, t)| (id.clone(), q.intersection(t).map(|w| self.idf[w]).sum::<f64>()))
            .filter(|(_, s)| *s > 0.0)
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1));
        hits.truncate(k);
        hits
    }
}

#[test]
fn harness_scores_a_real_retriever_and_its_run_file_agrees() {
    let c = sample();
    let split = c.load_split("dev", Some(Path::new("queries.eng.jsonl"))).unwrap();
    assert_eq!(split.queries.len(), 100);
    let system = Overlap::new(&c.corpus_path().unwrap());
    let metrics = Metric::defaults();
    let progress = indicatif::ProgressBar::hidden();
    let result =
        evaluate_system(&split, 100, &metrics, &progress, |q, k| Ok(system.search(q, k))).unwrap();

    // Every query was run and averaged.
    assert_eq!(result.run.len(), 100);
    assert_eq!(result.evaluation.num_queries, 100);
    assert_eq!(result.timing.queries, 100);
    assert!(result.timing.p50_ms <= result.timing.p95_ms);
    // English questions against their English gold passages: overlap retrieval finds many.
    let ndcg = result.evaluation.mean_of(Metric::Ndcg(10)).unwrap();
    assert!(ndcg > 0.2, "nDCG@10 {ndcg}");
    // Monotone sanity: recall grows with depth.
    let r1 = result.evaluation.mean_of(Metric::Recall(1)).unwrap();
    let r100 = result.evaluation.mean_of(Metric::Recall(100)).unwrap();
    assert!(r1 <= r100 && r100 <= 1.0);

    // The TREC file is the record: reading it back gives exactly the same numbers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("overlap.trec");
    result.run.write_trec_file(&path, "overlap").unwrap();
    let back = Run::read_trec(&path).unwrap();
    let again = evaluate(&back, &split.qrels, &metrics, Averaging::AllQrels);
    if back.len() == 100 {
        assert_eq!(again, result.evaluation);
    } else {
        // Queries with no hits have no line in the file; under AllQrels they still count 0.
        assert_eq!(again.mean, result.evaluation.mean);
    }

    // Reversing the scores must do worse: the metric is not blind to order.
    let worse = evaluate_system(&split, 100, &metrics, &progress, |q, k| {
        Ok(system.search(q, k).into_iter().map(|(d, s)| (d, -s)).collect())
    })
    .unwrap();
    assert!(worse.evaluation.mean_of(Metric::Ndcg(10)).unwrap() < ndcg);

    // Native-language queries share few terms with English passages: lower, but still scored.
    let native = c.load_split("dev", None).unwrap();
    let cross = evaluate_system(&native, 100, &metrics, &progress, |q, k| Ok(system.search(q, k)))
        .unwrap();
    assert_eq!(cross.evaluation.num_queries, 100);
    assert!(cross.evaluation.mean_of(Metric::Ndcg(10)).unwrap() < ndcg);
}

#[test]
fn harness_reports_the_failing_query_and_keeps_empty_results() {
    let c = sample();
    let split = c.load_split("dev", None).unwrap();
    let progress = indicatif::ProgressBar::hidden();
    let bad = split.queries[3].id.clone();
    let err = evaluate_system(&split, 10, &[Metric::Map], &progress, |q, _| {
        if q.id == bad { anyhow::bail!("index is closed") } else { Ok(Vec::new()) }
    })
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains(&bad) && msg.contains("index is closed"), "{msg}");

    let dup = evaluate_system(&split, 10, &[Metric::Map], &progress, |_, _| {
        Ok(vec![("a".to_string(), 1.0), ("a".to_string(), 0.5)])
    });
    assert!(format!("{:#}", dup.unwrap_err()).contains("listed twice"));

    let empty =
        evaluate_system(&split, 10, &[Metric::Map], &progress, |_, _| Ok(Vec::new())).unwrap();
    assert_eq!(empty.evaluation.num_queries, 100);
    assert_eq!(empty.evaluation.mean, vec![0.0]);
}

fn row(collection: &str, mode: &str, ndcg: f64) -> ResultRow {
    let mut qrels = optical::eval::Qrels::new();
    qrels.insert("q", "d", 1).unwrap();
    let mut run = Run::new();
    // nDCG@10 of a single relevant document at rank r is 1/log2(r+1): pick r to get `ndcg` ~.
    let rank = (1.0f64 / ndcg).exp2() - 1.0;
    let rank = rank.round().max(1.0) as usize;
    let docs = (1..=rank).map(|i| (if i == rank { "d".to_string() } else { format!("n{i}") }, -(i as f64)));
    run.insert("q", docs).unwrap();
    let eval = evaluate(&run, &qrels, &[Metric::Ndcg(10), Metric::Mrr(10)], Averaging::AllQrels);
    ResultRow::new(collection, "test", "queries.jsonl", mode, &eval, None)
}

#[test]
fn results_table_markdown_json_and_merge() {
    let mut table = ResultsTable::new(vec![Metric::Ndcg(10), Metric::Mrr(10)]);
    table.upsert(row("tatoeba-swa", "dense", 1.0)); // rank 1
    table.upsert(row("tatoeba-swa", "bm25", 0.5)); // rank 3
    table.upsert(row("afriqa-hau", "bm25", 0.63)); // rank 2
    table.sort(&["bm25", "dense", "hybrid"]);
    let md = table.to_markdown();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines[0], "| collection | split | queries | mode | nDCG@10 | MRR@10 | n | ms/query |");
    assert_eq!(lines[2], "| afriqa-hau | test | queries.jsonl | bm25 | 0.631 | 0.500 | 1 | – |");
    assert_eq!(lines[3], "| tatoeba-swa | test | queries.jsonl | bm25 | 0.500 | 0.333 | 1 | – |");
    assert_eq!(lines[4], "| tatoeba-swa | test | queries.jsonl | dense | 1.000 | 1.000 | 1 | – |");

    let pivot = table.to_markdown_pivot(Metric::Ndcg(10));
    let plines: Vec<&str> = pivot.lines().collect();
    assert_eq!(plines[0], "| collection | split | queries | bm25 | dense |");
    assert_eq!(plines[2], "| afriqa-hau | test | queries.jsonl | **0.631** | – |");
    assert_eq!(plines[3], "| tatoeba-swa | test | queries.jsonl | 0.500 | **1.000** |");

    // JSON round trip, and merging replaces a row with the same key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    table.write_json(&path).unwrap();
    let back = ResultsTable::read_json(&path).unwrap();
    assert_eq!(back, table);
    let mut merged = back.clone();
    let mut update = ResultsTable::new(vec![Metric::Ndcg(10)]);
    update.upsert(row("tatoeba-swa", "bm25", 1.0));
    merged.merge(update);
    assert_eq!(merged.rows.len(), 3);
    assert_eq!(merged.rows[1].score(Metric::Ndcg(10)), Some(1.0));

    std::fs::write(&path, table.to_json().replace("nDCG@10", "nDCG@ten")).unwrap();
    let err = format!("{:#}", ResultsTable::read_json(&path).unwrap_err());
    assert!(err.contains("nDCG@ten") && err.contains("results.json"), "{err}");
}
