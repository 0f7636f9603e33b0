//! Query pipeline: composes the engine's sparse and dense candidates, exact rescoring, fusion
//! and explain. Every read of the index is a
//! [`Snapshot`](crate::engine::Snapshot) method: this module knows neither the text index nor the
//! vector segments.
//!
//! ```text
//! query ──encode (per-language student or the index's encoder)──► vector
//!   │                                                                │
//!   ├─► (PSQ: a translation table turns its words into English terms) │
//!   ├─► BM25 top-N                                                   ├─► int8 scan of every segment, top 4·N
//!   │                                                                │      └─► exact f32 rescoring → dense top-N
//!   └──────────────► union, exact dense score for every candidate ◄──┘
//!                               └─► fusion (default bylang: z-scores, dense-heavy when cross-lingual)
//!                                     └─► (cross-lingual: MaxSim of query and stored passage token codes) → top k (+ explain)
//! ```
//!
//! The two legs run one after the other, BM25 first (measured faster on 2 cores than running
//! BM25 beside the already parallel dense scan). The dense pass is exhaustive (every live row is scored), so documents BM25 cannot reach — a
//! Hausa question against English passages — are still found.

pub mod compat;
pub mod fusion;
pub mod late;
pub mod request;
mod searcher;

pub use compat::check_query_encoder;
pub use fusion::Fusion;
pub use late::{Rerank, RerankChoice};
pub use request::{Explain, Mode, SearchHit, SearchRequest, SearchResults, StageTimings};
pub use searcher::{HybridLegs, Searcher, millis};
