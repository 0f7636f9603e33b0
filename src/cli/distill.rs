//! `optical distill`: train a cross-lingual student encoder from bitext (see docs/distillation.md).
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use optical::distill::config::{DistillConfig, Objective, Side};
use optical::distill::evaluate::dense_eval;
use optical::distill::train::{RunOptions, distill};
use optical::encoder::{Encoder, Role};

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

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Query,
    Passage,
}

#[derive(Args)]
pub struct DistillArgs {
    /// The run's TOML config (see configs/distill-swa.toml).
    #[arg(long, required_unless_present = "evaluate")]
    config: Option<PathBuf>,
    /// Instead of training: exhaustive dense retrieval on these BEIR collections, queries
    /// through --query-model, corpus through --doc-model (e.g. a student and its teacher).
    #[arg(long, num_args = 1.., conflicts_with = "config", requires_all = ["query_model", "doc_model"])]
    evaluate: Vec<PathBuf>,
    /// Query encoder for --evaluate.
    #[arg(long)]
    query_model: Option<PathBuf>,
    /// Document encoder for --evaluate.
    #[arg(long)]
    doc_model: Option<PathBuf>,
    /// Prefix role of the documents for --evaluate (`query` suits sentence-to-sentence sets
    /// such as Tatoeba and SIB; `passage` suits passage retrieval).
    #[arg(long, value_enum, default_value = "passage")]
    doc_role: RoleArg,
    /// Split for --evaluate (default: `test`, or the only split).
    #[arg(long)]
    split: Option<String>,
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
    if !args.evaluate.is_empty() {
        return evaluate(&args);
    }
    let Some(config) = &args.config else { anyhow::bail!("give --config (or --evaluate)") };
    let mut cfg = DistillConfig::from_file(config)?;
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
            SideArg::Query => Side::Query,
            SideArg::Document => Side::Document,
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

fn evaluate(args: &DistillArgs) -> Result<()> {
    let device = optical::encoder::select_device(&args.device)?;
    let (Some(qm), Some(dm)) = (&args.query_model, &args.doc_model) else {
        anyhow::bail!("--evaluate needs --query-model and --doc-model")
    };
    let q = Encoder::load(qm, &device).with_context(|| format!("loading {}", qm.display()))?;
    let d = Encoder::load(dm, &device).with_context(|| format!("loading {}", dm.display()))?;
    let role = match args.doc_role {
        RoleArg::Query => Role::Query,
        RoleArg::Passage => Role::Passage,
    };
    for c in &args.evaluate {
        let t0 = std::time::Instant::now();
        let (summary, _) = dense_eval(c, args.split.as_deref(), &q, &d, role, 100)?;
        let figures: Vec<String> = summary.metrics.iter().map(|(m, v)| format!("{m} {v:.4}")).collect();
        eprintln!("{} ({} queries, {} docs, {:.0}s): {}", summary.collection, summary.queries, summary.docs, t0.elapsed().as_secs_f64(), figures.join(", "));
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(())
}
