//! Retrieval metrics with trec_eval / pytrec_eval semantics.
//!
//! Conventions (each checked against pytrec_eval by `tests/eval_metrics.rs`):
//! - Ranking: score descending, ties by document id descending, byte-wise ([`super::run::trec_order`]).
//! - A document is relevant when its relevance is ≥ 1; relevance ≤ 0 and unjudged documents are
//!   non-relevant.
//! - nDCG@k (`ndcg_cut_k`): gain = relevance (graded, linear; negative gains count as 0), discount
//!   `log2(rank + 1)`, ideal DCG from the query's judged relevance values, cut at k.
//! - MAP (`map`): over the full ranking; sum of precision at each relevant retrieved document,
//!   divided by the number of relevant documents in the qrels.
//! - MRR@k: trec_eval's `recip_rank` over the top k only (1/rank of the first relevant document,
//!   0 when none is in the top k).
//! - Recall@k (`recall_k`): relevant in the top k / relevant in the qrels.
//! - P@k (`P_k`): relevant in the top k / k, even when fewer than k documents were retrieved.
//! - A query with no relevant document in the qrels scores 0 on every metric.
//!
//! Which queries are averaged is chosen by [`Averaging`].
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::qrels::Qrels;
use super::run::{Run, ScoredDoc};

/// A retrieval metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// nDCG@k, trec_eval `ndcg_cut_k`.
    Ndcg(usize),
    /// Mean average precision over the full ranking, trec_eval `map`.
    Map,
    /// Reciprocal rank of the first relevant document within the top k (`recip_rank` cut at k).
    Mrr(usize),
    /// Recall@k, trec_eval `recall_k`.
    Recall(usize),
    /// Precision@k, trec_eval `P_k`.
    Precision(usize),
}

impl Metric {
    /// The metrics reported by default, in table order: nDCG@10, MRR@10, R@1, R@10, R@100, MAP.
    /// (R@1 is the usual accuracy figure of the one-relevant-document bitext sets.)
    pub fn defaults() -> Vec<Metric> {
        vec![
            Metric::Ndcg(10),
            Metric::Mrr(10),
            Metric::Recall(1),
            Metric::Recall(10),
            Metric::Recall(100),
            Metric::Map,
        ]
    }

    /// Parses a comma-separated list such as `ndcg@10,mrr@10,recall@100,map`.
    pub fn parse_list(list: &str) -> Result<Vec<Metric>> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect()
    }

    /// Scores one query. `ranking` must be in trec_eval order (see [`Run::ranking`]);
    /// `judged` holds the query's judgements (empty when it has none).
    pub fn score(self, ranking: &[&ScoredDoc], judged: &HashMap<String, i32>) -> f64 {
        let rel = |d: &ScoredDoc| judged.get(&d.doc_id).copied().unwrap_or(0);
        let num_rel = judged.values().filter(|&&r| r >= 1).count();
        if num_rel == 0 {
            // trec_eval gives 0 for every measure here: nothing can be found.
            return 0.0;
        }
        match self {
            Metric::Ndcg(k) => {
                let dcg: f64 = ranking
                    .iter()
                    .take(k)
                    .enumerate()
                    .map(|(i, d)| gain(rel(d)) * discount(i))
                    .sum();
                let mut ideal: Vec<i32> = judged.values().copied().filter(|&r| r > 0).collect();
                ideal.sort_unstable_by(|a, b| b.cmp(a));
                let idcg: f64 = ideal
                    .iter()
                    .take(k)
                    .enumerate()
                    .map(|(i, &r)| gain(r) * discount(i))
                    .sum();
                if idcg > 0.0 { dcg / idcg } else { 0.0 }
            }
            Metric::Map => {
                let mut found = 0usize;
                let mut sum = 0.0;
                for (i, d) in ranking.iter().enumerate() {
                    if rel(d) >= 1 {
                        found += 1;
                        sum += found as f64 / (i + 1) as f64;
                    }
                }
                sum / num_rel as f64
            }
            Metric::Mrr(k) => ranking
                .iter()
                .take(k)
                .position(|d| rel(d) >= 1)
                .map_or(0.0, |i| 1.0 / (i + 1) as f64),
            Metric::Recall(k) => {
                let found = ranking.iter().take(k).filter(|d| rel(d) >= 1).count();
                found as f64 / num_rel as f64
            }
            Metric::Precision(k) => {
                if k == 0 {
                    return 0.0;
                }
                let found = ranking.iter().take(k).filter(|d| rel(d) >= 1).count();
                found as f64 / k as f64
            }
        }
    }
}

/// Linear gain, as trec_eval's default: a negative judgement gains nothing.
fn gain(rel: i32) -> f64 {
    rel.max(0) as f64
}

/// Discount of the document at 0-based position `i`: 1 / log2(i + 2).
fn discount(i: usize) -> f64 {
    1.0 / ((i + 2) as f64).log2()
}

impl fmt::Display for Metric {
    /// `nDCG@10`, `MAP`, `MRR@10`, `R@100`, `P@10` — the names used in tables and JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Ndcg(k) => write!(f, "nDCG@{k}"),
            Metric::Map => write!(f, "MAP"),
            Metric::Mrr(k) => write!(f, "MRR@{k}"),
            Metric::Recall(k) => write!(f, "R@{k}"),
            Metric::Precision(k) => write!(f, "P@{k}"),
        }
    }
}

impl FromStr for Metric {
    type Err = anyhow::Error;

    /// Accepts (case-insensitive) `ndcg@k`, `map`, `mrr@k`, `recall@k` or `r@k`, `p@k`, and the
    /// trec_eval spellings `ndcg_cut_k`, `recall_k`, `P_k`.
    fn from_str(s: &str) -> Result<Metric> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "map" {
            return Ok(Metric::Map);
        }
        let (name, k) = match lower.split_once('@') {
            Some((name, k)) => (name.to_string(), k.to_string()),
            None => match lower.rsplit_once('_') {
                Some((name, k)) => (name.to_string(), k.to_string()),
                None => bail!(
                    "unknown metric {s:?} (expected e.g. ndcg@10, map, mrr@10, recall@100, p@10)"
                ),
            },
        };
        let k: usize = k.parse().ok().filter(|&k| k > 0).ok_or_else(|| {
            anyhow::anyhow!("metric {s:?}: cut-off {k:?} is not a positive integer")
        })?;
        Ok(match name.as_str() {
            "ndcg" | "ndcg_cut" => Metric::Ndcg(k),
            "mrr" | "recip_rank" => Metric::Mrr(k),
            "recall" | "r" => Metric::Recall(k),
            "p" | "precision" => Metric::Precision(k),
            _ => {
                bail!("unknown metric {s:?} (expected e.g. ndcg@10, map, mrr@10, recall@100, p@10)")
            }
        })
    }
}

impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which queries the mean is taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Averaging {
    /// Queries that are in both the run and the qrels: what pytrec_eval returns (and trec_eval
    /// without `-c`), and so what BEIR reports. A query present in the run with no documents
    /// counts (it scores 0); a qrels query absent from the run is left out of the mean.
    #[default]
    RunAndQrels,
    /// Every query in the qrels; one absent from the run scores 0 (trec_eval `-c`). The honest
    /// choice when a run is read back from a TREC file, where a query that retrieved nothing has
    /// no line and would otherwise silently drop out.
    AllQrels,
}

/// Per-query and mean values of a set of metrics for one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The metrics, in the order of every value vector below.
    pub metrics: Vec<Metric>,
    /// How [`Evaluation::mean`] was averaged.
    pub averaging: Averaging,
    /// Query id → one value per metric, for every query that is in both the run and the qrels.
    pub per_query: BTreeMap<String, Vec<f64>>,
    /// Number of queries in the mean (with `AllQrels`, includes qrels queries missing from the run).
    pub num_queries: usize,
    /// Mean over those queries, one value per metric (0 when there are none).
    pub mean: Vec<f64>,
}

impl Evaluation {
    /// The mean of `metric`, if it was computed.
    pub fn mean_of(&self, metric: Metric) -> Option<f64> {
        let i = self.metrics.iter().position(|&m| m == metric)?;
        Some(self.mean[i])
    }

    /// The value of `metric` for `query_id`, if both are present.
    pub fn query_value(&self, query_id: &str, metric: Metric) -> Option<f64> {
        let i = self.metrics.iter().position(|&m| m == metric)?;
        Some(self.per_query.get(query_id)?[i])
    }
}

/// Scores `run` against `qrels`. Queries in the run without judgements are ignored (as in
/// trec_eval); see [`Averaging`] for which queries enter the mean.
pub fn evaluate(run: &Run, qrels: &Qrels, metrics: &[Metric], averaging: Averaging) -> Evaluation {
    let mut per_query = BTreeMap::new();
    for qid in run.query_ids() {
        let Some(judged) = qrels.judgements(qid) else {
            continue;
        };
        let ranking = run.ranking(qid).unwrap_or_default();
        let values = metrics.iter().map(|m| m.score(&ranking, judged)).collect();
        per_query.insert(qid.to_string(), values);
    }
    let num_queries = match averaging {
        Averaging::RunAndQrels => per_query.len(),
        Averaging::AllQrels => qrels.len(),
    };
    let mut mean = vec![0.0; metrics.len()];
    for values in per_query.values() {
        for (sum, v) in mean.iter_mut().zip(values) {
            *sum += v;
        }
    }
    if num_queries > 0 {
        for sum in &mut mean {
            *sum /= num_queries as f64;
        }
    }
    Evaluation {
        metrics: metrics.to_vec(),
        averaging,
        per_query,
        num_queries,
        mean,
    }
}
