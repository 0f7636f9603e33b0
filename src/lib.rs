//! Optical: embeddable cross-lingual search.
//!
//! tantivy BM25 finds candidates, a BERT-family encoder (on burn) scores them densely, and
//! document vectors live in memory-mapped segments (`optical-storage`) beside the text index.
//! The encoder's cross-lingual ability comes from optimal-transport distillation ([`distill`]).
//!
//! # Example: an index with caller-supplied vectors
//!
//! ```
//! use optical::engine::{Document, Index, IndexConfig};
//! use optical::search::{Mode, SearchRequest, Searcher};
//!
//! # fn main() -> optical::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let index = Index::create(dir.path(), IndexConfig::with_vectors(3))?;
//! let mut writer = index.writer()?;
//! writer.add(
//!     Document::new("nairobi", "Nairobi is the capital of Kenya.")
//!         .with_lang("eng")
//!         .with_vector(vec![1.0, 0.0, 0.0]),
//! )?;
//! writer.add(
//!     Document::new("berlin", "Berlin is the capital of Germany.")
//!         .with_lang("eng")
//!         .with_vector(vec![0.0, 1.0, 0.0]),
//! )?;
//! writer.commit()?; // both documents become visible in BM25 and dense search at once
//!
//! let searcher = Searcher::new(index.reload()?);
//! let bm25 = searcher.search(&SearchRequest::new("capital of Kenya").with_mode(Mode::Bm25))?;
//! assert_eq!(bm25.hits[0].key, "nairobi");
//! let dense = searcher.search(
//!     &SearchRequest::new("")
//!         .with_mode(Mode::Dense)
//!         .with_query_vector(vec![0.0, 1.0, 0.0])
//!         .with_k(1),
//! )?;
//! assert_eq!(searcher.snapshot().document(dense.hits[0].id)?.unwrap().key, "berlin");
//! # Ok(())
//! # }
//! ```
//!
//! Every search goes through [`search::Searcher`]; with an encoder it runs the dense and hybrid
//! modes from query text. [`ingest::ingest`] indexes a JSONL or BEIR file in one call (what
//! `optical index` runs). The engine, search and ingest return [`Error`], whose variants
//! ([`Error::Locked`], [`Error::NotAnIndex`], [`Error::IncompatibleEncoder`], …) an application
//! can match on.

pub mod corpus;
pub mod distill;
pub mod encoder;
pub mod engine;
mod error;
pub mod eval;
pub mod ingest;
pub mod memory;
pub mod search;
pub mod translate;

pub use error::{Error, Result};
