//! One session of a distillation run (a run interrupted and resumed has several): what it works
//! with, and the steps of the loop in [`super::train::distill`].
use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;

use super::batch::{Prepared, StudentBatch, teacher_states};
use super::cache::{TeacherCache, write_atomic};
use super::checkpoint::{TrainState, config_hash, param_ids, remove_checkpoints, restore, resume_point, save_checkpoint, save_model_dir};
use super::config::{DistillConfig, learning_rate};
use super::data::Schedule;
use super::dev::DevSet;
use super::metrics::{DevMetrics, MetricsLog, Record, plot, read_records};
use super::objective::{ObjectiveSpec, make_optimizer, train_step};
use super::params::{ParamCounts, count_params};
use super::setup;
use super::train::{DistillReport, RunOptions};
use crate::encoder::{BertModel, Encoder, OpticalMeta};

/// Where a run is: optimiser steps done, the next batch, training seconds (across resumes).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Position {
    pub step: usize,
    pub epoch: usize,
    pub batch_in_epoch: usize,
    pub elapsed: f64,
}

/// Everything one session of a run works with.
pub(super) struct Session<'a> {
    cfg: &'a DistillConfig,
    opts: &'a RunOptions,
    /// The inference device (teacher, validation).
    device: Device,
    /// Its autodiff twin, where the student trains.
    train_device: Device,
    teacher: Encoder,
    data: Prepared,
    pub schedule: Schedule,
    dev: Option<DevSet>,
    cache: Option<TeacherCache>,
    meta: OpticalMeta,
    spec: ObjectiveSpec,
    pad_id: u32,
    hash: String,
    pub planned: usize,
    counts: ParamCounts,
    metrics: MetricsLog,
    pub bar: indicatif::ProgressBar,
    /// Step the session started at (0 for a fresh run).
    resumed_from: usize,
    /// Training loss of every step of this session.
    losses: Vec<f32>,
    /// The latest dev figures of this session.
    pub last_dev: Option<DevMetrics>,
}

impl<'a> Session<'a> {
    /// Sets a run up, from its checkpoint when there is one to resume: the session, the student,
    /// its optimiser and the position.
    pub fn start(cfg: &'a DistillConfig, opts: &'a RunOptions) -> Result<(Self, BertModel, ModuleOptimizer, Position)> {
        let device = opts.device.clone().without_autodiff();
        let train_device = device.clone().autodiff();
        std::fs::create_dir_all(&cfg.output).with_context(|| format!("creating {}", cfg.output.display()))?;
        write_atomic(&cfg.output.join("distill.toml"), toml::to_string_pretty(cfg)?.as_bytes())?;
        let hash = config_hash(cfg);
        let resume = resume_point(cfg, &hash, opts.restart)?;
        let student_dir = resume.as_ref().map_or(&cfg.student, |(d, _)| d);
        let (teacher, student) = setup::load_models(cfg, student_dir, &device, &train_device)?;
        let pad_id = student.tokenizer().pad_id();
        let meta = setup::output_meta(cfg, &student, &teacher)?;
        let (data, schedule) = setup::training_data(cfg, &student, &teacher)?;
        let dev = setup::dev_set(cfg, &student, &teacher)?;
        let cache = setup::teacher_cache(cfg, &teacher, &data)?;
        let mut model = setup::trainable_student(cfg, student)?;
        let counts = count_params(&model);
        let mut optim = make_optimizer(cfg.weight_decay);
        let per_epoch = schedule.epoch(0).len();
        ensure!(per_epoch > 0, "no training batch: the bitext has {} pairs", data.len());
        let planned = cfg.max_steps.unwrap_or(per_epoch * cfg.epochs);
        let mut pos = Position::default();
        if let Some((dir, st)) = &resume {
            (model, optim) = restore(model, optim, dir, st)?;
            pos = Position { step: st.step, epoch: st.epoch, batch_in_epoch: st.batch_in_epoch, elapsed: st.elapsed_s };
            ensure!(st.planned_steps == planned, "checkpoint planned {} steps, this config {}", st.planned_steps, planned);
        }
        let metrics = MetricsLog::open(&cfg.output.join("metrics.jsonl"), resume.as_ref().map(|_| pos.step))?;
        let bar = progress_bar(opts.progress, planned as u64, pos.step as u64);
        let session = Session {
            cfg, opts, device, train_device, teacher, data, schedule, dev, cache, meta, spec: ObjectiveSpec::from_config(cfg), pad_id,
            hash, planned, counts, metrics, bar, resumed_from: pos.step, losses: Vec::new(), last_dev: None,
        };
        session.log(format!(
            "distill: {} pairs, {per_epoch} batches/epoch, {planned} steps planned; student {}/{} parameters trainable; \
             objective {}{}",
            session.data.len(),
            counts.trainable,
            counts.total,
            cfg.objective.name(),
            if pos.step > 0 { format!("; resuming at step {}", pos.step) } else { String::new() }
        ));
        Ok((session, model, optim, pos))
    }

    /// The untrained student's dev figures: measured (and logged) at the start of a fresh run,
    /// read back from the metrics log when resuming.
    pub fn zero_shot(&mut self, model: &BertModel) -> Result<Option<DevMetrics>> {
        if self.resumed_from > 0 {
            return Ok(read_records(self.metrics.path())?.iter().find_map(|r| match r {
                Record::Dev(m) if m.step == 0 => Some(*m),
                _ => None,
            }));
        }
        let Some(m) = self.validate(model, 0)? else { return Ok(None) };
        self.log(format!("zero-shot dev: {}", m.summary()));
        self.metrics.push(&Record::Dev(m))?;
        self.last_dev = Some(m);
        Ok(Some(m))
    }

    /// One optimiser step on batch `pos.batch_in_epoch` of `batches`, recorded in the metrics log.
    pub fn step(&mut self, model: BertModel, optim: &mut ModuleOptimizer, pos: &mut Position, batches: &[Vec<usize>]) -> Result<BertModel> {
        let t0 = Instant::now();
        let idx = &batches[pos.batch_in_epoch];
        let tb = teacher_states(&self.teacher, &self.data, idx, self.cache.as_mut())?;
        let teacher_t = tb.tensors(self.teacher.dim(), &self.device);
        let sb = StudentBatch::new(&self.data, idx, self.pad_id, &self.train_device);
        let cfg = self.cfg;
        let lr = learning_rate(cfg.learning_rate, cfg.warmup_steps, self.planned, pos.step);
        let (model, stats) = train_step(model, optim, &self.spec, sb, teacher_t, lr, cfg.grad_clip_norm)
            .with_context(|| format!("step {}", pos.step + 1))?;
        pos.step += 1;
        pos.batch_in_epoch += 1;
        let dt = t0.elapsed().as_secs_f64();
        pos.elapsed += dt;
        self.losses.push(stats.loss);
        let (ot, mse, grad_norm) = (stats.ot, stats.mse, stats.grad_norm);
        let (step, epoch, elapsed_s) = (pos.step, pos.epoch, pos.elapsed);
        self.metrics.push(&Record::Train { step, epoch, loss: stats.loss, ot, mse, lr, grad_norm, step_s: dt, elapsed_s })?;
        self.bar.set_position(step as u64);
        let dev = self.last_dev.map(|d| format!(" dev acc {:.3}", d.accuracy)).unwrap_or_default();
        self.bar.set_message(format!("loss {:.4}{dev}", stats.loss));
        Ok(model)
    }

    /// Validates and checkpoints when the config says so after this step; returns true when the
    /// session stops here (`stop_after`), after writing a checkpoint.
    pub fn after_step(&mut self, model: &BertModel, optim: &ModuleOptimizer, pos: Position) -> Result<bool> {
        let (cfg, step) = (self.cfg, pos.step);
        if cfg.validate_every > 0 && step % cfg.validate_every == 0 && step < self.planned {
            if let Some(m) = self.validate(model, step)? {
                self.log(format!("step {step}: dev {}", m.summary()));
                self.metrics.push(&Record::Dev(m))?;
                self.last_dev = Some(m);
            }
            // A plot that cannot be drawn must not stop training; the final one reports it.
            let records = read_records(self.metrics.path())?;
            let _ = self.draw(&records);
        }
        let stop_now = self.opts.stop_after.is_some_and(|s| step >= s) && step < self.planned;
        if (cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0 && step < self.planned) || stop_now {
            self.checkpoint(model, optim, pos)?;
        }
        if stop_now {
            self.log(format!("stopping after step {step} as asked; resume with the same command"));
        }
        Ok(stop_now)
    }

    /// The end of a finished run: final dev figures, the model directory, no checkpoint left.
    pub fn finish(&mut self, model: &BertModel, step: usize) -> Result<Option<DevMetrics>> {
        let mut final_dev = self.last_dev;
        if let Some(m) = self.validate(model, step)? {
            if self.last_dev.map(|d| d.step) != Some(step) {
                self.metrics.push(&Record::Dev(m))?;
            }
            eprintln!("final dev (step {step}): {}", m.summary());
            final_dev = Some(m);
        }
        save_model_dir(model, &self.cfg.student, &self.meta, &self.cfg.output)?;
        remove_checkpoints(&self.cfg.output)?;
        Ok(final_dev)
    }

    /// Dev figures of `model` at `step` (none without a dev set), on an inference copy.
    fn validate(&self, model: &BertModel, step: usize) -> Result<Option<DevMetrics>> {
        let Some(dev) = &self.dev else { return Ok(None) };
        dev.evaluate(&model.valid(), &self.spec, self.pad_id, &self.device, self.cfg.batch_size, step).map(Some)
    }

    /// Writes a resumable checkpoint at `pos` (the teacher cache is persisted first, so that a
    /// resumed run finds every pair it had computed).
    fn checkpoint(&mut self, model: &BertModel, optim: &ModuleOptimizer, pos: Position) -> Result<()> {
        self.persist_cache()?;
        let state = TrainState {
            step: pos.step,
            epoch: pos.epoch,
            batch_in_epoch: pos.batch_in_epoch,
            elapsed_s: pos.elapsed,
            config_hash: self.hash.clone(),
            planned_steps: self.planned,
            param_ids: param_ids(model),
        };
        save_checkpoint(&self.cfg.output, model, optim, &state, &self.cfg.student, &self.meta)
    }

    pub fn persist_cache(&mut self) -> Result<()> {
        match self.cache.as_mut() {
            Some(c) => c.persist(),
            None => Ok(()),
        }
    }

    /// Redraws `metrics.svg` from `metrics.jsonl`.
    pub fn plot(&self) -> Result<()> {
        self.draw(&read_records(self.metrics.path())?)
    }

    fn draw(&self, records: &[Record]) -> Result<()> {
        let title = format!("{} distillation: {}", self.cfg.objective.name(), self.cfg.output.display());
        plot(records, &self.cfg.output.join("metrics.svg"), &title)
    }

    pub fn log(&self, msg: impl AsRef<str>) {
        if self.bar.is_hidden() {
            eprintln!("{}", msg.as_ref());
        } else {
            self.bar.println(msg.as_ref());
        }
    }

    pub fn report(&self, pos: Position, finished: bool, started: Instant, zero_shot: Option<DevMetrics>, final_dev: Option<DevMetrics>) -> DistillReport {
        let session_steps = pos.step - self.resumed_from;
        let losses = &self.losses;
        let tenth = (losses.len() / 10).max(1);
        let mean = |xs: &[f32]| if xs.is_empty() { f32::NAN } else { xs.iter().sum::<f32>() / xs.len() as f32 };
        DistillReport {
            output: self.cfg.output.clone(),
            objective: self.cfg.objective.name().to_string(),
            steps: pos.step,
            planned_steps: self.planned,
            finished,
            resumed_from: self.resumed_from,
            train_seconds: pos.elapsed,
            seconds_per_step: if session_steps > 0 { started.elapsed().as_secs_f64() / session_steps as f64 } else { 0.0 },
            zero_shot,
            final_dev,
            loss_first: mean(&losses[..tenth.min(losses.len())]),
            loss_last: mean(&losses[losses.len().saturating_sub(tenth)..]),
            trainable_params: self.counts.trainable,
            total_params: self.counts.total,
        }
    }
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


