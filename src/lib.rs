//! Optical: embeddable cross-lingual search.
//!
//! tantivy BM25 finds candidates, a BERT-family encoder (on burn) scores them densely, and
//! document vectors live in memory-mapped segments (`optical-storage`) beside the text index.
//! The encoder's cross-lingual ability comes from optimal-transport distillation ([`distill`]).

pub mod corpus;
pub mod distill;
pub mod encoder;
pub mod engine;
pub mod eval;
pub mod search;
pub mod text;

pub use anyhow::{Error, Result};
