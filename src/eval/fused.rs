//! Hybrid runs fused from the two legs of a hybrid search, kept as TREC runs.
//!
//! `optical eval` searches once per query for both legs ([`crate::search::Searcher::hybrid_legs`])
//! and then scores any number of fusions from that pair — or from a pair of leg files written
//! earlier — without searching again. Both paths fuse here, from the runs' trec_eval order, so a
//! leg pair read back from disk gives bit-identical results.
use anyhow::{Result, bail};

use super::run::Run;
use crate::search::Fusion;

/// The fused run of `sparse` and `dense` for every query in either, top `k` per query;
/// `cross_lingual(query id)` says whether a query is in another language than the documents
/// (see [`Fusion::fuse_for`]).
pub fn fuse_runs(
    sparse: &Run,
    dense: &Run,
    fusion: &Fusion,
    k: usize,
    cross_lingual: &dyn Fn(&str) -> bool,
) -> Result<Run> {
    fusion.validate()?;
    if k == 0 {
        bail!("k must be at least 1");
    }
    let mut out = Run::new();
    let mut queries: Vec<&str> = sparse.query_ids().chain(dense.query_ids()).collect();
    queries.sort_unstable();
    queries.dedup();
    for qid in queries {
        let leg = |run: &Run| -> Vec<(String, f32)> {
            run.ranking(qid)
                .unwrap_or_default()
                .into_iter()
                .map(|d| (d.doc_id.clone(), d.score as f32))
                .collect()
        };
        let fused = fusion.fuse_for(&leg(sparse), &leg(dense), cross_lingual(qid));
        out.insert(
            qid,
            fused.into_iter().take(k).map(|(doc, s)| (doc, f64::from(s))),
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[(&str, &str, f64)]) -> Run {
        let mut by_query: std::collections::BTreeMap<&str, Vec<(String, f64)>> = Default::default();
        for &(q, d, s) in lines {
            by_query.entry(q).or_default().push((d.to_string(), s));
        }
        let mut run = Run::new();
        for (q, docs) in by_query {
            run.insert(q, docs).unwrap();
        }
        run
    }

    #[test]
    fn fuses_each_query_and_keeps_the_top_k() {
        let sparse = run(&[("q1", "a", 9.0), ("q1", "b", 5.0), ("q2", "x", 1.0)]);
        let dense = run(&[("q1", "b", 0.9), ("q1", "c", 0.8), ("q1", "a", 0.1), ("q3", "y", 0.5)]);
        let fused = fuse_runs(&sparse, &dense, &Fusion::Rrf { k: 60.0 }, 2, &|_| false).unwrap();
        let ids = |q: &str| -> Vec<String> {
            fused.ranking(q).unwrap().iter().map(|d| d.doc_id.clone()).collect()
        };
        // a: 1/61 + 1/63, b: 1/62 + 1/61 → b first; c: 1/62 is cut by k = 2.
        assert_eq!(ids("q1"), vec!["b", "a"]);
        // A query in only one leg keeps that leg's order.
        assert_eq!(ids("q2"), vec!["x"]);
        assert_eq!(ids("q3"), vec!["y"]);
    }

    #[test]
    fn weights_zero_and_one_reproduce_the_legs() {
        let sparse = run(&[("q", "a", 3.0), ("q", "b", 2.0), ("q", "c", 1.0)]);
        let dense = run(&[("q", "c", 0.9), ("q", "b", 0.5), ("q", "a", 0.2)]);
        let order = |f: Fusion| -> Vec<String> {
            let r = fuse_runs(&sparse, &dense, &f, 10, &|_| false).unwrap();
            r.ranking("q").unwrap().iter().map(|d| d.doc_id.clone()).collect()
        };
        assert_eq!(order(Fusion::Linear { dense_weight: 0.0 }), vec!["a", "b", "c"]);
        assert_eq!(order(Fusion::Linear { dense_weight: 1.0 }), vec!["c", "b", "a"]);
        assert_eq!(order(Fusion::ZScore { dense_weight: 1.0 }), vec!["c", "b", "a"]);
    }

    #[test]
    fn the_cross_lingual_flag_is_asked_per_query() {
        let sparse = run(&[("x", "a", 3.0), ("x", "b", 1.0), ("m", "a", 3.0), ("m", "b", 1.0)]);
        let dense = run(&[("x", "b", 0.9), ("x", "a", 0.1), ("m", "b", 0.9), ("m", "a", 0.1)]);
        let f = Fusion::ByLanguage { cross: 1.0, mono: 0.0 };
        let fused = fuse_runs(&sparse, &dense, &f, 10, &|q| q == "x").unwrap();
        assert_eq!(fused.ranking("x").unwrap()[0].doc_id, "b");
        assert_eq!(fused.ranking("m").unwrap()[0].doc_id, "a");
    }
}
