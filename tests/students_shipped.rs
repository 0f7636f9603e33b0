//! The students shipped in `students/`: each assembles onto the real multilingual-e5-small (q4)
//! into a model directory whose fingerprint is the manifest's, reproduces the score its manifest
//! records on the committed sample (`examples/sample`) within 1e-3, and is what `optical eval`
//! uses by default. Needs the models of `scripts/setup-models.sh` (CI prepares them); no
//! shared data, no training.
use std::path::PathBuf;
use std::process::Command;

use optical::eval::{BeirCollection, dense_eval_encoded};
use optical::eval::exhaustive::{corpus_passages, encode_documents};
use optical::encoder::delta::{MANIFEST_FILE, StudentManifest, assemble, is_assembled};
use optical::encoder::students::{QueryEncoderChoice, choose, installed, models_dir};
use optical::encoder::{Encoder, Role, default_device, load_meta_space, weights_fingerprint};

mod common;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every shipped student directory (one with a manifest) under `students/`.
fn shipped() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("students"))
        .expect("students/ ships with the repository")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no shipped student in students/");
    dirs
}

fn ndcg10(metrics: &[(String, f64)]) -> f64 {
    metrics.iter().find(|(m, _)| m == "nDCG@10").expect("nDCG@10 measured").1
}

#[test]
fn shipped_students_assemble_to_their_fingerprint_and_reproduce_their_sample_score() {
    let e5 = common::model_dir("multilingual-e5-small");
    let device = default_device();
    let base = Encoder::load(&e5, &device).unwrap();
    // The sample's passages, encoded by e5 once for every student and the zero-shot reference.
    let sample = BeirCollection::open(&repo().join("examples/sample")).unwrap();
    let docs = encode_documents(&corpus_passages(&sample).unwrap(), &base, Role::Passage).unwrap();
    let eval = |query_encoder: &Encoder, split: Option<&str>| dense_eval_encoded(&sample, split, query_encoder, base.info(), &docs, 100).unwrap().0;
    for s in shipped() {
        let manifest = StudentManifest::load(&s.join(MANIFEST_FILE)).unwrap();
        // Within the size budget: ≤ 50 MB per student.
        let size = std::fs::metadata(s.join("weights.safetensors")).unwrap().len();
        assert!(size <= 50_000_000, "{}: {size} bytes", s.display());
        assert!(!manifest.tensors.iter().any(|t| t.contains("word_embeddings")), "the frozen table is not shipped");
        assert!(!manifest.data.is_empty() && manifest.data.iter().all(|d| d.sha256.len() == 64));

        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("student");
        assemble(&s, &e5, &out).unwrap();
        assert_eq!(weights_fingerprint(&out.join("model.safetensors")).unwrap(), manifest.fingerprint);
        let student = Encoder::load(&out, &device).unwrap();
        assert_eq!(student.info().embedding_space, base.info().embedding_space, "queries land in e5's space");

        let recorded = &manifest.metrics["sample"];
        let recorded_metrics: Vec<(String, f64)> = serde_json::from_value(recorded["metrics"].clone()).unwrap();
        let got = eval(&student, recorded["split"].as_str());
        let (want, have) = (ndcg10(&recorded_metrics), ndcg10(&got.metrics));
        assert!((want - have).abs() <= 1e-3, "{}: sample nDCG@10 {have:.4}, manifest records {want:.4}", s.display());
        // And the student is not the zero-shot model: the recorded gain is real on the sample.
        let zero = eval(&base, recorded["split"].as_str());
        assert!(have > ndcg10(&zero.metrics), "student {have:.4} vs zero-shot {:.4} on the sample", ndcg10(&zero.metrics));
    }
}

#[test]
fn setup_installs_the_shipped_students_and_eval_uses_one_by_default() {
    let models = models_dir();
    let found = installed(&models);
    for s in shipped() {
        let name = s.file_name().unwrap();
        let dir = models.join("students").join(name);
        assert!(
            is_assembled(&s, &dir),
            "{} is not assembled from {} (run `bash scripts/setup-models.sh`)",
            dir.display(),
            s.display()
        );
        assert!(found.iter().any(|(d, _)| d == &dir));
    }
    // `optical eval` without --query-model encodes the (Hausa, Yoruba, Igbo, Zulu) sample queries
    // with the installed student, not with the document encoder.
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_optical"))
        .args(["eval", "--collection"])
        .arg(repo().join("examples/sample"))
        .args(["--split", "dev", "--modes", "dense", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let space = load_meta_space(&common::model_dir("multilingual-e5-small")).unwrap();
    let QueryEncoderChoice::Student(student_dir) = choose(&found, &space, None, Some("eng")) else {
        panic!("no installed student in e5's embedding space")
    };
    assert!(
        stderr.contains(&format!("({})", student_dir.display())),
        "eval did not use the installed student {}:\n{stderr}",
        student_dir.display()
    );
}

#[test]
fn setup_removes_an_installed_student_that_is_no_longer_shipped() {
    // A student assembled by an earlier checkout whose students/<name>/ is gone would still be
    // chosen for its languages. (Its student.json here does not parse, so the other tests of
    // this file, which list the installed students meanwhile, skip it.)
    let stale = models_dir().join("students").join("no-longer-shipped-test-student");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("student.json"), "{}").unwrap();
    let run = Command::new("bash").arg(repo().join("scripts/setup-models.sh")).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(!stale.exists(), "setup-models.sh left {} in place:\n{stderr}", stale.display());
    assert!(stderr.contains("student no-longer-shipped-test-student: no longer shipped"), "{stderr}");
    for s in shipped() {
        let dir = models_dir().join("students").join(s.file_name().unwrap());
        assert!(is_assembled(&s, &dir), "setup-models.sh removed or broke the shipped {}", dir.display());
    }
}
