//! Top-k scans and exact rescoring over segments.

use rayon::prelude::*;

use crate::error::{Result, StorageError};
use crate::format::ElemType;
use crate::kernels::{Hit, TopK, clean, dot_f32, merge_top_k, scan_f32, scan_i8, sort_hits};
use crate::quant::quantize_i8;
use crate::segment::Segment;
use crate::tombstones::Tombstones;

/// Rows per parallel work item: big enough to amortise scheduling and the per-chunk top-k
/// merge, small enough to balance a few segments over several threads.
const CHUNK_ROWS: usize = 4096;

fn check_query(seg: &Segment, query: &[f32]) -> Result<()> {
    if query.len() != seg.dim() {
        return Err(StorageError::DimMismatch {
            path: seg.path().to_path_buf(),
            expected: seg.dim(),
            found: query.len(),
        });
    }
    if let Some(i) = query.iter().position(|x| !x.is_finite()) {
        return Err(StorageError::invalid(
            seg.path(),
            format!("query element {i} is {}", query[i]),
        ));
    }
    Ok(())
}

/// The query in the form each element type scans with: int8 queries are quantized once.
struct PreparedQuery<'a> {
    f32: &'a [f32],
    i8: Vec<i8>,
    i8_scale: f32,
}

impl<'a> PreparedQuery<'a> {
    fn new(query: &'a [f32], need_i8: bool) -> Self {
        let mut i8 = Vec::new();
        let mut i8_scale = 0.0;
        if need_i8 {
            i8 = vec![0; query.len()];
            i8_scale = quantize_i8(query, &mut i8);
        }
        PreparedQuery {
            f32: query,
            i8,
            i8_scale,
        }
    }
}

/// Top-k of rows `lo..hi` of one segment.
fn scan_range(
    seg: &Segment,
    lo: usize,
    hi: usize,
    q: &PreparedQuery,
    k: usize,
    tomb: &Tombstones,
) -> Vec<Hit> {
    let dim = seg.dim();
    let ids = &seg.ids()[lo..hi];
    let mut top = TopK::new(k);
    let live = |id: u64| !tomb.contains(id);
    match seg.elem_type() {
        ElemType::F32 => {
            let rows = &seg.vectors_f32().expect("f32 segment")[lo * dim..hi * dim];
            scan_f32(rows, dim, ids, q.f32, &mut top, &live);
        }
        ElemType::I8 => {
            let rows = &seg.vectors_i8().expect("i8 segment")[lo * dim..hi * dim];
            let scales = &seg.scales()[lo..hi];
            scan_i8(rows, dim, scales, ids, &q.i8, q.i8_scale, &mut top, &live);
        }
    }
    top.into_vec()
}

/// Top-`k` rows of `segments` by dot product with `query`, skipping ids in `tombstones`,
/// sorted by score descending, ties by ascending id. Scans row chunks of all segments in
/// parallel (rayon). f32 segments give exact dot products; int8 segments give
/// `(q_query · q_row) · scale_query · scale_row` with the query quantized once.
///
/// Errors when a segment's dimension differs from the query's or the query has a non-finite value.
pub fn top_k_segments<S: AsRef<Segment> + Sync>(
    segments: &[S],
    query: &[f32],
    k: usize,
    tombstones: &Tombstones,
) -> Result<Vec<Hit>> {
    for seg in segments {
        check_query(seg.as_ref(), query)?;
    }
    if k == 0 {
        return Ok(Vec::new());
    }
    let q = PreparedQuery::new(
        query,
        segments.iter().any(|s| s.as_ref().elem_type() == ElemType::I8),
    );
    let jobs: Vec<(usize, usize, usize)> = segments
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            let s = s.as_ref();
            (0..s.len())
                .step_by(CHUNK_ROWS)
                .map(move |lo| (si, lo, (lo + CHUNK_ROWS).min(s.len())))
        })
        .collect();
    let parts: Vec<Vec<Hit>> = jobs
        .into_par_iter()
        .map(|(si, lo, hi)| scan_range(segments[si].as_ref(), lo, hi, &q, k, tombstones))
        .collect();
    Ok(merge_top_k(parts, k))
}

impl Segment {
    /// Top-`k` rows of this segment (see [`top_k_segments`]).
    pub fn top_k(&self, query: &[f32], k: usize, tombstones: &Tombstones) -> Result<Vec<Hit>> {
        top_k_segments(std::slice::from_ref(self), query, k, tombstones)
    }
}

/// Find the row for `id`, preferring an f32 segment (exact) over an int8 one.
fn locate<S: AsRef<Segment>>(segments: &[S], id: u64) -> Option<(&Segment, usize)> {
    let mut fallback = None;
    for seg in segments {
        let seg = seg.as_ref();
        match seg.id_range() {
            Some((lo, hi)) if lo <= id && id <= hi => {}
            _ => continue,
        }
        if let Some(row) = seg.row_of(id) {
            if seg.elem_type() == ElemType::F32 {
                return Some((seg, row));
            }
            fallback.get_or_insert((seg, row));
        }
    }
    fallback
}

/// The vector for `id` from the first f32 segment holding it (else the first int8 one,
/// dequantized), or `None` when no segment holds it or it is tombstoned.
pub fn get_vector<S: AsRef<Segment>>(segments: &[S], id: u64, tombstones: &Tombstones) -> Option<Vec<f32>> {
    if tombstones.contains(id) {
        return None;
    }
    let (seg, row) = locate(segments, id)?;
    seg.row_vec(row)
}

/// Score the given candidate ids against `query` (for exact rescoring of a first pass):
/// each id's vector comes from an f32 segment when one holds it (exact dot product), else from
/// an int8 one (dot product with the dequantized row). Ids that are tombstoned, held by no
/// segment, or repeated are left out. Sorted by score descending, ties by ascending id.
///
/// Errors when a segment's dimension differs from the query's or the query has a non-finite value.
pub fn score_ids<S: AsRef<Segment>>(
    segments: &[S],
    query: &[f32],
    ids: &[u64],
    tombstones: &Tombstones,
) -> Result<Vec<Hit>> {
    for seg in segments {
        check_query(seg.as_ref(), query)?;
    }
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut buf = Vec::new();
    let mut hits = Vec::with_capacity(ids.len());
    for id in ids {
        if tombstones.contains(id) {
            continue;
        }
        let Some((seg, row)) = locate(segments, id) else {
            continue;
        };
        let score = match seg.elem_type() {
            ElemType::F32 => dot_f32(seg.row_f32(row).expect("located row"), query),
            ElemType::I8 => {
                let (q, s) = seg.row_i8(row).expect("located row");
                buf.resize(q.len(), 0.0);
                crate::quant::dequantize_i8(q, s, &mut buf);
                dot_f32(&buf, query)
            }
        };
        hits.push(Hit {
            id,
            score: clean(score),
        });
    }
    sort_hits(&mut hits);
    Ok(hits)
}
