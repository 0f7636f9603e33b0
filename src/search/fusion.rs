//! Fusing a sparse (BM25) and a dense ranking of the same candidate set into one.
//!
//! Both fusions take each list as `(internal id, score)` pairs in rank order (best first) and
//! return every id present in either list with its fused score, best first; ties are broken by
//! ascending id so that results are deterministic.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// How a BM25 ranking and a dense ranking are combined.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Fusion {
    /// Reciprocal rank fusion: `Σ 1 / (k + rank)` over the lists a document appears in (rank from 1).
    Rrf { k: f32 },
    /// Min-max normalise each list's scores to [0, 1], then `w · dense + (1 − w) · bm25`;
    /// a document missing from a list gets 0 for it.
    Linear { dense_weight: f32 },
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Rrf { k: 60.0 }
    }
}

impl Fusion {
    /// Fuses `sparse` and `dense` (each best first) into one list, best first.
    pub fn fuse(&self, sparse: &[(u64, f32)], dense: &[(u64, f32)]) -> Vec<(u64, f32)> {
        let mut fused: HashMap<u64, f32> = HashMap::with_capacity(sparse.len() + dense.len());
        match *self {
            Fusion::Rrf { k } => {
                for list in [sparse, dense] {
                    for (rank, &(id, _)) in list.iter().enumerate() {
                        *fused.entry(id).or_default() += 1.0 / (k + rank as f32 + 1.0);
                    }
                }
            }
            Fusion::Linear { dense_weight } => {
                for (list, weight) in [(sparse, 1.0 - dense_weight), (dense, dense_weight)] {
                    for (id, normalised) in min_max(list) {
                        *fused.entry(id).or_default() += weight * normalised;
                    }
                }
            }
        }
        let mut out: Vec<(u64, f32)> = fused.into_iter().collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

/// Scores mapped linearly onto [0, 1]; a list whose scores are all equal maps to 1.
fn min_max(list: &[(u64, f32)]) -> impl Iterator<Item = (u64, f32)> + '_ {
    let (lo, hi) = list
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &(_, s)| {
            (lo.min(s), hi.max(s))
        });
    let span = hi - lo;
    list.iter()
        .map(move |&(id, s)| (id, if span > 0.0 { (s - lo) / span } else { 1.0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_sums_reciprocal_ranks_over_both_lists() {
        let sparse = [(1, 9.0), (2, 5.0)];
        let dense = [(2, 0.9), (3, 0.8)];
        let fused = Fusion::Rrf { k: 60.0 }.fuse(&sparse, &dense);
        let score = |id| fused.iter().find(|h| h.0 == id).unwrap().1;
        assert!((score(2) - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-7);
        assert!((score(1) - 1.0 / 61.0).abs() < 1e-7);
        assert!((score(3) - 1.0 / 62.0).abs() < 1e-7);
        assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), vec![2, 1, 3]);
    }

    #[test]
    fn rrf_ties_break_by_ascending_id() {
        let fused = Fusion::Rrf { k: 60.0 }.fuse(&[(7, 1.0)], &[(3, 1.0)]);
        assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3, 7]);
    }

    #[test]
    fn linear_normalises_each_list_then_weights() {
        let sparse = [(1, 20.0), (2, 10.0), (3, 0.0)];
        let dense = [(3, 0.9), (1, 0.5), (4, 0.1)];
        let fused = Fusion::Linear { dense_weight: 0.25 }.fuse(&sparse, &dense);
        let score = |id| fused.iter().find(|h| h.0 == id).unwrap().1;
        assert!((score(1) - (0.75 * 1.0 + 0.25 * 0.5)).abs() < 1e-6);
        assert!((score(2) - 0.75 * 0.5).abs() < 1e-6);
        assert!((score(3) - 0.25 * 1.0).abs() < 1e-6);
        assert!(score(4).abs() < 1e-6);
        assert_eq!(fused[0].0, 1);
    }

    #[test]
    fn linear_with_constant_scores_does_not_divide_by_zero() {
        let fused = Fusion::Linear { dense_weight: 0.5 }.fuse(&[(1, 3.0), (2, 3.0)], &[]);
        assert!(
            fused
                .iter()
                .all(|h| h.1.is_finite() && (h.1 - 0.5).abs() < 1e-6)
        );
    }
}
