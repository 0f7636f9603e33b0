//! Offline OT distillation: bitext, teacher cache, Sinkhorn OT loss and baselines, training loop.
