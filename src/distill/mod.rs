//! Offline OT distillation: bitext, teacher cache, Sinkhorn OT loss and baselines, training loop.
//!
//! See `docs/distillation.md` for the method and the commands. The modules of a run, in the
//! order it uses them: `config` (what to compute), `setup` (models, data, teacher cache),
//! `batch` (tokenised pairs, masks, teacher and student batches), `data` (batch order),
//! `objective` (the loss and the optimiser step), `dev` (dev evaluation), `checkpoint` (resume),
//! `session` and `train` (the loop), `metrics` (metrics.jsonl and its plot); then `package`
//! (a finished run made into a shipped student).
mod batch;
mod bitext;
mod cache;
mod checkpoint;
mod config;
mod data;
mod dev;
mod metrics;
mod objective;
pub mod ot;
mod package;
mod params;
mod session;
mod setup;
mod train;

pub use self::batch::{Prepared, StudentBatch, TeacherBatch, prepare, prepare_with_roles, teacher_forward};
pub use self::bitext::{BitextPair, read_bitext, read_bitexts};
pub(crate) use self::cache::write_atomic;
pub use self::config::{DistillConfig, MsePooling, Objective, SinkhornConfig};
pub use self::metrics::{DevMetrics, Record, plot, read_records};
pub use self::objective::{ObjectiveSpec, StepStats, make_optimizer, train_step};
pub use self::package::{PackageOptions, package_student};
pub use self::params::freeze_matching;
pub use self::train::{DistillReport, RunOptions, distill};
