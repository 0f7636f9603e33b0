//! Parameter bookkeeping for training: freezing by path, counting, and global-norm gradient
//! clipping (burn's own clipping works per parameter tensor; the usual recipe clips the norm of
//! the whole gradient vector, which keeps the update direction).
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// Parameter counts of a module: all of them and those that will receive gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParamCounts {
    /// Every float parameter.
    pub total: usize,
    /// Parameters with `require_grad`.
    pub trainable: usize,
}

struct Counter {
    counts: ParamCounts,
}

impl ModuleVisitor for Counter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.lazy_shape().num_elements();
        self.counts.total += n;
        if param.val().is_require_grad() {
            self.counts.trainable += n;
        }
    }
}

/// Counts all and trainable float parameters.
pub fn count_params<M: Module>(module: &M) -> ParamCounts {
    let mut c = Counter { counts: ParamCounts::default() };
    module.visit(&mut c);
    c.counts
}

struct PathCounter<'a> {
    fragments: &'a [String],
    path: Vec<String>,
    matched: usize,
}

impl ModuleVisitor for PathCounter<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        if self.fragments.iter().any(|f| path.contains(f.as_str())) {
            self.matched += param.lazy_shape().num_elements();
        }
    }
}

/// Number of parameter elements whose module path contains any of `fragments`.
pub fn count_matching<M: Module>(module: &M, fragments: &[String]) -> usize {
    let mut c = PathCounter { fragments, path: Vec::new(), matched: 0 };
    module.visit(&mut c);
    c.matched
}

/// Turns gradients off for every parameter whose path contains one of `fragments`; returns the
/// module and the number of parameter elements frozen (0 means nothing matched).
pub fn freeze_matching<M: Module>(module: M, fragments: &[String]) -> (M, usize) {
    let frozen = count_matching(&module, fragments);
    if frozen == 0 {
        return (module, 0);
    }
    let group = burn::module::ParamGroup::from_any_predicates(fragments.to_vec());
    (module.set_require_grad_group(group, false), frozen)
}

struct GradIds {
    ids: Vec<(ParamId, usize)>,
}

impl ModuleVisitor for GradIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.ids.push((param.id, D));
    }
}

/// Scales all gradients so that their global L2 norm is at most `max_norm` (no-op for
/// `max_norm <= 0`). Returns the norm before clipping.
pub fn clip_global_norm<M: Module>(module: &M, grads: GradientsParams, max_norm: f32) -> (GradientsParams, f32) {
    let mut v = GradIds { ids: Vec::new() };
    module.visit(&mut v);
    // One reduction per parameter, summed on the host: a few dozen scalars per step.
    let mut sq = 0.0f64;
    for &(id, rank) in &v.ids {
        sq += match rank {
            1 => grad_sq::<1>(&grads, id),
            2 => grad_sq::<2>(&grads, id),
            3 => grad_sq::<3>(&grads, id),
            4 => grad_sq::<4>(&grads, id),
            _ => 0.0,
        };
    }
    let norm = sq.sqrt() as f32;
    if max_norm <= 0.0 || !(norm > max_norm) {
        return (grads, norm);
    }
    let scale = max_norm / (norm + 1e-6);
    let mut grads = grads;
    for &(id, rank) in &v.ids {
        match rank {
            1 => scale_grad::<1>(&mut grads, id, scale),
            2 => scale_grad::<2>(&mut grads, id, scale),
            3 => scale_grad::<3>(&mut grads, id, scale),
            4 => scale_grad::<4>(&mut grads, id, scale),
            _ => {}
        }
    }
    (grads, norm)
}

fn grad_sq<const D: usize>(grads: &GradientsParams, id: ParamId) -> f64 {
    grads
        .get::<D>(id)
        .map(|g| g.square().sum().into_scalar::<f32>() as f64)
        .unwrap_or(0.0)
}

fn scale_grad<const D: usize>(grads: &mut GradientsParams, id: ParamId, scale: f32) {
    if let Some(g) = grads.remove::<D>(id) {
        grads.register(id, g.mul_scalar(scale));
    }
}
