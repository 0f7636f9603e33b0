//! Dense scoring over one commit's vector segments: the exhaustive first pass and exact
//! rescoring of chosen ids.
//!
//! On an `f32+i8` index the first pass scans the int8 companions (4× fewer bytes than f32) and
//! exact rescoring reads the f32 rows of the few candidates it kept; on an `f32` index the first
//! pass is already exact; on an `i8` index "exact" means the dequantized int8 row, the best that
//! index holds.

use std::collections::HashSet;

use anyhow::{Context, Result};
use optical_storage::{ElemType, Hit, Segment, dequantize_i8, dot_f32, sort_hits};
use rayon::prelude::*;

use crate::engine::vectors::VectorSet;

/// The first pass: the best `depth` live rows by dot product with `query`, best first, with the
/// scores of whatever the pass scanned (approximate on int8). Rows whose id fails `keep` are
/// skipped (the language filter); since the storage kernels only skip tombstones, a filtered
/// pass over-fetches until it has `depth` kept rows or has seen every row.
pub fn first_pass(
    vectors: &VectorSet,
    query: &[f32],
    depth: usize,
    keep: Option<&HashSet<u64>>,
) -> Result<Vec<Hit>> {
    if depth == 0 || vectors.segments.is_empty() {
        return Ok(Vec::new());
    }
    let segments: Vec<&Segment> = if vectors.int8.is_empty() {
        vectors.segments.iter().map(|(_, s)| s.as_ref()).collect()
    } else {
        vectors.int8.iter().map(|s| s.as_ref()).collect()
    };
    let total: usize = segments.iter().map(|s| s.len()).sum();
    let mut fetch = match keep {
        None => depth,
        // Expect the kept rows to be spread evenly; fetch twice that share, at least `depth`.
        Some(k) if !k.is_empty() => depth
            .saturating_mul(2)
            .saturating_mul(total / k.len().max(1))
            .max(depth),
        Some(_) => return Ok(Vec::new()),
    };
    loop {
        fetch = fetch.min(total);
        // All segments in one parallel job (each scan splits into row chunks inside): one
        // hand-over to the thread pool per search instead of one per segment.
        let parts: Vec<Result<Vec<Hit>>> = segments
            .par_iter()
            .enumerate()
            .map(|(i, seg)| {
                seg.top_k(query, fetch, &vectors.tombstones)
                    .with_context(|| format!("scanning vector segment {}", vectors.segments[i].0))
            })
            .collect();
        let mut all = Vec::with_capacity(fetch * segments.len());
        for p in parts {
            all.extend(p?);
        }
        sort_hits(&mut all);
        match keep {
            None => {
                all.truncate(depth);
                return Ok(all);
            }
            Some(k) => {
                let scanned_all = fetch >= total;
                all.retain(|h| k.contains(&h.id));
                if all.len() >= depth || scanned_all {
                    all.truncate(depth);
                    return Ok(all);
                }
                fetch = fetch.saturating_mul(4);
            }
        }
    }
}

/// Whether [`first_pass`] scores are already exact (no int8 involved, or nothing better exists).
pub fn first_pass_is_exact(vectors: &VectorSet) -> bool {
    vectors.int8.is_empty()
}

/// Exact dense scores of `ids` (in the order given; duplicates allowed): the f32 row where the
/// index has one, else the dequantized int8 row. `None` for ids without a live row.
pub fn exact_scores(vectors: &VectorSet, query: &[f32], ids: &[u64]) -> Vec<Option<f32>> {
    let mut buf = Vec::new();
    ids.iter()
        .map(|&id| {
            if vectors.tombstones.contains(id) {
                return None;
            }
            let seg = vectors
                .segments
                .iter()
                .map(|(_, s)| s)
                .find(|s| s.contains(id))?;
            let row = seg.row_of(id)?;
            Some(match seg.elem_type() {
                ElemType::F32 => dot_f32(seg.row_f32(row)?, query),
                ElemType::I8 => {
                    let (q, scale) = seg.row_i8(row)?;
                    buf.resize(q.len(), 0.0);
                    dequantize_i8(q, scale, &mut buf);
                    dot_f32(&buf, query)
                }
            })
        })
        .collect()
}

/// Rescores `hits` exactly and sorts them (best first, ties by ascending id).
pub fn rescore(vectors: &VectorSet, query: &[f32], hits: &[Hit]) -> Vec<Hit> {
    let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
    let mut out: Vec<Hit> = ids
        .iter()
        .zip(exact_scores(vectors, query, &ids))
        .filter_map(|(&id, s)| s.map(|score| Hit { id, score }))
        .collect();
    sort_hits(&mut out);
    out
}
