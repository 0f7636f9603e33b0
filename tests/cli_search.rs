//! `optical index --model` and `optical search` through the binary: a cross-lingual (Hausa →
//! English) hybrid search with the index's own encoder, JSON output with explanations, and the
//! refusals (another document encoder, a query encoder from another embedding space, dense
//! search on a text-only index, a file with a bad line).
mod common;

use std::path::Path;
use std::process::{Command, Output};

fn optical(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_optical")).args(args).output().expect("running optical")
}

fn ok(args: &[&str]) -> String {
    let out = optical(args);
    assert!(out.status.success(), "optical {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = optical(args);
    assert!(!out.status.success(), "optical {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first 40 passages of the sample plus the Kano Pillars article.
fn small_corpus(path: &Path) {
    let sample = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample/corpus.jsonl")).unwrap();
    let mut lines: Vec<&str> = sample.lines().take(40).collect();
    let kano = sample.lines().find(|l| l.contains("\"p9ff9b4b9b003\"")).expect("Kano Pillars passage in the sample");
    if !lines.contains(&kano) {
        lines.push(kano);
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn index_with_a_model_then_search_across_languages() {
    let e5 = common::model_dir("multilingual-e5-small");
    let minilm = common::model_dir("all-minilm-l6-v2");
    let (e5, minilm) = (e5.to_str().unwrap(), minilm.to_str().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs.jsonl");
    small_corpus(&docs);
    let idx = tmp.path().join("idx");
    let (docs, idx) = (docs.to_str().unwrap(), idx.to_str().unwrap());

    let out = ok(&["index", idx, "--input", docs, "--model", e5, "--lang", "eng"]);
    assert!(out.contains("encoded by multilingual-e5-small"), "{out}");
    let info = ok(&["info", idx]);
    assert!(info.contains("encoder      multilingual-e5-small"), "{info}");

    // No --mode, no --model: hybrid with the encoder recorded at indexing time.
    let json = ok(&["search", idx, "A wace shekara aka kafa Kano pillars?", "-k", "3", "--explain", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mode"], "hybrid");
    let top = &v["hits"][0];
    assert_eq!(top["key"], "p9ff9b4b9b003", "{json}");
    assert!(top["explain"]["dense_score"].as_f64().unwrap() > 0.5, "{json}");
    assert!(top["snippet"].as_str().unwrap().contains("Kano"), "{json}");

    // Reranked by late interaction (a cross-lingual query): the top 3 carry a MaxSim score, the
    // answer stays first.
    let json = ok(&["search", idx, "A wace shekara aka kafa Kano pillars?", "--query-lang", "hau", "-k", "5", "--rerank", "maxsim:3", "--explain", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["hits"][0]["key"], "p9ff9b4b9b003", "{json}");
    let maxsim: Vec<bool> = (0..5).map(|i| v["hits"][i]["explain"]["maxsim_score"].is_f64()).collect();
    assert_eq!(maxsim, [true, true, true, false, false], "{json}");
    let err = fails(&["search", idx, "Kano", "--rerank", "maxsim:3", "--mode", "bm25"]);
    assert!(err.contains("not bm25"), "{err}");

    // e5's model directory has the shipped token codebook, so the index stores token codes, and
    // by default a cross-lingual query's top 20 is reranked on them; `--rerank none` turns it off.
    assert!(info.contains("token codes  4096 centroids, 2-bit residuals, 98 bytes a token"), "{info}");
    let query = "A wace shekara aka kafa Kano pillars?";
    let scored = |extra: &[&str]| -> Vec<bool> {
        let mut args = vec!["search", idx, query, "--query-lang", "hau", "-k", "5", "--explain", "--json"];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        assert_eq!(v["hits"][0]["key"], "p9ff9b4b9b003", "{v}");
        (0..5).map(|i| v["hits"][i]["explain"]["maxsim_score"].is_f64()).collect()
    };
    assert_eq!(scored(&[]), [true; 5]);
    assert_eq!(scored(&["--rerank", "none"]), [false; 5]);

    // Dense only, human-readable: rank, score, key, title, snippet.
    let text = ok(&["search", idx, "Kano Pillars kulob", "--mode", "dense", "-k", "2", "--model", e5]);
    assert!(text.contains("  1. ") && text.contains("Kano Pillars F.C."), "{text}");

    // A query encoder from another embedding space, and another document encoder: refused.
    let err = fails(&["search", idx, "Kano", "--model", minilm]);
    assert!(err.contains("embedding space"), "{err}");
    let err = fails(&["index", idx, "--input", docs, "--model", minilm]);
    assert!(err.contains("refusing to mix"), "{err}");

    // Without --model, re-indexing uses the recorded encoder; a bad line still indexes nothing.
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\":\"x1\",\"text\":\"Nairobi is the capital of Kenya.\"}\nnot json\n").unwrap();
    let err = fails(&["index", idx, "--input", bad.to_str().unwrap()]);
    assert!(err.contains("bad.jsonl:2") && err.contains("nothing was indexed"), "{err}");
    let before = ok(&["info", idx, "--json"]);
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert_eq!(before["documents"], 41);
    let out = ok(&["index", idx, "--input", bad.to_str().unwrap(), "--skip-invalid"]);
    assert!(out.contains("encoded by"), "{out}");
    let hits = ok(&["search", idx, "Mji mkuu wa Kenya ni upi?", "--mode", "dense", "-k", "1"]);
    assert!(hits.contains("x1"), "the new document was encoded and is found by meaning: {hits}");
}

#[test]
fn text_only_index_searches_bm25_and_refuses_dense() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs.jsonl");
    small_corpus(&docs);
    let idx = tmp.path().join("idx");
    let (docs, idx) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    ok(&["index", idx, "--input", docs, "--lang", "eng"]);
    let json = ok(&["search", idx, "Kano Pillars", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mode"], "bm25");
    assert_eq!(v["hits"][0]["key"], "p9ff9b4b9b003");
    let err = fails(&["search", idx, "Kano", "--mode", "dense"]);
    assert!(err.contains("text-only"), "{err}");
}

#[test]
fn index_encodes_in_int8_by_default_where_the_cpu_has_a_fast_kernel_and_f32_when_asked() {
    use optical::encoder::{Encoder, EncoderOptions, default_device};
    use optical::engine::{Index, passage_text};
    let e5 = common::model_dir("multilingual-e5-small");
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs.jsonl");
    std::fs::write(&docs, "{\"_id\":\"rice\",\"title\":\"Rice\",\"text\":\"Rice is the seed of the grass species Oryza sativa.\"}\n").unwrap();
    let stored = |flags: &[&str]| {
        let dir = tmp.path().join(format!("idx{}", flags.join("")));
        let mut args = vec!["index", dir.to_str().unwrap(), "--input", docs.to_str().unwrap(), "--model", e5.to_str().unwrap(), "--lang", "eng"];
        args.extend(flags);
        ok(&args);
        let index = Index::open_read_only(&dir).unwrap();
        let snap = index.snapshot();
        snap.vector(snap.id_of("rice").unwrap().unwrap()).unwrap().to_vec()
    };
    let encode = |options: &EncoderOptions| {
        let encoder = Encoder::load_with(&e5, &default_device(), options).unwrap();
        encoder.encode_passages(&[passage_text("Rice", "Rice is the seed of the grass species Oryza sativa.")]).unwrap().remove(0)
    };
    let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let (default, f32, int8) = (stored(&[]), stored(&["--f32"]), stored(&["--int8"]));
    let summary = ok(&["index", tmp.path().join("again").to_str().unwrap(), "--input", docs.to_str().unwrap(), "--model", e5.to_str().unwrap(), "--f32"]);
    assert!(summary.contains("encoded by multilingual-e5-small-q4 in f32"), "{summary}");
    let (want_f32, want_int8) = (encode(&EncoderOptions::default()), encode(&EncoderOptions { int8: true, ..Default::default() }));
    assert!(max_diff(&f32, &want_f32) < 1e-6, "--f32 stores the f32 network's vector");
    assert!(max_diff(&int8, &want_int8) < 1e-6, "--int8 stores the int8 network's vector");
    assert!(max_diff(&want_f32, &want_int8) > 1e-5, "the two networks' vectors should differ");
    if optical::encoder::int8::fast_kernel_available() {
        assert!(max_diff(&default, &want_int8) < 1e-6, "the default on this CPU ({}) is int8", optical::encoder::int8::kernel_name());
    } else {
        eprintln!("NOTE: no fast int8 kernel on this CPU: the default must be f32");
        assert!(max_diff(&default, &want_f32) < 1e-6, "the default without a fast int8 kernel is f32");
    }
    let refused = fails(&["index", tmp.path().join("x").to_str().unwrap(), "--input", docs.to_str().unwrap(), "--model", e5.to_str().unwrap(), "--int8", "--f32"]);
    assert!(refused.contains("--f32") || refused.contains("cannot be used with"), "{refused}");
}
