//! Dev evaluation: the dev bitext with its teacher side computed once, and the figures of a
//! student on it (objective loss, top-1 retrieval accuracy and mean cosine of the aligned pairs).
use anyhow::Result;
use burn::prelude::*;

use super::batch::{Prepared, StudentBatch, TeacherBatch, prepare, teacher_forward};
use super::bitext::BitextPair;
use super::config::DistillConfig;
use super::metrics::DevMetrics;
use super::objective::{ObjectiveSpec, objective_loss};
use crate::encoder::{BertModel, Encoder, Role, l2_normalize, mean_pool, to_vec};

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
        let search_role = match cfg.side {
            Role::Query => Role::Passage,
            Role::Passage => Role::Query,
        };
        // When the teacher already encodes English in that role, its pooled vectors are these.
        let search_unit = if cfg.teacher_side() == search_role {
            teacher_unit.clone()
        } else {
            let english: Vec<&str> = pairs.iter().map(|p| p.english.as_str()).collect();
            teacher.encode(&english, search_role)?.concat()
        };
        Ok(Self { data, teacher: all, offsets, teacher_unit, search_unit, dim })
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
        let n = self.data.len();
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

