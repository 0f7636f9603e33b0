//! The Rust encoder reproduces the reference outputs (PyTorch/transformers) of both models:
//! identical token ids, pooled embeddings with cosine ≥ 0.9999, token states within 1e-3.
//!
//! Models come from `scripts/setup-models.sh` (the cache); the golden outputs are copied into
//! `tests/fixtures/golden/` so the test does not depend on anything outside the repository.
//!
//! The same check runs on every backend the build has: flex (CPU, always), ndarray with
//! `--features ndarray`, and CUDA with `--features cuda` where a GPU is present (it skips loudly
//! without one, unless `OPTICAL_REQUIRE_GPU=1`, which makes a missing GPU a failure).
mod common;

use std::path::PathBuf;

use burn::tensor::Device;
use optical::encoder::{Encoder, EncoderOptions, Role, default_device};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    model: String,
    prefix: String,
    max_length: usize,
    sentences: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
    token_states_sentence_index: usize,
    token_states: Vec<Vec<f32>>,
}

fn golden(file: &str) -> Golden {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn check(model_dir: &str, golden_file: &str, device: &Device) {
    let g = golden(golden_file);
    let dir = common::model_dir(model_dir);
    let options = EncoderOptions {
        query_prefix: Some(g.prefix.clone()),
        max_length: Some(g.max_length),
        // A small batch mixes lengths across batches: padding must not change results.
        batch_size: Some(5),
        ..Default::default()
    };
    let encoder = Encoder::load_with(&dir, device, &options).expect("load encoder");
    assert_eq!(encoder.dim(), g.embeddings[0].len());

    // 1. Token ids, prefix and truncation included.
    let tokens = encoder.tokenize(&g.sentences, Role::Query).unwrap();
    for (i, (t, want)) in tokens.iter().zip(&g.input_ids).enumerate() {
        assert_eq!(
            &t.ids, want,
            "{}: token ids of sentence {i} ({:?})",
            g.model, g.sentences[i]
        );
    }
    // Truncation keeps the budget and still ends with the closing special token.
    let long = g.sentences.last().unwrap().repeat(10);
    let t = &encoder.tokenize(&[long], Role::Query).unwrap()[0];
    assert_eq!(t.ids.len(), g.max_length);
    assert_eq!(t.ids.first(), g.input_ids[0].first());
    assert_eq!(t.ids.last(), g.input_ids[0].last());

    // 2. Pooled, normalised embeddings.
    let vectors = encoder.encode_queries(&g.sentences).unwrap();
    assert_eq!(vectors.len(), g.sentences.len());
    let mut worst = 1.0f64;
    for (i, (v, want)) in vectors.iter().zip(&g.embeddings).enumerate() {
        let c = cosine(v, want);
        worst = worst.min(c);
        assert!(
            c >= 0.9999,
            "{}: sentence {i}: cosine {c:.6} < 0.9999",
            g.model
        );
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "embedding {i} is not unit length ({norm})"
        );
    }
    eprintln!("{} on {device:?}: worst embedding cosine {worst:.7}", g.model);

    // 3. Last-layer token states of one sentence (run alone and inside a padded batch).
    let idx = g.token_states_sentence_index;
    let states = encoder.token_states(&g.sentences, Role::Query).unwrap();
    let s = &states[idx];
    assert_eq!(s.ids.len(), g.token_states.len());
    let mut max_abs = 0f32;
    for (t, want) in g.token_states.iter().enumerate() {
        for (a, b) in s.row(t).iter().zip(want) {
            max_abs = max_abs.max((a - b).abs());
        }
    }
    eprintln!("{} on {device:?}: token states max abs diff {max_abs:.2e}", g.model);
    assert!(
        max_abs <= 1e-3,
        "{}: token states differ by {max_abs}",
        g.model
    );
    // Special tokens and the prefix are not content; the sentence's own tokens are.
    assert!(!s.content[0] && !s.content[s.ids.len() - 1]);
    assert!(s.content.iter().any(|&c| c));
}

#[test]
fn minilm_matches_golden_outputs() {
    check("all-minilm-l6-v2", "all-MiniLM-L6-v2.json", &default_device());
}

#[test]
fn e5_q4_matches_golden_outputs() {
    check("multilingual-e5-small", "multilingual-e5-small-q4.json", &default_device());
}

#[cfg(feature = "ndarray")]
mod ndarray {
    use super::*;

    fn device() -> Device {
        optical::encoder::select_device("ndarray").unwrap()
    }

    #[test]
    fn minilm_matches_golden_outputs_on_ndarray() {
        check("all-minilm-l6-v2", "all-MiniLM-L6-v2.json", &device());
    }

    #[test]
    fn e5_q4_matches_golden_outputs_on_ndarray() {
        check("multilingual-e5-small", "multilingual-e5-small-q4.json", &device());
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::*;

    /// cuda:0, or None (after saying so) where there is no GPU and none is required.
    fn device() -> Option<Device> {
        match optical::encoder::cuda_device_count() {
            Ok(_) => Some(optical::encoder::select_device("cuda:0").unwrap()),
            Err(why) if std::env::var_os("OPTICAL_REQUIRE_GPU").is_some_and(|v| v == "1") => {
                panic!("OPTICAL_REQUIRE_GPU=1 but no GPU: {why}")
            }
            Err(why) => {
                eprintln!("SKIPPED: golden outputs on CUDA: {why}");
                None
            }
        }
    }

    #[test]
    fn minilm_matches_golden_outputs_on_cuda() {
        if let Some(d) = device() {
            check("all-minilm-l6-v2", "all-MiniLM-L6-v2.json", &d);
        }
    }

    #[test]
    fn e5_q4_matches_golden_outputs_on_cuda() {
        if let Some(d) = device() {
            check("multilingual-e5-small", "multilingual-e5-small-q4.json", &d);
        }
    }
}

/// The int8 inference path (`EncoderOptions::int8`) stays close to the reference: pooled
/// cosine ≥ 0.99 to the golden (PyTorch fp32) embeddings on every sentence, and unit length.
fn check_int8(model_dir: &str, golden_file: &str) {
    let g = golden(golden_file);
    let options = EncoderOptions {
        query_prefix: Some(g.prefix.clone()),
        max_length: Some(g.max_length),
        batch_size: Some(5),
        int8: true,
        ..Default::default()
    };
    let encoder = Encoder::load_with(common::model_dir(model_dir), &default_device(), &options).expect("load encoder");
    assert!(encoder.is_int8());
    let vectors = encoder.encode_queries(&g.sentences).unwrap();
    let cosines: Vec<f64> = vectors.iter().zip(&g.embeddings).map(|(v, want)| cosine(v, want)).collect();
    let worst = cosines.iter().cloned().fold(1.0, f64::min);
    let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
    eprintln!(
        "{} int8 ({}): pooled cosine to fp32 mean {mean:.5}, worst {worst:.5}",
        g.model,
        optical::encoder::int8::kernel_name()
    );
    for (i, (c, v)) in cosines.iter().zip(&vectors).enumerate() {
        assert!(*c >= 0.99, "{} int8: sentence {i} ({:?}): cosine {c:.5} < 0.99", g.model, g.sentences[i]);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "int8 embedding {i} is not unit length ({norm})");
    }
    // Token states come from the same packed forward pass, one row per token.
    let states = encoder.token_states(&g.sentences[..2], Role::Query).unwrap();
    assert_eq!(states[0].states.len(), g.input_ids[0].len() * encoder.dim());
}

#[test]
fn minilm_int8_is_close_to_golden_outputs() {
    check_int8("all-minilm-l6-v2", "all-MiniLM-L6-v2.json");
}

#[test]
fn e5_q4_int8_is_close_to_golden_outputs() {
    check_int8("multilingual-e5-small", "multilingual-e5-small-q4.json");
}
