//! Query pipeline: sparse and dense candidates, rerank, fusion, explain.

pub mod fusion;

pub use fusion::Fusion;
