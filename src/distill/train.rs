//! The distillation run: set up (models, data, teacher cache, checkpoint to resume from), train
//! with the configured objective, validate, checkpoint, and write the model directory. The
//! pieces live in the sibling modules; [`distill`] is the loop that strings them together.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::cache::write_atomic;
use super::config::DistillConfig;
use super::metrics::DevMetrics;
use super::session::Session;

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

/// Runs a distillation described by `cfg`.
pub fn distill(cfg: &DistillConfig, opts: &RunOptions) -> Result<DistillReport> {
    cfg.validate()?;
    let (mut session, mut model, mut optim, mut pos) = Session::start(cfg, opts)?;
    let zero_shot = session.zero_shot(&model)?;
    let started = Instant::now();
    let mut batches = session.schedule.epoch(pos.epoch);
    let finished = loop {
        if pos.step >= session.planned {
            break true;
        }
        if pos.batch_in_epoch >= batches.len() {
            (pos.epoch, pos.batch_in_epoch) = (pos.epoch + 1, 0);
            batches = session.schedule.epoch(pos.epoch);
            session.persist_cache()?;
            continue;
        }
        if let Some(limit) = cfg.max_minutes
            && pos.elapsed / 60.0 >= limit
        {
            session.log(format!("time budget of {limit} min reached at step {}", pos.step));
            break true;
        }
        model = session.step(model, &mut optim, &mut pos, &batches)?;
        if session.after_step(&model, &optim, pos)? {
            break false;
        }
    };
    session.bar.finish_and_clear();
    session.persist_cache()?;
    let final_dev = if finished { session.finish(&model, pos.step)? } else { session.last_dev };
    session.plot()?;
    let report = session.report(pos, finished, started, zero_shot, final_dev);
    write_atomic(&cfg.output.join("summary.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}

