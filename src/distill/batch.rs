//! Batches and masks: the bitext tokenised for both models, the masks of the tokens the losses
//! see, and one batch's teacher outputs (computed or from the cache) and student inputs.
use std::collections::HashSet;

use anyhow::{Context, Result, ensure};
use burn::prelude::*;

use super::bitext::BitextPair;
use super::cache::TeacherCache;
use super::config::DistillConfig;
use super::ot::ensure_nonempty;
use crate::encoder::{Encoder, Role, TextTokenizer, TokenBatch, Tokenized, mean_pool, to_vec};

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

/// Tokenises pairs for both models, the teacher in `cfg.teacher_side()` for every pair.
pub fn prepare(pairs: &[BitextPair], student: &Encoder, teacher: &Encoder, cfg: &DistillConfig) -> Result<Prepared> {
    prepare_with_roles(pairs, &vec![cfg.teacher_side(); pairs.len()], student, teacher, cfg)
}

/// Tokenises pairs for both models, the teacher encoding pair i's English in `teacher_roles[i]`.
pub fn prepare_with_roles(
    pairs: &[BitextPair],
    teacher_roles: &[Role],
    student: &Encoder,
    teacher: &Encoder,
    cfg: &DistillConfig,
) -> Result<Prepared> {
    ensure!(teacher_roles.len() == pairs.len(), "one teacher role per pair");
    let xs: Vec<&str> = pairs.iter().map(|p| p.foreign.as_str()).collect();
    let s = student.tokenize(&xs, cfg.side).context("tokenizing the non-English side for the student")?;
    let mut t: Vec<Option<Tokenized>> = vec![None; pairs.len()];
    for role in [Role::Query, Role::Passage] {
        let idx: Vec<usize> = (0..pairs.len()).filter(|&i| teacher_roles[i] == role).collect();
        let es: Vec<&str> = idx.iter().map(|&i| pairs[i].english.as_str()).collect();
        let toks = teacher.tokenize(&es, role).context("tokenizing the English side for the teacher")?;
        for (i, tok) in idx.into_iter().zip(toks) {
            t[i] = Some(tok);
        }
    }
    let t: Vec<Tokenized> = t.into_iter().map(|x| x.expect("every pair has a teacher role")).collect();
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

