//! Optical: embeddable cross-lingual search.
//!
//! tantivy BM25 finds candidates, a BERT-family encoder (on burn) scores them densely, and
//! document vectors live in memory-mapped segments (`optical-storage`) beside the text index.
