//! `optical distill`: train a cross-lingual student encoder from bitext (see docs/distillation.md).
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use optical::distill::{DistillConfig, Objective, RunOptions, distill};
use optical::encoder::Role;

#[derive(Clone, Copy, ValueEnum)]
enum ObjectiveArg {
    Ot,
    Mse,
    #[value(name = "ot+mse")]
    OtMse,
}

#[derive(Clone, Copy, ValueEnum)]
enum SideArg {
    Query,
    Document,
}

#[derive(Args)]
pub struct DistillArgs {
    /// The run's TOML config (see configs/distill-swa.toml). To measure a student, see
    /// `optical eval --modes exhaustive` (docs/evaluation.md).
    #[arg(long)]
    config: PathBuf,
    /// Device: cpu (default), ndarray, cuda, cuda:N. The teacher runs on it without gradients;
    /// the student trains on its autodiff twin.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Discard a checkpoint in the output directory and start over (by default an interrupted
    /// run resumes from its last checkpoint).
    #[arg(long)]
    restart: bool,
    /// Override `output` from the config.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Override `objective` from the config.
    #[arg(long, value_enum)]
    objective: Option<ObjectiveArg>,
    /// Override `teacher_side` from the config: the role the teacher encodes English in.
    #[arg(long, value_enum)]
    teacher_side: Option<SideArg>,
    /// Override `max_steps` from the config.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Override `max_minutes` from the config.
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Stop after this many steps (writing a checkpoint) without finishing the run.
    #[arg(long)]
    stop_after: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: DistillArgs) -> Result<()> {
    optical::memory::keep_freed_pages();
    let mut cfg = DistillConfig::from_file(&args.config)?;
    if let Some(o) = args.output {
        cfg.output = o;
    }
    if let Some(o) = args.objective {
        cfg.objective = match o {
            ObjectiveArg::Ot => Objective::Ot,
            ObjectiveArg::Mse => Objective::Mse,
            ObjectiveArg::OtMse => Objective::OtMse,
        };
    }
    if let Some(s) = args.teacher_side {
        cfg.teacher_side = Some(match s {
            SideArg::Query => Role::Query,
            SideArg::Document => Role::Passage,
        });
    }
    if args.max_steps.is_some() {
        cfg.max_steps = args.max_steps;
    }
    if args.max_minutes.is_some() {
        cfg.max_minutes = args.max_minutes;
    }
    cfg.validate()?;
    let opts = RunOptions {
        device: optical::encoder::select_device(&args.device)?,
        restart: args.restart,
        progress: !args.quiet,
        stop_after: args.stop_after,
    };
    let report = distill(&cfg, &opts)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
