//! Seconds per OT-distillation training step, Optical (burn, flex CPU) beside PyTorch (CPU,
//! `scripts/bench_pytorch_distill.py`) in the same run: multilingual-e5-small (12 layers) as
//! teacher and student, batch 32, sequence 32 (32 Swahili–English pairs of ≥ 32 tokens), word
//! embeddings frozen, Sinkhorn ε 0.05 × 50 iterations, AdamW, clipping at 1.0.
//!
//! Run: `cargo bench --bench distill_step` (or the built binary in target/release/deps with
//! `--bench`). Environment: `DISTILL_BENCH_STEPS` (default 5), `DISTILL_BENCH_WARMUP` (2),
//! `OPTICAL_TORCH_PYTHON` (default `~/.cache/optical/torch-venv/bin/python`, then `python3`);
//! set `DISTILL_BENCH_PYTORCH=0` to skip the reference.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use optical::distill::{BitextPair, read_bitext};
use optical::distill::{DistillConfig, Objective};
use optical::distill::freeze_matching;
use optical::distill::{ObjectiveSpec, StudentBatch, make_optimizer, prepare, teacher_forward, train_step};
use optical::encoder::{Encoder, EncoderOptions, Role};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 32;
const SEQ: usize = 32;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("OPTICAL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/optical"))
}

fn shared_data() -> PathBuf {
    std::env::var_os("OPTICAL_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

fn stats(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(|a, b| a.total_cmp(b));
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    (mean, xs[xs.len() / 2], xs[0])
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: only run for real
    // when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("distill_step: pass --bench (cargo bench --bench distill_step) to measure");
        return Ok(());
    }
    // As `optical distill` does: freed tensors' pages stay in the process.
    optical::memory::keep_freed_pages();
    let model = cache_dir().join("models/multilingual-e5-small");
    if !model.join("model.safetensors").is_file() {
        bail!("{} is not prepared: run scripts/setup-models.sh", model.display());
    }
    let bitext = shared_data().join("bitext/swa.train.tsv.gz");
    let steps = env_usize("DISTILL_BENCH_STEPS", 5);
    let warmup = env_usize("DISTILL_BENCH_WARMUP", 2);

    let device = optical::encoder::default_device();
    let opts = EncoderOptions { max_length: Some(SEQ), ..Default::default() };
    let teacher = Encoder::load_with(&model, &device, &opts)?;
    let student = Encoder::load_with(&model, &device.clone().autodiff(), &opts)?;

    // 32 pairs whose student side fills the 32 tokens, so the batch is exactly [32, 32].
    let all = read_bitext(&bitext)?;
    let xs: Vec<&str> = all.iter().map(|p| p.foreign.as_str()).collect();
    let toks = student.tokenize(&xs, Role::Query)?;
    let pairs: Vec<BitextPair> = all
        .iter()
        .zip(&toks)
        .filter(|(_, t)| t.ids.len() == SEQ)
        .take(BATCH)
        .map(|(p, _)| p.clone())
        .collect();
    if pairs.len() < BATCH {
        bail!("only {} pairs reach {SEQ} tokens", pairs.len());
    }
    let pairs_file = std::env::temp_dir().join(format!("distill-bench-pairs-{}.tsv", std::process::id()));
    let tsv: String = pairs.iter().map(|p| format!("{}\t{}\n", p.foreign, p.english)).collect();
    std::fs::write(&pairs_file, tsv).with_context(|| format!("writing {}", pairs_file.display()))?;

    let mut cfg = DistillConfig::new(model.clone(), model.clone(), vec![bitext.clone()], std::env::temp_dir());
    cfg.max_length = SEQ;
    cfg.objective = Objective::Ot;
    let data = prepare(&pairs, &student, &teacher, &cfg)?;
    let idx: Vec<usize> = (0..BATCH).collect();
    let tb = teacher_forward(&teacher, &data, &idx)?;
    let spec = ObjectiveSpec::from_config(&cfg);
    let pad = student.tokenizer().pad_id();
    let train_device = device.clone().autodiff();
    let (mut model_s, frozen) = freeze_matching(student.into_model(), &cfg.word_embedding_paths);
    assert!(frozen > 0);
    let mut optim = make_optimizer(cfg.weight_decay);

    let mut times = Vec::new();
    let mut losses = Vec::new();
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        let sb = StudentBatch::new(&data, &idx, pad, &train_device);
        let teacher_t = tb.tensors(teacher.dim(), &device);
        let (m, st) = train_step(model_s, &mut optim, &spec, sb, teacher_t, cfg.learning_rate, cfg.grad_clip_norm)?;
        model_s = m;
        let dt = t0.elapsed().as_secs_f64();
        losses.push(st.loss);
        if i >= warmup {
            times.push(dt);
        }
    }
    let (mean, median, min) = stats(times.clone());
    println!(
        "optical (burn {}, flex CPU, {} threads): batch [{BATCH}, {SEQ}], {} steps: mean {mean:.3} s/step, median {median:.3}, min {min:.3}; losses {:?}",
        "0.22.1",
        rayon::current_num_threads(),
        times.len(),
        losses
    );

    if std::env::var("DISTILL_BENCH_PYTORCH").as_deref() == Ok("0") {
        return Ok(());
    }
    let python = std::env::var_os("OPTICAL_TORCH_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let venv = cache_dir().join("torch-venv/bin/python");
        if venv.is_file() { venv } else { PathBuf::from("python3") }
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_pytorch_distill.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(["--teacher", &model.display().to_string(), "--student", &model.display().to_string()])
        .args(["--pairs", &pairs_file.display().to_string(), "--max-length", &SEQ.to_string()])
        .args(["--warmup", &warmup.to_string(), "--steps", &steps.to_string()])
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    let _ = std::fs::remove_file(&pairs_file);
    if !out.status.success() {
        bail!("PyTorch reference failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("parsing the reference's output: {line}"))?;
    let pt_mean = v["mean_s"].as_f64().unwrap_or(f64::NAN);
    println!(
        "pytorch (torch {}, CPU, {} threads): batch {}, {} steps: mean {pt_mean:.3} s/step, median {:.3}, min {:.3}; losses {}",
        v["torch"].as_str().unwrap_or("?"),
        v["threads"],
        v["batch"],
        v["steps"],
        v["median_s"].as_f64().unwrap_or(f64::NAN),
        v["min_s"].as_f64().unwrap_or(f64::NAN),
        v["losses"]
    );
    println!("ratio optical / pytorch (mean s/step): {:.2}", mean / pt_mean);
    Ok(())
}
