//! tantivy schema, per-language analyzers, BM25 candidate generation.
