//! Row-wise f32 operations of the int8 inference path ([`super::int8_bert`]): LayerNorm with
//! the residual added, GELU, softmax. Branch-free polynomial `erf` and `exp` replace the libm
//! calls. GELU and softmax run AVX-512 intrinsics when the CPU has them (checked at run time),
//! with the plain Rust as their reference and as the code elsewhere; LayerNorm is plain Rust
//! that the compiler vectorises, run as an AVX-512 build of the same code where it can.

/// Defines `pub fn $name(args)` that runs its body compiled for AVX-512 when the CPU has it,
/// and for the baseline target otherwise. Same code, same results up to FMA contraction.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    generic($($arg),*)
                }
                if std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512dq")
                    && std::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the features were just detected.
                    return unsafe { avx512($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

multiversion! {
    /// `h = LayerNorm(h + delta)` on each `width`-wide row (biased variance, like BERT's).
    pub fn residual_layer_norm(h: &mut [f32], delta: &[f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
        for (row, d) in h.chunks_exact_mut(width).zip(delta.chunks_exact(width)) {
            for (x, &d) in row.iter_mut().zip(d) {
                *x += d;
            }
            normalize_row(row, gamma, beta, eps);
        }
    }
}

multiversion! {
    /// `h = LayerNorm(h)` on each `width`-wide row.
    pub fn layer_norm(h: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
        for row in h.chunks_exact_mut(width) {
            normalize_row(row, gamma, beta, eps);
        }
    }
}

#[inline(always)]
fn normalize_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row, |x| x) / n;
    let var = lane_sum(row, |x| (x - mean) * (x - mean)) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((x, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
        *x = (*x - mean) * inv * g + b;
    }
}

/// `Σ f(x)` with sixteen partial sums, so the loop vectorises (a single f32 accumulator
/// would force the additions into order).
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            acc[i] += f(c[i]);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    acc.iter().sum::<f32>() + tail
}

/// The exact (erf) GELU in place: `x · (1 + erf(x/√2)) / 2`.
pub fn gelu(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was just detected.
        return unsafe { x86::gelu(x) };
    }
    gelu_portable(x)
}

/// [`gelu`] in plain Rust: the reference of the AVX-512 version, and the code on CPUs without it.
pub fn gelu_portable(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Scales each `width`-wide row by `scale` and turns it into a softmax over its entries.
pub fn softmax_rows(x: &mut [f32], width: usize, scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was just detected.
        return unsafe { x86::softmax_rows(x, width, scale) };
    }
    softmax_rows_portable(x, width, scale)
}

/// [`softmax_rows`] in plain Rust: the reference of the AVX-512 version, and the code on CPUs
/// without it. (The compiler does not vectorise it well even for AVX-512: `f32::max` and the
/// saturating `as i32` of `exp` keep NaN semantics, which it handles lane by lane.)
pub fn softmax_rows_portable(x: &mut [f32], width: usize, scale: f32) {
    for row in x.chunks_exact_mut(width) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for v in row.iter_mut() {
            *v = exp((*v - max) * scale);
        }
        let inv = 1.0 / lane_sum(row, |v| v);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    /// Lanes `0..n` of a 16-lane register.
    #[inline(always)]
    pub(crate) fn tail_mask(n: usize) -> __mmask16 {
        ((1u32 << n) - 1) as __mmask16
    }

    /// [`super::softmax_rows`] in AVX-512: the maximum over 16 lanes at once, and 16 `exp`s
    /// per step by the same polynomial as [`super::exp`], with `2ⁿ` applied by `vscalefps`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax_rows(x: &mut [f32], width: usize, scale: f32) {
        let full = width / 16 * 16;
        let mask = tail_mask(width - full);
        for row in x.chunks_exact_mut(width) {
            let p = row.as_mut_ptr();
            unsafe {
                let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
                for i in (0..full).step_by(16) {
                    m = _mm512_max_ps(m, _mm512_loadu_ps(p.add(i)));
                }
                if full < width {
                    m = _mm512_max_ps(m, _mm512_mask_loadu_ps(m, mask, p.add(full)));
                }
                let max = _mm512_set1_ps(_mm512_reduce_max_ps(m));
                let s = _mm512_set1_ps(scale);
                let mut sum = _mm512_setzero_ps();
                for i in (0..full).step_by(16) {
                    let e = exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(p.add(i)), max), s));
                    _mm512_storeu_ps(p.add(i), e);
                    sum = _mm512_add_ps(sum, e);
                }
                if full < width {
                    let v = _mm512_maskz_loadu_ps(mask, p.add(full));
                    let e = _mm512_maskz_mov_ps(mask, exp16(_mm512_mul_ps(_mm512_sub_ps(v, max), s)));
                    _mm512_mask_storeu_ps(p.add(full), mask, e);
                    sum = _mm512_add_ps(sum, e);
                }
                let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
                for i in (0..full).step_by(16) {
                    _mm512_storeu_ps(p.add(i), _mm512_mul_ps(_mm512_loadu_ps(p.add(i)), inv));
                }
                if full < width {
                    let v = _mm512_maskz_loadu_ps(mask, p.add(full));
                    _mm512_mask_storeu_ps(p.add(full), mask, _mm512_mul_ps(v, inv));
                }
            }
        }
    }

    /// [`super::gelu`] on 16 values at a time, with [`super::erf`]'s rational function. Its
    /// division is a reciprocal estimate refined by one Newton step (`vdivps` alone took as
    /// long as the rest of the GELU).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gelu(x: &mut [f32]) {
        let n = x.len();
        let full = n / 16 * 16;
        let p = x.as_mut_ptr();
        unsafe {
            for i in (0..full).step_by(16) {
                _mm512_storeu_ps(p.add(i), gelu16(_mm512_loadu_ps(p.add(i))));
            }
            if full < n {
                let mask = tail_mask(n - full);
                _mm512_mask_storeu_ps(p.add(full), mask, gelu16(_mm512_maskz_loadu_ps(mask, p.add(full))));
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn gelu16(v: __m512) -> __m512 {
        let x = _mm512_mul_ps(v, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
        let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0)), _mm512_set1_ps(4.0));
        let x2 = _mm512_mul_ps(x, x);
        let mut num = _mm512_set1_ps(-2.726_142_3e-10);
        for c in [2.770_681_4e-8, -2.101_024e-6, -5.692_506_4e-5, -7.349_906e-4, -2.954_600_2e-3, -1.609_603_3e-2] {
            num = _mm512_fmadd_ps(num, x2, _mm512_set1_ps(c));
        }
        let mut den = _mm512_set1_ps(-1.456_607_2e-5);
        for c in [-2.133_740_5e-4, -1.682_827e-3, -7.373_329e-3, -1.426_474e-2] {
            den = _mm512_fmadd_ps(den, x2, _mm512_set1_ps(c));
        }
        // 1/den: the estimate (relative error 2⁻¹⁴) and one Newton step, r·(2 − den·r).
        let r = _mm512_rcp14_ps(den);
        let r = _mm512_mul_ps(r, _mm512_fnmadd_ps(den, r, _mm512_set1_ps(2.0)));
        let erf = _mm512_mul_ps(_mm512_mul_ps(x, num), r);
        let half = _mm512_mul_ps(v, _mm512_set1_ps(0.5));
        _mm512_fmadd_ps(half, erf, half)
    }

    /// [`super::exp`] on 16 lanes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn exp16(x: __m512) -> __m512 {
        let x = _mm512_max_ps(x, _mm512_set1_ps(-87.0));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            x,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.0 / 720.0);
        for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        _mm512_scalef_ps(p, n)
    }
}

/// `erf(x)` as the rational approximation Eigen and XLA use for f32 (odd degree-13 numerator
/// over even degree-8 denominator on x clamped to ±4): absolute error < 5e-7, no branches.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906e-4;
    p = p * x2 + -2.954_600_2e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_5e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    x * p / q
}

/// `eˣ` for x ≤ 0 down to about −87 (softmax arguments): `2ⁿ · e^r` with |r| ≤ ln2/2 and a
/// degree-6 Taylor polynomial for `e^r` (relative error ≈ 2e-7); below −87 it returns e⁻⁸⁷
/// (≈ 1.6e-38, nothing next to the softmax maximum's 1).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    // ln 2 split in two so that x − n·ln2 stays exact for the n that occur.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    f32::from_bits(((n as i32 + 127) as u32) << 23) * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0f64;
        for i in -6000..=6000 {
            let x = i as f64 / 1000.0;
            let want = libm_erf(x);
            worst = worst.max((erf(x as f32) as f64 - want).abs());
        }
        assert!(worst < 5e-7, "erf max abs error {worst}");
    }

    /// erf by its Taylor series (small x) or continued fraction (large x), in f64.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 3.0 {
            // erfc(x) = e^{-x²}/(x√π) · 1/(1 + 1/(2x²)/(1 + 2/(2x²)/(1 + …))) — Lentz would do,
            // but at |x| > 3 erfc < 2.3e-5 and the asymptotic series is accurate enough.
            let t = 1.0 / (2.0 * x * x);
            let erfc = (-x * x).exp() / (x.abs() * std::f64::consts::PI.sqrt())
                * (1.0 - t + 3.0 * t * t - 15.0 * t * t * t + 105.0 * t.powi(4));
            return x.signum() * (1.0 - erfc);
        }
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_matches_std() {
        for i in 0..=8800 {
            let x = -(i as f32) / 100.0;
            let (got, want) = (exp(x), x.exp());
            assert!((got - want).abs() <= 4e-7 * want + 1e-37, "exp({x}) = {got}, want {want}");
        }
        assert!(exp(-200.0) < 2e-38);
    }

    #[test]
    fn layer_norm_and_softmax_rows() {
        let mut h = vec![1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 0.0, 1.0];
        residual_layer_norm(&mut h, &[0.0; 8], 4, &[1.0; 4], &[0.5; 4], 0.0);
        let want = [-1.341_640_8, -0.447_213_6, 0.447_213_6, 1.341_640_8];
        for (g, w) in h[..4].iter().zip(want) {
            assert!((g - (w + 0.5)).abs() < 1e-6, "{h:?}");
        }
        let mut s = vec![0.0, 0.0, 1.0, 1.0];
        softmax_rows(&mut s, 2, 3.0);
        assert_eq!(s, vec![0.5, 0.5, 0.5, 0.5]);
        let mut s = vec![0.0, 0.0, 1.0, 1.0];
        softmax_rows_portable(&mut s, 2, 3.0);
        assert_eq!(s, vec![0.5, 0.5, 0.5, 0.5]);
        let mut g = vec![0.0, 1.0, -1.0];
        gelu(&mut g);
        assert!((g[1] - 0.841_344_7).abs() < 1e-6 && (g[2] + 0.158_655_3).abs() < 1e-6, "{g:?}");
        let mut g = vec![0.0, 1.0, -1.0];
        gelu_portable(&mut g);
        assert!((g[1] - 0.841_344_7).abs() < 1e-6 && (g[2] + 0.158_655_3).abs() < 1e-6, "{g:?}");
    }

    #[test]
    fn softmax_rows_agrees_with_the_portable_version() {
        // Widths with and without a 16-lane tail, rows with a wide range (exp down to its −87
        // floor) and a row of equal values.
        for width in [1, 5, 16, 23, 128, 131] {
            let rows = 4;
            let mut x: Vec<f32> = (0..rows * width).map(|i| ((i * 7919 % 1013) as f32 - 506.0) * 0.05).collect();
            x[..width].fill(2.5);
            let mut fast = x.clone();
            softmax_rows(&mut fast, width, 0.7);
            softmax_rows_portable(&mut x, width, 0.7);
            for (i, (a, b)) in fast.iter().zip(&x).enumerate() {
                assert!((a - b).abs() <= 1e-6 * b.max(1e-30) + 1e-37, "width {width}, entry {i}: {a} vs {b}");
            }
            for row in fast.chunks_exact(width) {
                let total: f32 = row.iter().sum();
                assert!((total - 1.0).abs() < 1e-5, "width {width}: a row sums to {total}");
            }
        }
    }

    #[test]
    fn gelu_agrees_with_the_portable_version() {
        for n in [1, 16, 37] {
            let x: Vec<f32> = (0..n * 50).map(|i| (i as f32 - 25.0 * n as f32) * 0.27 / n as f32).collect();
            let (mut fast, mut portable) = (x.clone(), x.clone());
            gelu(&mut fast);
            gelu_portable(&mut portable);
            for (i, (a, b)) in fast.iter().zip(&portable).enumerate() {
                assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "x = {}: {a} vs {b}", x[i]);
            }
        }
    }
}
