//! Dot-product kernels and bounded top-k selection.
//!
//! The kernels are written so LLVM auto-vectorises them (16 independent f32 accumulators;
//! widening i8·i8 → i32 sums), and are compiled twice on x86-64: a baseline build and an AVX2
//! build chosen once per scan by run-time detection. The f32 kernel uses the same operation
//! order in both builds and no FMA, so scores are bit-identical whichever build runs — results
//! are deterministic across machines.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// One search result: an internal id and its score (dot product; higher is better).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The row's id.
    pub id: u64,
    /// The dot product of the query with the row's vector.
    pub score: f32,
}

impl Hit {
    /// Result order: score descending, ties broken by ascending id. Total (uses
    /// `f32::total_cmp`), so sorting is deterministic even with NaN scores.
    pub fn rank_cmp(a: &Hit, b: &Hit) -> Ordering {
        b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
    }
}

/// Sort hits into result order ([`Hit::rank_cmp`]).
pub fn sort_hits(hits: &mut [Hit]) {
    hits.sort_unstable_by(Hit::rank_cmp);
}

/// Wrapper whose `Ord` says "better is greater".
#[derive(Clone, Copy)]
struct Ranked(Hit);
impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> Ordering {
        Hit::rank_cmp(&o.0, &self.0)
    }
}

/// Keeps the best `k` hits seen so far (min-heap on the worst kept hit).
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK { k, heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1) }
    }

    /// Would a hit with this score and id enter the set? Cheap pre-check so the caller can do
    /// the (slower) tombstone lookup only for rows that matter.
    #[inline(always)]
    pub fn admits(&self, id: u64, score: f32) -> bool {
        if self.heap.len() < self.k {
            return self.k > 0;
        }
        match self.heap.peek() {
            Some(Reverse(worst)) => Ranked(Hit { id, score }) > *worst,
            None => false,
        }
    }

    /// Insert a hit that [`TopK::admits`] accepted.
    #[inline]
    pub fn push(&mut self, hit: Hit) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(Ranked(hit)));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            *worst = Reverse(Ranked(hit));
        }
    }

    pub fn into_vec(self) -> Vec<Hit> {
        self.heap.into_iter().map(|Reverse(Ranked(h))| h).collect()
    }
}

/// Merge partial top-k lists into the final sorted top-k.
pub(crate) fn merge_top_k(mut parts: Vec<Vec<Hit>>, k: usize) -> Vec<Hit> {
    let mut all: Vec<Hit> = if parts.len() == 1 { parts.pop().unwrap() } else { parts.concat() };
    sort_hits(&mut all);
    all.truncate(k);
    all
}

/// Normalise `-0.0` to `+0.0` so equal scores tie regardless of sign of zero.
#[inline(always)]
pub(crate) fn clean(score: f32) -> f32 {
    score + 0.0
}

const LANES: usize = 16;

#[inline(always)]
fn dot_f32_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ta.iter().zip(tb) {
        tail += x * y;
    }
    // Fixed pairwise reduction: the same order in every build.
    let mut w = LANES / 2;
    while w > 0 {
        for i in 0..w {
            acc[i] += acc[i + w];
        }
        w /= 2;
    }
    acc[0] + tail
}

#[inline(always)]
fn dot_i8_body(a: &[i8], b: &[i8]) -> i32 {
    // i8·i8 fits in i16 and pairs of them in i32: LLVM lowers this to pmaddwd / vpmaddwd.
    // No overflow: dim ≤ MAX_DIM = 2^16 and |product| ≤ 2^14.
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

/// Dot product of two f32 slices (over the shorter length).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    dot_f32_body(a, b)
}

/// Dot product of two i8 slices with i32 accumulation (over the shorter length).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_body(a, b)
}

/// Scan rows of an f32 block: `rows` is row-major with `dim` columns, `ids[i]` is row i's id.
/// `live(id)` is consulted only for rows that would enter the top-k.
#[inline(always)]
fn scan_f32_body(rows: &[f32], dim: usize, ids: &[u64], query: &[f32], top: &mut TopK, live: &dyn Fn(u64) -> bool) {
    for (row, &id) in rows.chunks_exact(dim).zip(ids) {
        let score = clean(dot_f32_body(row, query));
        if top.admits(id, score) && live(id) {
            top.push(Hit { id, score });
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn scan_i8_body(
    rows: &[i8],
    dim: usize,
    scales: &[f32],
    ids: &[u64],
    query: &[i8],
    qscale: f32,
    top: &mut TopK,
    live: &dyn Fn(u64) -> bool,
) {
    for ((row, &scale), &id) in rows.chunks_exact(dim).zip(scales).zip(ids) {
        let score = clean(dot_i8_body(row, query) as f32 * (qscale * scale));
        if top.admits(id, score) && live(id) {
            top.push(Hit { id, score });
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_f32_avx2(rows: &[f32], dim: usize, ids: &[u64], query: &[f32], top: &mut TopK, live: &dyn Fn(u64) -> bool) {
    scan_f32_body(rows, dim, ids, query, top, live)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn scan_i8_avx2(
    rows: &[i8],
    dim: usize,
    scales: &[f32],
    ids: &[u64],
    query: &[i8],
    qscale: f32,
    top: &mut TopK,
    live: &dyn Fn(u64) -> bool,
) {
    scan_i8_body(rows, dim, scales, ids, query, qscale, top, live)
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    use std::sync::OnceLock;
    static AVX2: OnceLock<bool> = OnceLock::new();
    *AVX2.get_or_init(|| std::is_x86_feature_detected!("avx2"))
}

/// Top-k over an f32 block (see [`scan_f32_body`]).
pub(crate) fn scan_f32(rows: &[f32], dim: usize, ids: &[u64], query: &[f32], top: &mut TopK, live: &dyn Fn(u64) -> bool) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 support was detected at run time.
        return unsafe { scan_f32_avx2(rows, dim, ids, query, top, live) };
    }
    scan_f32_body(rows, dim, ids, query, top, live)
}

/// Top-k over an int8 block with per-row scales; the query is already quantized.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_i8(
    rows: &[i8],
    dim: usize,
    scales: &[f32],
    ids: &[u64],
    query: &[i8],
    qscale: f32,
    top: &mut TopK,
    live: &dyn Fn(u64) -> bool,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 support was detected at run time.
        return unsafe { scan_i8_avx2(rows, dim, scales, ids, query, qscale, top, live) };
    }
    scan_i8_body(rows, dim, scales, ids, query, qscale, top, live)
}
