//! Dense candidates of a snapshot, through the storage crate's scan and scoring functions: the
//! exhaustive first pass and exact scores of chosen ids.
//!
//! On an `f32+i8` index the first pass scans the int8 companions (4× fewer bytes than f32) and
//! exact scoring reads the f32 rows of the few candidates kept; on an `f32` index the first pass
//! is already exact; on an `i8` index "exact" means the dequantized int8 row, the best that index
//! holds.

use std::collections::HashSet;

use crate::Result;
use crate::error::invalid;
use optical_storage::{Hit, score_ids, top_k_segments};

use super::snapshot::Snapshot;

impl Snapshot {
    /// The first pass: the best `depth` live rows by dot product with `query`, best first, with
    /// the scores of whatever the pass scanned (approximate on int8, see
    /// [`Snapshot::dense_first_pass_is_exact`]). Rows whose id is not in `keep` are skipped (a
    /// language filter); since the storage scan only skips tombstones, a filtered pass
    /// over-fetches until it has `depth` kept rows or has seen every row.
    pub fn dense_first_pass(&self, query: &[f32], depth: usize, keep: Option<&HashSet<u64>>) -> Result<Vec<Hit>> {
        self.check_query_dim(query)?;
        let vectors = self.vectors();
        if depth == 0 || vectors.segments.is_empty() {
            return Ok(Vec::new());
        }
        let segments = if vectors.int8.is_empty() { &vectors.segments } else { &vectors.int8 };
        let total: usize = segments.iter().map(|s| s.len()).sum();
        let mut fetch = match keep {
            None => depth,
            // Expect the kept rows to be spread evenly; fetch twice that share, at least `depth`.
            Some(k) if !k.is_empty() => depth.saturating_mul(2).saturating_mul(total / k.len().max(1)).max(depth),
            Some(_) => return Ok(Vec::new()),
        };
        loop {
            fetch = fetch.min(total);
            let mut all = top_k_segments(segments, query, fetch, &vectors.tombstones)?;
            let Some(k) = keep else { return Ok(truncated(all, depth)) };
            let scanned_all = fetch >= total;
            all.retain(|h| k.contains(&h.id));
            if all.len() >= depth || scanned_all {
                return Ok(truncated(all, depth));
            }
            fetch = fetch.saturating_mul(4);
        }
    }

    /// Whether [`Snapshot::dense_first_pass`] scores are already exact (no int8 companion
    /// involved, or nothing better exists).
    pub fn dense_first_pass_is_exact(&self) -> bool {
        self.vectors().int8.is_empty()
    }

    /// Exact dense scores of `ids` (the f32 row where the index has one, else the dequantized
    /// int8 row), best first, ties by ascending id. Ids without a live row, and repeats, are
    /// left out.
    pub fn exact_scores(&self, query: &[f32], ids: &[u64]) -> Result<Vec<Hit>> {
        self.check_query_dim(query)?;
        let vectors = self.vectors();
        Ok(score_ids(&vectors.segments, query, ids, &vectors.tombstones)?)
    }

    fn check_query_dim(&self, query: &[f32]) -> Result<()> {
        match self.config().dim {
            None => invalid!("the index {} is text-only: it has no vectors to search", self.dir().display()),
            Some(d) if d != query.len() => {
                invalid!("query vector has dimension {}, the index stores dimension {d}", query.len())
            }
            _ => Ok(()),
        }
    }
}

fn truncated(mut hits: Vec<Hit>, n: usize) -> Vec<Hit> {
    hits.truncate(n);
    hits
}
