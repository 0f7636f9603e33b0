//! Loading broken model directories gives errors that name the file at fault; a saved model
//! directory loads back to the same encoder.
mod common;

use std::path::Path;

use optical::encoder::{Encoder, OpticalMeta, default_device};

const FILES: [&str; 4] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "optical.json",
];

/// A copy of the MiniLM model directory (symlinks to the cache for all files but `skip`).
fn model_copy(skip: &[&str]) -> tempfile::TempDir {
    let src = common::model_dir("all-minilm-l6-v2");
    let tmp = tempfile::tempdir().unwrap();
    for f in FILES {
        if !skip.contains(&f) {
            std::os::unix::fs::symlink(src.join(f), tmp.path().join(f)).unwrap();
        }
    }
    tmp
}

fn load_error(dir: &Path) -> String {
    match Encoder::load(dir, &default_device()) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn missing_files_are_named() {
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        let dir = model_copy(&[f]);
        let err = load_error(dir.path());
        assert!(
            err.contains(f),
            "error for missing {f} does not name it: {err}"
        );
    }
    let err = load_error(Path::new("/nonexistent/model"));
    assert!(err.contains("/nonexistent/model"), "{err}");
}

#[test]
fn truncated_weights_are_reported() {
    let src = common::model_dir("all-minilm-l6-v2");
    let dir = model_copy(&["model.safetensors"]);
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.path().join("model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("model.safetensors") && err.contains("truncated"),
        "{err}"
    );

    // Cut inside the JSON header too.
    std::fs::write(dir.path().join("model.safetensors"), &bytes[..100]).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn config_that_does_not_match_the_weights_is_reported() {
    let src = common::model_dir("all-minilm-l6-v2");
    let dir = model_copy(&["config.json"]);
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    config["hidden_size"] = 480.into(); // still a multiple of 12 heads
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("model.safetensors")
            && err.contains("hidden_size")
            && err.contains("config.json"),
        "{err}"
    );

    config["hidden_size"] = 384.into();
    config["num_hidden_layers"] = 7.into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("missing") && err.contains("encoder.layer.6"),
        "{err}"
    );

    config["num_hidden_layers"] = 6.into();
    config["num_attention_heads"] = 5.into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("config.json") && err.contains("num_attention_heads"),
        "{err}"
    );
}

#[test]
fn unreadable_config_and_tokenizer_are_named() {
    let dir = model_copy(&["config.json"]);
    std::fs::write(dir.path().join("config.json"), "{\"hidden_size\": ").unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("config.json"), "{err}");

    let dir = model_copy(&["tokenizer.json"]);
    std::fs::write(dir.path().join("tokenizer.json"), "not json").unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("tokenizer.json"), "{err}");

    let dir = model_copy(&["optical.json"]);
    std::fs::write(
        dir.path().join("optical.json"),
        "{\"max_length\": \"long\"}",
    )
    .unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("optical.json"), "{err}");
}

#[test]
fn tokenizer_of_another_model_is_refused() {
    let e5 = common::model_dir("multilingual-e5-small");
    let dir = model_copy(&["tokenizer.json"]);
    std::os::unix::fs::symlink(e5.join("tokenizer.json"), dir.path().join("tokenizer.json"))
        .unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("tokenizer.json") && err.contains("vocab_size"),
        "{err}"
    );
}

#[test]
fn saved_model_dir_loads_back_with_the_declared_space() {
    let src = common::model_dir("all-minilm-l6-v2");
    let device = default_device();
    let teacher = Encoder::load(&src, &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    let student_dir = out.path().join("student");
    let meta = OpticalMeta {
        name: "student".into(),
        query_prefix: "q: ".into(),
        passage_prefix: String::new(),
        max_length: 64,
        embedding_space: teacher.info().embedding_space.clone(),
        weights_fingerprint: String::new(),
    };
    Encoder::save_model_dir(
        teacher.model(),
        &src.join("tokenizer.json"),
        &meta,
        &student_dir,
    )
    .unwrap();
    let student = Encoder::load(&student_dir, &device).unwrap();
    let info = student.info();
    assert_eq!(info.name, "student");
    assert_eq!((info.query_prefix.as_str(), info.max_length), ("q: ", 64));
    assert_eq!(info.embedding_space, teacher.info().embedding_space);
    assert_ne!(
        info.fingerprint,
        teacher.info().fingerprint,
        "a rewritten file has its own fingerprint"
    );
    teacher.info().check_compatible(info).unwrap();

    // Same weights, so the same passage vectors (no prefix on either side).
    let texts = [
        "Nairobi is the capital of Kenya.",
        "Optimal transport aligns tokens.",
    ];
    let a = teacher.encode_passages(&texts).unwrap();
    let b = student.encode_passages(&texts).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let diff = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(
            diff < 1e-6,
            "round-tripped weights changed an embedding by {diff}"
        );
    }

    // A space mismatch is refused with both names.
    let mut other = info.clone();
    other.embedding_space = "elsewhere".into();
    let err = format!("{:#}", teacher.info().check_compatible(&other).unwrap_err());
    assert!(
        err.contains("elsewhere") && err.contains("student"),
        "{err}"
    );
}

#[test]
fn streaming_matches_batch_encoding_in_order() {
    let src = common::model_dir("all-minilm-l6-v2");
    let enc = Encoder::load(&src, &default_device()).unwrap();
    let texts: Vec<String> = (0..23)
        .map(|i| format!("document {i} {}", "word ".repeat(i % 7 * 3)))
        .collect();
    let all = enc.encode_passages(&texts).unwrap();
    let streamed: Vec<Vec<f32>> = enc
        .encode_stream(
            texts.iter(),
            optical::encoder::Role::Passage,
            Some(texts.len() as u64),
        )
        .with_chunk(5)
        .flat_map(|r| r.unwrap())
        .collect();
    assert_eq!(streamed.len(), all.len());
    for (i, (x, y)) in all.iter().zip(&streamed).enumerate() {
        let diff = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "text {i}: streamed vector differs by {diff}");
    }
}

#[test]
fn prefix_and_special_tokens_are_not_content() {
    use optical::encoder::{EncoderOptions, Role};
    let dir = common::model_dir("multilingual-e5-small");
    let device = default_device();
    let with = Encoder::load(&dir, &device).unwrap();
    assert_eq!(with.info().query_prefix, "query: ");
    let without = Encoder::load_with(
        &dir,
        &device,
        &EncoderOptions {
            query_prefix: Some(String::new()),
            ..Default::default()
        },
    )
    .unwrap();
    let texts = ["Good morning, how are you today?", "Habari ya asubuhi", "A"];
    let a = with.tokenize(&texts, Role::Query).unwrap();
    let b = without.tokenize(&texts, Role::Query).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!(x.ids.len() > y.ids.len(), "the prefix adds tokens");
        let content = |t: &optical::encoder::Tokenized| -> Vec<u32> {
            t.ids
                .iter()
                .zip(&t.content)
                .filter(|(_, c)| **c)
                .map(|(i, _)| *i)
                .collect()
        };
        assert_eq!(
            content(x),
            content(y),
            "content tokens must not depend on the prefix"
        );
        assert_eq!(
            content(y).len(),
            y.ids.len() - 2,
            "only <s> and </s> are special"
        );
    }
    // The batch carries the same mask as a tensor.
    let refs: Vec<_> = a.iter().collect();
    let batch = with.batch(&refs);
    let mask = batch
        .content_mask
        .into_data()
        .try_into_vec_as::<i64>()
        .unwrap();
    let ones = mask.iter().filter(|&&m| m == 1).count();
    assert_eq!(
        ones,
        a.iter()
            .map(|t| t.content.iter().filter(|c| **c).count())
            .sum::<usize>()
    );
}

/// An `optical.json` that claims another model's embedding space is checked against the
/// weights where the directory records which weights the claim was made for: a file copied
/// from another model directory, or an assembled student whose weights were replaced, is
/// refused naming the file; a claim made for these weights (a distilled student's) loads.
#[test]
fn a_false_embedding_space_claim_is_refused_where_it_can_be_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    common::tiny::tiny_model(&a, 1);
    common::tiny::tiny_model(&b, 2);
    let device = default_device();
    let fa = Encoder::load(&a, &device).unwrap().info().fingerprint.clone();
    let fb = Encoder::load(&b, &device).unwrap().info().fingerprint.clone();
    assert_ne!(fa, fb);
    let meta = |dir: &Path| OpticalMeta::load(&dir.join("optical.json")).unwrap();
    assert_eq!(meta(&a).weights_fingerprint, fa, "save_model_dir records the weights");

    // A student of A, as distillation saves it: its own weights (B's here), A's space. Loads.
    let student = tmp.path().join("student");
    std::fs::create_dir(&student).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(b.join(f), student.join(f)).unwrap();
    }
    let claim = OpticalMeta { embedding_space: fa.clone(), weights_fingerprint: fb.clone(), ..meta(&b) };
    claim.save(&student.join("optical.json")).unwrap();
    assert_eq!(Encoder::load(&student, &device).unwrap().info().embedding_space, fa);

    // B's weights with a claim written for other weights (A's file, pointed at A's space).
    let copied = OpticalMeta { embedding_space: fa.clone(), ..meta(&a) };
    copied.save(&b.join("optical.json")).unwrap();
    let err = load_error(&b);
    assert!(err.contains(&b.join("optical.json").display().to_string()) && err.contains(&fa) && err.contains(&fb), "{err}");

    // An assembled student (student.json) whose weights are no longer the assembled ones.
    let manifest = serde_json::json!({
        "format": 1, "name": "s", "languages": [], "base": {"name": "a", "fingerprint": fa},
        "fingerprint": "0123456789abcdef", "weights_sha256": "", "parameters": 0, "tensors": [],
        "meta": {"embedding_space": fa}, "training": {}, "data": [], "metrics": {}, "english_queries": "student"
    });
    std::fs::write(student.join("student.json"), manifest.to_string()).unwrap();
    let claim = OpticalMeta { weights_fingerprint: String::new(), ..claim };
    claim.save(&student.join("optical.json")).unwrap();
    optical::encoder::delta::StudentManifest::load(&student.join("student.json")).expect("the test's manifest parses");
    let err = load_error(&student);
    assert!(err.contains("student.json") && err.contains("0123456789abcdef") && err.contains(&fb), "{err}");

    // A claim with no record at all (a hand-written file) cannot be checked: accepted.
    std::fs::remove_file(student.join("student.json")).unwrap();
    assert!(Encoder::load(&student, &device).is_ok());
}
