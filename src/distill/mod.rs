//! Offline OT distillation: bitext, teacher cache, Sinkhorn OT loss and baselines, training loop.
//!
//! See `docs/distillation.md` for the method and the commands.
pub mod ot;
pub mod bitext;
pub mod config;
pub mod cache;
pub mod data;
pub mod metrics;
pub mod params;
pub mod train;
pub mod evaluate;
