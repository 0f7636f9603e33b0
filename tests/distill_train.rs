//! End-to-end distillation on a tiny random-weight teacher/student pair (2 layers, hidden 32,
//! a 60-token vocabulary) built in the test: the OT loss goes down, the output is a model
//! directory the encoder loads in the teacher's embedding space, the word embeddings stay frozen,
//! and an interrupted run resumes to the same result as an uninterrupted one.
use std::path::{Path, PathBuf};

use optical::distill::{DistillConfig, Objective};
use optical::distill::{Record, read_records};
use optical::distill::{RunOptions, distill};
use optical::encoder::Encoder;

mod common;
use common::tiny::{bitext, tiny_model};

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    tiny_model(&root.join("teacher"), 1);
    tiny_model(&root.join("student"), 2);
    bitext(&root.join("train.tsv"), 256, 3);
    bitext(&root.join("dev.tsv"), 48, 4);
    Setup { _dir: dir, root }
}

fn config(s: &Setup, out: &str) -> DistillConfig {
    let mut cfg = DistillConfig::new(s.root.join("teacher"), s.root.join("student"), vec![s.root.join("train.tsv")], s.root.join(out));
    cfg.dev = vec![s.root.join("dev.tsv")];
    cfg.batch_size = 16;
    cfg.max_length = 16;
    cfg.learning_rate = 2e-3;
    cfg.warmup_steps = 3;
    cfg.max_steps = Some(40);
    cfg.validate_every = 20;
    cfg.checkpoint_every = 0;
    cfg.weight_decay = 0.0;
    cfg
}

fn opts() -> RunOptions {
    RunOptions { progress: false, ..Default::default() }
}

fn tensor(dir: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn train_losses(path: &Path) -> Vec<f32> {
    read_records(path)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Train { loss, .. } => Some(loss),
            _ => None,
        })
        .collect()
}

#[test]
fn ot_distillation_on_a_tiny_pair_lowers_the_loss_and_writes_a_loadable_model() {
    let s = setup();
    let cfg = config(&s, "out-ot");
    let report = distill(&cfg, &opts()).unwrap();
    assert!(report.finished);
    assert_eq!(report.steps, 40);
    assert!(
        report.loss_last < report.loss_first * 0.8,
        "OT loss did not go down: first {} last {}",
        report.loss_first,
        report.loss_last
    );
    // Dev loss (same objective, held-out pairs) goes down too.
    let (z, f) = (report.zero_shot.unwrap(), report.final_dev.unwrap());
    assert!(f.loss < z.loss, "dev OT loss {} → {}", z.loss, f.loss);

    // The output is a model directory the encoder loads, in the teacher's embedding space.
    let device = optical::encoder::default_device();
    let teacher = Encoder::load(s.root.join("teacher"), &device).unwrap();
    let student = Encoder::load(&cfg.output, &device).unwrap();
    assert_eq!(student.info().embedding_space, teacher.info().embedding_space);
    teacher.info().check_compatible(student.info()).unwrap();
    assert_eq!(student.info().query_prefix, "query: ");
    let v = student.encode_queries(&["tac sees god"]).unwrap();
    assert_eq!(v[0].len(), 32);

    // Frozen word embeddings; everything else moved.
    let before = s.root.join("student");
    assert_eq!(
        max_diff(&tensor(&before, "embeddings.word_embeddings.weight"), &tensor(&cfg.output, "embeddings.word_embeddings.weight")),
        0.0
    );
    assert!(max_diff(&tensor(&before, "encoder.layer.1.output.dense.weight"), &tensor(&cfg.output, "encoder.layer.1.output.dense.weight")) > 1e-4);

    // Metrics and plot.
    let losses = train_losses(&cfg.output.join("metrics.jsonl"));
    assert_eq!(losses.len(), 40);
    let svg = std::fs::read_to_string(cfg.output.join("metrics.svg")).unwrap();
    assert!(svg.contains("<svg"));
    assert!(cfg.output.join("summary.json").is_file());
    assert!(!cfg.output.join("checkpoint").exists(), "a finished run leaves no checkpoint");
}

#[test]
fn an_interrupted_run_resumes_to_the_same_model() {
    let s = setup();
    let mut full = config(&s, "full");
    full.max_steps = Some(12);
    full.validate_every = 0;
    full.dev = Vec::new();
    distill(&full, &opts()).unwrap();

    let mut part = full.clone();
    part.output = s.root.join("part");
    part.checkpoint_every = 4;
    let first = distill(&part, &RunOptions { stop_after: Some(7), ..opts() }).unwrap();
    assert!(!first.finished);
    assert_eq!(first.steps, 7);
    assert!(part.output.join("checkpoint/state.json").is_file());
    let second = distill(&part, &opts()).unwrap();
    assert!(second.finished);
    assert_eq!(second.resumed_from, 7);
    assert_eq!(second.steps, 12);

    let a = train_losses(&full.output.join("metrics.jsonl"));
    let b = train_losses(&part.output.join("metrics.jsonl"));
    assert_eq!(a.len(), 12);
    assert_eq!(b.len(), 12);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() < 1e-4, "step {}: {x} vs {y}", i + 1);
    }
    for name in ["encoder.layer.0.attention.self.query.weight", "encoder.layer.1.output.LayerNorm.bias"] {
        let d = max_diff(&tensor(&full.output, name), &tensor(&part.output, name));
        assert!(d < 1e-5, "{name}: resumed model differs by {d}");
    }

    // A different config refuses to resume the checkpoint of another.
    let mut other = part.clone();
    other.output = s.root.join("part2");
    distill(&other, &RunOptions { stop_after: Some(2), ..opts() }).unwrap();
    other.learning_rate *= 2.0;
    let err = format!("{:#}", distill(&other, &opts()).unwrap_err());
    assert!(err.contains("other settings"), "{err}");
}

#[test]
fn mse_and_cache_free_runs_work_and_the_cache_is_reused() {
    let s = setup();
    let mut cfg = config(&s, "out-mse");
    cfg.objective = Objective::Mse;
    cfg.max_steps = Some(20);
    let r = distill(&cfg, &opts()).unwrap();
    assert!(r.loss_last < r.loss_first, "{} → {}", r.loss_first, r.loss_last);

    // Same run without the cache: the same losses up to f16 rounding of the cached states.
    let mut nc = cfg.clone();
    nc.output = s.root.join("out-mse-nocache");
    nc.teacher_cache = false;
    distill(&nc, &opts()).unwrap();
    let (a, b) = (train_losses(&cfg.output.join("metrics.jsonl")), train_losses(&nc.output.join("metrics.jsonl")));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 2e-2 * x.abs().max(1.0), "{x} vs {y}");
    }
    let filled = std::fs::read(cfg.output.join("teacher-cache/filled.bin")).unwrap();
    assert_eq!(filled.len(), 256);
    // 20 steps of 16 pairs cover the 256 pairs (16 batches per epoch) at least once.
    assert_eq!(filled.iter().filter(|&&b| b == 1).count(), 256);
}

#[test]
fn dense_eval_scores_a_beir_collection() {
    use optical::eval::dense_eval;
    use optical::encoder::Role;
    let s = setup();
    // A BEIR collection whose queries are the corpus sentences themselves: the same encoder on
    // both sides must put each query's own document first.
    let dir = s.root.join("beir");
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    let text = std::fs::read_to_string(s.root.join("dev.tsv")).unwrap();
    let english: Vec<&str> = text.lines().map(|l| l.split('\t').nth(1).unwrap()).collect();
    let mut seen = std::collections::HashSet::new();
    let (mut corpus, mut queries, mut qrels) = (String::new(), String::new(), String::from("query-id\tcorpus-id\tscore\n"));
    for (i, e) in english.iter().enumerate() {
        if !seen.insert(*e) {
            continue;
        }
        corpus.push_str(&format!("{}\n", serde_json::json!({"_id": format!("d{i}"), "title": "", "text": e})));
        queries.push_str(&format!("{}\n", serde_json::json!({"_id": format!("q{i}"), "text": e})));
        qrels.push_str(&format!("q{i}\td{i}\t1\n"));
    }
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
    std::fs::write(dir.join("qrels/test.tsv"), qrels).unwrap();
    let device = optical::encoder::default_device();
    let t = Encoder::load(s.root.join("teacher"), &device).unwrap();
    let (summary, ev) = dense_eval(&dir, None, &t, &t, Role::Query, 10).unwrap();
    assert_eq!(summary.queries, seen.len());
    assert_eq!(summary.metrics[2].0, "R@1");
    assert!(summary.metrics[2].1 > 0.99, "{:?}", summary.metrics);
    assert_eq!(ev.num_queries, seen.len());
    // A student from another space is refused.
    let other = Encoder::load(s.root.join("student"), &device).unwrap();
    let err = format!("{:#}", dense_eval(&dir, None, &other, &t, Role::Query, 10).unwrap_err());
    assert!(err.contains("embedding space"), "{err}");
}

#[test]
fn teacher_side_sets_the_teachers_prefix_and_dev_reports_the_search_setting() {
    use optical::distill::read_bitext;
    use optical::distill::prepare;
    use optical::encoder::Role;

    let s = setup();
    let device = optical::encoder::default_device();
    let student = Encoder::load(s.root.join("student"), &device).unwrap();
    let teacher = Encoder::load(s.root.join("teacher"), &device).unwrap();
    let pairs = read_bitext(&s.root.join("dev.tsv")).unwrap();
    let english: Vec<&str> = pairs.iter().map(|p| p.english.as_str()).collect();
    let foreign: Vec<&str> = pairs.iter().map(|p| p.foreign.as_str()).collect();
    let ids = |enc: &Encoder, texts: &[&str], role| -> Vec<Vec<u32>> {
        enc.tokenize(texts, role).unwrap().into_iter().map(|t| t.ids).collect()
    };

    let mut cfg = config(&s, "out-teacher-side");
    cfg.teacher_side = Some(Role::Passage);
    let data = prepare(&pairs, &student, &teacher, &cfg).unwrap();
    let got = |v: &[optical::encoder::Tokenized]| -> Vec<Vec<u32>> { v.iter().map(|t| t.ids.clone()).collect() };
    assert_eq!(got(&data.student), ids(&student, &foreign, Role::Query), "the student keeps the query prefix");
    assert_eq!(got(&data.teacher), ids(&teacher, &english, Role::Passage), "the teacher encodes English as documents");
    assert_ne!(ids(&teacher, &english, Role::Passage), ids(&teacher, &english, Role::Query));

    // Dev figures: against documents, the training target and the search setting coincide;
    // against queries (the default) they are two different comparisons.
    cfg.max_steps = Some(1);
    let doc = distill(&cfg, &opts()).unwrap().zero_shot.unwrap();
    assert!((doc.mean_cos - doc.search_mean_cos).abs() < 1e-4, "{doc:?}");
    assert_eq!(doc.accuracy, doc.search_accuracy);
    let mut q = config(&s, "out-teacher-side-query");
    q.max_steps = Some(1);
    let query = distill(&q, &opts()).unwrap().zero_shot.unwrap();
    assert!((query.search_mean_cos - doc.search_mean_cos).abs() < 1e-4, "same search setting: {query:?} vs {doc:?}");
    assert!((query.mean_cos - query.search_mean_cos).abs() > 1e-3, "{query:?}");
}

#[test]
fn question_bitext_gets_the_teachers_query_prefix_and_trains_with_temperature_sampling() {
    use optical::distill::read_bitext;
    use optical::distill::prepare_with_roles;
    use optical::encoder::Role;

    let s = setup();
    let device = optical::encoder::default_device();
    let student = Encoder::load(s.root.join("student"), &device).unwrap();
    let teacher = Encoder::load(s.root.join("teacher"), &device).unwrap();
    bitext(&s.root.join("questions.tsv"), 20, 9);
    let mut cfg = config(&s, "out-questions");
    cfg.teacher_side = Some(Role::Passage);
    cfg.question_train = vec![s.root.join("questions.tsv")];
    cfg.sampling_temperature = Some(3.0);

    // Sentences go to the teacher as documents, questions as queries.
    let sentences = read_bitext(&s.root.join("train.tsv")).unwrap();
    let questions = read_bitext(&s.root.join("questions.tsv")).unwrap();
    let pairs: Vec<_> = sentences.iter().take(5).chain(questions.iter().take(5)).cloned().collect();
    let sides: Vec<Role> = cfg.train_files().iter().flat_map(|(_, side)| std::iter::repeat_n(*side, 5)).collect();
    let data = prepare_with_roles(&pairs, &sides, &student, &teacher, &cfg).unwrap();
    let english: Vec<&str> = pairs.iter().map(|p| p.english.as_str()).collect();
    let want_doc = teacher.tokenize(&english[..5], Role::Passage).unwrap();
    let want_query = teacher.tokenize(&english[5..], Role::Query).unwrap();
    assert_eq!(&data.teacher[..5], &want_doc[..]);
    assert_eq!(&data.teacher[5..], &want_query[..]);

    // A run over both files with temperature sampling trains and finishes.
    cfg.max_steps = Some(4);
    let report = distill(&cfg, &opts()).unwrap();
    assert!(report.finished && report.steps == 4, "{report:?}");
}
