//! `distill.toml`: everything a distillation run needs, with its defaults (the table in
//! docs/distillation.md lists them).
//!
//! Relative paths are resolved against the directory of the config file, so a config can sit
//! next to its data. Unknown keys are errors (a typo must not silently fall back to a default).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::ot::SinkhornSettings;
use crate::encoder::Role;

/// Training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Objective {
    /// Token-level optimal transport (Sinkhorn plan, cosine cost).
    #[default]
    #[serde(rename = "ot")]
    Ot,
    /// Sentence-level ‖pool(S) − pool(T)‖² (Reimers & Gurevych 2020).
    #[serde(rename = "mse")]
    Mse,
    /// `ot + λ·mse`.
    #[serde(rename = "ot+mse")]
    OtMse,
}

impl Objective {
    /// The name used in the config file and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Ot => "ot",
            Objective::Mse => "mse",
            Objective::OtMse => "ot+mse",
        }
    }
}

/// Which tokens the `mse` objective averages over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MsePooling {
    /// Every real (non-padding) token, prefix and special tokens included: the pooling the
    /// encoder uses at search time, so the baseline trains exactly the vector that is scored.
    #[default]
    Attention,
    /// Only the tokens the OT loss sees (special and prefix tokens masked out).
    Content,
}

/// Sinkhorn solver settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkhornConfig {
    /// Entropic regularisation ε.
    pub epsilon: f32,
    /// Iterations.
    pub iterations: usize,
    /// Cosine cost on centred token states ([`SinkhornSettings::centre`]). Left out of the
    /// serialised config when false, so the resume hash of earlier runs stays the same.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub centre: bool,
}

impl Default for SinkhornConfig {
    fn default() -> Self {
        let s = SinkhornSettings::default();
        Self { epsilon: s.epsilon, iterations: s.iterations, centre: s.centre }
    }
}

impl From<SinkhornConfig> for SinkhornSettings {
    fn from(c: SinkhornConfig) -> Self {
        SinkhornSettings { epsilon: c.epsilon, iterations: c.iterations, centre: c.centre }
    }
}

/// A distillation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    /// Teacher model directory (encodes the English side; never trained).
    pub teacher: PathBuf,
    /// Student model directory the training starts from.
    pub student: PathBuf,
    /// Training bitext files (`X<TAB>English`, `.tsv` or `.tsv.gz`).
    #[serde(default)]
    pub train: Vec<PathBuf>,
    /// Question bitext (questions in X with their English translation, e.g.
    /// `afriqa-<lang>.train.tsv`): the teacher encodes their English side as a *query*
    /// whatever `teacher_side` says, because a question is a query in any search. Sentence
    /// bitext in `train` follows `teacher_side`.
    #[serde(default)]
    pub question_train: Vec<PathBuf>,
    /// Sample the training files with probability ∝ pairs^(1/T) instead of concatenating them
    /// (T = 1 is proportional, larger T flattens towards uniform), so a small language is not
    /// drowned by a large one. An epoch keeps the size of the concatenation. Unset: one pass
    /// over the concatenation per epoch.
    #[serde(default)]
    pub sampling_temperature: Option<f64>,
    /// Dev bitext for validation: one file or a list (optional).
    #[serde(default, deserialize_with = "one_or_many")]
    pub dev: Vec<PathBuf>,
    /// Use at most this many dev pairs of each dev file (the first ones).
    #[serde(default = "d_dev_limit")]
    pub dev_limit: usize,
    /// Output directory: the trained model directory, plus `metrics.jsonl`, `metrics.svg`,
    /// `checkpoint/` and `teacher-cache/`.
    pub output: PathBuf,
    /// Which side of retrieval the student encodes (`query` or `document`), which decides the
    /// instruction prefix both models get (`query: ` or `passage: ` for E5). With `query`, the
    /// student encodes queries in X and the teacher English documents.
    #[serde(default)]
    pub side: Role,
    /// In which role the teacher encodes the English side: `query` or `document` (default: the
    /// same as `side`). With `side = "query"` and `teacher_side = "document"` the student learns
    /// to put a query in X where the teacher puts the English *document* it translates, which
    /// is the vector the index stores.
    #[serde(default)]
    pub teacher_side: Option<Role>,
    /// Training objective.
    #[serde(default)]
    pub objective: Objective,
    /// λ in `ot + λ·mse`.
    #[serde(default = "d_one")]
    pub mse_weight: f32,
    /// Pooling used by the `mse` term.
    #[serde(default)]
    pub mse_pooling: MsePooling,
    /// Sinkhorn solver.
    #[serde(default)]
    pub sinkhorn: SinkhornConfig,
    /// Mask special tokens (`[CLS]`, `[SEP]`, `<s>`, `</s>`) out of the OT problem.
    #[serde(default = "d_true")]
    pub mask_special_tokens: bool,
    /// Mask the instruction-prefix tokens (e.g. `query: `) out of the OT problem.
    #[serde(default = "d_true")]
    pub mask_prefix_tokens: bool,
    /// Maximum tokens per sentence, special and prefix tokens included (longer ones are cut).
    #[serde(default = "d_max_length")]
    pub max_length: usize,
    /// Pairs per step.
    #[serde(default = "d_batch_size")]
    pub batch_size: usize,
    /// Peak learning rate (AdamW).
    #[serde(default = "d_lr")]
    pub learning_rate: f64,
    /// Linear warm-up steps from 0 to the peak; then linear decay to 0 at the last step.
    #[serde(default = "d_warmup")]
    pub warmup_steps: usize,
    /// AdamW decoupled weight decay.
    #[serde(default = "d_weight_decay")]
    pub weight_decay: f32,
    /// Clip the global gradient norm to this value (0 disables clipping).
    #[serde(default = "d_one")]
    pub grad_clip_norm: f32,
    /// Passes over the training bitext (ignored when `max_steps` is set).
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    /// Stop after this many optimiser steps (sets the length of the schedule).
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Stop after this many minutes of training (the schedule still assumes the full length;
    /// set `max_steps` too for a schedule that ends on time).
    #[serde(default)]
    pub max_minutes: Option<f64>,
    /// Seed for data order and initialisation of anything random.
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Keep the word-embedding table fixed (on by default: it is most of a multilingual
    /// model's parameters, and the tokens of X that bitext never shows would drift otherwise).
    #[serde(default = "d_true")]
    pub freeze_word_embeddings: bool,
    /// Parameter-path fragments that identify the word-embedding table.
    #[serde(default = "d_freeze_paths")]
    pub word_embedding_paths: Vec<String>,
    /// Validate every N steps (0: only at the end).
    #[serde(default = "d_validate_every")]
    pub validate_every: usize,
    /// Save a resumable checkpoint every N steps (0: only at the end).
    #[serde(default = "d_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Cache teacher token states on disk (memory-mapped) and reuse them across epochs and runs.
    #[serde(default = "d_true")]
    pub teacher_cache: bool,
    /// Where the teacher cache lives (default: `<output>/teacher-cache`). Runs with the same
    /// teacher, bitext, side and length settings can share one.
    #[serde(default)]
    pub teacher_cache_dir: Option<PathBuf>,
    /// Use the first N training pairs only (for quick experiments).
    #[serde(default)]
    pub train_limit: Option<usize>,
}

/// A path or a list of paths.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(p) => vec![p],
        OneOrMany::Many(v) => v,
    })
}

fn d_dev_limit() -> usize {
    500
}
fn d_one() -> f32 {
    1.0
}
fn d_true() -> bool {
    true
}
fn d_max_length() -> usize {
    64
}
fn d_batch_size() -> usize {
    32
}
fn d_lr() -> f64 {
    2e-5
}
fn d_warmup() -> usize {
    100
}
fn d_weight_decay() -> f32 {
    0.01
}
fn d_epochs() -> usize {
    1
}
fn d_seed() -> u64 {
    42
}
fn d_freeze_paths() -> Vec<String> {
    vec!["word_embeddings".to_string()]
}
fn d_validate_every() -> usize {
    200
}
fn d_checkpoint_every() -> usize {
    200
}

impl DistillConfig {
    /// A config with the defaults and the given required fields.
    pub fn new(teacher: PathBuf, student: PathBuf, train: Vec<PathBuf>, output: PathBuf) -> Self {
        let mut c: DistillConfig = toml::from_str(&format!(
            "teacher = {:?}\nstudent = {:?}\ntrain = []\noutput = {:?}",
            teacher.display().to_string(),
            student.display().to_string(),
            output.display().to_string()
        ))
        .expect("the default config parses");
        c.train = train;
        c
    }

    /// The role the teacher encodes the English side in.
    pub fn teacher_side(&self) -> Role {
        self.teacher_side.unwrap_or(self.side)
    }

    /// Every training file with the role the teacher encodes its English side in: `train`
    /// first (in `teacher_side`), then `question_train` (as queries).
    pub fn train_files(&self) -> Vec<(PathBuf, Role)> {
        let sentences = self.train.iter().map(|p| (p.clone(), self.teacher_side()));
        sentences.chain(self.question_train.iter().map(|p| (p.clone(), Role::Query))).collect()
    }

    /// Reads a TOML config; relative paths are resolved against the file's directory.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut cfg: DistillConfig =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        // Absolute, so that the copy a run writes into its output directory (`distill.toml`)
        // still names the same files when read from there.
        cfg.resolve_paths(&config_dir(path)?);
        cfg.validate().with_context(|| format!("in config {}", path.display()))?;
        Ok(cfg)
    }

    /// Expands a leading `~/` to `$HOME` and makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let fix = |p: &mut PathBuf| {
            if let (Ok(rest), Some(home)) = (p.strip_prefix("~"), home.as_ref()) {
                *p = home.join(rest);
            }
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.teacher);
        fix(&mut self.student);
        self.train.iter_mut().for_each(fix);
        self.question_train.iter_mut().for_each(fix);
        self.dev.iter_mut().for_each(fix);
        fix(&mut self.output);
        if let Some(d) = self.teacher_cache_dir.as_mut() {
            fix(d);
        }
    }

    /// Checks values that would otherwise fail late or silently.
    pub fn validate(&self) -> Result<()> {
        if self.train.is_empty() && self.question_train.is_empty() {
            bail!("field `train`: give at least one bitext file");
        }
        if let Some(t) = self.sampling_temperature
            && !(t > 0.0)
        {
            bail!("field `sampling_temperature` must be > 0 (got {t})");
        }
        if self.batch_size == 0 {
            bail!("field `batch_size` must be at least 1");
        }
        if self.max_length < 4 {
            bail!("field `max_length` must be at least 4 (prefix + special tokens + content)");
        }
        if !(self.sinkhorn.epsilon > 0.0) {
            bail!("field `sinkhorn.epsilon` must be > 0 (got {})", self.sinkhorn.epsilon);
        }
        if self.sinkhorn.iterations == 0 {
            bail!("field `sinkhorn.iterations` must be at least 1");
        }
        if !(self.learning_rate > 0.0) {
            bail!("field `learning_rate` must be > 0");
        }
        if self.max_steps.is_none() && self.epochs == 0 {
            bail!("set `epochs` ≥ 1 or `max_steps`");
        }
        if self.max_steps == Some(0) {
            bail!("field `max_steps` must be at least 1");
        }
        if self.mse_weight < 0.0 {
            bail!("field `mse_weight` must be ≥ 0");
        }
        if self.grad_clip_norm < 0.0 {
            bail!("field `grad_clip_norm` must be ≥ 0 (0 disables clipping)");
        }
        Ok(())
    }

    /// The teacher-cache directory in use.
    pub fn teacher_cache_path(&self) -> PathBuf {
        self.teacher_cache_dir.clone().unwrap_or_else(|| self.output.join("teacher-cache"))
    }
}

/// The absolute directory a config file's relative paths are resolved against. A bare file name
/// (`--config run.toml`) has an empty parent, which is the current directory.
fn config_dir(path: &Path) -> Result<PathBuf> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::path::absolute(parent).with_context(|| format!("resolving the directory of {}", path.display()))
}

/// Learning rate at optimiser step `step` (0-based): linear warm-up to `peak` over `warmup`
/// steps, then linear decay to 0 at `total`.
pub fn learning_rate(peak: f64, warmup: usize, total: usize, step: usize) -> f64 {
    if warmup > 0 && step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let decay_len = total.saturating_sub(warmup).max(1);
    let done = (step - warmup.min(step)) as f64;
    (peak * (1.0 - done / decay_len as f64)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's resume hash is taken over the TOML of its config, and configs say `document`:
    /// the role must keep the names `distill::config::Side` had.
    #[test]
    fn roles_keep_their_config_names() {
        let mut cfg = DistillConfig::new("t".into(), "s".into(), vec!["a.tsv".into()], "o".into());
        cfg.teacher_side = Some(Role::Passage);
        let text = toml::to_string(&cfg).unwrap();
        assert!(text.contains("side = \"query\"\n"), "{text}");
        assert!(text.contains("teacher_side = \"document\"\n"), "{text}");
        assert_eq!(toml::from_str::<DistillConfig>(&text).unwrap(), cfg);
        let passage = text.replace("teacher_side = \"document\"", "teacher_side = \"passage\"");
        assert_eq!(toml::from_str::<DistillConfig>(&passage).unwrap().teacher_side, Some(Role::Passage));
    }

    /// Runs trained before `centre` existed must resume: off, it is not serialised (the resume
    /// hash is taken over this text); on, it is, and it reads back.
    #[test]
    fn centred_cost_is_serialised_only_when_on() {
        let mut cfg = DistillConfig::new("t".into(), "s".into(), vec!["a.tsv".into()], "o".into());
        let text = toml::to_string(&cfg).unwrap();
        assert!(text.contains("[sinkhorn]\nepsilon = ") && !text.contains("centre"), "{text}");
        cfg.sinkhorn.centre = true;
        let text = toml::to_string(&cfg).unwrap();
        assert!(text.contains("centre = true"), "{text}");
        assert!(toml::from_str::<DistillConfig>(&text).unwrap().sinkhorn.centre);
    }

    #[test]
    fn a_bare_config_file_name_resolves_against_the_current_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(config_dir(Path::new("run.toml")).unwrap(), cwd);
        assert_eq!(config_dir(Path::new("configs/run.toml")).unwrap(), cwd.join("configs"));
        assert_eq!(config_dir(Path::new("/etc/run.toml")).unwrap(), Path::new("/etc"));
    }

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let lr = |s| learning_rate(1.0, 10, 110, s);
        assert!((lr(0) - 0.1).abs() < 1e-12);
        assert!((lr(9) - 1.0).abs() < 1e-12);
        assert!((lr(10) - 1.0).abs() < 1e-12);
        assert!((lr(60) - 0.5).abs() < 1e-12);
        assert!(lr(109) > 0.0 && lr(109) < 0.02);
        assert_eq!(lr(200), 0.0);
    }
}
