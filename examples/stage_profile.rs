//! Where the default rerank stage's time goes after its reads: decoding the stored token codes
//! of 30 passages, and their MaxSim against 16 query rows, timed apart on an index with codes
//! (e.g. the search_latency bench's).
//!
//! ```text
//! cargo run --release --example stage_profile -- ~/.cache/optical/bench-indexes/search-100000x384-codes-v2
//! ```
use std::hint::black_box;
use std::time::{Duration, Instant};

use optical::engine::Index;
use optical::search::late::{TokenRows, maxsim};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Passages per stage: the default depth.
const DEPTH: usize = 30;
/// Sets of candidates, each decoded and scored `ROUNDS` times.
const SETS: usize = 200;
const ROUNDS: usize = 5;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: stage_profile INDEX_DIR");
    let index = Index::open(&dir).unwrap();
    let snap = index.snapshot();
    let book = snap.codebook().expect("the index stores token codes").clone();
    let dim = book.dim();
    let mut rng = StdRng::seed_from_u64(1);
    // Random live ids (the bench index numbers its documents 0..n); read once, outside the clock.
    let sets: Vec<Vec<Vec<u8>>> = (0..SETS)
        .map(|_| {
            let ids: Vec<u64> = (0..DEPTH).map(|_| rng.random_range(0..snap.num_docs())).collect();
            snap.documents(&ids, &[]).unwrap().into_iter().map(|d| d.token_codes.expect("a document with codes")).collect()
        })
        .collect();
    let query = TokenRows::new((0..16 * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect(), dim);
    let (mut decode, mut score, mut tokens) = (Duration::ZERO, Duration::ZERO, 0usize);
    let mut rows = Vec::new();
    for _ in 0..ROUNDS {
        for set in &sets {
            for codes in set {
                let t = Instant::now();
                book.decode_into(codes, &mut rows).unwrap();
                decode += t.elapsed();
                tokens += rows.len() / dim;
                let passage = TokenRows::new(std::mem::take(&mut rows), dim);
                let t = Instant::now();
                black_box(maxsim(&query, &passage));
                score += t.elapsed();
                rows = passage.as_flat().to_vec();
            }
        }
    }
    let stages = (ROUNDS * SETS) as f64;
    println!(
        "per stage of {DEPTH} passages ({:.0} tokens a passage): decoding {:.3} ms, MaxSim {:.3} ms",
        tokens as f64 / stages / DEPTH as f64,
        decode.as_secs_f64() * 1e3 / stages,
        score.as_secs_f64() * 1e3 / stages
    );
}
