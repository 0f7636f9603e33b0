//! Is system B really better than A on this split? A paired randomization test on per-query values.
//!
//! Dev sets here are small (100–1,200 queries), so a difference of a point of nDCG is often noise.
//! The test flips the sign of each per-query difference at random (under the null hypothesis the
//! two systems are exchangeable per query) and counts how often the mean difference is at least as
//! large as the observed one (two-sided). With at most [`EXACT_MAX`] queries every sign pattern is
//! enumerated and the p-value is exact.
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;

use super::metrics::{Averaging, Evaluation, Metric};

/// Up to this many queries, all 2^n sign patterns are enumerated.
pub const EXACT_MAX: usize = 16;

/// The outcome of comparing two evaluations on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The metric compared.
    pub metric: Metric,
    /// Number of paired queries.
    pub queries: usize,
    /// Mean of A over the paired queries.
    pub mean_a: f64,
    /// Mean of B over the paired queries.
    pub mean_b: f64,
    /// Two-sided p-value of "A and B are exchangeable".
    pub p_value: f64,
}

impl Comparison {
    /// `mean_b - mean_a`.
    pub fn delta(&self) -> f64 {
        self.mean_b - self.mean_a
    }
}

/// Compares `b` against `a` on `metric`, query by query. With [`Averaging::AllQrels`] on both,
/// a query present in only one counts 0 in the other; otherwise both must hold the same queries. `trials` random sign patterns are drawn when there are more
/// than [`EXACT_MAX`] queries; `seed` makes the p-value reproducible.
pub fn compare(
    a: &Evaluation,
    b: &Evaluation,
    metric: Metric,
    trials: usize,
    seed: u64,
) -> Result<Comparison> {
    let ia = a.metrics.iter().position(|&m| m == metric);
    let ib = b.metrics.iter().position(|&m| m == metric);
    let (Some(ia), Some(ib)) = (ia, ib) else {
        bail!("{metric} was not computed for both evaluations");
    };
    let (xa, xb): (Vec<f64>, Vec<f64>) = if a.averaging == Averaging::AllQrels
        && b.averaging == Averaging::AllQrels
    {
        // Under AllQrels a judged query missing from a run scores 0: pair over the union.
        let ids: BTreeSet<&String> = a.per_query.keys().chain(b.per_query.keys()).collect();
        ids.into_iter()
            .map(|q| {
                let va = a.per_query.get(q).map_or(0.0, |v| v[ia]);
                let vb = b.per_query.get(q).map_or(0.0, |v| v[ib]);
                (va, vb)
            })
            .unzip()
    } else {
        if a.per_query.len() != b.per_query.len() || a.per_query.keys().ne(b.per_query.keys()) {
            bail!(
                "the evaluations cover different queries ({} vs {}): compare runs on the same split",
                a.per_query.len(),
                b.per_query.len()
            );
        }
        a.per_query
            .values()
            .zip(b.per_query.values())
            .map(|(va, vb)| (va[ia], vb[ib]))
            .unzip()
    };
    let n = xa.len();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    Ok(Comparison {
        metric,
        queries: n,
        mean_a: mean(&xa),
        mean_b: mean(&xb),
        p_value: paired_randomization_test(&xa, &xb, trials, seed),
    })
}

/// Two-sided paired randomization (sign-flip) test of `b - a`; returns the p-value.
///
/// Exact for up to [`EXACT_MAX`] pairs; otherwise `(1 + hits) / (1 + trials)` over `trials` random
/// sign patterns. Equal inputs (all differences 0) give 1.
///
/// # Panics
/// When `a` and `b` differ in length (a caller bug, not bad input).
pub fn paired_randomization_test(a: &[f64], b: &[f64], trials: usize, seed: u64) -> f64 {
    assert_eq!(a.len(), b.len(), "paired samples must have equal length");
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let n = diffs.len();
    if n == 0 {
        return 1.0;
    }
    let observed = diffs.iter().sum::<f64>().abs();
    // A relative tolerance so that patterns equal to the observed sum up to rounding count as hits.
    let tol = 1e-12 * diffs.iter().map(|d| d.abs()).sum::<f64>().max(1e-300);
    let at_least = |sum: f64| sum.abs() >= observed - tol;
    if n <= EXACT_MAX {
        let patterns = 1u64 << n;
        let hits = (0..patterns)
            .filter(|&mask| {
                let sum: f64 = diffs
                    .iter()
                    .enumerate()
                    .map(|(i, d)| if mask >> i & 1 == 1 { -d } else { *d })
                    .sum();
                at_least(sum)
            })
            .count();
        return hits as f64 / patterns as f64;
    }
    let mut rng = SplitMix64(seed);
    let mut hits = 0usize;
    for _ in 0..trials {
        let mut sum = 0.0;
        let mut bits = 0u64;
        for (i, d) in diffs.iter().enumerate() {
            if i % 64 == 0 {
                bits = rng.next();
            }
            sum += if bits >> (i % 64) & 1 == 1 { -d } else { *d };
        }
        if at_least(sum) {
            hits += 1;
        }
    }
    (1 + hits) as f64 / (1 + trials) as f64
}

/// SplitMix64: tiny, fast, and stable across crate versions (p-values stay reproducible).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
