//! Merging shard indexes into one index (`optical merge`, the last step of a distributed
//! indexing job such as examples/ray_index.py).
//!
//! The shards must share one configuration (dimension, element type, encoder record, token
//! codebook), and no key may live in two shards. Every live document is copied with its stored
//! vector and token codes (bit for bit: nothing is encoded again) into a new index built in a staging directory beside the
//! output (`<out>.merging`), one commit per shard so that memory stays bounded by the largest
//! shard; the staging directory is renamed to `<out>` once all of it is durable. A failure or
//! a crash at any point leaves no `<out>`, only a staging directory the next merge removes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::encoding::ENCODER_SOURCE_FILE;
use super::{Document, Index, vectors};
use crate::error::{Error, Result, invalid};

/// What a merge did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeReport {
    /// Documents in the merged index.
    pub docs: u64,
    /// Live documents per shard, in the order given.
    pub per_shard: Vec<u64>,
}

/// Merges the indexes `shards` into a new index at `out` (which must not exist), atomically:
/// `out` appears complete or not at all.
pub fn merge_indexes(out: impl AsRef<Path>, shards: &[PathBuf]) -> Result<MergeReport> {
    let out = out.as_ref();
    if shards.is_empty() {
        invalid!("nothing to merge: no shard given");
    }
    if out.exists() {
        return Err(Error::AlreadyExists {
            dir: out.to_path_buf(),
            message: format!("merge output {} already exists; merge into a new directory", out.display()),
        });
    }
    let opened: Vec<Index> = shards.iter().map(Index::open_read_only).collect::<Result<_>>()?;
    let config = opened[0].config();
    for (shard, index) in shards.iter().zip(&opened).skip(1) {
        if index.config() != config {
            invalid!(
                "shard {} is configured {:?}, but shard {} is configured {:?}: shards of one index share one configuration",
                shard.display(),
                index.config(),
                shards[0].display(),
                config
            );
        }
    }
    let staging = staging_dir(out);
    if staging.exists() {
        // A merge that failed or crashed earlier: never visible as an index, safe to remove.
        std::fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    let result = copy_shards(&staging, shards, &opened, config);
    let per_shard = match result {
        Ok(per_shard) => per_shard,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // The hint naming the document encoder's model directory (so that searches and writers of
    // the merged index find it), from the first shard that has one.
    if let Some(src) = shards.iter().map(|s| s.join(ENCODER_SOURCE_FILE)).find(|p| p.is_file()) {
        std::fs::copy(&src, staging.join(ENCODER_SOURCE_FILE)).with_context(|| format!("copying {}", src.display()))?;
    }
    vectors::sync_dir(&staging)?;
    std::fs::rename(&staging, out).with_context(|| format!("renaming {} to {}", staging.display(), out.display()))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        vectors::sync_dir(parent)?;
    }
    Ok(MergeReport { docs: per_shard.iter().sum(), per_shard })
}

/// `<out>.merging`, beside `out`.
fn staging_dir(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".merging");
    out.with_file_name(name)
}

/// Copies every live document of every shard into a new index at `staging`, one commit per
/// shard; returns the documents copied per shard.
fn copy_shards(staging: &Path, shards: &[PathBuf], opened: &[Index], config: super::IndexConfig) -> Result<Vec<u64>> {
    let has_vectors = config.dim.is_some();
    // Shards of one configuration share one token codebook (its fingerprint is part of it).
    let merged = match opened[0].snapshot().codebook() {
        Some(book) => Index::create_with_codebook(staging, config, book)?,
        None => Index::create(staging, config)?,
    };
    let mut writer = merged.writer()?;
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut per_shard = Vec::with_capacity(shards.len());
    for (i, (shard, index)) in shards.iter().zip(opened).enumerate() {
        let snap = index.snapshot();
        let mut keys = snap.keys()?;
        keys.sort();
        for (key, id) in &keys {
            if let Some(&first) = owner.get(key) {
                invalid!("key `{key}` is in shard {} and in shard {}: a key belongs to one shard", shards[first].display(), shard.display());
            }
            owner.insert(key.clone(), i);
            let stored = snap
                .document(*id)?
                .with_context(|| format!("shard {}: document `{key}` vanished from its snapshot", shard.display()))?;
            let mut doc = Document::new(stored.key, stored.body).with_title(stored.title).with_lang(stored.lang);
            doc.token_codes = stored.token_codes;
            if has_vectors {
                let v = snap
                    .vector(*id)
                    .with_context(|| format!("shard {}: document `{key}` has no vector", shard.display()))?;
                doc = doc.with_vector(v);
            }
            writer.add(doc).map_err(|e| annotate(e, shard))?;
        }
        writer.commit()?;
        per_shard.push(keys.len() as u64);
    }
    Ok(per_shard)
}

fn annotate(e: Error, shard: &Path) -> Error {
    anyhow::Error::from(e).context(format!("merging shard {}", shard.display())).into()
}
