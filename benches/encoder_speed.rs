//! Encoder speed on CPU, beside the PyTorch reference measured in the same run.
//!
//! For each prepared model (all-MiniLM-L6-v2, multilingual-e5-small): passages/second at
//! batch 32 × 128 tokens, and the median latency of encoding one short query, for the burn
//! f32 encoder and the int8 inference path (`EncoderOptions::int8`), with the int8 vectors'
//! cosine to the f32 ones on the same passages and query. Tokenisation is inside the timed
//! region on every side. Right after the Rust figures for a model, the same texts go through
//! `scripts/bench_pytorch_encoder.py` (transformers fp32 on CPU, same thread count), so they
//! run back to back on the same machine state.
//!
//!   cargo bench --bench encoder_speed
//!   cargo bench --bench encoder_speed --no-default-features   # without gemm's AVX-512 kernels (fast-cpu)
//!
//! Built with `--features ndarray`, each round also measures burn's ndarray backend (f32) right
//! after flex, and a second table puts the two side by side. Where the int8 path runs on AMX
//! tiles, each round also measures it on the AVX-512 VNNI kernel (`OPTICAL_INT8_NO_AMX`), the
//! kernel of CPUs without AMX, and a table puts the two side by side.
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

use optical::encoder::{Encoder, EncoderOptions, Role, default_device};

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

/// Best figures of one side over the rounds: passages/s (max) and query ms (min).
#[derive(Clone, Copy)]
struct Speed {
    sps: f64,
    ms: f64,
}

impl Speed {
    fn best(self, other: Speed) -> Speed {
        Speed { sps: self.sps.max(other.sps), ms: self.ms.min(other.ms) }
    }
}

struct Row {
    model: String,
    f32: Speed,
    int8: Speed,
    /// Worst cosine of the int8 vectors to the f32 ones (passages and query).
    int8_cosine: f64,
    torch: Option<Speed>,
    /// burn f32 on the ndarray backend, with `--features ndarray`.
    ndarray: Option<Speed>,
    /// The int8 path on the VNNI kernel, when the fastest kernel here is AMX.
    int8_vnni: Option<Speed>,
    shape: (usize, usize),
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Encodes `texts` (one batch) `batches` times and the query `reps` times; returns the
/// speed and the vectors of the last run (passages, then the query).
fn bench_rust(enc: &Encoder, texts: &[String], batches: usize, reps: usize) -> (Speed, Vec<Vec<f32>>) {
    let mut vectors = enc.encode_passages(texts).unwrap(); // warm-up
    let t0 = Instant::now();
    for _ in 0..batches {
        vectors = std::hint::black_box(enc.encode_passages(texts).unwrap());
    }
    let sps = (texts.len() * batches) as f64 / t0.elapsed().as_secs_f64();
    let mut query = enc.encode_queries(&[QUERY]).unwrap();
    let lat: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            query = std::hint::black_box(enc.encode_queries(&[QUERY]).unwrap());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    vectors.extend(query);
    (Speed { sps, ms: median(lat) }, vectors)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
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
) -> Option<Speed> {
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
    Some(Speed { sps: v["sentences_per_s"].as_f64()?, ms: v["query_ms"].as_f64()? })
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
        let load = |int8| {
            let options = EncoderOptions { int8, ..Default::default() };
            Encoder::load_with(&dir, &default_device(), &options).expect("load encoder")
        };
        let (f32_enc, int8_enc) = (load(false), load(true));
        #[cfg(feature = "ndarray")]
        let ndarray_enc = {
            let device = optical::encoder::select_device("ndarray").expect("the ndarray device");
            Encoder::load_with(&dir, &device, &EncoderOptions::default()).expect("load encoder on ndarray")
        };
        #[allow(unused_mut)]
        let mut ndarray_best: Option<Speed> = None;
        let amx = optical::encoder::int8::kernel_name() == "amx-int8";
        let mut vnni_best: Option<Speed> = None;
        let tokens = f32_enc.tokenize(&texts, Role::Passage).unwrap();
        let seq = tokens.iter().map(|t| t.ids.len()).max().unwrap();
        assert!(tokens.iter().all(|t| t.ids.len() == seq), "passages should all be truncated");
        // Alternate the sides `rounds` times and keep each side's best figures: other
        // processes on a shared machine then hurt every side alike instead of whichever ran
        // during a burst.
        let (mut f32_best, mut int8_best, mut torch): (Option<Speed>, Option<Speed>, Option<Speed>) = (None, None, None);
        let mut int8_cosine = 1.0f64;
        for round in 1..=rounds {
            eprintln!("{name}: round {round}/{rounds}: burn f32 (flex) ...");
            let (s, reference) = bench_rust(&f32_enc, &texts, batches, reps);
            f32_best = Some(f32_best.map_or(s, |b| b.best(s)));
            eprintln!("{name}: round {round}/{rounds}: int8 ({}) ...", optical::encoder::int8::kernel_name());
            let (s, vectors) = bench_rust(&int8_enc, &texts, batches, reps);
            int8_best = Some(int8_best.map_or(s, |b| b.best(s)));
            for (a, b) in vectors.iter().zip(&reference) {
                int8_cosine = int8_cosine.min(cosine(a, b));
            }
            if amx {
                eprintln!("{name}: round {round}/{rounds}: int8 (avx512-vnni, OPTICAL_INT8_NO_AMX) ...");
                // SAFETY: no other thread reads the environment between encodes (the rayon
                // workers are idle); the kernel is chosen per product from this variable.
                unsafe { std::env::set_var("OPTICAL_INT8_NO_AMX", "1") };
                let (s, _) = bench_rust(&int8_enc, &texts, batches, reps);
                unsafe { std::env::remove_var("OPTICAL_INT8_NO_AMX") };
                vnni_best = Some(vnni_best.map_or(s, |b| b.best(s)));
            }
            #[cfg(feature = "ndarray")]
            {
                eprintln!("{name}: round {round}/{rounds}: burn f32 (ndarray) ...");
                let (s, _) = bench_rust(&ndarray_enc, &texts, batches, reps);
                ndarray_best = Some(ndarray_best.map_or(s, |b| b.best(s)));
            }
            if !measuring {
                continue;
            }
            eprintln!("{name}: round {round}/{rounds}: PyTorch ...");
            if let Some(t) = bench_torch(&dir, &texts_json, threads, batches, reps) {
                torch = Some(torch.map_or(t, |b| b.best(t)));
            }
        }
        rows.push(Row {
            model: f32_enc.info().name.clone(),
            f32: f32_best.unwrap(),
            int8: int8_best.unwrap(),
            int8_cosine,
            torch,
            ndarray: ndarray_best,
            int8_vnni: vnni_best,
            shape: (texts.len(), seq),
        });
    }

    println!();
    println!(
        "encoder speed, CPU, {threads} thread(s), burn fast-cpu feature {}; throughput at batch \
         {BATCH} x {} tokens, latency = median of {reps} single-query encodes; best of {rounds} \
         alternating rounds; int8 kernel {}",
        if cfg!(feature = "fast-cpu") { "on" } else { "off" },
        rows.first().map(|r| r.shape.1).unwrap_or(0),
        optical::encoder::int8::kernel_name()
    );
    println!(
        "| model | burn f32 (passages/s) | int8 (passages/s) | PyTorch fp32 (passages/s) | int8 / PyTorch | \
         burn f32 query (ms) | int8 query (ms) | PyTorch query (ms) | int8 cosine to f32 (worst) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let (tsps, tms, ratio) = match r.torch {
            Some(t) => (format!("{:.1}", t.sps), format!("{:.1}", t.ms), format!("{:.2}x", r.int8.sps / t.sps)),
            None => ("n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!(
            "| {} | {:.1} | {:.1} | {tsps} | {ratio} | {:.1} | {:.1} | {tms} | {:.4} |",
            r.model, r.f32.sps, r.int8.sps, r.f32.ms, r.int8.ms, r.int8_cosine
        );
    }
    if rows.iter().any(|r| r.int8_vnni.is_some()) {
        println!();
        println!("int8 kernels in the same run: AMX tiles (the default here) and AVX-512 VNNI (OPTICAL_INT8_NO_AMX)");
        println!("| model | int8 AMX (passages/s) | int8 VNNI (passages/s) | AMX / PyTorch | VNNI / PyTorch | AMX query (ms) | VNNI query (ms) |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for r in &rows {
            if let Some(v) = r.int8_vnni {
                let ratio = |s: Speed| r.torch.map_or("n/a".into(), |t| format!("{:.2}x", s.sps / t.sps));
                println!(
                    "| {} | {:.1} | {:.1} | {} | {} | {:.1} | {:.1} |",
                    r.model, r.int8.sps, v.sps, ratio(r.int8), ratio(v), r.int8.ms, v.ms
                );
            }
        }
    }
    if rows.iter().any(|r| r.ndarray.is_some()) {
        println!();
        println!("burn backends in the same run (same batch, rounds and threads)");
        println!("| model | burn flex (passages/s) | burn ndarray (passages/s) | flex/ndarray | burn flex query (ms) | burn ndarray query (ms) |");
        println!("|---|---:|---:|---:|---:|---:|");
        for r in &rows {
            if let Some(n) = r.ndarray {
                println!(
                    "| {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} |",
                    r.model, r.f32.sps, n.sps, r.f32.sps / n.sps, r.f32.ms, n.ms
                );
            }
        }
    }
}
