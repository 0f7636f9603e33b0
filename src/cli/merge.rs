//! `optical merge OUT SHARD…`: the shards of a distributed indexing job into one index
//! ([`optical::engine::merge_indexes`]: vectors copied as stored, `OUT` appears complete or not
//! at all).
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct MergeArgs {
    /// The merged index (a new directory).
    pub out: PathBuf,
    /// The shard indexes, in the order their documents are copied.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
}

pub fn run(args: MergeArgs) -> Result<()> {
    let report = optical::engine::merge_indexes(&args.out, &args.shards)?;
    eprintln!("merged {} shards, {} documents, into {}", args.shards.len(), report.docs, args.out.display());
    Ok(())
}
