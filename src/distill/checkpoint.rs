//! Checkpoints: the resumable state of a run (`checkpoint/`: student weights, optimiser state,
//! `state.json`), the hash of the settings a resume must share, and the final model directory.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cache::write_atomic;
use super::config::DistillConfig;
use crate::encoder::{BertModel, Encoder, OpticalMeta, TOKENIZER_FILE};

/// Resumable training state (`checkpoint/state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TrainState {
    /// Optimiser steps done.
    pub step: usize,
    /// Epoch of the next batch.
    pub epoch: usize,
    /// Index of the next batch within `epoch`'s order.
    pub batch_in_epoch: usize,
    /// Training seconds so far.
    pub elapsed_s: f64,
    /// Hash of the settings that must not change across a resume.
    pub config_hash: String,
    /// Planned schedule length.
    pub planned_steps: usize,
    /// Module path → parameter id, so the optimiser state (keyed by id) finds its parameters
    /// again in the reloaded model.
    pub param_ids: HashMap<String, u64>,
}

/// Settings a resumed run must share with the run it continues (everything that shapes the
/// optimisation; not where outputs go or how often they are written).
pub(super) fn config_hash(cfg: &DistillConfig) -> String {
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

pub(super) fn hex16(d: &[u8]) -> String {
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

pub(super) fn param_ids<M: Module>(m: &M) -> HashMap<String, u64> {
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
pub(super) fn find_checkpoint(output: &Path) -> Option<PathBuf> {
    [CHECKPOINT, CHECKPOINT_OLD]
        .iter()
        .map(|n| output.join(n))
        .find(|d| d.join("state.json").is_file() && d.join("optimizer.bpk").is_file())
}

pub(super) fn save_model_dir(model: &BertModel, student_dir: &Path, meta: &OpticalMeta, dir: &Path) -> Result<()> {
    Encoder::save_model_dir(&model.valid(), &student_dir.join(TOKENIZER_FILE), meta, dir)
        .with_context(|| format!("saving the student model to {}", dir.display()))
}

pub(super) fn save_checkpoint(
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


/// The checkpoint a run resumes from, with its state, unless `restart` or there is none. Errors
/// when the checkpoint was written by a run with other settings (`hash`).
pub(super) fn resume_point(cfg: &DistillConfig, hash: &str, restart: bool) -> Result<Option<(PathBuf, TrainState)>> {
    let Some(dir) = (if restart { None } else { find_checkpoint(&cfg.output) }) else { return Ok(None) };
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
    Ok(Some((dir, st)))
}

/// Gives `model` the parameter ids of checkpoint `dir` and loads the optimiser state saved there
/// (keyed by those ids).
pub(super) fn restore(
    model: BertModel,
    optim: ModuleOptimizer,
    dir: &Path,
    st: &TrainState,
) -> Result<(BertModel, ModuleOptimizer)> {
    let mut r = IdRestorer { path: Vec::new(), ids: &st.param_ids, restored: 0 };
    let model = model.map(&mut r);
    ensure!(r.restored == st.param_ids.len(), "checkpoint {}: {} of {} parameters matched", dir.display(), r.restored, st.param_ids.len());
    let optim = optim
        .load(dir.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("loading {}: {e:?}", dir.join("optimizer.bpk").display()))?;
    Ok((model, optim))
}

/// Removes every checkpoint directory of a finished run: the model directory is the result, and
/// rerunning the command starts over instead of resuming a finished schedule.
pub(super) fn remove_checkpoints(output: &Path) -> Result<()> {
    for n in [CHECKPOINT, CHECKPOINT_OLD, CHECKPOINT_TMP] {
        let d = output.join(n);
        if d.exists() {
            std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
        }
    }
    Ok(())
}
