//! The GPU check of issue 14 in one run (`scripts/gpu-check.sh` builds and runs it): parity of the
//! encoder on the GPU with the CPU (flex) backend on the golden sentences, multilingual-e5-small
//! passages/s at batch 256 × 128, and seconds per OT-distillation step at batch 32 × 32 and a
//! larger batch, each beside the CPU figure measured in the same run. Needs `--features cuda`.
//!
//!   gpu_check --models DIR --out FILE [--device cuda:0] [--large-batch 128]
//!
//! DIR holds `all-minilm-l6-v2/` and `multilingual-e5-small/`, each with at least `config.json`,
//! `tokenizer.json` and `optical.json`. Where `model.safetensors` is missing (a GPU machine the
//! weights cannot be carried to), a random-weight model of the same configuration is written to
//! a temporary folder: parity and speed do not depend on the weights' values, and the golden
//! test (`tests/encoder_golden.rs`) checks flex against PyTorch with the real ones. With real
//! weights the GPU vectors are also compared with the golden ones.
//!
//! Exits 1 with a message when the device is not available (no GPU, no driver), and 2 after
//! writing the report when parity fails.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use optical::distill::{
    BitextPair, DistillConfig, Objective, ObjectiveSpec, StudentBatch, freeze_matching, make_optimizer, prepare,
    teacher_forward, train_step,
};
use optical::encoder::{BertConfig, BertModel, Encoder, EncoderOptions, OpticalMeta, Role, default_device, select_device};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Golden parity tolerances, as in tests/encoder_golden.rs.
const MIN_COSINE: f64 = 0.9999;
const MAX_STATE_DIFF: f32 = 1e-3;

struct Args {
    models: PathBuf,
    out: PathBuf,
    device: String,
    large_batch: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args { models: PathBuf::new(), out: PathBuf::new(), device: "cuda:0".into(), large_batch: 128 };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--models" => args.models = value()?.into(),
            "--out" => args.out = value()?.into(),
            "--device" => args.device = value()?,
            "--large-batch" => args.large_batch = value()?.parse().context("--large-batch")?,
            other => bail!("unknown argument {other}; usage: gpu_check --models DIR --out FILE [--device cuda:0] [--large-batch N]"),
        }
    }
    if args.models.as_os_str().is_empty() || args.out.as_os_str().is_empty() {
        bail!("usage: gpu_check --models DIR --out FILE [--device cuda:0] [--large-batch N]");
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("gpu_check: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A usable model directory for `name`: the given one when it has weights, else a random-weight
/// copy of its configuration under `tmp`. Returns the directory and whether the weights are real.
fn model_dir(models: &Path, name: &str, tmp: &Path) -> Result<(PathBuf, bool)> {
    let dir = models.join(name);
    if dir.join("model.safetensors").is_file() {
        return Ok((dir, true));
    }
    let config = BertConfig::load(&dir.join("config.json")).with_context(|| format!("model {name}"))?;
    let meta = OpticalMeta::load(&dir.join("optical.json"))?;
    let cpu = default_device();
    cpu.seed(14);
    let model = BertModel::init(&config, &cpu);
    let out = tmp.join(name);
    Encoder::save_model_dir(&model, &dir.join("tokenizer.json"), &meta, &out)?;
    Ok((out, false))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Encodes the golden sentences on both devices; returns the report line and whether it passed.
fn parity(dir: &Path, real: bool, golden: &Path, gpu: &Device, cpu: &Device) -> Result<(String, bool)> {
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden).with_context(|| golden.display().to_string())?)?;
    let sentences: Vec<String> = serde_json::from_value(g["sentences"].clone())?;
    let options = EncoderOptions {
        query_prefix: g["prefix"].as_str().map(String::from),
        max_length: g["max_length"].as_u64().map(|n| n as usize),
        batch_size: Some(5),
        ..Default::default()
    };
    let on_gpu = Encoder::load_with(dir, gpu, &options)?;
    let on_cpu = Encoder::load_with(dir, cpu, &options)?;
    let (vg, vc) = (on_gpu.encode_queries(&sentences)?, on_cpu.encode_queries(&sentences)?);
    let worst_cpu = vg.iter().zip(&vc).map(|(a, b)| cosine(a, b)).fold(1.0, f64::min);
    let (sg, sc) = (on_gpu.token_states(&sentences, Role::Query)?, on_cpu.token_states(&sentences, Role::Query)?);
    let mut max_diff = 0f32;
    for (a, b) in sg.iter().zip(&sc) {
        for t in 0..a.ids.len() {
            for (x, y) in a.row(t).iter().zip(b.row(t)) {
                max_diff = max_diff.max((x - y).abs());
            }
        }
    }
    let mut ok = worst_cpu >= MIN_COSINE && max_diff <= MAX_STATE_DIFF;
    let mut line = format!(
        "{} ({} weights): GPU vs CPU over {} sentences: worst cosine {worst_cpu:.7}, token states max abs diff {max_diff:.2e}",
        on_gpu.info().name,
        if real { "real" } else { "random" },
        sentences.len()
    );
    if real {
        let want: Vec<Vec<f32>> = serde_json::from_value(g["embeddings"].clone())?;
        let worst_golden = vg.iter().zip(&want).map(|(a, b)| cosine(a, b)).fold(1.0, f64::min);
        ok &= worst_golden >= MIN_COSINE;
        let _ = write!(line, "; GPU vs golden (PyTorch) worst cosine {worst_golden:.7}");
    }
    line.push_str(if ok { " — PASS" } else { " — FAIL" });
    Ok((line, ok))
}

/// `n` distinct passages, each longer than 128 tokens (as in benches/encoder_speed.rs).
fn passages(n: usize) -> Vec<String> {
    let base = "Optimal transport gives a principled way to align the tokens of a sentence with the tokens \
        of its translation. A teacher encoder trained for English retrieval produces token states for the \
        English side, and a multilingual student learns to place the tokens of the other language where \
        the plan sends them, so that queries in Swahili, Hausa or Yoruba find English documents.";
    (0..n).map(|i| format!("Passage number {i} of the benchmark. {base} {base}")).collect()
}

/// Passages per second encoding `batch` passages at a time (truncated to 128 tokens), the best
/// of `reps` timed batches after one warm-up (which also compiles the GPU kernels).
fn passages_per_s(dir: &Path, device: &Device, batch: usize, reps: usize) -> Result<(f64, usize)> {
    let options = EncoderOptions { batch_size: Some(batch), max_length: Some(128), ..Default::default() };
    let enc = Encoder::load_with(dir, device, &options)?;
    let texts = passages(batch);
    let seq = enc.tokenize(&texts, Role::Passage)?.iter().map(|t| t.ids.len()).max().unwrap_or(0);
    enc.encode_passages(&texts)?;
    let mut best = 0f64;
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(enc.encode_passages(&texts)?);
        best = best.max(batch as f64 / t.elapsed().as_secs_f64());
    }
    Ok((best, seq))
}

/// Median seconds per distillation step (OT objective, as benches/distill_step.rs) at
/// `batch` × 32 tokens, after `warmup` steps; the loss of the last step (read back, which also
/// waits for the GPU).
fn distill_step_s(model: &Path, device: &Device, batch: usize, warmup: usize, steps: usize) -> Result<(f64, f32)> {
    const SEQ: usize = 32;
    let opts = EncoderOptions { max_length: Some(SEQ), ..Default::default() };
    let teacher = Encoder::load_with(model, device, &opts)?;
    let student = Encoder::load_with(model, &device.clone().autodiff(), &opts)?;
    // Long distinct sentences: truncation makes every student input exactly SEQ tokens.
    let pairs: Vec<BitextPair> = passages(batch)
        .into_iter()
        .map(|p| BitextPair { foreign: p.clone(), english: p })
        .collect();
    let tmp = std::env::temp_dir();
    let mut cfg = DistillConfig::new(model.to_path_buf(), model.to_path_buf(), vec![], tmp);
    cfg.max_length = SEQ;
    cfg.objective = Objective::Ot;
    let data = prepare(&pairs, &student, &teacher, &cfg)?;
    let idx: Vec<usize> = (0..batch).collect();
    let tb = teacher_forward(&teacher, &data, &idx)?;
    let spec = ObjectiveSpec::from_config(&cfg);
    let pad = student.tokenizer().pad_id();
    let train_device = device.clone().autodiff();
    let (mut model_s, _) = freeze_matching(student.into_model(), &cfg.word_embedding_paths);
    let mut optim = make_optimizer(cfg.weight_decay);
    let mut times = Vec::new();
    let mut loss = f32::NAN;
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        let sb = StudentBatch::new(&data, &idx, pad, &train_device);
        let teacher_t = tb.tensors(teacher.dim(), device);
        let (m, st) = train_step(model_s, &mut optim, &spec, sb, teacher_t, cfg.learning_rate, cfg.grad_clip_norm)?;
        model_s = m;
        loss = st.loss;
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], loss))
}

fn run() -> Result<bool> {
    let args = parse_args()?;
    // First: a machine without a GPU or driver stops here with the reason.
    let gpu = select_device(&args.device)?;
    let cpu = default_device();
    let tmp = tempfile::tempdir()?;
    let golden_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let golden_dir = std::env::var_os("OPTICAL_GOLDEN_DIR").map(PathBuf::from).unwrap_or(golden_dir);
    let threads = rayon::current_num_threads();
    let mut report = format!(
        "# gpu_check: device {} ({} GPU(s) reported by the driver), CPU = burn flex on {threads} thread(s)\n\n",
        args.device,
        optical::encoder::cuda_device_count().unwrap_or(0)
    );
    let say = |line: String, report: &mut String| {
        eprintln!("{line}");
        report.push_str(&line);
        report.push('\n');
    };

    let mut all_ok = true;
    let mut e5 = None;
    for (name, golden) in [
        ("all-minilm-l6-v2", "all-MiniLM-L6-v2.json"),
        ("multilingual-e5-small", "multilingual-e5-small-q4.json"),
    ] {
        let (dir, real) = model_dir(&args.models, name, tmp.path())?;
        let (line, ok) = parity(&dir, real, &golden_dir.join(golden), &gpu, &cpu)?;
        all_ok &= ok;
        say(format!("- parity: {line}"), &mut report);
        if name == "multilingual-e5-small" {
            e5 = Some(dir);
        }
    }
    let e5 = e5.unwrap();

    let (g_sps, seq) = passages_per_s(&e5, &gpu, 256, 5)?;
    say(format!("- e5 encode, GPU: {g_sps:.1} passages/s at batch 256 x {seq}"), &mut report);
    let (c_sps, seq) = passages_per_s(&e5, &cpu, 32, 3)?;
    say(format!("- e5 encode, CPU: {c_sps:.1} passages/s at batch 32 x {seq} (GPU/CPU {:.1}x)", g_sps / c_sps), &mut report);

    for batch in [32, args.large_batch] {
        let (g, gl) = distill_step_s(&e5, &gpu, batch, 2, 5)?;
        say(format!("- distill step (OT, e5 as teacher and student), GPU: {g:.3} s/step at batch {batch} x 32 (loss {gl:.6})"), &mut report);
        if batch == 32 {
            let (c, cl) = distill_step_s(&e5, &cpu, batch, 1, 3)?;
            say(format!("- distill step, CPU: {c:.3} s/step at batch 32 x 32 (loss {cl:.6}; GPU/CPU speed-up {:.1}x)", c / g), &mut report);
        }
    }
    say(format!("\nparity: {}", if all_ok { "PASS" } else { "FAIL" }), &mut report);
    std::fs::write(&args.out, &report).with_context(|| format!("writing {}", args.out.display()))?;
    Ok(all_ok)
}
