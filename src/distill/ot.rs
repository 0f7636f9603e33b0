//! Optimal-transport loss between student and teacher token states, and the sentence-level
//! `mse` baseline.
//!
//! For each pair in the batch the cost is `C[j,k] = 1 − cos(S_j, T_k)`, the marginals are
//! uniform over the *unmasked* tokens of each side, and the plan `P` comes from an entropic
//! Sinkhorn solver run in the log domain. The plan is computed on gradient-free copies of the
//! cost (it is a constant for the optimiser: no gradient flows through the solver) and the
//! loss is `⟨P, C⟩_F`, averaged over the batch. Only the student states receive gradients: the
//! teacher states are moved off the autodiff graph before anything is computed from them.
//!
//! Masks are float tensors with 1.0 for a token that takes part and 0.0 for one that does not
//! (padding, special tokens, instruction-prefix tokens). Masked marginals are filled with
//! [`MASKED_LOG`] (−1e9) rather than −∞: `−∞ − (−∞)` inside the log-sum-exp gives NaN, a large
//! finite number gives an exact 0 after `exp`.
use burn::prelude::*;

/// Log-marginal given to masked tokens. Large and finite on purpose (see the module docs).
pub(crate) const MASKED_LOG: f32 = -1e9;

/// Smallest norm used when normalising token states, so that an all-zero state gives cost 1
/// instead of NaN.
const NORM_FLOOR: f32 = 1e-8;

/// Settings of the entropic solver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SinkhornSettings {
    /// Entropic regularisation ε (in cost units; the cosine cost lies in [0, 2]).
    pub epsilon: f32,
    /// Number of Sinkhorn iterations (one iteration updates both potentials).
    pub iterations: usize,
    /// Measure the cosine on centred token states: subtract the batch's mean teacher token
    /// state from both sides first. e5's token states are anisotropic (unrelated tokens have
    /// high raw cosines), which flattens the cost matrix; centring spreads it out.
    pub centre: bool,
}

impl Default for SinkhornSettings {
    fn default() -> Self {
        Self { epsilon: 0.05, iterations: 50, centre: false }
    }
}

/// `log Σ exp(x)` along `dim`, keeping the dimension (size 1), stabilised by the maximum.
pub(crate) fn log_sum_exp<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let max = x.clone().max_dim(dim);
    (x - max.clone()).exp().sum_dim(dim).log() + max
}

/// Log-marginals for a `[batch, len]` 0/1 mask: `log(1/count)` on unmasked tokens, [`MASKED_LOG`]
/// elsewhere. A row with no unmasked token gets `log(1/1)` spread over nothing: callers must make
/// sure every row has at least one unmasked token ([`ensure_nonempty`] does).
pub(crate) fn log_marginals(mask: Tensor<2>) -> Tensor<2> {
    let count = mask.clone().sum_dim(1).clamp_min(1.0); // [B, 1]
    let log_uniform = count.log().neg(); // [B, 1]
    let [b, l] = mask.dims();
    let masked = mask.lower_elem(0.5);
    log_uniform.expand([b, l]).mask_fill(masked, MASKED_LOG)
}

/// Cosine cost `C[b,j,k] = 1 − cos(S[b,j], T[b,k])`, shape `[batch, m, n]`.
///
/// Differentiable in both arguments; callers decide which side is on the autodiff graph.
pub(crate) fn cosine_cost(student: Tensor<3>, teacher: Tensor<3>) -> Tensor<3> {
    let s = l2_normalize(student);
    let t = l2_normalize(teacher);
    s.matmul(t.swap_dims(1, 2)).neg().add_scalar(1.0)
}

/// Normalises the last dimension to unit L2 norm (floor [`NORM_FLOOR`]).
pub(crate) fn l2_normalize<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = x.clone().square().sum_dim(D - 1).sqrt().clamp_min(NORM_FLOOR);
    x / norm
}

/// Batched log-domain Sinkhorn. `cost` is `[B, m, n]`, `log_a` `[B, m]`, `log_b` `[B, n]`.
///
/// Returns the transport plan `P = exp((f_j + g_k − C_jk)/ε)`, `[B, m, n]`. The column
/// marginals are exact after the last half-iteration; the row marginals converge with the
/// number of iterations. The input is taken off the autodiff graph first, so the result is
/// always a constant (no gradient path through the solver, and no autodiff bookkeeping for
/// the 2 × `iterations` log-sum-exps).
pub(crate) fn sinkhorn_log(
    cost: Tensor<3>,
    log_a: Tensor<2>,
    log_b: Tensor<2>,
    settings: SinkhornSettings,
) -> Tensor<3> {
    let cost = cost.without_autodiff();
    let log_a = log_a.without_autodiff().unsqueeze_dim::<3>(2); // [B, m, 1]
    let log_b = log_b.without_autodiff().unsqueeze_dim::<3>(1); // [B, 1, n]
    let eps = settings.epsilon;
    // Work with K = −C/ε once, so each iteration is two broadcasts and two log-sum-exps.
    let neg_c = cost.div_scalar(-eps);
    let [b, m, n] = neg_c.dims();
    let device = neg_c.device();
    // Scaled potentials u = f/ε, v = g/ε.
    let mut u: Tensor<3> = Tensor::zeros([b, m, 1], &device);
    let mut v: Tensor<3> = Tensor::zeros([b, 1, n], &device);
    for _ in 0..settings.iterations.max(1) {
        u = log_a.clone() - log_sum_exp(neg_c.clone() + v.clone(), 2);
        v = log_b.clone() - log_sum_exp(neg_c.clone() + u.clone(), 1);
    }
    (neg_c + u + v).exp()
}

/// Result of [`ot_loss`]: the batch-mean loss (on the student's graph), the per-pair losses
/// (constants) and the plans (constants).
pub struct OtOutput {
    /// `mean_b ⟨P_b, C_b⟩`, shape `[1]`, differentiable w.r.t. the student states.
    pub loss: Tensor<1>,
    /// `⟨P_b, C_b⟩` for each pair, `[B]`, without gradient.
    pub per_pair: Tensor<1>,
    /// Transport plans `[B, m, n]`, without gradient.
    pub plan: Tensor<3>,
}

/// OT distillation loss between student states `[B, m, d]` and teacher states `[B, n, d]`.
///
/// `student_mask` `[B, m]` and `teacher_mask` `[B, n]` are 0/1 float masks of the tokens that take
/// part (see the module docs). The teacher states are always treated as constants.
pub fn ot_loss(
    student: Tensor<3>,
    teacher: Tensor<3>,
    student_mask: Tensor<2>,
    teacher_mask: Tensor<2>,
    settings: SinkhornSettings,
) -> OtOutput {
    let teacher = teacher.without_autodiff();
    let (student, teacher) = if settings.centre {
        let centre = batch_mean_state(teacher.clone(), teacher_mask.clone().without_autodiff());
        (student - centre.clone(), teacher - centre)
    } else {
        (student, teacher)
    };
    let cost = cosine_cost(student, teacher);
    let log_a = log_marginals(student_mask.without_autodiff());
    let log_b = log_marginals(teacher_mask.without_autodiff());
    let plan = sinkhorn_log(cost.clone(), log_a, log_b, settings);
    let [b, _, _] = cost.dims();
    // Σ_jk P·C per pair; the plan is a constant, so the gradient w.r.t. C is exactly P.
    let per_pair_graph = (cost * plan.clone()).sum_dim(2).sum_dim(1).reshape([b]);
    let per_pair = per_pair_graph.clone().without_autodiff();
    let loss = per_pair_graph.mean();
    OtOutput { loss, per_pair, plan }
}

/// The mean of every unmasked token state in the batch, `[B, L, d]` → `[1, 1, d]` (a constant).
fn batch_mean_state(states: Tensor<3>, mask: Tensor<2>) -> Tensor<3> {
    let [b, l, d] = states.dims();
    let m = mask.reshape([b, l, 1]);
    let count = m.clone().sum().clamp_min(1e-9).reshape([1, 1, 1]);
    let summed = (states * m).sum_dim(1).sum_dim(0); // [1, 1, d]
    (summed / count).reshape([1, 1, d])
}

/// Masked mean pooling: `Σ_j mask_j · x_j / Σ_j mask_j`, `[B, L, d]` → `[B, d]`.
pub(crate) fn masked_mean(states: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let [b, l, d] = states.dims();
    let m = mask.reshape([b, l, 1]);
    let count = m.clone().sum_dim(1).clamp_min(1e-9); // [B, 1, 1]
    let summed = (states * m).sum_dim(1); // [B, 1, d]
    (summed / count).reshape([b, d])
}

/// Sentence-level baseline: `mean_b ‖pool(S_b) − pool(T_b)‖²` on masked mean-pooled states
/// (Reimers & Gurevych 2020). The teacher side is a constant.
pub fn mse_loss(
    student: Tensor<3>,
    teacher: Tensor<3>,
    student_mask: Tensor<2>,
    teacher_mask: Tensor<2>,
) -> Tensor<1> {
    let ps = masked_mean(student, student_mask.without_autodiff());
    let pt = masked_mean(teacher.without_autodiff(), teacher_mask.without_autodiff());
    (ps - pt).square().sum_dim(1).mean()
}

/// Makes every row of a 0/1 mask keep at least one token: a row whose content mask is empty (a
/// sentence made only of special or prefix tokens after truncation) falls back to its attention
/// mask, so the marginals stay well defined.
pub(crate) fn ensure_nonempty(content: &mut [f32], attention: &[f32], len: usize) {
    for (row, att) in content.chunks_mut(len).zip(attention.chunks(len)) {
        if row.iter().all(|&x| x == 0.0) {
            row.copy_from_slice(att);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_exp_matches_direct() {
        let device = Device::default();
        let x = Tensor::<2>::from_data([[1.0f32, 2.0, 3.0], [-1000.0, 0.0, -1e9]], &device);
        let got = log_sum_exp(x, 1).into_data().try_into_vec_as::<f32>().unwrap();
        let want0 = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
        assert!((got[0] - want0).abs() < 1e-5, "{got:?}");
        assert!((got[1] - 0.0).abs() < 1e-5, "{got:?}");
    }
}
