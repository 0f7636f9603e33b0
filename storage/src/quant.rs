//! Symmetric per-row int8 quantization.
//!
//! `scale = max|x| / 127`, `q = round(x / scale)` clamped to `[-127, 127]`, so `x ≈ scale · q`
//! with `|x − scale·q| ≤ scale / 2` per element (plus float rounding, ≤ 1e-6 relative). An
//! all-zero row gets scale 0. The engine stores L2-normalised embeddings, for which the scale
//! is small and uniform across rows; the vector is quantized as given (not renormalised), so an
//! int8 score approximates the same dot product as the f32 score.

/// Quantize `v` into `out` (same length) and return the row scale.
pub fn quantize_i8(v: &[f32], out: &mut [i8]) -> f32 {
    debug_assert_eq!(v.len(), out.len());
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        out.fill(0);
        return 0.0;
    }
    let inv = 127.0 / max;
    for (o, x) in out.iter_mut().zip(v) {
        *o = (x * inv).round().clamp(-127.0, 127.0) as i8;
    }
    max / 127.0
}

/// Reconstruct `scale · q` into `out` (same length).
pub fn dequantize_i8(q: &[i8], scale: f32, out: &mut [f32]) {
    debug_assert_eq!(q.len(), out.len());
    for (o, &x) in out.iter_mut().zip(q) {
        *o = x as f32 * scale;
    }
}
