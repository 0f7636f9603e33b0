//! Query pipeline: sparse and dense candidates, exact rescoring, fusion, explain; and indexing
//! with an encoder.
//!
//! ```text
//! query ──encode (per-language student or the index's encoder)──► vector
//!   │                                                                │
//!   ├─► (PSQ: a translation table turns its words into English terms) │
//!   ├─► BM25 top-N (tantivy)                                         ├─► int8 scan of every segment, top 4·N
//!   │                                                                │      └─► exact f32 rescoring → dense top-N
//!   └──────────────► union, exact dense score for every candidate ◄──┘
//!                               └─► fusion (default bylang: z-scores, dense-heavy when cross-lingual) → top k (+ explain)
//! ```
//!
//! The dense pass is exhaustive (every live row is scored), so documents BM25 cannot reach — a
//! Hausa question against English passages — are still found.

pub mod compat;
pub mod dense;
pub mod fusion;
pub mod indexing;
pub mod lookup;
pub mod request;
mod searcher;
pub mod sparse;

pub use compat::{check_document_encoder, check_query_encoder, encoder_record, index_config_for};
pub use fusion::Fusion;
pub use indexing::{EncodingWriter, index_documents, open_or_create_for, passage_text};
pub use request::{Explain, Mode, SearchHit, SearchRequest, SearchResults, StageTimings};
pub use searcher::{HybridLegs, Searcher, millis};
