//! What a run starts from: the two models, the tokenised training and dev data, the teacher
//! cache, the trainable student and the output directory's metadata.
use std::path::Path;

use anyhow::{Context, Result, ensure};
use burn::prelude::*;
use sha2::{Digest, Sha256};

use super::batch::{Prepared, prepare_with_roles};
use super::bitext::read_bitext;
use super::cache::TeacherCache;
use super::checkpoint::hex16;
use super::config::DistillConfig;
use super::data::{Schedule, limit_sizes};
use super::dev::DevSet;
use super::params::freeze_matching;
use crate::encoder::{BertModel, Encoder, EncoderOptions, META_FILE, OpticalMeta, Role};

/// Loads the teacher on `device` and the student on `train_device`, from `student_dir` (the
/// config's student, or the checkpoint a run resumes from). Their token states must have the
/// same width.
pub(super) fn load_models(
    cfg: &DistillConfig,
    student_dir: &Path,
    device: &Device,
    train_device: &Device,
) -> Result<(Encoder, Encoder)> {
    let enc_opts = EncoderOptions { max_length: Some(cfg.max_length), ..Default::default() };
    let teacher = Encoder::load_with(&cfg.teacher, device, &enc_opts)
        .with_context(|| format!("loading the teacher from {}", cfg.teacher.display()))?;
    let student = Encoder::load_with(student_dir, train_device, &enc_opts)
        .with_context(|| format!("loading the student from {}", student_dir.display()))?;
    ensure!(
        student.dim() == teacher.dim(),
        "student {} has hidden size {} but teacher {} has {}: token states must have the same width",
        cfg.student.display(),
        student.dim(),
        cfg.teacher.display(),
        teacher.dim()
    );
    Ok((teacher, student))
}

/// The output's `optical.json`: the student's own settings, the teacher's embedding space, and a
/// name that says the model was distilled.
pub(super) fn output_meta(cfg: &DistillConfig, student: &Encoder, teacher: &Encoder) -> Result<OpticalMeta> {
    let mut meta = OpticalMeta::load(&cfg.student.join(META_FILE))?;
    meta.embedding_space = teacher.info().embedding_space.clone();
    if meta.name.is_empty() {
        meta.name = student.info().name.clone();
    }
    if !meta.name.contains("distilled") {
        meta.name = format!("{}-distilled-{}", meta.name, cfg.objective.name());
    }
    Ok(meta)
}

/// Every training file tokenised, its pairs tagged with the teacher's role for that file, and the
/// batch schedule over them.
pub(super) fn training_data(cfg: &DistillConfig, student: &Encoder, teacher: &Encoder) -> Result<(Prepared, Schedule)> {
    let (mut pairs, mut roles, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for (path, role) in cfg.train_files() {
        let p = read_bitext(&path)?;
        roles.extend(std::iter::repeat_n(role, p.len()));
        sizes.push(p.len());
        pairs.extend(p);
    }
    if let Some(n) = cfg.train_limit {
        pairs.truncate(n);
        roles.truncate(n);
        sizes = limit_sizes(&sizes, n);
    }
    let data = prepare_with_roles(&pairs, &roles, student, teacher, cfg)?;
    let schedule = Schedule {
        lengths: data.student.iter().map(|t| t.ids.len()).collect(),
        sizes,
        temperature: cfg.sampling_temperature,
        batch_size: cfg.batch_size,
        seed: cfg.seed,
    };
    Ok((data, schedule))
}

/// The first `dev_limit` pairs of every dev file, with the teacher's side computed (none when the
/// config names no dev file).
pub(super) fn dev_set(cfg: &DistillConfig, student: &Encoder, teacher: &Encoder) -> Result<Option<DevSet>> {
    if cfg.dev.is_empty() {
        return Ok(None);
    }
    let mut d = Vec::new();
    for p in &cfg.dev {
        let mut part = read_bitext(p)?;
        part.truncate(cfg.dev_limit);
        d.extend(part);
    }
    Ok(Some(DevSet::new(&d, student, teacher, cfg, cfg.batch_size)?))
}

/// The teacher cache, keyed by everything its contents depend on: the teacher's weights, its
/// role, the length and masking settings, and every teacher input and mask.
pub(super) fn teacher_cache(cfg: &DistillConfig, teacher: &Encoder, data: &Prepared) -> Result<Option<TeacherCache>> {
    if !cfg.teacher_cache {
        return Ok(None);
    }
    let mut h = Sha256::new();
    h.update(teacher.info().fingerprint.as_bytes());
    // The names the role had in the key before `distill::config::Side` became `encoder::Role`:
    // existing caches stay valid.
    let role = match cfg.teacher_side() {
        Role::Query => "Query",
        Role::Passage => "Document",
    };
    h.update(format!("{role}|{}|{}|{}", cfg.max_length, cfg.mask_special_tokens, cfg.mask_prefix_tokens));
    for (t, k) in data.teacher.iter().zip(&data.teacher_keep) {
        for id in &t.ids {
            h.update(id.to_le_bytes());
        }
        h.update(k.iter().map(|&b| b as u8).collect::<Vec<_>>());
        h.update([0xff]);
    }
    let key = hex16(&h.finalize());
    let rows: Vec<usize> = data.teacher_keep.iter().map(|k| k.iter().filter(|&&b| b).count()).collect();
    Ok(Some(TeacherCache::open(&cfg.teacher_cache_path(), &key, &rows, teacher.dim())?))
}

/// The student's network, with the word embeddings frozen when the config says so.
pub(super) fn trainable_student(cfg: &DistillConfig, student: Encoder) -> Result<BertModel> {
    let model = student.into_model();
    if !cfg.freeze_word_embeddings {
        return Ok(model);
    }
    let (model, frozen) = freeze_matching(model, &cfg.word_embedding_paths);
    ensure!(frozen > 0, "freeze_word_embeddings: no parameter path contains any of {:?}", cfg.word_embedding_paths);
    Ok(model)
}
