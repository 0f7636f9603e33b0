//! Scaled dot-product attention of one input and one head, for the int8 inference path
//! (`int8_bert.rs`; the attention products stay f32): `ctx_i = Σ_j softmax_j(q_i·k_j·scale) v_j`.
//!
//! Heads 32 wide (e5-small's and MiniLM's) run a kernel of our own on AVX-512: the scores as a
//! register-tiled product against a transposed copy of the keys, the softmax in place, then the
//! weighted sum of the values. Other widths and CPUs, and the tests' reference, go through
//! `gemm`, whose AVX2 kernels and packing of these small (128 × 32) matrices were a quarter of
//! the int8 encoder's time at batch 32 × 128.
use super::rowops;

/// One head of one input: `q`, `k` and `v` point at its first row's columns of the packed
/// projections, consecutive rows are `stride` floats apart, and `ctx` receives `len` rows of
/// `dh` values, `ctx_stride` apart.
pub(crate) struct Head {
    pub q: *const f32,
    pub k: *const f32,
    pub v: *const f32,
    pub stride: usize,
    pub len: usize,
    pub dh: usize,
    pub ctx: *mut f32,
    pub ctx_stride: usize,
}

/// Computes the head's context rows.
///
/// # Safety
/// Rows `0..len` of `q`, `k` and `v` (each `dh` values, `stride` apart) must be readable and
/// rows `0..len` of `ctx` (`dh` values, `ctx_stride` apart) writable, and nothing else may
/// access those `ctx` values meanwhile.
pub(crate) unsafe fn attend(head: &Head, scale: f32) {
    if head.len == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if head.dh == 32 && std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was just detected; the caller vouches for the pointers.
        return unsafe { x86::attend32(head, scale) };
    }
    unsafe { attend_gemm(head, scale) }
}

/// [`attend`] through `gemm`: the fallback and the reference of the AVX-512 kernel.
///
/// # Safety
/// As for [`attend`].
pub(crate) unsafe fn attend_gemm(head: &Head, scale: f32) {
    let Head { q, k, v, stride, len, dh, ctx, ctx_stride } = *head;
    let mut scores = vec![0f32; len * len];
    let (stride, ctx_stride) = (stride as isize, ctx_stride as isize);
    unsafe {
        // scores[i][j] = q_i · k_j
        gemm::gemm(
            len, len, dh,
            scores.as_mut_ptr(), 1, len as isize, false,
            q, 1, stride,
            k, stride, 1,
            0.0, 1.0, false, false, false, gemm::Parallelism::None,
        );
        rowops::softmax_rows(&mut scores, len, scale);
        // ctx_i = Σ_j p_ij v_j
        gemm::gemm(
            len, dh, len,
            ctx, 1, ctx_stride, false,
            scores.as_ptr(), 1, len as isize,
            v, 1, stride,
            0.0, 1.0, false, false, false, gemm::Parallelism::None,
        );
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Head, rowops};

    /// Head width of the kernel: two 16-lane registers per row.
    const DH: usize = 32;
    /// Query rows per score tile, and 16-key blocks per score tile: 16 accumulators.
    const SCORE_ROWS: usize = 4;
    const SCORE_BLOCKS: usize = 4;
    /// Query rows per context tile (and per block of rows in flight): 8 rows × 2 registers =
    /// 16 accumulators.
    const CTX_ROWS: usize = 8;

    /// [`super::attend`] for 32-wide heads on AVX-512. Works through the queries eight rows at
    /// a time — their scores, softmax and context — so the scores in flight (8 × 128 floats)
    /// stay in the L1 cache beside the keys and values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn attend32(head: &Head, scale: f32) {
        let len = head.len;
        // Keys and score rows are padded to whole 16-lane blocks; padded keys are zero, and
        // the padded scores are zeroed after the softmax so they add nothing to the context.
        let padded = len.next_multiple_of(16);
        let mut keys_t = vec![0f32; DH * padded];
        let mut scores = vec![0f32; CTX_ROWS * padded];
        unsafe {
            for j in 0..len {
                let k = head.k.add(j * head.stride);
                for d in 0..DH {
                    keys_t[d * padded + j] = *k.add(d);
                }
            }
            let mut i = 0;
            while i < len {
                let rows = (len - i).min(CTX_ROWS);
                let block = &mut scores[..rows * padded];
                let mut r = 0;
                while r < rows {
                    let n = (rows - r).min(SCORE_ROWS);
                    match n {
                        4 => score_rows::<4>(head, &keys_t, padded, block, i, r),
                        3 => score_rows::<3>(head, &keys_t, padded, block, i, r),
                        2 => score_rows::<2>(head, &keys_t, padded, block, i, r),
                        _ => score_rows::<1>(head, &keys_t, padded, block, i, r),
                    }
                    r += n;
                }
                for row in block.chunks_exact_mut(padded) {
                    let (live, pad) = row.split_at_mut(len);
                    rowops::softmax_rows(live, len, scale);
                    pad.fill(0.0);
                }
                match rows {
                    8 => ctx_tile::<8>(head, block, padded, i),
                    7 => ctx_tile::<7>(head, block, padded, i),
                    6 => ctx_tile::<6>(head, block, padded, i),
                    5 => ctx_tile::<5>(head, block, padded, i),
                    4 => ctx_tile::<4>(head, block, padded, i),
                    3 => ctx_tile::<3>(head, block, padded, i),
                    2 => ctx_tile::<2>(head, block, padded, i),
                    _ => ctx_tile::<1>(head, block, padded, i),
                }
                i += rows;
            }
        }
    }

    /// Scores of query rows `i+r0 .. i+r0+R` against every (padded) key, into rows
    /// `r0 .. r0+R` of `scores`.
    #[target_feature(enable = "avx512f")]
    unsafe fn score_rows<const R: usize>(head: &Head, keys_t: &[f32], padded: usize, scores: &mut [f32], i: usize, r0: usize) {
        let mut block = 0;
        while block < padded / 16 {
            let blocks = (padded / 16 - block).min(SCORE_BLOCKS);
            unsafe {
                match blocks {
                    4 => score_tile::<R, 4>(head, keys_t, padded, scores, i, r0, block),
                    3 => score_tile::<R, 3>(head, keys_t, padded, scores, i, r0, block),
                    2 => score_tile::<R, 2>(head, keys_t, padded, scores, i, r0, block),
                    _ => score_tile::<R, 1>(head, keys_t, padded, scores, i, r0, block),
                }
            }
            block += blocks;
        }
    }

    /// `scores[r0+r][16·(block+b) ..][..16] = q_{i+r0+r} · k` for r < R, b < B.
    #[target_feature(enable = "avx512f")]
    unsafe fn score_tile<const R: usize, const B: usize>(
        head: &Head,
        keys_t: &[f32],
        padded: usize,
        scores: &mut [f32],
        i: usize,
        r0: usize,
        block: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); B]; R];
        unsafe {
            let kt = keys_t.as_ptr().add(block * 16);
            for d in 0..DH {
                let mut kv = [_mm512_setzero_ps(); B];
                for (b, v) in kv.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(kt.add(d * padded + b * 16));
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let q = _mm512_set1_ps(*head.q.add((i + r0 + r) * head.stride + d));
                    for b in 0..B {
                        acc_r[b] = _mm512_fmadd_ps(q, kv[b], acc_r[b]);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let dst = scores.as_mut_ptr().add((r0 + r) * padded + block * 16);
                for (b, &v) in acc_r.iter().enumerate() {
                    _mm512_storeu_ps(dst.add(b * 16), v);
                }
            }
        }
    }

    /// `ctx_{i+r} = Σ_j p_{r, j} v_j` for r < R (`scores` holds the weights of rows `i..`).
    #[target_feature(enable = "avx512f")]
    unsafe fn ctx_tile<const R: usize>(head: &Head, scores: &[f32], padded: usize, i: usize) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        unsafe {
            let p = scores.as_ptr();
            for j in 0..head.len {
                let v = head.v.add(j * head.stride);
                let (v0, v1) = (_mm512_loadu_ps(v), _mm512_loadu_ps(v.add(16)));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let w = _mm512_set1_ps(*p.add(r * padded + j));
                    acc_r[0] = _mm512_fmadd_ps(w, v0, acc_r[0]);
                    acc_r[1] = _mm512_fmadd_ps(w, v1, acc_r[1]);
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let dst = head.ctx.add((i + r) * head.ctx_stride);
                _mm512_storeu_ps(dst, acc_r[0]);
                _mm512_storeu_ps(dst.add(16), acc_r[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel and the gemm path agree on packed projections of several lengths (tile
    /// remainders of both products, a length below one 16-key block, one past 128) and on
    /// every head, with the context written into a wider row as the encoder does.
    #[test]
    fn kernel_agrees_with_gemm() {
        let (heads, dh) = (3, 32);
        let hidden = heads * dh;
        for len in [1, 5, 16, 17, 45, 128, 131] {
            let qkv: Vec<f32> = (0..len * 3 * hidden).map(|i| ((i * 7919 % 2003) as f32 - 1001.0) / 400.0).collect();
            let mut fast = vec![0f32; len * hidden];
            let mut reference = vec![0f32; len * hidden];
            for h in 0..heads {
                for (ctx, gemm_path) in [(&mut fast, false), (&mut reference, true)] {
                    let head = Head {
                        q: qkv[h * dh..].as_ptr(),
                        k: qkv[hidden + h * dh..].as_ptr(),
                        v: qkv[2 * hidden + h * dh..].as_ptr(),
                        stride: 3 * hidden,
                        len,
                        dh,
                        ctx: ctx[h * dh..].as_mut_ptr(),
                        ctx_stride: hidden,
                    };
                    // SAFETY: every row of the head is inside qkv and ctx.
                    unsafe {
                        if gemm_path { attend_gemm(&head, 0.18) } else { attend(&head, 0.18) }
                    }
                }
            }
            for (i, (a, b)) in fast.iter().zip(&reference).enumerate() {
                assert!((a - b).abs() <= 2e-5 * b.abs().max(1.0), "len {len}, value {i}: {a} vs {b}");
            }
        }
    }
}
