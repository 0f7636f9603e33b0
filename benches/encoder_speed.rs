//! Encoder speed on CPU, beside the PyTorch reference measured in the same run.
//!
//! For each prepared model (all-MiniLM-L6-v2, multilingual-e5-small): passages/second at
//! batch 32 × 128 tokens, and the median latency of encoding one short query. Tokenisation is
//! inside the timed region on both sides. Right after the Rust figures for a model, the same
//! texts go through `scripts/bench_pytorch_encoder.py` (transformers on CPU, same thread
//! count), so the two run back to back on the same machine state.
//!
//!   cargo bench --bench encoder_speed
//!
//! Built with `--features ndarray`, each round also measures burn's ndarray backend right after
//! flex, and a second table puts the two side by side.
//!
//! Environment: `OPTICAL_BENCH_BATCHES` (timed batches, default 3), `OPTICAL_BENCH_REPS`
//! (timed single queries, default 20), `OPTICAL_BENCH_ROUNDS` (alternating Rust/PyTorch
//! rounds, best of each kept, default 2), `OPTICAL_BENCH_PYTHON` (python with torch +
//! transformers; default `$OPTICAL_CACHE/bench-venv/bin/python` from
//! `scripts/setup-bench-venv.sh`, else `python3`), `RAYON_NUM_THREADS` (threads for both).
#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use optical::encoder::{Encoder, Role, default_device};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 32;
const QUERY: &str = "what is the capital city of kenya";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 32 distinct passages, each longer than 128 tokens for both tokenizers.
fn passages() -> Vec<String> {
    let base = "Optimal transport gives a principled way to align the tokens of a sentence with \
        the tokens of its translation. A teacher encoder trained for English retrieval produces \
        token states for the English side, and a multilingual student learns to place the \
        tokens of the other language where the plan sends them. Because only the student is \
        trained, the teacher's notion of relevance between queries and documents is kept, while \
        the student acquires the alignment needed to search English collections with queries \
        written in Swahili, Hausa, Yoruba, Somali, Amharic, Igbo or Marathi. The search engine \
        then combines sparse candidates from a BM25 index with dense scores from the encoder, \
        and stores one vector per document in memory-mapped segments next to the text index.";
    (0..BATCH)
        .map(|i| format!("Passage number {i} of the benchmark. {base} {base}"))
        .collect()
}

struct Row {
    model: String,
    rust_sps: f64,
    rust_ms: f64,
    torch: Option<(f64, f64)>,
    /// burn ndarray (passages/s, query ms), with `--features ndarray`.
    ndarray: Option<(f64, f64)>,
    shape: (usize, usize),
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn bench_rust(
    dir: &Path,
    device: &Device,
    texts: &[String],
    batches: usize,
    reps: usize,
) -> (String, f64, f64, (usize, usize)) {
    let enc = Encoder::load(dir, device).expect("load encoder");
    let tokens = enc.tokenize(texts, Role::Passage).unwrap();
    let seq = tokens.iter().map(|t| t.ids.len()).max().unwrap();
    assert!(
        tokens.iter().all(|t| t.ids.len() == seq),
        "passages should all be truncated"
    );
    enc.encode_passages(texts).unwrap(); // warm-up
    let t0 = Instant::now();
    for _ in 0..batches {
        std::hint::black_box(enc.encode_passages(texts).unwrap());
    }
    let sps = (texts.len() * batches) as f64 / t0.elapsed().as_secs_f64();
    enc.encode_queries(&[QUERY]).unwrap();
    let lat: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(enc.encode_queries(&[QUERY]).unwrap());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    (
        enc.info().name.clone(),
        sps,
        median(lat),
        (texts.len(), seq),
    )
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("OPTICAL_BENCH_PYTHON") {
        return p.into();
    }
    let venv = common::optical_cache_dir().join("bench-venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

fn bench_torch(
    dir: &Path,
    texts_json: &Path,
    threads: usize,
    batches: usize,
    reps: usize,
) -> Option<(f64, f64)> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_pytorch_encoder.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg("--model-dir")
        .arg(dir)
        .arg("--texts")
        .arg(texts_json)
        .args(["--query", QUERY])
        .args(["--threads", &threads.to_string()])
        .args(["--batches", &batches.to_string()])
        .args(["--reps", &reps.to_string()])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "PyTorch reference failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return None;
        }
        Err(e) => {
            eprintln!("PyTorch reference not run ({}): {e}", python().display());
            return None;
        }
    };
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().last()?).ok()?;
    Some((v["sentences_per_s"].as_f64()?, v["query_ms"].as_f64()?))
}

fn main() {
    // `cargo bench` passes `--bench`. Without it (`cargo test --all-targets`) this is a smoke
    // run: one small measurement of each model, no PyTorch, so the test suite stays fast.
    let measuring = std::env::args().any(|a| a == "--bench");
    let smoke = |name, default| if measuring { env_usize(name, default) } else { 1 };
    let batches = smoke("OPTICAL_BENCH_BATCHES", 3);
    let reps = smoke("OPTICAL_BENCH_REPS", 20);
    let rounds = smoke("OPTICAL_BENCH_ROUNDS", 2).max(1);
    let threads = rayon::current_num_threads();
    let texts = passages();
    let tmp = tempfile::tempdir().unwrap();
    let texts_json = tmp.path().join("texts.json");
    std::fs::write(&texts_json, serde_json::to_string(&texts).unwrap()).unwrap();

    let mut rows = Vec::new();
    for name in ["all-minilm-l6-v2", "multilingual-e5-small"] {
        let dir = common::optical_cache_dir().join("models").join(name);
        if !dir.join("model.safetensors").is_file() {
            eprintln!(
                "SKIPPED {name}: not prepared at {} (run scripts/setup-models.sh)",
                dir.display()
            );
            continue;
        }
        // Alternate the two sides `rounds` times and keep each side's best figures: other
        // processes on a shared machine then hurt both sides alike instead of whichever ran
        // during a burst.
        let mut best: Option<(String, f64, f64, (usize, usize))> = None;
        let mut torch: Option<(f64, f64)> = None;
        #[allow(unused_mut)]
        let mut ndarray: Option<(f64, f64)> = None;
        for round in 1..=rounds {
            eprintln!("{name}: round {round}/{rounds}: burn (flex) ...");
            let r = bench_rust(&dir, &default_device(), &texts, batches, reps);
            best = Some(match best {
                None => r,
                Some(b) => (b.0, b.1.max(r.1), b.2.min(r.2), b.3),
            });
            #[cfg(feature = "ndarray")]
            {
                eprintln!("{name}: round {round}/{rounds}: burn (ndarray) ...");
                let device = optical::encoder::select_device("ndarray").unwrap();
                let (_, sps, ms, _) = bench_rust(&dir, &device, &texts, batches, reps);
                ndarray = Some(match ndarray {
                    None => (sps, ms),
                    Some(b) => (b.0.max(sps), b.1.min(ms)),
                });
            }
            if !measuring {
                continue;
            }
            eprintln!("{name}: round {round}/{rounds}: PyTorch ...");
            if let Some(t) = bench_torch(&dir, &texts_json, threads, batches, reps) {
                torch = Some(match torch {
                    None => t,
                    Some(b) => (b.0.max(t.0), b.1.min(t.1)),
                });
            }
        }
        let (model, rust_sps, rust_ms, shape) = best.unwrap();
        rows.push(Row {
            model,
            rust_sps,
            rust_ms,
            torch,
            ndarray,
            shape,
        });
    }

    println!();
    println!(
        "encoder speed, CPU, {threads} thread(s); throughput at batch {BATCH} x {} tokens, \
         latency = median of {reps} single-query encodes; best of {rounds} alternating rounds",
        rows.first().map(|r| r.shape.1).unwrap_or(0)
    );
    println!(
        "| model | burn flex (passages/s) | PyTorch (passages/s) | burn flex query (ms) | PyTorch query (ms) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        let (tsps, tms) = match r.torch {
            Some((s, m)) => (format!("{s:.1}"), format!("{m:.1}")),
            None => ("n/a".into(), "n/a".into()),
        };
        println!(
            "| {} | {:.1} | {} | {:.1} | {} |",
            r.model, r.rust_sps, tsps, r.rust_ms, tms
        );
    }
    if rows.iter().any(|r| r.ndarray.is_some()) {
        println!();
        println!("burn backends in the same run (same batch, rounds and threads)");
        println!(
            "| model | burn flex (passages/s) | burn ndarray (passages/s) | flex/ndarray | burn flex query (ms) | burn ndarray query (ms) |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        for r in &rows {
            if let Some((sps, ms)) = r.ndarray {
                println!(
                    "| {} | {:.1} | {sps:.1} | {:.2} | {:.1} | {ms:.1} |",
                    r.model,
                    r.rust_sps,
                    r.rust_sps / sps,
                    r.rust_ms
                );
            }
        }
    }
}
