//! `optical eval` with dense retrieval, end to end through the binary: on the sample collection
//! (English passages, AfriQA questions in Hausa, Yoruba, Igbo, Zulu, …) dense retrieval with the
//! default query encoder (the shipped student when `scripts/setup-models.sh` installed it) must
//! beat BM25, which can only match the few words the languages share.
mod common;

use std::process::Command;

use optical::eval::{Metric, ResultsTable};

#[test]
fn dense_beats_bm25_on_the_sample_and_reuses_its_index() {
    let model = common::model_dir("multilingual-e5-small");
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample");
    let out = tempfile::tempdir().unwrap();
    let eval = |modes: &str, extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_optical"))
            .args(["eval", "--collection"])
            .arg(&sample)
            .args(["--split", "dev", "--modes", modes, "--doc-model"])
            .arg(&model)
            .arg("--out")
            .arg(out.path())
            .args(extra)
            .output()
            .expect("running optical eval");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "optical eval failed:\n{stderr}");
        stderr
    };
    let first = eval("bm25,dense", &[]);
    assert!(first.contains("indexing"), "the first run builds the dense index:\n{first}");

    let table = ResultsTable::read_json(&out.path().join("results.json")).unwrap();
    let ndcg = Metric::parse_list("ndcg@10").unwrap()[0];
    let score = |mode: &str| {
        table
            .rows
            .iter()
            .find(|r| r.collection == "sample" && r.mode == mode)
            .and_then(|r| r.score(ndcg))
            .unwrap_or_else(|| panic!("no {mode} row in results.json"))
    };
    let (bm25, dense) = (score("bm25"), score("dense"));
    eprintln!("sample dev nDCG@10: bm25 {bm25:.3}, dense (default query encoder) {dense:.3}");
    assert!(dense > bm25, "dense nDCG@10 {dense:.3} should beat bm25 {bm25:.3}");
    assert!(out.path().join("runs/sample.dev.dense.trec").is_file());

    // A second invocation (hybrid) reuses the cached dense index and query vectors instead of
    // encoding again.
    let second = eval("hybrid", &[]);
    assert!(second.contains("reusing index"), "the cached index is reused:\n{second}");
    // … and the query vectors the first run encoded with the same encoder.
    assert!(second.contains("query vectors reused from"), "the query vectors are reused:\n{second}");
    // The e5 model directory holds the shipped token codebook (setup-models installs it), so
    // the index stores token codes and the default `--rerank auto` adds a reranked row beside
    // each dense and hybrid one, as `optical search` reranks by default.
    let table = ResultsTable::read_json(&out.path().join("results.json")).unwrap();
    let mut modes: Vec<&str> = table.rows.iter().map(|r| r.mode.as_str()).collect();
    modes.sort_unstable();
    let default = optical::search::Rerank::default();
    let expected = ["bm25".to_string(), "dense".into(), format!("dense+{default}"), "hybrid".into(), format!("hybrid+{default}")];
    assert_eq!(modes, expected, "bm25, dense and hybrid rows accumulate, each dense and hybrid one with its reranked row");

    // --rerank adds a reranked row beside the hybrid one, with its own run.
    eval("hybrid", &["--rerank", "maxsim:5:0.5", "--label", "li"]);
    let table = ResultsTable::read_json(&out.path().join("results.json")).unwrap();
    let modes: Vec<&str> = table.rows.iter().map(|r| r.mode.as_str()).collect();
    assert!(modes.contains(&"hybrid+maxsim:5:0.5 (li)") && modes.contains(&"hybrid (li)"), "{modes:?}");
    let reranked = std::fs::read_to_string(out.path().join("runs/sample.dev.hybrid_maxsim_5_0.5__li_.trec")).unwrap();
    let plain = std::fs::read_to_string(out.path().join("runs/sample.dev.hybrid__li_.trec")).unwrap();
    assert_ne!(reranked, plain, "the rerank stage changes the run");
}

/// A copy of the sample collection cut to its first 30 queries, the passages judged for them
/// and the first 100 others, in `root/sample`.
fn small_sample(root: &std::path::Path) -> std::path::PathBuf {
    use std::collections::HashSet;
    use std::fs;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample");
    let dir = root.join("sample");
    fs::create_dir_all(dir.join("qrels")).unwrap();
    let id = |line: &str| serde_json::from_str::<serde_json::Value>(line).unwrap()["_id"].as_str().unwrap().to_string();
    let queries: Vec<String> = fs::read_to_string(src.join("queries.jsonl")).unwrap().lines().take(30).map(str::to_string).collect();
    let query_ids: HashSet<String> = queries.iter().map(|l| id(l)).collect();
    let qrels = fs::read_to_string(src.join("qrels/dev.tsv")).unwrap();
    let mut lines = qrels.lines();
    let mut kept = vec![lines.next().unwrap()];
    kept.extend(lines.filter(|l| query_ids.contains(l.split('\t').next().unwrap())));
    let judged: HashSet<&str> = kept[1..].iter().map(|l| l.split('\t').nth(1).unwrap()).collect();
    let corpus = fs::read_to_string(src.join("corpus.jsonl")).unwrap();
    let docs: Vec<&str> = corpus.lines().enumerate().filter(|(i, l)| *i < 100 || judged.contains(id(l).as_str())).map(|(_, l)| l).collect();
    assert!(docs.len() > 100 && kept.len() > 30, "{} passages, {} judgements", docs.len(), kept.len() - 1);
    fs::write(dir.join("queries.jsonl"), queries.join("\n") + "\n").unwrap();
    fs::write(dir.join("qrels/dev.tsv"), kept.join("\n") + "\n").unwrap();
    fs::write(dir.join("corpus.jsonl"), docs.join("\n") + "\n").unwrap();
    dir
}

/// `optical eval --modes exhaustive` is the library's exhaustive dense evaluation
/// (`optical::eval::dense_eval`): the same encoders give the same figures, whichever way it runs.
/// On a third of the sample: any collection shows it, and each of the four encodings of its
/// passages costs a third as much.
#[test]
fn exhaustive_mode_reproduces_the_library_dense_eval() {
    use optical::encoder::{Encoder, EncoderOptions, Role, default_device};
    let model = common::model_dir("multilingual-e5-small");
    let data = tempfile::tempdir().unwrap();
    let sample = small_sample(data.path());
    let eval = |out: &std::path::Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_optical"))
            .args(["eval", "--collection"])
            .arg(&sample)
            .args(["--split", "dev", "--query-model"])
            .arg(&model)
            .arg("--doc-model")
            .arg(&model)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .expect("running optical eval")
    };
    // The default precision (int8 where the CPU has a fast kernel) and `--f32`, each against the
    // library with the same encoder options.
    for (flag, options) in [(None, EncoderOptions::for_search()), (Some("--f32"), EncoderOptions::default())] {
        let out = tempfile::tempdir().unwrap();
        let mut args = vec!["--modes", "exhaustive", "--doc-role", "passage"];
        args.extend(flag);
        let output = eval(out.path(), &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "optical eval {flag:?} failed:\n{stderr}");
        assert!(!stderr.contains("indexing"), "the exhaustive mode builds no index:\n{stderr}");
        assert!(out.path().join("runs/sample.dev.exhaustive.trec").is_file());

        let encoder = Encoder::load_with(&model, &default_device(), &options).unwrap();
        let (want, _) = optical::eval::dense_eval(&sample, Some("dev"), &encoder, &encoder, Role::Passage, 100).unwrap();
        let table = ResultsTable::read_json(&out.path().join("results.json")).unwrap();
        let row = table.rows.iter().find(|r| r.mode == "exhaustive").expect("an exhaustive row");
        for (metric, value) in &want.metrics {
            let got = row.scores[metric];
            assert!((got - value).abs() < 1e-9, "{flag:?} {metric}: optical eval {got}, dense_eval {value}");
        }
    }

    // The role applies to the exhaustive mode only: an index always encodes passages.
    let out = tempfile::tempdir().unwrap();
    let refused = eval(out.path(), &["--modes", "dense", "--doc-role", "query"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--doc-role applies to the exhaustive mode"));
}
