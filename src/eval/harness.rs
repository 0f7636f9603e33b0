//! Running a retrieval system over a split's queries and scoring it.
//!
//! The system is any function from a query to a ranked list of `(document id, score)`, so this
//! module knows nothing about indexes or encoders: the CLI (or a test, or an application) wraps
//! its search call in a closure.
//!
//! Scores are kept as given and metrics follow trec_eval, which ranks by score and breaks ties by
//! document id (descending), *not* by the order the system returned. This is what makes the
//! numbers reproducible from the TREC run file with trec_eval or pytrec_eval; a system whose
//! own tie order differs can score differently on tied documents.
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::beir::{BeirSplit, Query};
use super::metrics::{Averaging, Evaluation, Metric, evaluate};
use super::run::Run;

/// Latency of the search function over a set of queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Number of queries timed.
    pub queries: usize,
    /// Wall time of all searches, in seconds.
    pub total_s: f64,
    /// Mean time per query, in milliseconds.
    pub mean_ms: f64,
    /// Median time per query, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile time per query, in milliseconds (nearest rank).
    pub p95_ms: f64,
}

impl Timing {
    /// Count, total, mean and percentiles of per-query times.
    pub fn from_durations(mut times: Vec<Duration>) -> Timing {
        times.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let total: Duration = times.iter().sum();
        let n = times.len();
        // Nearest-rank percentile: the smallest value with at least p% of values at or below it.
        let pct = |p: f64| {
            if n == 0 {
                0.0
            } else {
                let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as usize;
                ms(times[rank.min(n) - 1])
            }
        };
        Timing {
            queries: n,
            total_s: total.as_secs_f64(),
            mean_ms: if n == 0 { 0.0 } else { ms(total) / n as f64 },
            p50_ms: pct(50.0),
            p95_ms: pct(95.0),
        }
    }
}

/// A progress bar for `len` queries labelled `label`, drawn on stderr only when it is a terminal.
pub fn query_progress(len: usize, label: &str) -> ProgressBar {
    // indicatif's stderr target draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>24} [{bar:30}] {pos}/{len} queries ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

/// Runs `search` on every query (asking for `k` documents each) and collects a [`Run`].
///
/// `search` returns documents best first; a query that finds nothing returns an empty list and
/// stays in the run (it scores 0). Errors from `search`, non-finite scores and repeated documents
/// are reported with the query id. `progress` is advanced once per query.
pub fn run_queries<F>(
    queries: &[Query],
    k: usize,
    progress: &ProgressBar,
    mut search: F,
) -> Result<(Run, Timing)>
where
    F: FnMut(&Query, usize) -> Result<Vec<(String, f64)>>,
{
    let mut run = Run::new();
    let mut times = Vec::with_capacity(queries.len());
    for query in queries {
        let start = Instant::now();
        let hits = search(query, k).with_context(|| format!("searching query {:?}", query.id))?;
        times.push(start.elapsed());
        run.insert(query.id.clone(), hits)
            .with_context(|| format!("results of query {:?}", query.id))?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok((run, Timing::from_durations(times)))
}

/// One system evaluated on one split.
#[derive(Debug, Clone)]
pub struct SystemEval {
    /// What the system retrieved (write it with [`Run::write_trec_file`]).
    pub run: Run,
    /// Metrics per query and averaged over every query of the split.
    pub evaluation: Evaluation,
    /// Search latency.
    pub timing: Timing,
}

/// Runs `search` over every query of `split` (top `k` each) and scores the run on `metrics`.
///
/// The mean is over every judged query of the split ([`Averaging::AllQrels`]); since every
/// such query is run, this equals pytrec_eval's mean on the same run.
pub fn evaluate_system<F>(
    split: &BeirSplit,
    k: usize,
    metrics: &[Metric],
    progress: &ProgressBar,
    search: F,
) -> Result<SystemEval>
where
    F: FnMut(&Query, usize) -> Result<Vec<(String, f64)>>,
{
    let (run, timing) = run_queries(&split.queries, k, progress, search)?;
    let evaluation = evaluate(&run, &split.qrels, metrics, Averaging::AllQrels);
    Ok(SystemEval {
        run,
        evaluation,
        timing,
    })
}
