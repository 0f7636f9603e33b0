//! A tiny random-weight BERT (2 layers, hidden 32, a 56-token WordPiece vocabulary) and a toy
//! bitext for it: English words and their reversals ("cat" → "tac") as the foreign language.
use std::collections::BTreeMap;
use std::path::Path;

use optical::encoder::{BertConfig, BertModel, Encoder, OpticalMeta};
use rand::{Rng, SeedableRng, rngs::StdRng};

pub const WORDS: [&str; 24] = [
    "cat", "dog", "house", "tree", "water", "river", "red", "green", "small", "big", "runs", "sees",
    "eats", "the", "a", "near", "under", "bird", "fish", "sun", "moon", "old", "new", "sleeps",
];

/// The toy foreign language: each English word reversed ("cat" → "tac").
pub fn foreign(word: &str) -> String {
    word.chars().rev().collect()
}

pub fn tokenizer_json() -> String {
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "query", "passage", ":"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for w in WORDS {
        vocab.push(w.to_string());
        vocab.push(foreign(w));
    }
    let vocab_map: BTreeMap<String, usize> = vocab.iter().enumerate().map(|(i, w)| (w.clone(), i)).collect();
    let added: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            serde_json::json!({"id": i, "content": vocab[i], "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab_map}
    })
    .to_string()
}

/// Writes a random-weight model directory (2 layers, hidden 32).
pub fn tiny_model(dir: &Path, seed: u64) {
    let device = optical::encoder::default_device();
    device.seed(seed);
    let config = BertConfig::new(8 + 2 * WORDS.len(), 32, 2, 4, 64, 64);
    let model = BertModel::init(&config, &device);
    let tok = dir.with_extension("tokenizer.json");
    std::fs::write(&tok, tokenizer_json()).unwrap();
    let meta = OpticalMeta {
        name: format!("tiny-{seed}"),
        query_prefix: "query: ".into(),
        passage_prefix: "passage: ".into(),
        max_length: 32,
        embedding_space: String::new(),
        weights_fingerprint: String::new(),
    };
    Encoder::save_model_dir(&model, &tok, &meta, dir).unwrap();
}

pub fn bitext(path: &Path, n: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut text = String::new();
    for _ in 0..n {
        let len = rng.random_range(3..9);
        let words: Vec<&str> = (0..len).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect();
        let x: Vec<String> = words.iter().map(|w| foreign(w)).collect();
        text.push_str(&format!("{}\t{}\n", x.join(" "), words.join(" ")));
    }
    std::fs::write(path, text).unwrap();
}
