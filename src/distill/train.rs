//! The distillation run: tokenise the bitext, get teacher states (cached), train the student
//! with the configured objective, validate, checkpoint, resume, and write the model directory.
use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bitext::{BitextPair, read_bitext};
use super::cache::{TeacherCache, write_atomic};
use super::config::{DistillConfig, MsePooling, Objective, Side, learning_rate};
use super::data::{epoch_batches, sampled_epoch_batches};
pub use super::metrics::DevMetrics;
use super::metrics::{MetricsLog, Record, plot, read_records};
use super::ot::{SinkhornSettings, ensure_nonempty, masked_mean, ot_loss};
use super::params::{clip_global_norm, count_params, freeze_matching};
use crate::encoder::{
    BertModel, Encoder, EncoderOptions, META_FILE, OpticalMeta, Role, TOKENIZER_FILE, TextTokenizer, TokenBatch,
    Tokenized, l2_normalize, mean_pool, to_vec,
};

/// How a run is carried out (as opposed to what it computes, which is the config).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Inference device: the teacher runs here; the student trains on its autodiff twin.
    pub device: Device,
    /// Ignore an existing checkpoint in the output directory and start over.
    pub restart: bool,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Stop (after writing a checkpoint) once this many steps are done, without finishing the
    /// run: simulates an interruption (tests) or splits a run into sessions.
    pub stop_after: Option<usize>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { device: crate::encoder::default_device(), restart: false, progress: true, stop_after: None }
    }
}

/// What a run did (also written as `summary.json` in the output directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DistillReport {
    /// The output model directory.
    pub output: PathBuf,
    /// Objective trained.
    pub objective: String,
    /// Steps done in total (across resumes).
    pub steps: usize,
    /// Steps the schedule was planned for.
    pub planned_steps: usize,
    /// Whether the run reached its end (false after `stop_after` or an interruption).
    pub finished: bool,
    /// Step the run resumed from (0 for a fresh run).
    pub resumed_from: usize,
    /// Training seconds (across resumes).
    pub train_seconds: f64,
    /// Mean seconds per optimiser step in this session.
    pub seconds_per_step: f64,
    /// Dev figures of the untrained student (if a dev set was given).
    pub zero_shot: Option<DevMetrics>,
    /// Dev figures at the end.
    pub final_dev: Option<DevMetrics>,
    /// Mean training loss over the first and the last 10% of the steps of this session.
    pub loss_first: f32,
    /// See `loss_first`.
    pub loss_last: f32,
    /// Trainable / total student parameters.
    pub trainable_params: usize,
    /// See `trainable_params`.
    pub total_params: usize,
}

/// Tokenised pairs with the masks the losses use.
pub struct Prepared {
    /// Student inputs (`prefix + X`).
    pub student: Vec<Tokenized>,
    /// Student tokens the OT loss sees.
    pub student_keep: Vec<Vec<bool>>,
    /// Teacher inputs (`prefix + English`, in the teacher's role).
    pub teacher: Vec<Tokenized>,
    /// Teacher tokens the OT loss sees (and that the cache stores).
    pub teacher_keep: Vec<Vec<bool>>,
}

impl Prepared {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.student.len()
    }
    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.student.is_empty()
    }
}

/// Ids of a tokenizer's special tokens (`[CLS]`, `</s>`, …).
fn special_ids(tok: &TextTokenizer) -> HashSet<u32> {
    tok.inner()
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, t)| t.special)
        .map(|(id, _)| id)
        .collect()
}

/// Which tokens the OT loss keeps: text tokens always; special and prefix tokens unless masked.
/// A sentence left with nothing keeps all its tokens (see [`ensure_nonempty`]).
fn keep_mask(t: &Tokenized, specials: &HashSet<u32>, mask_special: bool, mask_prefix: bool) -> Vec<bool> {
    let keep: Vec<bool> = t
        .ids
        .iter()
        .zip(&t.content)
        .map(|(id, &content)| {
            if content {
                true
            } else if specials.contains(id) {
                !mask_special
            } else {
                !mask_prefix
            }
        })
        .collect();
    if keep.iter().any(|&k| k) { keep } else { vec![true; t.ids.len()] }
}

fn role(side: Side) -> Role {
    match side {
        Side::Query => Role::Query,
        Side::Document => Role::Passage,
    }
}

/// Tokenises pairs for both models, the teacher in `cfg.teacher_side()` for every pair.
pub fn prepare(pairs: &[BitextPair], student: &Encoder, teacher: &Encoder, cfg: &DistillConfig) -> Result<Prepared> {
    prepare_with_roles(pairs, &vec![cfg.teacher_side(); pairs.len()], student, teacher, cfg)
}

/// Tokenises pairs for both models, the teacher encoding pair i's English in `teacher_sides[i]`.
pub fn prepare_with_roles(
    pairs: &[BitextPair],
    teacher_sides: &[Side],
    student: &Encoder,
    teacher: &Encoder,
    cfg: &DistillConfig,
) -> Result<Prepared> {
    ensure!(teacher_sides.len() == pairs.len(), "one teacher side per pair");
    let xs: Vec<&str> = pairs.iter().map(|p| p.foreign.as_str()).collect();
    let s = student.tokenize(&xs, role(cfg.side)).context("tokenizing the non-English side for the student")?;
    let mut t: Vec<Option<Tokenized>> = vec![None; pairs.len()];
    for side in [Side::Query, Side::Document] {
        let idx: Vec<usize> = (0..pairs.len()).filter(|&i| teacher_sides[i] == side).collect();
        let es: Vec<&str> = idx.iter().map(|&i| pairs[i].english.as_str()).collect();
        let toks = teacher.tokenize(&es, role(side)).context("tokenizing the English side for the teacher")?;
        for (i, tok) in idx.into_iter().zip(toks) {
            t[i] = Some(tok);
        }
    }
    let t: Vec<Tokenized> = t.into_iter().map(|x| x.expect("every pair has a teacher side")).collect();
    let (ss, ts) = (special_ids(student.tokenizer()), special_ids(teacher.tokenizer()));
    let student_keep = s.iter().map(|x| keep_mask(x, &ss, cfg.mask_special_tokens, cfg.mask_prefix_tokens)).collect();
    let teacher_keep = t.iter().map(|x| keep_mask(x, &ts, cfg.mask_special_tokens, cfg.mask_prefix_tokens)).collect();
    Ok(Prepared { student: s, student_keep, teacher: t, teacher_keep })
}

/// Teacher outputs for one batch: kept token rows back to back, row counts, pooled vectors.
pub struct TeacherBatch {
    /// `Σ counts × dim` values.
    pub rows: Vec<f32>,
    /// Kept tokens per pair.
    pub counts: Vec<usize>,
    /// `B × dim` mean-pooled (attention mask) vectors.
    pub pooled: Vec<f32>,
}

impl TeacherBatch {
    /// Padded `[B, n_max, d]` states and their `[B, n_max]` 0/1 mask.
    pub fn tensors(&self, dim: usize, device: &Device) -> (Tensor<3>, Tensor<2>, Tensor<2>) {
        let b = self.counts.len();
        let n = self.counts.iter().copied().max().unwrap_or(1).max(1);
        let mut data = vec![0.0f32; b * n * dim];
        let mut mask = vec![0.0f32; b * n];
        let mut off = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            data[i * n * dim..(i * n + c) * dim].copy_from_slice(&self.rows[off..off + c * dim]);
            mask[i * n..i * n + c].iter_mut().for_each(|m| *m = 1.0);
            off += c * dim;
        }
        (
            Tensor::from_data(TensorData::new(data, [b, n, dim]), device),
            Tensor::from_data(TensorData::new(mask, [b, n]), device),
            Tensor::from_data(TensorData::new(self.pooled.clone(), [b, dim]), device),
        )
    }
}

/// Runs the teacher (no gradient) on pairs `idx` and returns their kept rows and pooled vectors.
pub fn teacher_forward(teacher: &Encoder, data: &Prepared, idx: &[usize]) -> Result<TeacherBatch> {
    let items: Vec<&Tokenized> = idx.iter().map(|&i| &data.teacher[i]).collect();
    let batch = teacher.batch(&items);
    let att = batch.attention_mask.clone();
    let states = teacher.model().forward(batch.input_ids, batch.token_type_ids, batch.attention_mask);
    let [b, seq, dim] = states.dims();
    let pooled = to_vec(mean_pool(states.clone(), att))?;
    let flat = to_vec(states)?;
    let mut rows = Vec::new();
    let mut counts = Vec::with_capacity(b);
    for (r, &i) in idx.iter().enumerate() {
        let keep = &data.teacher_keep[i];
        let mut c = 0;
        for (j, &k) in keep.iter().enumerate() {
            if k {
                rows.extend_from_slice(&flat[(r * seq + j) * dim..(r * seq + j + 1) * dim]);
                c += 1;
            }
        }
        counts.push(c);
    }
    Ok(TeacherBatch { rows, counts, pooled })
}

/// Teacher outputs for `idx`, from the cache where present; missing pairs are computed in one
/// forward pass and written to the cache.
pub fn teacher_states(
    teacher: &Encoder,
    data: &Prepared,
    idx: &[usize],
    cache: Option<&mut TeacherCache>,
) -> Result<TeacherBatch> {
    let Some(cache) = cache else { return teacher_forward(teacher, data, idx) };
    let dim = teacher.dim();
    let mut missing: Vec<usize> = idx.iter().copied().filter(|&i| !cache.contains(i)).collect();
    // Temperature sampling can put one pair in a batch twice: compute it once.
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        let fresh = teacher_forward(teacher, data, &missing)?;
        let mut off = 0;
        for (k, &i) in missing.iter().enumerate() {
            let c = fresh.counts[k];
            cache.write(i, &fresh.rows[off..off + c * dim], &fresh.pooled[k * dim..(k + 1) * dim])?;
            off += c * dim;
        }
    }
    let mut out = TeacherBatch { rows: Vec::new(), counts: Vec::with_capacity(idx.len()), pooled: Vec::new() };
    for &i in idx {
        ensure!(cache.read_into(i, &mut out.rows, &mut out.pooled), "teacher cache lost pair {i}");
        out.counts.push(cache.rows(i));
    }
    Ok(out)
}

/// The objective, as the training step and validation compute it.
#[derive(Debug, Clone, Copy)]
pub struct ObjectiveSpec {
    /// Which loss.
    pub objective: Objective,
    /// λ for `ot+mse`.
    pub mse_weight: f32,
    /// Pooling of the `mse` term.
    pub mse_pooling: MsePooling,
    /// Solver settings.
    pub sinkhorn: SinkhornSettings,
}

impl ObjectiveSpec {
    /// From a config.
    pub fn from_config(cfg: &DistillConfig) -> Self {
        Self {
            objective: cfg.objective,
            mse_weight: cfg.mse_weight,
            mse_pooling: cfg.mse_pooling,
            sinkhorn: cfg.sinkhorn.into(),
        }
    }
}

/// Loss of one batch, with its parts (as plain numbers, read after the step).
pub struct LossParts {
    /// The loss to minimise, `[1]`.
    pub loss: Tensor<1>,
    /// The OT term, if computed.
    pub ot: Option<Tensor<1>>,
    /// The MSE term, if computed.
    pub mse: Option<Tensor<1>>,
}

/// One student batch ready for the loss: inputs plus the masks.
pub struct StudentBatch {
    /// Padded inputs on the (autodiff) training device.
    pub tokens: TokenBatch,
    /// `[B, m]` 0/1 mask of the tokens the OT loss keeps.
    pub keep: Tensor<2>,
}

impl StudentBatch {
    /// Pads pairs `idx` of `data` for `model` on `device`.
    pub fn new(data: &Prepared, idx: &[usize], pad_id: u32, device: &Device) -> Self {
        let items: Vec<&Tokenized> = idx.iter().map(|&i| &data.student[i]).collect();
        let tokens = TokenBatch::new(&items, pad_id, device);
        let [b, m] = tokens.input_ids.dims();
        let mut keep = vec![0.0f32; b * m];
        let mut att = vec![0.0f32; b * m];
        for (r, &i) in idx.iter().enumerate() {
            for (j, &k) in data.student_keep[i].iter().enumerate() {
                keep[r * m + j] = if k { 1.0 } else { 0.0 };
                att[r * m + j] = 1.0;
            }
        }
        ensure_nonempty(&mut keep, &att, m);
        let keep = Tensor::from_data(TensorData::new(keep, [b, m]), device);
        Self { tokens, keep }
    }
}

/// The configured loss for student token states `s` against the teacher batch.
pub fn objective_loss(
    spec: &ObjectiveSpec,
    s: Tensor<3>,
    batch_keep: Tensor<2>,
    attention: Tensor<2, Int>,
    t: Tensor<3>,
    t_mask: Tensor<2>,
    t_pooled: Tensor<2>,
) -> LossParts {
    let ot = matches!(spec.objective, Objective::Ot | Objective::OtMse)
        .then(|| ot_loss(s.clone(), t.clone(), batch_keep.clone(), t_mask.clone(), spec.sinkhorn).loss);
    let mse = matches!(spec.objective, Objective::Mse | Objective::OtMse).then(|| {
        let (ps, pt) = match spec.mse_pooling {
            MsePooling::Attention => (mean_pool(s.clone(), attention), t_pooled.without_autodiff()),
            MsePooling::Content => (masked_mean(s.clone(), batch_keep), masked_mean(t.without_autodiff(), t_mask)),
        };
        (ps - pt).square().sum_dim(1).mean()
    });
    let loss = match (&ot, &mse) {
        (Some(o), None) => o.clone(),
        (None, Some(m)) => m.clone(),
        (Some(o), Some(m)) => o.clone() + m.clone().mul_scalar(spec.mse_weight),
        (None, None) => unreachable!("every objective computes a term"),
    };
    LossParts { loss, ot, mse }
}

/// Source sizes after keeping only the first `limit` pairs of their concatenation.
fn limit_sizes(sizes: &[usize], limit: usize) -> Vec<usize> {
    let mut left = limit;
    sizes
        .iter()
        .map(|&n| {
            let k = n.min(left);
            left -= k;
            k
        })
        .filter(|&k| k > 0)
        .collect()
}

/// Figures of one optimiser step.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// Batch loss.
    pub loss: f32,
    /// OT term.
    pub ot: Option<f32>,
    /// MSE term.
    pub mse: Option<f32>,
    /// Gradient norm before clipping.
    pub grad_norm: f32,
}

/// One training step: student forward, loss, backward, global-norm clipping, AdamW update.
pub fn train_step(
    model: BertModel,
    optim: &mut ModuleOptimizer,
    spec: &ObjectiveSpec,
    student: StudentBatch,
    teacher: (Tensor<3>, Tensor<2>, Tensor<2>),
    lr: f64,
    clip: f32,
) -> Result<(BertModel, StepStats)> {
    let att = student.tokens.attention_mask.clone();
    let s = model.forward(student.tokens.input_ids, student.tokens.token_type_ids, student.tokens.attention_mask);
    let (t, t_mask, t_pooled) = teacher;
    let parts = objective_loss(spec, s, student.keep, att, t, t_mask, t_pooled);
    let loss_value = parts.loss.clone().without_autodiff().into_scalar::<f32>();
    ensure!(loss_value.is_finite(), "training loss is {loss_value} (diverged); lower learning_rate");
    let ot = parts.ot.map(|x| x.without_autodiff().into_scalar::<f32>());
    let mse = parts.mse.map(|x| x.without_autodiff().into_scalar::<f32>());
    let grads = parts.loss.backward();
    let grads = GradientsParams::from_grads(grads, &model);
    let (grads, grad_norm) = clip_global_norm(&model, grads, clip);
    let model = optim.step(lr, model, grads);
    Ok((model, StepStats { loss: loss_value, ot, mse, grad_norm }))
}

/// AdamW with PyTorch's defaults for ε and the usual exclusion of biases and LayerNorm
/// parameters from weight decay.
pub fn make_optimizer(weight_decay: f32) -> ModuleOptimizer {
    let base = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(weight_decay);
    let no_decay = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.0);
    base.init().with_group(
        burn::module::ParamGroup::from_any_predicates(vec!["bias", "layer_norm", "LayerNorm", "gamma", "beta"]),
        no_decay.build(),
        None,
    )
}

/// Dev set with the teacher side computed once.
pub struct DevSet {
    data: Prepared,
    /// Teacher states per pair (kept rows) and pooled vectors.
    teacher: TeacherBatch,
    /// Row offsets into `teacher.rows`.
    offsets: Vec<usize>,
    /// L2-normalised pooled teacher vectors, `pairs × dim`.
    teacher_unit: Vec<f32>,
    /// The same, with the teacher in the role the other side of retrieval has at search time
    /// (the English documents when the student encodes queries).
    search_unit: Vec<f32>,
    dim: usize,
}

impl DevSet {
    /// Tokenises `pairs` and runs the teacher on them.
    pub fn new(pairs: &[BitextPair], student: &Encoder, teacher: &Encoder, cfg: &DistillConfig, batch: usize) -> Result<Self> {
        let data = prepare(pairs, student, teacher, cfg)?;
        let dim = teacher.dim();
        let mut all = TeacherBatch { rows: Vec::new(), counts: Vec::new(), pooled: Vec::new() };
        let idx: Vec<usize> = (0..data.len()).collect();
        for chunk in idx.chunks(batch.max(1)) {
            let tb = teacher_forward(teacher, &data, chunk)?;
            all.rows.extend(tb.rows);
            all.counts.extend(tb.counts);
            all.pooled.extend(tb.pooled);
        }
        let mut offsets = vec![0];
        for &c in &all.counts {
            offsets.push(offsets.last().unwrap() + c * dim);
        }
        let teacher_unit: Vec<f32> = all.pooled.chunks(dim).flat_map(unit).collect();
        let search_side = match cfg.side {
            Side::Query => Side::Document,
            Side::Document => Side::Query,
        };
        // When the teacher already encodes English in that role, its pooled vectors are these.
        let search_unit = if cfg.teacher_side() == search_side {
            teacher_unit.clone()
        } else {
            let english: Vec<&str> = pairs.iter().map(|p| p.english.as_str()).collect();
            teacher.encode(&english, role(search_side))?.concat()
        };
        Ok(Self { data, teacher: all, offsets, teacher_unit, search_unit, dim })
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the dev set is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn teacher_batch(&self, idx: &[usize]) -> TeacherBatch {
        let d = self.dim;
        let mut tb = TeacherBatch { rows: Vec::new(), counts: Vec::new(), pooled: Vec::new() };
        for &i in idx {
            tb.rows.extend_from_slice(&self.teacher.rows[self.offsets[i]..self.offsets[i + 1]]);
            tb.counts.push(self.teacher.counts[i]);
            tb.pooled.extend_from_slice(&self.teacher.pooled[i * d..(i + 1) * d]);
        }
        tb
    }

    /// Validates `model` (any device; run on an inference copy for speed).
    pub fn evaluate(&self, model: &BertModel, spec: &ObjectiveSpec, pad_id: u32, device: &Device, batch: usize, step: usize) -> Result<DevMetrics> {
        let n = self.len();
        let d = self.dim;
        let mut student_unit = vec![0.0f32; n * d];
        let mut loss_sum = 0.0f64;
        let lengths: Vec<usize> = self.data.student.iter().map(|t| t.ids.len()).collect();
        for idx in crate::encoder::length_batches(&lengths, batch.max(1)) {
            let sb = StudentBatch::new(&self.data, &idx, pad_id, device);
            let att = sb.tokens.attention_mask.clone();
            let s = model.forward(sb.tokens.input_ids, sb.tokens.token_type_ids, sb.tokens.attention_mask);
            let pooled = to_vec(l2_normalize(mean_pool(s.clone(), att.clone())))?;
            for (r, &i) in idx.iter().enumerate() {
                student_unit[i * d..(i + 1) * d].copy_from_slice(&pooled[r * d..(r + 1) * d]);
            }
            let (t, tm, tp) = self.teacher_batch(&idx).tensors(d, device);
            let parts = objective_loss(spec, s, sb.keep, att, t, tm, tp);
            loss_sum += parts.loss.into_scalar::<f32>() as f64 * idx.len() as f64;
        }
        let (mean_cos, accuracy) = retrieval_figures(&student_unit, &self.teacher_unit, d);
        let (search_mean_cos, search_accuracy) = retrieval_figures(&student_unit, &self.search_unit, d);
        Ok(DevMetrics {
            step,
            mean_cos,
            accuracy,
            loss: (loss_sum / n.max(1) as f64) as f32,
            pairs: n,
            search_accuracy,
            search_mean_cos,
        })
    }
}

/// Mean cosine of the aligned pairs and top-1 accuracy of row i of `queries` retrieving row i
/// of `targets` (both unit rows of width `d`).
fn retrieval_figures(queries: &[f32], targets: &[f32], d: usize) -> (f32, f32) {
    let n = queries.len() / d;
    let mut cos_sum = 0.0f64;
    let mut correct = 0usize;
    for i in 0..n {
        let q = &queries[i * d..(i + 1) * d];
        let mut best = (f32::NEG_INFINITY, usize::MAX);
        for j in 0..n {
            let c = dot(q, &targets[j * d..(j + 1) * d]);
            if j == i {
                cos_sum += c as f64;
            }
            if c > best.0 {
                best = (c, j);
            }
        }
        correct += (best.1 == i) as usize;
    }
    ((cos_sum / n.max(1) as f64) as f32, correct as f32 / n.max(1) as f32)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = dot(v, v).sqrt().max(1e-12);
    v.iter().map(|x| x / n).collect()
}

/// Resumable training state (`checkpoint/state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    /// Optimiser steps done.
    step: usize,
    /// Epoch of the next batch.
    epoch: usize,
    /// Index of the next batch within `epoch`'s order.
    batch_in_epoch: usize,
    /// Training seconds so far.
    elapsed_s: f64,
    /// Hash of the settings that must not change across a resume.
    config_hash: String,
    /// Planned schedule length.
    planned_steps: usize,
    /// Module path → parameter id, so the optimiser state (keyed by id) finds its parameters
    /// again in the reloaded model.
    param_ids: HashMap<String, u64>,
}

/// Settings a resumed run must share with the run it continues (everything that shapes the
/// optimisation; not where outputs go or how often they are written).
fn config_hash(cfg: &DistillConfig) -> String {
    let mut c = cfg.clone();
    c.validate_every = 0;
    c.checkpoint_every = 0;
    c.max_minutes = None;
    c.teacher_cache = false;
    c.teacher_cache_dir = None;
    c.output = PathBuf::new();
    // The same files however the config named them (relative to the working directory, or
    // absolute), so a run resumes after the config moved between the two spellings.
    let canonical = |p: &mut PathBuf| {
        if let Ok(c) = std::fs::canonicalize(&*p) {
            *p = c;
        }
    };
    canonical(&mut c.teacher);
    canonical(&mut c.student);
    c.train.iter_mut().for_each(canonical);
    c.question_train.iter_mut().for_each(canonical);
    c.dev.iter_mut().for_each(canonical);
    let text = toml::to_string(&c).unwrap_or_default();
    hex16(&Sha256::digest(text.as_bytes()))
}

fn hex16(d: &[u8]) -> String {
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Path → id of every float parameter.
struct IdCollector {
    path: Vec<String>,
    ids: HashMap<String, u64>,
}

impl burn::module::ModuleVisitor for IdCollector {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.ids.insert(self.path.join("."), param.id.val());
    }
}

fn param_ids<M: Module>(m: &M) -> HashMap<String, u64> {
    let mut c = IdCollector { path: Vec::new(), ids: HashMap::new() };
    m.visit(&mut c);
    c.ids
}

/// Gives parameters the ids recorded in a checkpoint.
struct IdRestorer<'a> {
    path: Vec<String>,
    ids: &'a HashMap<String, u64>,
    restored: usize,
}

impl ModuleMapper for IdRestorer<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.ids.get(&self.path.join(".")) {
            Some(&id) => {
                let (_, value, mapper) = param.consume();
                self.restored += 1;
                Param::from_mapped_value(ParamId::from(id), value, mapper)
            }
            None => param,
        }
    }
}

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_TMP: &str = "checkpoint.tmp";
const CHECKPOINT_OLD: &str = "checkpoint.old";

/// The checkpoint directory to resume from, if any (`checkpoint.old` covers a crash between
/// the two renames of [`save_checkpoint`]).
fn find_checkpoint(output: &Path) -> Option<PathBuf> {
    [CHECKPOINT, CHECKPOINT_OLD]
        .iter()
        .map(|n| output.join(n))
        .find(|d| d.join("state.json").is_file() && d.join("optimizer.bpk").is_file())
}

fn save_model_dir(model: &BertModel, student_dir: &Path, meta: &OpticalMeta, dir: &Path) -> Result<()> {
    Encoder::save_model_dir(&model.valid(), &student_dir.join(TOKENIZER_FILE), meta, dir)
        .with_context(|| format!("saving the student model to {}", dir.display()))
}

fn save_checkpoint(
    output: &Path,
    model: &BertModel,
    optim: &ModuleOptimizer,
    state: &TrainState,
    student_dir: &Path,
    meta: &OpticalMeta,
) -> Result<()> {
    let tmp = output.join(CHECKPOINT_TMP);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    save_model_dir(model, student_dir, meta, &tmp)?;
    optim
        .save(tmp.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("saving optimizer state to {}: {e:?}", tmp.display()))?;
    write_atomic(&tmp.join("state.json"), serde_json::to_string_pretty(state)?.as_bytes())?;
    let (cur, old) = (output.join(CHECKPOINT), output.join(CHECKPOINT_OLD));
    if old.exists() {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    if cur.exists() {
        std::fs::rename(&cur, &old).with_context(|| format!("renaming {}", cur.display()))?;
    }
    std::fs::rename(&tmp, &cur).with_context(|| format!("renaming {}", tmp.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

fn progress_bar(show: bool, total: u64, pos: u64) -> indicatif::ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "distill {bar:30} {pos}/{len} steps [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(pos);
    bar
}

fn log(msg: impl AsRef<str>, bar: &indicatif::ProgressBar) {
    if bar.is_hidden() {
        eprintln!("{}", msg.as_ref());
    } else {
        bar.println(msg.as_ref());
    }
}

/// Runs a distillation described by `cfg`.
pub fn distill(cfg: &DistillConfig, opts: &RunOptions) -> Result<DistillReport> {
    cfg.validate()?;
    let device = opts.device.clone().without_autodiff();
    let train_device = device.clone().autodiff();
    std::fs::create_dir_all(&cfg.output).with_context(|| format!("creating {}", cfg.output.display()))?;
    write_atomic(&cfg.output.join("distill.toml"), toml::to_string_pretty(cfg)?.as_bytes())?;

    let enc_opts = EncoderOptions { max_length: Some(cfg.max_length), ..Default::default() };
    let teacher = Encoder::load_with(&cfg.teacher, &device, &enc_opts)
        .with_context(|| format!("loading the teacher from {}", cfg.teacher.display()))?;

    // Resume?
    let hash = config_hash(cfg);
    let resume = if opts.restart { None } else { find_checkpoint(&cfg.output) };
    let resume_state: Option<(PathBuf, TrainState)> = match resume {
        Some(dir) => {
            let path = dir.join("state.json");
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let st: TrainState = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            if st.config_hash != hash {
                bail!(
                    "{} holds a checkpoint of a run with other settings; use the same config to resume, \
                     or restart (--restart) to discard it",
                    cfg.output.display()
                );
            }
            Some((dir, st))
        }
        None => None,
    };
    let student_src = resume_state.as_ref().map(|(d, _)| d.clone()).unwrap_or_else(|| cfg.student.clone());
    let student = Encoder::load_with(&student_src, &train_device, &enc_opts)
        .with_context(|| format!("loading the student from {}", student_src.display()))?;
    ensure!(
        student.dim() == teacher.dim(),
        "student {} has hidden size {} but teacher {} has {}: token states must have the same width",
        cfg.student.display(),
        student.dim(),
        cfg.teacher.display(),
        teacher.dim()
    );
    let pad_id = student.tokenizer().pad_id();
    let dim = teacher.dim();

    // Output metadata: the student's own settings, the teacher's embedding space.
    let mut meta = OpticalMeta::load(&cfg.student.join(META_FILE))?;
    meta.embedding_space = teacher.info().embedding_space.clone();
    if meta.name.is_empty() {
        meta.name = student.info().name.clone();
    }
    if !meta.name.contains("distilled") {
        meta.name = format!("{}-distilled-{}", meta.name, cfg.objective.name());
    }

    // Data: every training file, its pairs tagged with the teacher's role for that file.
    let (mut pairs, mut sides, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for (path, side) in cfg.train_files() {
        let p = read_bitext(&path)?;
        sides.extend(std::iter::repeat_n(side, p.len()));
        sizes.push(p.len());
        pairs.extend(p);
    }
    if let Some(n) = cfg.train_limit {
        pairs.truncate(n);
        sides.truncate(n);
        sizes = limit_sizes(&sizes, n);
    }
    let data = prepare_with_roles(&pairs, &sides, &student, &teacher, cfg)?;
    drop(pairs);
    let dev = if cfg.dev.is_empty() {
        None
    } else {
        let mut d = Vec::new();
        for p in &cfg.dev {
            let mut part = read_bitext(p)?;
            part.truncate(cfg.dev_limit);
            d.extend(part);
        }
        Some(DevSet::new(&d, &student, &teacher, cfg, cfg.batch_size)?)
    };

    // Teacher cache keyed by everything its contents depend on.
    let mut cache = if cfg.teacher_cache {
        let mut h = Sha256::new();
        h.update(teacher.info().fingerprint.as_bytes());
        h.update(format!("{:?}|{}|{}|{}", cfg.teacher_side(), cfg.max_length, cfg.mask_special_tokens, cfg.mask_prefix_tokens));
        for (t, k) in data.teacher.iter().zip(&data.teacher_keep) {
            for id in &t.ids {
                h.update(id.to_le_bytes());
            }
            h.update(k.iter().map(|&b| b as u8).collect::<Vec<_>>());
            h.update([0xff]);
        }
        let key = hex16(&h.finalize());
        let rows: Vec<usize> = data.teacher_keep.iter().map(|k| k.iter().filter(|&&b| b).count()).collect();
        let c = TeacherCache::open(&cfg.teacher_cache_path(), &key, &rows, dim)?;
        Some(c)
    } else {
        None
    };

    // Student: frozen embeddings, optimiser.
    let mut model = student.into_model();
    if cfg.freeze_word_embeddings {
        let (m, frozen) = freeze_matching(model, &cfg.word_embedding_paths);
        ensure!(
            frozen > 0,
            "freeze_word_embeddings: no parameter path contains any of {:?}",
            cfg.word_embedding_paths
        );
        model = m;
    }
    let counts = count_params(&model);
    let mut optim = make_optimizer(cfg.weight_decay);
    let lengths: Vec<usize> = data.student.iter().map(|t| t.ids.len()).collect();
    let min_batch = 2.min(cfg.batch_size);
    let batches_of_epoch = |epoch: usize| match cfg.sampling_temperature {
        Some(t) => sampled_epoch_batches(&lengths, &sizes, t, cfg.batch_size, cfg.seed, epoch, min_batch),
        None => epoch_batches(&lengths, cfg.batch_size, cfg.seed, epoch, min_batch),
    };
    let per_epoch = batches_of_epoch(0).len();
    ensure!(per_epoch > 0, "no training batch: the bitext has {} pairs", data.len());
    let planned = cfg.max_steps.unwrap_or(per_epoch * cfg.epochs);

    let (mut step, mut epoch, mut batch_in_epoch, mut elapsed) = (0usize, 0usize, 0usize, 0.0f64);
    if let Some((dir, st)) = &resume_state {
        let mut r = IdRestorer { path: Vec::new(), ids: &st.param_ids, restored: 0 };
        model = model.map(&mut r);
        ensure!(r.restored == st.param_ids.len(), "checkpoint {}: {} of {} parameters matched", dir.display(), r.restored, st.param_ids.len());
        optim = optim
            .load(dir.join("optimizer.bpk"))
            .map_err(|e| anyhow::anyhow!("loading {}: {e:?}", dir.join("optimizer.bpk").display()))?;
        (step, epoch, batch_in_epoch, elapsed) = (st.step, st.epoch, st.batch_in_epoch, st.elapsed_s);
        ensure!(st.planned_steps == planned, "checkpoint planned {} steps, this config {}", st.planned_steps, planned);
    }
    let resumed_from = step;
    let metrics_path = cfg.output.join("metrics.jsonl");
    let mut metrics = MetricsLog::open(&metrics_path, resume_state.as_ref().map(|_| step))?;
    let spec = ObjectiveSpec::from_config(cfg);
    let title = format!("{} distillation: {}", cfg.objective.name(), cfg.output.display());

    let bar = progress_bar(opts.progress, planned as u64, step as u64);
    log(
        format!(
            "distill: {} pairs, {} batches/epoch, {planned} steps planned; student {}/{} parameters trainable; \
             objective {}{}",
            data.len(),
            per_epoch,
            counts.trainable,
            counts.total,
            cfg.objective.name(),
            if resumed_from > 0 { format!("; resuming at step {resumed_from}") } else { String::new() }
        ),
        &bar,
    );

    let mut zero_shot = None;
    let mut last_dev = None;
    let validate = |model: &BertModel, step: usize| -> Result<Option<DevMetrics>> {
        match &dev {
            Some(d) => d.evaluate(&model.valid(), &spec, pad_id, &device, cfg.batch_size, step).map(Some),
            None => Ok(None),
        }
    };
    let push_dev = |m: &DevMetrics, metrics: &mut MetricsLog| -> Result<()> {
        metrics.push(&Record::Dev(*m))
    };
    if resumed_from == 0 {
        if let Some(m) = validate(&model, 0)? {
            log(format!("zero-shot dev: {}", m.summary()), &bar);
            push_dev(&m, &mut metrics)?;
            zero_shot = Some(m);
            last_dev = Some(m);
        }
    } else {
        zero_shot = read_records(&metrics_path)?.iter().find_map(|r| match r {
            Record::Dev(m) if m.step == 0 => Some(*m),
            _ => None,
        });
    }

    let session_start = Instant::now();
    let mut losses: Vec<f32> = Vec::new();
    let mut finished = false;
    let mut batches = batches_of_epoch(epoch);
    let checkpoint = |model: &BertModel, optim: &ModuleOptimizer, cache: &mut Option<TeacherCache>, st: TrainState| -> Result<()> {
        if let Some(c) = cache.as_mut() {
            c.persist()?;
        }
        save_checkpoint(&cfg.output, model, optim, &st, &cfg.student, &meta)
    };
    let state_at = |step, epoch, batch_in_epoch, elapsed, model: &BertModel| TrainState {
        step,
        epoch,
        batch_in_epoch,
        elapsed_s: elapsed,
        config_hash: hash.clone(),
        planned_steps: planned,
        param_ids: param_ids(model),
    };
    loop {
        if step >= planned {
            finished = true;
            break;
        }
        if batch_in_epoch >= batches.len() {
            epoch += 1;
            batch_in_epoch = 0;
            batches = batches_of_epoch(epoch);
            if let Some(c) = cache.as_mut() {
                c.persist()?;
            }
            continue;
        }
        if let Some(limit) = cfg.max_minutes
            && elapsed / 60.0 >= limit
        {
            log(format!("time budget of {limit} min reached at step {step}"), &bar);
            finished = true;
            break;
        }
        let t0 = Instant::now();
        let idx = &batches[batch_in_epoch];
        let tb = teacher_states(&teacher, &data, idx, cache.as_mut())?;
        let teacher_t = tb.tensors(dim, &device);
        let sb = StudentBatch::new(&data, idx, pad_id, &train_device);
        let lr = learning_rate(cfg.learning_rate, cfg.warmup_steps, planned, step);
        let (m, stats) = train_step(model, &mut optim, &spec, sb, teacher_t, lr, cfg.grad_clip_norm)
            .with_context(|| format!("step {}", step + 1))?;
        model = m;
        step += 1;
        batch_in_epoch += 1;
        let dt = t0.elapsed().as_secs_f64();
        elapsed += dt;
        losses.push(stats.loss);
        metrics.push(&Record::Train {
            step,
            epoch,
            loss: stats.loss,
            ot: stats.ot,
            mse: stats.mse,
            lr,
            grad_norm: stats.grad_norm,
            step_s: dt,
            elapsed_s: elapsed,
        })?;
        bar.set_position(step as u64);
        bar.set_message(format!(
            "loss {:.4}{}",
            stats.loss,
            last_dev.map(|d| format!(" dev acc {:.3}", d.accuracy)).unwrap_or_default()
        ));
        if cfg.validate_every > 0 && step % cfg.validate_every == 0 && step < planned {
            if let Some(m) = validate(&model, step)? {
                log(format!("step {step}: dev {}", m.summary()), &bar);
                push_dev(&m, &mut metrics)?;
                last_dev = Some(m);
            }
            let _ = plot(&read_records(&metrics_path)?, &cfg.output.join("metrics.svg"), &title);
        }
        let stop_now = opts.stop_after.is_some_and(|s| step >= s) && step < planned;
        if (cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0 && step < planned) || stop_now {
            checkpoint(&model, &optim, &mut cache, state_at(step, epoch, batch_in_epoch, elapsed, &model))?;
        }
        if stop_now {
            log(format!("stopping after step {step} as asked; resume with the same command"), &bar);
            break;
        }
    }
    bar.finish_and_clear();
    if let Some(c) = cache.as_mut() {
        c.persist()?;
    }

    let mut final_dev = last_dev;
    if finished {
        if let Some(m) = validate(&model, step)? {
            if last_dev.map(|d| d.step) != Some(step) {
                push_dev(&m, &mut metrics)?;
            }
            eprintln!("final dev (step {step}): {}", m.summary());
            final_dev = Some(m);
        }
        save_model_dir(&model, &cfg.student, &meta, &cfg.output)?;
        // A finished run leaves no checkpoint behind: the model directory is the result, and
        // rerunning the command starts over instead of resuming a finished schedule.
        for n in [CHECKPOINT, CHECKPOINT_OLD, CHECKPOINT_TMP] {
            let d = cfg.output.join(n);
            if d.exists() {
                std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
            }
        }
    }
    plot(&read_records(&metrics_path)?, &cfg.output.join("metrics.svg"), &title)?;
    let session_steps = step - resumed_from;
    let tenth = (losses.len() / 10).max(1);
    let mean = |xs: &[f32]| if xs.is_empty() { f32::NAN } else { xs.iter().sum::<f32>() / xs.len() as f32 };
    let report = DistillReport {
        output: cfg.output.clone(),
        objective: cfg.objective.name().to_string(),
        steps: step,
        planned_steps: planned,
        finished,
        resumed_from,
        train_seconds: elapsed,
        seconds_per_step: if session_steps > 0 { session_start.elapsed().as_secs_f64() / session_steps as f64 } else { 0.0 },
        zero_shot,
        final_dev,
        loss_first: mean(&losses[..tenth.min(losses.len())]),
        loss_last: mean(&losses[losses.len().saturating_sub(tenth)..]),
        trainable_params: counts.trainable,
        total_params: counts.total,
    };
    write_atomic(&cfg.output.join("summary.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}
