//! Retrieval evaluation: BEIR collections, TREC runs and qrels, and metrics with
//! trec_eval / pytrec_eval semantics.
//!
//! - [`beir`]: locate a collection's corpus, load a split's queries and qrels.
//! - [`run`]: [`Run`] (query → scored documents) and the TREC run format.
//! - [`qrels`]: [`Qrels`] (query → judged documents) in TREC and BEIR formats.
//! - [`metrics`]: nDCG@k, MAP, MRR@k, Recall@k, P@k per query and averaged ([`evaluate`]).
//! - [`fused`]: hybrid runs fused from the two legs of a hybrid search ([`fuse_runs`]).
//! - [`harness`]: run any `query → ranked (docid, score)` function over a split and score it.
//! - [`exhaustive`]: dense retrieval without an index (every query against every document), for
//!   comparing encoders such as a distilled student and its teacher.
//! - [`report`]: results tables, written as Markdown and JSON.
//! - [`systems`]: the systems `optical eval` scores (index searches in each mode, exhaustive
//!   dense retrieval, TREC run files), and the query vectors they share.
//! - [`output`]: what an evaluation writes (runs, per-query values, the accumulating table).
//! - [`stats`]: paired randomization test between two systems.
pub mod beir;
pub mod exhaustive;
pub mod fused;
pub mod harness;
pub mod metrics;
pub mod output;
pub mod qrels;
pub mod report;
pub mod run;
pub mod stats;
pub mod systems;

pub use beir::{BeirCollection, BeirSplit, Query, read_queries};
pub use exhaustive::{DenseEval, dense_eval, dense_eval_encoded};
pub use fused::fuse_runs;
pub use harness::{SystemEval, Timing, evaluate_system, query_progress, run_queries};
pub use metrics::{Averaging, Evaluation, Metric, evaluate};
pub use qrels::Qrels;
pub use report::{ResultRow, ResultsTable};
pub use run::{Run, ScoredDoc, trec_order};
pub use stats::{Comparison, compare, paired_randomization_test};
