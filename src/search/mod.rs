//! Query pipeline: sparse and dense candidates, rerank, fusion, explain.
