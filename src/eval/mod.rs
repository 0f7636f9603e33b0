//! BEIR loader, TREC runs and qrels, retrieval metrics.
