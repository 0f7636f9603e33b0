//! Fusing a sparse (BM25) and a dense ranking of the same candidate set into one.
//!
//! Every fusion takes each list as `(document, score)` pairs in rank order (best first) and
//! returns every document present in either list with its fused score, best first; ties are
//! broken by ascending document so that results are deterministic. The document type is generic
//! so that the search pipeline (internal ids) and `optical eval` (keys of TREC run files) fuse
//! with the same code.
//!
//! A fusion is written as a spec string (`rrf:60`, `linear:0.7`, `zscore:0.7`, `confidence:0.7`,
//! `bylang:0.8:0.5`); `FromStr` and `Display` convert both ways, so the CLI, result tables and
//! run-file names all use one form.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

use crate::Result;
use crate::error::{Error, invalid};
use serde::{Deserialize, Serialize};

/// How a BM25 ranking and a dense ranking are combined.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Fusion {
    /// Reciprocal rank fusion: `Σ 1 / (k + rank)` over the lists a document appears in (rank from 1).
    Rrf { k: f32 },
    /// Min-max normalise each list's scores to [0, 1], then `w · dense + (1 − w) · bm25`.
    Linear { dense_weight: f32 },
    /// Standardise each list's scores (subtract the list's mean, divide by its standard
    /// deviation), then `w · dense + (1 − w) · bm25`.
    #[serde(rename = "zscore")]
    ZScore { dense_weight: f32 },
    /// Per-query weights from each leg's confidence: z-score fusion where the dense weight is
    /// `p·c_d² / (p·c_d² + (1 − p)·c_b²)`, `c` being how far a list's top score stands above
    /// the rest of its list (its own z-score, floored at 0) and `p` the prior dense weight. A
    /// query whose BM25 top hit stands out (its words occur, and occur together, in one
    /// document) leans on BM25; one whose BM25 list is flat (few or scattered matches, typical of
    /// a query in another language) leans on the dense leg.
    Confidence { prior: f32 },
    /// z-score fusion whose dense weight depends on the query: `cross` when the query is in
    /// another language than the documents (its BM25 leg is a translation, or its words rarely
    /// match), `mono` when it is in theirs (BM25 on the query's own words is strong: MasakhaNEWS).
    /// The search pipeline decides per query ([`crate::search::Searcher::is_cross_lingual`]).
    #[serde(rename = "bylang")]
    ByLanguage { cross: f32, mono: f32 },
}

impl Default for Fusion {
    /// Chosen on the dev collections (docs/search.md has the table and the reasoning).
    fn default() -> Self {
        Fusion::ByLanguage { cross: DEFAULT_CROSS_WEIGHT, mono: DEFAULT_MONO_WEIGHT }
    }
}

/// Dense weight of the default fusion for cross-lingual queries.
pub const DEFAULT_CROSS_WEIGHT: f32 = 0.8;
/// Dense weight of the default fusion for queries in the documents' language.
pub const DEFAULT_MONO_WEIGHT: f32 = 0.5;

/// Default RRF constant when a spec says just `rrf`.
pub const DEFAULT_RRF_K: f32 = 60.0;
/// Default dense weight when a spec says just `linear` or `zscore`.
pub const DEFAULT_DENSE_WEIGHT: f32 = 0.5;
/// Exponent of the confidences in [`Fusion::Confidence`] (chosen on dev with the prior).
const CONFIDENCE_EXPONENT: i32 = 2;

impl Fusion {
    /// Checks the parameters: a weight in [0, 1], an RRF k finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Fusion::Rrf { k } if !(k >= 0.0 && k.is_finite()) => {
                invalid!("RRF k must be a finite number ≥ 0, got {k}")
            }
            Fusion::Linear { dense_weight: w }
            | Fusion::ZScore { dense_weight: w }
            | Fusion::Confidence { prior: w }
            | Fusion::ByLanguage { cross: w, .. }
            | Fusion::ByLanguage { mono: w, .. }
                if !(0.0..=1.0).contains(&w) =>
            {
                invalid!("{} fusion weight must be in [0, 1], got {w}", self.method())
            }
            _ => Ok(()),
        }
    }

    /// The method's name in specs: `rrf`, `linear`, `zscore`.
    pub fn method(&self) -> &'static str {
        match self {
            Fusion::Rrf { .. } => "rrf",
            Fusion::Linear { .. } => "linear",
            Fusion::ZScore { .. } => "zscore",
            Fusion::Confidence { .. } => "confidence",
            Fusion::ByLanguage { .. } => "bylang",
        }
    }

    /// Parses a spec whose parameter may be left out (`rrf`, `linear`): the missing one is
    /// `rrf_k` or `dense_weight` (the CLI's `--rrf-k` and `--dense-weight`).
    pub fn parse_with_defaults(spec: &str, rrf_k: f32, dense_weight: f32) -> Result<Fusion> {
        let spec = spec.trim();
        let (method, param) = match spec.split_once(':') {
            Some((m, p)) => (m, Some(p)),
            None => (spec, None),
        };
        let parse = |x: &str| -> Result<f32> {
            x.trim()
                .parse::<f32>()
                .map_err(|_| Error::invalid(format!("fusion {spec:?}: {x:?} after ':' is not a number")))
        };
        let number = |default: f32| param.map_or(Ok(default), parse);
        let fusion = match method.to_ascii_lowercase().as_str() {
            "rrf" => Fusion::Rrf { k: number(rrf_k)? },
            "linear" | "minmax" => Fusion::Linear { dense_weight: number(dense_weight)? },
            "zscore" => Fusion::ZScore { dense_weight: number(dense_weight)? },
            "confidence" => Fusion::Confidence { prior: number(dense_weight)? },
            "bylang" => {
                let (cross, mono) = match param {
                    None => (DEFAULT_CROSS_WEIGHT, DEFAULT_MONO_WEIGHT),
                    Some(p) => {
                        let weights: Vec<&str> = p.split(':').collect();
                        let [cross, mono] = weights[..] else {
                            invalid!("fusion {spec:?}: bylang takes two weights, bylang:CROSS:MONO")
                        };
                        (parse(cross)?, parse(mono)?)
                    }
                };
                Fusion::ByLanguage { cross, mono }
            }
            _ => invalid!(
                "unknown fusion {spec:?} (expected rrf[:K], linear[:DENSE_WEIGHT], zscore[:DENSE_WEIGHT], confidence[:PRIOR] or bylang[:CROSS:MONO])"
            ),
        };
        fusion.validate()?;
        Ok(fusion)
    }

    /// Parses a comma-separated list of specs (`rrf:60,linear:0.7`).
    pub fn parse_list(specs: &str, rrf_k: f32, dense_weight: f32) -> Result<Vec<Fusion>> {
        specs
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| Fusion::parse_with_defaults(s, rrf_k, dense_weight))
            .collect()
    }

    /// Fuses the legs of a query in the documents' language ([`Fusion::fuse_for`] with
    /// `cross_lingual = false`).
    pub fn fuse<D>(&self, sparse: &[(D, f32)], dense: &[(D, f32)]) -> Vec<(D, f32)>
    where
        D: Clone + Eq + Hash + Ord,
    {
        self.fuse_for(sparse, dense, false)
    }

    /// Fuses `sparse` and `dense` (each best first) into one list, best first. `cross_lingual`
    /// says whether the query is in another language than the documents (only
    /// [`Fusion::ByLanguage`] looks at it).
    ///
    /// A document missing from one list gets the bottom of that list's scale (0 after min-max,
    /// the list's lowest z-score): in the search pipeline the dense list covers every candidate,
    /// so only BM25 can miss one, and a document outside BM25's top-N scores no higher than its
    /// last entry.
    pub fn fuse_for<D>(&self, sparse: &[(D, f32)], dense: &[(D, f32)], cross_lingual: bool) -> Vec<(D, f32)>
    where
        D: Clone + Eq + Hash + Ord,
    {
        let mut fused: HashMap<D, f32> = HashMap::with_capacity(sparse.len() + dense.len());
        match *self {
            Fusion::Rrf { k } => {
                for list in [sparse, dense] {
                    for (rank, (doc, _)) in list.iter().enumerate() {
                        *fused.entry(doc.clone()).or_default() += 1.0 / (k + rank as f32 + 1.0);
                    }
                }
            }
            Fusion::Linear { dense_weight } => {
                weighted_sum(&mut fused, sparse, dense, dense_weight, Normalisation::MinMax)
            }
            Fusion::ZScore { dense_weight } => {
                weighted_sum(&mut fused, sparse, dense, dense_weight, Normalisation::ZScore)
            }
            Fusion::Confidence { prior } => {
                let weight = confidence_weight(prior, top_confidence(sparse), top_confidence(dense));
                weighted_sum(&mut fused, sparse, dense, weight, Normalisation::ZScore)
            }
            Fusion::ByLanguage { cross, mono } => {
                let weight = if cross_lingual { cross } else { mono };
                weighted_sum(&mut fused, sparse, dense, weight, Normalisation::ZScore)
            }
        }
        let mut out: Vec<(D, f32)> = fused.into_iter().collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

impl fmt::Display for Fusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fusion::Rrf { k } => write!(f, "rrf:{k}"),
            Fusion::Linear { dense_weight } => write!(f, "linear:{dense_weight}"),
            Fusion::ZScore { dense_weight } => write!(f, "zscore:{dense_weight}"),
            Fusion::Confidence { prior } => write!(f, "confidence:{prior}"),
            Fusion::ByLanguage { cross, mono } => write!(f, "bylang:{cross}:{mono}"),
        }
    }
}

impl FromStr for Fusion {
    type Err = crate::Error;

    fn from_str(spec: &str) -> Result<Fusion> {
        Fusion::parse_with_defaults(spec, DEFAULT_RRF_K, DEFAULT_DENSE_WEIGHT)
    }
}

#[derive(Clone, Copy)]
enum Normalisation {
    MinMax,
    ZScore,
}

/// `w · norm(dense) + (1 − w) · norm(sparse)` over the union; a document missing from a list
/// counts the bottom of that list's scale.
fn weighted_sum<D>(
    fused: &mut HashMap<D, f32>,
    sparse: &[(D, f32)],
    dense: &[(D, f32)],
    dense_weight: f32,
    how: Normalisation,
) where
    D: Clone + Eq + Hash,
{
    let (s, s_floor) = normalised_by_doc(sparse, how);
    let (d, d_floor) = normalised_by_doc(dense, how);
    for (doc, _) in sparse.iter().chain(dense) {
        fused.entry(doc.clone()).or_insert_with(|| {
            (1.0 - dense_weight) * s.get(doc).copied().unwrap_or(s_floor)
                + dense_weight * d.get(doc).copied().unwrap_or(d_floor)
        });
    }
}

/// Each document's normalised score, and the score a document missing from the list gets: the
/// bottom of the scale for min-max (0); for z-scores the list's lowest, or −1 when all its scores
/// are equal (they all standardise to 0, and a listed document must still beat a missing one).
fn normalised_by_doc<D: Eq + Hash>(
    list: &[(D, f32)],
    how: Normalisation,
) -> (HashMap<&D, f32>, f32) {
    let normalised = normalise(list, how);
    let floor = match how {
        Normalisation::MinMax => 0.0,
        Normalisation::ZScore => {
            let lowest = normalised.iter().copied().reduce(f32::min).unwrap_or(0.0);
            if normalised.iter().all(|&z| z == 0.0) { -1.0 } else { lowest }
        }
    };
    (list.iter().map(|(doc, _)| doc).zip(normalised).collect(), floor)
}

/// How far the top score of a list (best first) stands above the list: its z-score within the
/// list, floored at 0; 0 for lists of fewer than two scores or of equal scores.
fn top_confidence<D>(list: &[(D, f32)]) -> f32 {
    if list.len() < 2 {
        return 0.0;
    }
    normalise(list, Normalisation::ZScore)[0].max(0.0)
}

/// The dense weight of [`Fusion::Confidence`]; the prior when neither leg is confident.
fn confidence_weight(prior: f32, sparse: f32, dense: f32) -> f32 {
    let d = prior * dense.powi(CONFIDENCE_EXPONENT);
    let s = (1.0 - prior) * sparse.powi(CONFIDENCE_EXPONENT);
    if d + s > 0.0 { d / (d + s) } else { prior }
}

/// A list's scores normalised: min-max onto [0, 1] (all equal → 1), or standardised (all equal
/// → 0).
fn normalise<D>(list: &[(D, f32)], how: Normalisation) -> Vec<f32> {
    let scores = list.iter().map(|(_, s)| *s);
    match how {
        Normalisation::MinMax => {
            let (lo, hi) = scores.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
                (lo.min(s), hi.max(s))
            });
            let span = hi - lo;
            list.iter()
                .map(|(_, s)| if span > 0.0 { (s - lo) / span } else { 1.0 })
                .collect()
        }
        Normalisation::ZScore => {
            let (mean, sd) = mean_sd(scores);
            list.iter()
                .map(|(_, s)| {
                    if sd > 0.0 {
                        ((f64::from(*s) - mean) / sd) as f32
                    } else {
                        0.0
                    }
                })
                .collect()
        }
    }
}

/// Mean and population standard deviation of `scores`, summed in f64 (the z-scores of fusion and
/// of the rerank stage, [`super::late`]).
pub(super) fn mean_sd(scores: impl Iterator<Item = f32> + Clone) -> (f64, f64) {
    let n = scores.clone().count().max(1) as f64;
    let mean = scores.clone().map(f64::from).sum::<f64>() / n;
    let var = scores.map(|s| (f64::from(s) - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_sums_reciprocal_ranks_over_both_lists() {
        let sparse = [(1u64, 9.0), (2, 5.0)];
        let dense = [(2u64, 0.9), (3, 0.8)];
        let fused = Fusion::Rrf { k: 60.0 }.fuse(&sparse, &dense);
        let score = |id| fused.iter().find(|h| h.0 == id).unwrap().1;
        assert!((score(2) - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-7);
        assert!((score(1) - 1.0 / 61.0).abs() < 1e-7);
        assert!((score(3) - 1.0 / 62.0).abs() < 1e-7);
        assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), vec![2, 1, 3]);
    }

    #[test]
    fn rrf_ties_break_by_ascending_id() {
        let fused = Fusion::Rrf { k: 60.0 }.fuse(&[(7u64, 1.0)], &[(3, 1.0)]);
        assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3, 7]);
    }

    #[test]
    fn linear_normalises_each_list_then_weights() {
        let sparse = [(1u64, 20.0), (2, 10.0), (3, 0.0)];
        let dense = [(3u64, 0.9), (1, 0.5), (4, 0.1)];
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
        let fused = Fusion::Linear { dense_weight: 0.5 }.fuse(&[(1u64, 3.0), (2, 3.0)], &[]);
        assert!(
            fused
                .iter()
                .all(|h| h.1.is_finite() && (h.1 - 0.5).abs() < 1e-6)
        );
    }

    #[test]
    fn zscore_standardises_and_fills_missing_with_the_lists_floor() {
        // sparse z: 1 → +1, 2 → −1 (mean 15, sd 5); dense z: 1 → +1, 3 → −1.
        let sparse = [(1u64, 20.0), (2, 10.0)];
        let dense = [(1u64, 0.9), (3, 0.5)];
        let fused = Fusion::ZScore { dense_weight: 0.5 }.fuse(&sparse, &dense);
        let score = |id| fused.iter().find(|h| h.0 == id).unwrap().1;
        assert!((score(1) - 1.0).abs() < 1e-6);
        // 2 is missing from dense (floor −1), 3 from sparse (floor −1).
        assert!((score(2) - (0.5 * -1.0 + 0.5 * -1.0)).abs() < 1e-6);
        assert!((score(3) - (0.5 * -1.0 + 0.5 * -1.0)).abs() < 1e-6);
        assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn zscore_weight_one_follows_the_dense_order() {
        let sparse = [(5u64, 30.0), (6, 1.0)];
        let dense = [(6u64, 0.8), (7, 0.7), (5, 0.1)];
        let fused = Fusion::ZScore { dense_weight: 1.0 }.fuse(&sparse, &dense);
        assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), vec![6, 7, 5]);
    }

    #[test]
    fn fuses_string_keys_like_ids() {
        let sparse = [("b".to_string(), 2.0), ("a".to_string(), 1.0)];
        let dense = [("a".to_string(), 0.9), ("c".to_string(), 0.1)];
        let fused = Fusion::Rrf { k: 0.0 }.fuse(&sparse, &dense);
        // a: 1/2 + 1/1, b: 1/1, c: 1/2.
        assert_eq!(
            fused.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
    }

    #[test]
    fn specs_parse_and_print_round_trip() {
        for spec in ["rrf:60", "rrf:5", "linear:0.7", "zscore:0.25", "confidence:0.6", "bylang:0.8:0.5"] {
            let f: Fusion = spec.parse().unwrap();
            assert_eq!(f.to_string(), spec);
        }
        assert_eq!(
            Fusion::parse_with_defaults("rrf", 20.0, 0.5).unwrap(),
            Fusion::Rrf { k: 20.0 }
        );
        assert_eq!(
            Fusion::parse_with_defaults("linear", 60.0, 0.8).unwrap(),
            Fusion::Linear { dense_weight: 0.8 }
        );
        assert_eq!(
            Fusion::parse_list("rrf:60, zscore:0.6", 60.0, 0.5).unwrap(),
            vec![Fusion::Rrf { k: 60.0 }, Fusion::ZScore { dense_weight: 0.6 }]
        );
    }

    #[test]
    fn confidence_leans_on_the_leg_whose_top_hit_stands_out() {
        // BM25: one document far ahead (confident); dense: flat.
        let sparse = [(1u64, 30.0), (2, 2.0), (3, 1.9), (4, 1.8)];
        let dense = [(3u64, 0.80), (4, 0.80), (2, 0.79), (1, 0.79)];
        let fused = Fusion::Confidence { prior: 0.5 }.fuse(&sparse, &dense);
        assert_eq!(fused[0].0, 1);
        // Dense confident, BM25 flat: the dense order wins.
        let sparse = [(1u64, 2.0), (2, 1.99), (3, 1.98), (4, 1.97)];
        let dense = [(4u64, 0.9), (3, 0.2), (2, 0.19), (1, 0.18)];
        let fused = Fusion::Confidence { prior: 0.5 }.fuse(&sparse, &dense);
        assert_eq!(fused[0].0, 4);
        // Neither leg confident: the prior weight applies.
        assert_eq!(confidence_weight(0.7, 0.0, 0.0), 0.7);
        assert!((confidence_weight(0.5, 2.0, 2.0) - 0.5).abs() < 1e-6);
        assert!((confidence_weight(0.5, 1.0, 3.0) - 0.9).abs() < 1e-6);
    }

    #[test]
    fn bylang_weights_cross_lingual_and_monolingual_queries_differently() {
        let sparse = [(1u64, 10.0), (2, 9.0), (3, 1.0)];
        let dense = [(3u64, 0.9), (2, 0.5), (1, 0.45)];
        let f = Fusion::ByLanguage { cross: 0.9, mono: 0.1 };
        assert_eq!(f.fuse_for(&sparse, &dense, true)[0].0, 3);
        assert_eq!(f.fuse_for(&sparse, &dense, false)[0].0, 1);
        assert_eq!(f.fuse(&sparse, &dense), f.fuse_for(&sparse, &dense, false));
        assert_eq!(
            f.fuse_for(&sparse, &dense, true),
            Fusion::ZScore { dense_weight: 0.9 }.fuse(&sparse, &dense)
        );
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let err = |s: &str| s.parse::<Fusion>().unwrap_err().to_string();
        assert!(err("borda").contains("unknown fusion \"borda\""), "{}", err("borda"));
        assert!(err("linear:x").contains("\"x\" after ':' is not a number"));
        assert!(err("linear:1.5").contains("weight must be in [0, 1], got 1.5"));
        assert!(err("zscore:-0.1").contains("zscore fusion weight"));
        assert!(err("rrf:-1").contains("RRF k must be a finite number"));
        assert!(err("bylang:0.8").contains("bylang takes two weights"));
        assert!(err("bylang:0.8:1.2").contains("bylang fusion weight must be in [0, 1], got 1.2"));
    }
}
