//! The objective and the optimiser step: the configured loss of a batch (OT, MSE or both), and
//! one step of forward, backward, clipping and AdamW.
use anyhow::{Result, ensure};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::batch::StudentBatch;
use super::config::{DistillConfig, MsePooling, Objective};
use super::ot::{SinkhornSettings, masked_mean, ot_loss};
use super::params::clip_global_norm;
use crate::encoder::{BertModel, mean_pool};

/// The objective, as the training step and validation compute it.
#[derive(Debug, Clone, Copy)]
pub struct ObjectiveSpec {
    /// Which loss.
    pub objective: Objective,
    /// λ for `ot+mse`.
    pub mse_weight: f32,
    /// Pooling of the `mse` term.
    pub mse_pooling: MsePooling,
    /// Solver settings.
    pub sinkhorn: SinkhornSettings,
}

impl ObjectiveSpec {
    /// From a config.
    pub fn from_config(cfg: &DistillConfig) -> Self {
        Self {
            objective: cfg.objective,
            mse_weight: cfg.mse_weight,
            mse_pooling: cfg.mse_pooling,
            sinkhorn: cfg.sinkhorn.into(),
        }
    }
}

/// Loss of one batch, with its parts (as plain numbers, read after the step).
pub struct LossParts {
    /// The loss to minimise, `[1]`.
    pub loss: Tensor<1>,
    /// The OT term, if computed.
    pub ot: Option<Tensor<1>>,
    /// The MSE term, if computed.
    pub mse: Option<Tensor<1>>,
}

/// The configured loss for student token states `s` against the teacher batch.
pub fn objective_loss(
    spec: &ObjectiveSpec,
    s: Tensor<3>,
    batch_keep: Tensor<2>,
    attention: Tensor<2, Int>,
    t: Tensor<3>,
    t_mask: Tensor<2>,
    t_pooled: Tensor<2>,
) -> LossParts {
    let ot = matches!(spec.objective, Objective::Ot | Objective::OtMse)
        .then(|| ot_loss(s.clone(), t.clone(), batch_keep.clone(), t_mask.clone(), spec.sinkhorn).loss);
    let mse = matches!(spec.objective, Objective::Mse | Objective::OtMse).then(|| {
        let (ps, pt) = match spec.mse_pooling {
            MsePooling::Attention => (mean_pool(s.clone(), attention), t_pooled.without_autodiff()),
            MsePooling::Content => (masked_mean(s.clone(), batch_keep), masked_mean(t.without_autodiff(), t_mask)),
        };
        (ps - pt).square().sum_dim(1).mean()
    });
    let loss = match (&ot, &mse) {
        (Some(o), None) => o.clone(),
        (None, Some(m)) => m.clone(),
        (Some(o), Some(m)) => o.clone() + m.clone().mul_scalar(spec.mse_weight),
        (None, None) => unreachable!("every objective computes a term"),
    };
    LossParts { loss, ot, mse }
}

/// Figures of one optimiser step.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// Batch loss.
    pub loss: f32,
    /// OT term.
    pub ot: Option<f32>,
    /// MSE term.
    pub mse: Option<f32>,
    /// Gradient norm before clipping.
    pub grad_norm: f32,
}

/// One training step: student forward, loss, backward, global-norm clipping, AdamW update.
pub fn train_step(
    model: BertModel,
    optim: &mut ModuleOptimizer,
    spec: &ObjectiveSpec,
    student: StudentBatch,
    teacher: (Tensor<3>, Tensor<2>, Tensor<2>),
    lr: f64,
    clip: f32,
) -> Result<(BertModel, StepStats)> {
    let att = student.tokens.attention_mask.clone();
    let s = model.forward(student.tokens.input_ids, student.tokens.token_type_ids, student.tokens.attention_mask);
    let (t, t_mask, t_pooled) = teacher;
    let parts = objective_loss(spec, s, student.keep, att, t, t_mask, t_pooled);
    let loss_value = parts.loss.clone().without_autodiff().into_scalar::<f32>();
    ensure!(loss_value.is_finite(), "training loss is {loss_value} (diverged); lower learning_rate");
    let ot = parts.ot.map(|x| x.without_autodiff().into_scalar::<f32>());
    let mse = parts.mse.map(|x| x.without_autodiff().into_scalar::<f32>());
    let grads = parts.loss.backward();
    let grads = GradientsParams::from_grads(grads, &model);
    let (grads, grad_norm) = clip_global_norm(&model, grads, clip);
    let model = optim.step(lr, model, grads);
    Ok((model, StepStats { loss: loss_value, ot, mse, grad_norm }))
}

/// AdamW with PyTorch's defaults for ε and the usual exclusion of biases and LayerNorm
/// parameters from weight decay.
pub fn make_optimizer(weight_decay: f32) -> ModuleOptimizer {
    let base = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(weight_decay);
    let no_decay = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.0);
    base.init().with_group(
        burn::module::ParamGroup::from_any_predicates(vec!["bias", "layer_norm", "LayerNorm", "gamma", "beta"]),
        no_decay.build(),
        None,
    )
}

