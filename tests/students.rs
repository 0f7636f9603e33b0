//! Shipped students on a tiny random-weight model (no shared data, no real model needed):
//! a distilled student exported as a delta assembles back into a model directory with the
//! manifest's fingerprint and encodes like the trained student; a corrupt or missing shipped
//! file, or the wrong base model, is an error naming it; the default query encoder is chosen by
//! embedding space, language and English route.
use std::path::PathBuf;

use optical::distill::{DistillConfig, Objective};
use optical::distill::{RunOptions, distill};
use optical::encoder::delta::{
    self, DELTA_FILE, EnglishRoute, ExportInfo, MANIFEST_FILE, StudentManifest, assemble, export,
};
use optical::encoder::students::{QueryEncoderChoice, choose, installed, students_dir};
use optical::encoder::{Encoder, Role, weights_fingerprint};
use optical::translate::TranslationTable;

mod common;
use common::tiny::{bitext, tiny_model};

struct Trained {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    base: PathBuf,
    student: PathBuf,
}

/// A tiny base model and a student distilled from it for a few steps.
fn trained() -> Trained {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let base = root.join("base");
    tiny_model(&base, 1);
    bitext(&root.join("train.tsv"), 64, 3);
    let mut cfg = DistillConfig::new(base.clone(), base.clone(), vec![root.join("train.tsv")], root.join("run"));
    cfg.objective = Objective::Mse;
    cfg.max_steps = Some(6);
    cfg.batch_size = 16;
    cfg.learning_rate = 1e-3;
    cfg.warmup_steps = 0;
    cfg.validate_every = 0;
    cfg.checkpoint_every = 0;
    let opts = RunOptions { progress: false, ..Default::default() };
    distill(&cfg, &opts).unwrap();
    Trained { student: root.join("run"), base, root, _tmp: tmp }
}

fn info(t: &Trained, languages: &[&str]) -> ExportInfo {
    ExportInfo {
        name: "tiny-student".into(),
        languages: languages.iter().map(|s| s.to_string()).collect(),
        training: serde_json::json!({"objective": "mse"}),
        data: vec![t.root.join("train.tsv")],
        english_queries: EnglishRoute::Student,
        metrics: serde_json::json!({}),
        interpolation: 1.0,
        translation_tables: Vec::new(),
    }
}

fn err_text(r: anyhow::Result<StudentManifest>) -> String {
    format!("{:#}", r.expect_err("expected an error"))
}

#[test]
fn a_student_ships_as_an_fp16_delta_and_assembles_to_the_recorded_fingerprint() {
    let t = trained();
    let shipped = t.root.join("shipped");
    let m = export(&t.student, &t.base, &shipped, info(&t, &["swa"])).unwrap();

    // Only what training changed is shipped: not the frozen word-embedding table.
    assert!(!m.tensors.is_empty());
    assert!(m.tensors.iter().all(|n| !n.contains("word_embeddings")), "{:?}", m.tensors);
    assert!(m.tensors.iter().any(|n| n.contains("attention.self.query.weight")), "{:?}", m.tensors);
    let base_enc = Encoder::load(&t.base, &optical::encoder::default_device()).unwrap();
    assert_eq!(m.base.fingerprint, base_enc.info().fingerprint);
    assert_eq!(m.data.len(), 1);
    assert_eq!(m.data[0].sha256, delta::sha256_file(&t.root.join("train.tsv")).unwrap());
    // Named without the training machine's directories: the last two components only.
    let parent = t.root.file_name().unwrap().to_string_lossy();
    assert_eq!(m.data[0].name, format!("{parent}/train.tsv"));
    // fp16: two bytes per shipped parameter, plus the safetensors header.
    let size = std::fs::metadata(shipped.join(DELTA_FILE)).unwrap().len() as usize;
    assert!(size >= 2 * m.parameters && size < 2 * m.parameters + 16_384, "{size} bytes for {} parameters", m.parameters);

    let out = t.root.join("assembled");
    let again = assemble(&shipped, &t.base, &out).unwrap();
    assert_eq!(again, m);
    assert_eq!(weights_fingerprint(&out.join("model.safetensors")).unwrap(), m.fingerprint);
    // Deterministic: assembling twice gives the same bytes.
    let out2 = t.root.join("assembled2");
    assemble(&shipped, &t.base, &out2).unwrap();
    assert_eq!(std::fs::read(out.join("model.safetensors")).unwrap(), std::fs::read(out2.join("model.safetensors")).unwrap());

    // The assembled student encodes like the trained (f32) one, in the teacher's space.
    let device = optical::encoder::default_device();
    let a = Encoder::load(&out, &device).unwrap();
    let s = Encoder::load(&t.student, &device).unwrap();
    assert_eq!(a.info().embedding_space, base_enc.info().embedding_space);
    assert_ne!(a.info().fingerprint, base_enc.info().fingerprint);
    let texts = ["tac god", "eert revir neerg"];
    let (va, vs) = (a.encode(&texts, Role::Query).unwrap(), s.encode(&texts, Role::Query).unwrap());
    let vb = base_enc.encode(&texts, Role::Query).unwrap();
    for i in 0..texts.len() {
        let cos = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        assert!(cos(&va[i], &vs[i]) > 0.9999, "fp16 student vs f32 student: {}", cos(&va[i], &vs[i]));
        assert!(cos(&va[i], &vb[i]) < cos(&va[i], &vs[i]), "the assembled model is the student, not the base");
    }
}

#[test]
fn corrupt_or_missing_shipped_files_and_a_wrong_base_are_errors_naming_them() {
    let t = trained();
    let shipped = t.root.join("shipped");
    export(&t.student, &t.base, &shipped, info(&t, &["swa"])).unwrap();
    let out = t.root.join("out");

    // A flipped byte in the weights.
    let w = shipped.join(DELTA_FILE);
    let good = std::fs::read(&w).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0x40;
    std::fs::write(&w, &bad).unwrap();
    let e = err_text(assemble(&shipped, &t.base, &out));
    assert!(e.contains(&w.display().to_string()) && e.contains("corrupt"), "{e}");
    assert!(!out.exists(), "nothing is written on error");
    std::fs::write(&w, &good).unwrap();

    // The wrong base model.
    let other = t.root.join("other-base");
    tiny_model(&other, 2);
    let e = err_text(assemble(&shipped, &other, &out));
    assert!(e.contains("is not the base model") && e.contains(&other.display().to_string()), "{e}");

    // A manifest that does not parse names the file and the field.
    let mpath = shipped.join(MANIFEST_FILE);
    let manifest = std::fs::read_to_string(&mpath).unwrap();
    std::fs::write(&mpath, manifest.replace("\"weights_sha256\"", "\"weights_sha257\"")).unwrap();
    let e = err_text(assemble(&shipped, &t.base, &out));
    assert!(e.contains(&mpath.display().to_string()) && e.contains("weights_sha257"), "{e}");
    std::fs::write(&mpath, &manifest).unwrap();

    // Missing files.
    std::fs::remove_file(&w).unwrap();
    let e = err_text(assemble(&shipped, &t.base, &out));
    assert!(e.contains(&w.display().to_string()) && e.contains("missing"), "{e}");
    std::fs::remove_file(&mpath).unwrap();
    let e = err_text(assemble(&shipped, &t.base, &out));
    assert!(e.contains(&mpath.display().to_string()) && e.contains("missing"), "{e}");
}

/// f32 values of a tensor of a safetensors file.
fn tensor(path: &std::path::Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor(name).unwrap();
    view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[test]
fn interpolated_weights_and_translation_tables_ship_and_are_checked() {
    let t = trained();
    let table_path = t.root.join("hau.tsv");
    let mut table = TranslationTable::new("hau", "eng", "ibm-model1");
    table.insert("ruwa", vec![("water".to_string(), 1.0)]);
    table.write(&table_path).unwrap();
    let shipped = t.root.join("shipped");
    let mut i = info(&t, &["hau"]);
    i.interpolation = 0.5;
    i.translation_tables = vec![table_path.clone()];
    let m = export(&t.student, &t.base, &shipped, i).unwrap();
    assert_eq!(m.interpolation, Some(0.5));
    assert_eq!(m.translation_tables.len(), 1);
    assert_eq!(m.translation_tables[0].name, "psq/hau.tsv");

    let out = t.root.join("out");
    assemble(&shipped, &t.base, &out).unwrap();
    // Half way between the base and the trained student (fp16 rounding aside).
    let name = "encoder.layer.0.attention.self.query.weight";
    let (base, student, mixed) = (
        tensor(&t.base.join("model.safetensors"), name),
        tensor(&t.student.join("model.safetensors"), name),
        tensor(&out.join("model.safetensors"), name),
    );
    assert!(base.iter().zip(&student).any(|(b, s)| (b - s).abs() > 1e-4), "training moved the tensor");
    for ((b, s), x) in base.iter().zip(&student).zip(&mixed) {
        assert!((x - (b + 0.5 * (s - b))).abs() < 2e-3, "{x} vs {b} + 0.5·({s} − {b})");
    }
    // The table travels into the assembled directory, intact.
    assert_eq!(TranslationTable::read(&out.join("psq/hau.tsv")).unwrap(), table);

    // A changed or missing table is an error naming it.
    let shipped_table = shipped.join("psq/hau.tsv");
    let text = std::fs::read_to_string(&shipped_table).unwrap();
    std::fs::write(&shipped_table, text.replace("water", "rain")).unwrap();
    let e = err_text(assemble(&shipped, &t.base, &out));
    assert!(e.contains("psq/hau.tsv") && e.contains("is corrupt or was changed"), "{e}");
    std::fs::remove_file(&shipped_table).unwrap();
    let e = err_text(assemble(&shipped, &t.base, &out));
    assert!(e.contains("psq/hau.tsv") && e.contains("is missing"), "{e}");
    // Interpolation outside (0, 1] is refused.
    let mut i = info(&t, &["hau"]);
    i.interpolation = 1.5;
    let e = err_text(export(&t.student, &t.base, &t.root.join("bad"), i));
    assert!(e.contains("interpolation must be in (0, 1]"), "{e}");
}

fn manifest_for(space: &str, name: &str, languages: &[&str], english: EnglishRoute) -> StudentManifest {
    StudentManifest {
        format: delta::MANIFEST_FORMAT,
        name: name.into(),
        languages: languages.iter().map(|s| s.to_string()).collect(),
        base: delta::BaseModel { name: "base".into(), fingerprint: "0".into() },
        fingerprint: "1".into(),
        weights_sha256: "2".into(),
        tensors: vec![],
        parameters: 0,
        meta: optical::encoder::OpticalMeta { embedding_space: space.into(), ..Default::default() },
        training: serde_json::Value::Null,
        data: vec![],
        english_queries: english,
        metrics: serde_json::Value::Null,
        interpolation: None,
        translation_tables: vec![],
    }
}

#[test]
fn the_default_query_encoder_is_the_student_of_the_index_space() {
    let multi = (PathBuf::from("/m/multi"), manifest_for("e5", "multi", &["swa", "hau", "yor"], EnglishRoute::Teacher));
    let hau = (PathBuf::from("/m/hau"), manifest_for("e5", "hau-only", &["hau"], EnglishRoute::Teacher));
    let other_space = (PathBuf::from("/m/minilm"), manifest_for("minilm", "minilm-student", &["swa", "yor"], EnglishRoute::Student));
    let all = vec![other_space.clone(), multi.clone(), hau.clone()];
    let student = |p: &str| QueryEncoderChoice::Student(PathBuf::from(p));

    // Another space's student never encodes queries for this index.
    assert_eq!(choose(&[other_space.clone()], "e5", Some("swa"), Some("eng")), QueryEncoderChoice::IndexEncoder);
    // The multilingual student by default and for languages without their own student.
    assert_eq!(choose(&all, "e5", None, Some("eng")), student("/m/multi"));
    assert_eq!(choose(&all, "e5", Some("yor"), Some("eng")), student("/m/multi"));
    // A per-language student wins for its language.
    assert_eq!(choose(&all, "e5", Some("hau"), Some("eng")), student("/m/hau"));
    // English goes where the chosen student's manifest routes it.
    assert_eq!(choose(&all, "e5", Some("eng"), None), QueryEncoderChoice::IndexEncoder);
    assert_eq!(choose(&all, "minilm", Some("eng"), None), student("/m/minilm"));
    assert_eq!(choose(&[], "e5", Some("swa"), Some("eng")), QueryEncoderChoice::IndexEncoder);
    // Monolingual search (Hausa headlines → Hausa articles) keeps the index's encoder; unknown
    // document language does not.
    assert_eq!(choose(&all, "e5", Some("hau"), Some("hau")), QueryEncoderChoice::IndexEncoder);
    assert_eq!(choose(&all, "e5", Some("hau"), None), student("/m/hau"));
}

#[test]
fn installed_students_are_the_assembled_directories_of_a_model_cache() {
    let t = trained();
    let shipped = t.root.join("shipped");
    export(&t.student, &t.base, &shipped, info(&t, &["swa", "hau"])).unwrap();
    let models = t.root.join("models");
    assert!(installed(&models).is_empty());
    let dir = students_dir(&models).join("tiny");
    assemble(&shipped, &t.base, &dir).unwrap();
    std::fs::create_dir_all(students_dir(&models).join("not-a-student")).unwrap();
    let found = installed(&models);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, dir);
    assert!(delta::is_assembled(&shipped, &dir));
    let space = Encoder::load(&t.base, &optical::encoder::default_device()).unwrap().info().embedding_space.clone();
    assert_eq!(choose(&found, &space, Some("hau"), Some("eng")), QueryEncoderChoice::Student(dir.clone()));
    // A student whose weights were changed after assembly is no longer "assembled".
    let w = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&w, bytes).unwrap();
    assert!(!delta::is_assembled(&shipped, &dir));
}
