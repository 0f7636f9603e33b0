//! `evaluate`: an index searched with a BEIR collection's queries, scored against its qrels,
//! each query searched the way `optical search --query-lang <its lang>` would (default
//! student and PSQ table of its language, and the default rerank stage on an index that stores
//! token codes).
use std::collections::HashMap;
use std::path::PathBuf;

use optical::eval::{BeirCollection, Metric, evaluate_system};
use optical::search::{Mode, SearchRequest, Searcher};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{IntoPy, anyhow_to_py, to_py};
use crate::index::PyIndex;

/// Scores `index` on `collection`'s split in each mode. Returns `{mode: {metric: mean}}` with
/// metrics named as in `optical eval`'s tables (`nDCG@10`, `MRR@10`, `R@100`, `MAP`, …) and a
/// `queries` count per mode.
#[pyfunction]
#[pyo3(signature = (collection, index, *, modes=vec!["bm25".to_string(), "dense".to_string(), "hybrid".to_string()], split=None, queries=None, query_model=None, k=100, metrics=None))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate<'py>(
    py: Python<'py>,
    collection: PathBuf,
    index: PathBuf,
    modes: Vec<String>,
    split: Option<String>,
    queries: Option<PathBuf>,
    query_model: Option<PathBuf>,
    k: usize,
    metrics: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let metrics = match metrics {
        Some(m) => Metric::parse_list(m).map_err(anyhow_to_py)?,
        None => Metric::defaults(),
    };
    let modes = modes.iter().map(|m| m.parse::<Mode>()).collect::<optical::Result<Vec<_>>>().map_err(to_py)?;
    let coll = BeirCollection::open(&collection).map_err(anyhow_to_py)?;
    let split = coll.choose_split(split.as_deref()).map_err(anyhow_to_py)?;
    let split = coll.load_split(&split, queries.as_deref()).map_err(anyhow_to_py)?;
    let pi = PyIndex::read_only(&index).py_err()?;
    let results = py
        .detach(|| -> optical::Result<Vec<(Mode, optical::eval::SystemEval)>> {
            let mut out = Vec::new();
            for &mode in &modes {
                // One searcher per query language: each picks its student and PSQ table.
                let mut searchers: HashMap<Option<String>, Searcher> = HashMap::new();
                let progress = indicatif::ProgressBar::hidden();
                let result = evaluate_system(&split, k, &metrics, &progress, |q, k| {
                    let searcher = match searchers.get(&q.lang) {
                        Some(s) => s.clone(),
                        None => {
                            let s = pi.searcher(mode, false, query_model.as_deref(), q.lang.as_deref(), None, true)?;
                            searchers.insert(q.lang.clone(), s.clone());
                            s
                        }
                    };
                    let mut req = SearchRequest::new(&q.text).with_k(k).with_mode(mode);
                    if let Some(l) = &q.lang {
                        req = req.with_query_lang(l);
                    }
                    let hits = searcher.search(&req)?.hits;
                    Ok(hits.into_iter().map(|h| (h.key, f64::from(h.score))).collect())
                })?;
                out.push((mode, result));
            }
            Ok(out)
        })
        .py_err()?;
    let d = PyDict::new(py);
    for (mode, r) in results {
        let m = PyDict::new(py);
        for (metric, value) in r.evaluation.metrics.iter().zip(&r.evaluation.mean) {
            m.set_item(metric.to_string(), value)?;
        }
        m.set_item("queries", r.evaluation.num_queries)?;
        d.set_item(mode.to_string(), m)?;
    }
    Ok(d)
}
