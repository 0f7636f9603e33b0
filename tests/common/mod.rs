//! Helpers shared by the integration tests.
#![allow(dead_code)]
use std::path::PathBuf;

pub mod tiny;

/// A deterministic pseudo-random vector for a seed string (FNV-1a, then xorshift), with
/// components in [-1, 1]: engine tests give each document one and compare it exactly.
pub fn hashed_vector(seed: &str, dim: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in seed.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    (0..dim)
        .map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            (h % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// The project's shared data folder (`../shared/data` beside the checkout, or `$OPTICAL_SHARED_DATA`).
/// Users of the project do not have it: tests that need it call this and skip *loudly* when absent.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("OPTICAL_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("eval").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: shared data not found at {} (set OPTICAL_SHARED_DATA to run this test)",
            dir.display()
        );
        None
    }
}

/// A prepared model directory in the cache (`scripts/setup-models.sh` makes them).
/// Panics with the command to run when it is missing: CI always prepares the models first.
pub fn model_dir(name: &str) -> PathBuf {
    let dir = optical_cache_dir().join("models").join(name);
    assert!(
        dir.join("model.safetensors").is_file(),
        "model {name} not prepared at {}: run `bash scripts/setup-models.sh` first",
        dir.display()
    );
    dir
}

/// `$OPTICAL_CACHE`, or `~/.cache/optical`.
pub fn optical_cache_dir() -> PathBuf {
    std::env::var_os("OPTICAL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/optical")
        })
}

/// BM25 top-`k` of `query` through the search pipeline (`Searcher`, bm25 mode): the read path
/// `optical search --mode bm25` takes. `lang` keeps only documents of that language.
pub fn bm25(
    snap: &optical::engine::Snapshot,
    query: &str,
    k: usize,
    lang: Option<&str>,
) -> optical::Result<Vec<optical::search::SearchHit>> {
    use optical::search::{Mode, SearchRequest, Searcher};
    let mut req = SearchRequest::new(query).with_mode(Mode::Bm25).with_k(k);
    req.lang = lang.map(str::to_string);
    Ok(Searcher::new(snap.clone()).search(&req)?.hits)
}

/// Dense top-`k` of a ready query vector through the search pipeline (`Searcher`, dense mode).
pub fn dense(
    snap: &optical::engine::Snapshot,
    vector: &[f32],
    k: usize,
) -> optical::Result<Vec<optical::search::SearchHit>> {
    use optical::search::{Mode, SearchRequest, Searcher};
    let req = SearchRequest::new("").with_mode(Mode::Dense).with_query_vector(vector.to_vec()).with_k(k);
    Ok(Searcher::new(snap.clone()).search(&req)?.hits)
}
