//! Int8 linear layers for CPU inference: `y = x·W + b` with `W` quantised once per output
//! channel (symmetric, integers in −127..=127) and each row of `x` quantised when it arrives
//! (symmetric, per row, the "dynamic" activation quantisation of ONNX Runtime and PyTorch).
//!
//! The products are u8 × s8 dot products of four byte pairs summed into i32 — one AVX-512 VNNI
//! `vpdpbusd` does 64 of them. The instruction wants one operand unsigned, so the weights are
//! stored offset by +128 (as u8) and the offset is taken back out with the row sum of the
//! quantised activations: `Σ (w+128)·a = Σ w·a + 128·Σ a`. The VNNI kernel is chosen at run
//! time (`is_x86_feature_detected!`); elsewhere a portable loop computes the same integers.
//! Where the CPU has AMX-INT8 (Intel Sapphire Rapids and later) and the operating system lets
//! the process use it, the products run on the tile unit instead (`amx`): `tdpbsud` takes the
//! activations signed and the weights unsigned, so it reads the same packed weights and gives
//! the same integers as the VNNI kernel, sixteen times as many per instruction.
//! f32 stays the reference path of the encoder; this module serves the int8 inference path (the
//! network around it is `int8_bert.rs`), which indexing and search use by default where
//! [`fast_kernel_available`].
use rayon::prelude::*;

/// Output channels per packed block: one 512-bit register of i32 accumulators.
const LANES: usize = 16;
/// Input positions per dot-product step (the four byte pairs of `vpdpbusd`).
const GROUP: usize = 4;
/// Rows per register tile.
const TILE_ROWS: usize = 8;
/// Packed blocks (of [`LANES`] outputs) per register tile: 8 rows × 3 blocks = 24 accumulators.
const TILE_BLOCKS: usize = 3;
/// Rows per parallel job when a matrix has many rows.
const JOB_ROWS: usize = 64;

/// Rows of activations quantised to int8, one scale per row.
#[derive(Debug, Clone, Default)]
pub struct QuantizedRows {
    rows: usize,
    /// Bytes per row: the input width rounded up to a multiple of [`GROUP`] (padding is 0).
    stride: usize,
    values: Vec<i8>,
    /// `x ≈ values · scale` per row.
    scales: Vec<f32>,
    /// `Σ values` per row (takes the weights' +128 offset back out).
    sums: Vec<i32>,
}

impl QuantizedRows {
    /// Quantises `rows` rows of width `width` (row-major `x`): `q = round(x · 127 / max|x|)`.
    pub fn quantize(x: &[f32], rows: usize, width: usize) -> Self {
        let mut out = Self::default();
        out.quantize_into(x, rows, width);
        out
    }

    /// [`Self::quantize`] into `self`, keeping its allocations (the encoder reuses one set of
    /// buffers for every layer: fresh ones cost a page fault per 4 KiB each time).
    pub fn quantize_into(&mut self, x: &[f32], rows: usize, width: usize) {
        assert_eq!(x.len(), rows * width, "quantize: {} values for {rows} × {width}", x.len());
        self.reshape(rows, width);
        let stride = self.stride;
        x.par_chunks_exact(width.max(1))
            .zip(self.values.par_chunks_exact_mut(stride.max(1)))
            .zip(self.scales.par_iter_mut())
            .zip(self.sums.par_iter_mut())
            .with_min_len(16)
            .for_each(|(((src, dst), scale), sum)| (*scale, *sum) = quantize_row(src, &mut dst[..width]));
    }

    /// Applies `f(row index, row)` to each row of `x` in place, then quantises the row into
    /// `self` while it is still in the cache (the encoder's GELU and LayerNorms before a
    /// product: one pass over the activations instead of two). Keeps `self`'s allocations.
    pub fn quantize_after_into(&mut self, x: &mut [f32], rows: usize, width: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
        assert_eq!(x.len(), rows * width, "quantize: {} values for {rows} × {width}", x.len());
        self.reshape(rows, width);
        let stride = self.stride;
        x.par_chunks_exact_mut(width.max(1))
            .zip(self.values.par_chunks_exact_mut(stride.max(1)))
            .zip(self.scales.par_iter_mut())
            .zip(self.sums.par_iter_mut())
            .enumerate()
            .with_min_len(16)
            .for_each(|(r, (((src, dst), scale), sum))| {
                f(r, src);
                (*scale, *sum) = quantize_row(src, &mut dst[..width]);
            });
    }

    /// Sizes the buffers for `rows × width`. Each row's values past `width` (padding up to the
    /// stride) must read 0; rows are otherwise overwritten whole, so old values are cleared only
    /// when the width leaves padding.
    fn reshape(&mut self, rows: usize, width: usize) {
        let stride = width.div_ceil(GROUP) * GROUP;
        if stride != width {
            self.values.clear();
        }
        self.values.resize(rows * stride, 0);
        self.scales.resize(rows, 0.0);
        self.sums.resize(rows, 0);
        self.rows = rows;
        self.stride = stride;
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// Quantises one row into `dst` (`q = round(x · 127 / max|x|)`, ties to even); returns the
/// row's scale and `Σ q`.
fn quantize_row(src: &[f32], dst: &mut [i8]) -> (f32, i32) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was just detected.
        return unsafe { vnni::quantize_row(src, dst) };
    }
    quantize_row_portable(src, dst)
}

/// [`quantize_row`] in plain Rust: the reference of the AVX-512 version, and the code on CPUs
/// without it. (Even compiled for AVX-512 it was slow: the NaN semantics of `f32::max` and of the
/// saturating `as i32` were kept lane by lane, and quantising took as long as the int8 products.)
fn quantize_row_portable(src: &[f32], dst: &mut [i8]) -> (f32, i32) {
    // Eight independent maxima so the loop vectorises.
    let mut m = [0f32; 8];
    let mut chunks = src.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            m[i] = m[i].max(c[i].abs());
        }
    }
    let tail = chunks.remainder().iter().fold(0f32, |a, v| a.max(v.abs()));
    let amax = m.iter().fold(tail, |a, &v| a.max(v));
    let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0i32;
    for (d, &v) in dst.iter_mut().zip(src) {
        let q = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i32;
        *d = q as i8;
        sum += q;
    }
    (amax / 127.0, sum)
}

/// A linear layer with int8 weights: `d_in → d_out`, per-output-channel scales, f32 bias.
#[derive(Debug, Clone)]
pub struct Int8Linear {
    d_in: usize,
    d_out: usize,
    /// `d_in / GROUP`, rounded up.
    groups: usize,
    /// `d_out / LANES`, rounded up.
    blocks: usize,
    /// `w + 128` as u8, laid out `[block][group][lane][GROUP]`: one 64-byte load per block and
    /// step. Padding (outputs past `d_out`, inputs past `d_in`) holds weight 0 (byte 128).
    packed: Vec<u8>,
    /// Per output channel (padded to `blocks · LANES` with zeros): `w ≈ q · scale`.
    scales: Vec<f32>,
    /// Per output channel, padded like `scales`.
    bias: Vec<f32>,
}

impl Int8Linear {
    /// Quantises a weight matrix stored input-major (`weight[i · d_out + o]`, burn's `Linear`
    /// layout `[d_in, d_out]`) with an optional bias of `d_out` values.
    pub fn new(weight: &[f32], bias: Option<&[f32]>, d_in: usize, d_out: usize) -> Self {
        assert_eq!(weight.len(), d_in * d_out, "Int8Linear: {} weights for {d_in} × {d_out}", weight.len());
        let groups = d_in.div_ceil(GROUP);
        let blocks = d_out.div_ceil(LANES);
        let mut scales = vec![0f32; blocks * LANES];
        let mut inv = vec![0f32; d_out];
        for o in 0..d_out {
            let amax = (0..d_in).fold(0f32, |a, i| a.max(weight[i * d_out + o].abs()));
            scales[o] = amax / 127.0;
            inv[o] = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        }
        let mut packed = vec![128u8; blocks * groups * LANES * GROUP];
        for i in 0..d_in {
            let (g, j) = (i / GROUP, i % GROUP);
            for o in 0..d_out {
                let (b, lane) = (o / LANES, o % LANES);
                let q = (weight[i * d_out + o] * inv[o]).round_ties_even().clamp(-127.0, 127.0) as i32;
                packed[((b * groups + g) * LANES + lane) * GROUP + j] = (q + 128) as u8;
            }
        }
        let mut padded_bias = vec![0f32; blocks * LANES];
        if let Some(bias) = bias {
            assert_eq!(bias.len(), d_out, "Int8Linear: {} biases for {d_out} outputs", bias.len());
            padded_bias[..d_out].copy_from_slice(bias);
        }
        Self { d_in, d_out, groups, blocks, packed, scales, bias: padded_bias }
    }

    /// Input width.
    pub fn d_in(&self) -> usize {
        self.d_in
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.d_out
    }

    /// `x · W + b` for quantised rows `x`; returns `x.rows() × d_out` values, row-major.
    pub fn forward(&self, x: &QuantizedRows) -> Vec<f32> {
        let mut out = Vec::new();
        self.forward_into(x, &mut out);
        out
    }

    /// [`Self::forward`] into `out` (replacing its contents, keeping its allocation).
    pub fn forward_into(&self, x: &QuantizedRows, out: &mut Vec<f32>) {
        assert_eq!(x.stride, self.groups * GROUP, "Int8Linear: input width {} but the layer takes {}", x.stride, self.d_in);
        // Not zeroed first (zeroing was a few per cent of the encoder's time): the kernels write
        // every output of every row.
        let len = x.rows * self.d_out;
        out.clear();
        out.reserve(len);
        let kernel = Kernel::detect();
        let threads = rayon::current_num_threads();
        if x.rows >= JOB_ROWS * 2 || threads == 1 {
            // Many rows: each job takes a band of rows across every output.
            out.spare_capacity_mut()[..len].par_chunks_mut(JOB_ROWS * self.d_out).enumerate().for_each(|(j, band)| {
                let r0 = j * JOB_ROWS;
                let rows = band.len() / self.d_out;
                self.run(kernel, x, r0, rows, 0, self.blocks, band.as_mut_ptr().cast());
            });
        } else {
            // Few rows (a query): split the outputs instead, so both cores work.
            let jobs = threads.min(self.blocks.div_ceil(TILE_BLOCKS)).max(1);
            let per = self.blocks.div_ceil(jobs).div_ceil(TILE_BLOCKS) * TILE_BLOCKS;
            let dst = SendPtr(out.as_mut_ptr());
            (0..jobs).into_par_iter().for_each(|j| {
                let b0 = (j * per).min(self.blocks);
                let b1 = ((j + 1) * per).min(self.blocks);
                let dst = &dst;
                // Jobs write disjoint column ranges of the same rows.
                self.run(kernel, x, 0, x.rows, b0, b1, dst.0);
            });
        }
        // SAFETY: every one of the `len` values was written above.
        unsafe { out.set_len(len) };
    }

    /// Computes rows `r0..r0+rows` of `x` into `out` (which starts at row `r0`), output blocks
    /// `b0..b1`.
    #[allow(clippy::too_many_arguments)]
    fn run(&self, kernel: Kernel, x: &QuantizedRows, r0: usize, rows: usize, b0: usize, b1: usize, out: *mut f32) {
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Amx && x.stride % amx::DEPTH == 0 {
            // SAFETY: detect() found AMX-INT8 and AVX-512 and got the tile state for the process.
            unsafe { amx::band(self, x, r0, rows, b0, b1, out) };
            return;
        }
        let tile_kernel = kernel.tile();
        let mut b = b0;
        while b < b1 {
            let nb = (b1 - b).min(TILE_BLOCKS);
            let mut r = 0;
            while r < rows {
                let nr = (rows - r).min(TILE_ROWS);
                let tile = Tile {
                    layer: self,
                    x,
                    row: r0 + r,
                    rows: nr,
                    block: b,
                    blocks: nb,
                    // SAFETY: row r of this band is row r0 + r of the output.
                    out: unsafe { out.add(r * self.d_out) },
                };
                tile_kernel(&tile);
                r += nr;
            }
            b += nb;
        }
    }
}

struct SendPtr(*mut f32);
// SAFETY: the jobs that share the pointer write disjoint elements.
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// One register tile: `rows` (≤ TILE_ROWS) rows from `row`, `blocks` (≤ TILE_BLOCKS) output
/// blocks from `block`, written to `out` (the tile's first row, column 0 of the layer).
struct Tile<'a> {
    layer: &'a Int8Linear,
    x: &'a QuantizedRows,
    row: usize,
    rows: usize,
    block: usize,
    blocks: usize,
    out: *mut f32,
}

impl Tile<'_> {
    /// Writes one accumulated integer dot product as `(acc − 128·Σa)·s_a·s_w + b`.
    #[inline(always)]
    fn finish(&self, r: usize, o: usize, acc: i32) -> f32 {
        let x = self.x;
        let l = self.layer;
        let row = self.row + r;
        let dot = acc.wrapping_sub(128 * x.sums[row]);
        dot as f32 * (x.scales[row] * l.scales[o]) + l.bias[o]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Vnni,
    #[cfg(target_arch = "x86_64")]
    Amx,
}

impl Kernel {
    /// The fastest kernel this CPU runs. `OPTICAL_INT8_PORTABLE` (set to anything) forces the
    /// portable loop and `OPTICAL_INT8_NO_AMX` stops at VNNI: for benchmarks and for checking
    /// one kernel against another.
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::env::var_os("OPTICAL_INT8_PORTABLE").is_none()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
        {
            if std::env::var_os("OPTICAL_INT8_NO_AMX").is_none() && amx::available() {
                return Kernel::Amx;
            }
            return Kernel::Vnni;
        }
        Kernel::Portable
    }

    /// The register-tile kernel of this kernel family (the AMX path falls back to VNNI for
    /// layers whose input width is not a whole number of tile rows).
    fn tile(self) -> fn(&Tile) {
        match self {
            Kernel::Portable => portable_tile,
            // SAFETY (both): detect() checked the CPU features before choosing these.
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni | Kernel::Amx => |t| unsafe { vnni::tile(t) },
        }
    }
}

/// Whether this CPU runs the int8 products on AVX-512 VNNI or AMX (and not on the portable
/// loop, which is slower than the f32 path): where it does, indexing and search encode in int8
/// by default ([`super::EncoderOptions::for_search`]).
pub fn fast_kernel_available() -> bool {
    Kernel::detect() != Kernel::Portable
}

/// The name of the kernel this CPU runs ("amx-int8", "avx512-vnni" or "portable").
pub fn kernel_name() -> &'static str {
    match Kernel::detect() {
        Kernel::Portable => "portable",
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni => "avx512-vnni",
        #[cfg(target_arch = "x86_64")]
        Kernel::Amx => "amx-int8",
    }
}

fn portable_tile(t: &Tile) {
    let l = t.layer;
    let x = t.x;
    for r in 0..t.rows {
        let a = &x.values[(t.row + r) * x.stride..][..x.stride];
        for b in t.block..t.block + t.blocks {
            let w = &l.packed[b * l.groups * LANES * GROUP..][..l.groups * LANES * GROUP];
            for lane in 0..LANES {
                let o = b * LANES + lane;
                if o >= l.d_out {
                    break;
                }
                let mut acc = 0i32;
                for g in 0..l.groups {
                    let wg = &w[(g * LANES + lane) * GROUP..][..GROUP];
                    for j in 0..GROUP {
                        acc += wg[j] as i32 * a[g * GROUP + j] as i32;
                    }
                }
                // SAFETY: o < d_out and row r is inside the tile's output band.
                unsafe { *t.out.add(r * l.d_out + o) = t.finish(r, o, acc) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{GROUP, Int8Linear, LANES, QuantizedRows, TILE_BLOCKS, TILE_ROWS, Tile};

    /// Dispatches a tile to the kernel instance of its exact shape, so that the accumulators
    /// are a fixed-size array the compiler keeps in registers.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile(t: &Tile) {
        macro_rules! by_rows {
            ($nb:literal) => {
                match t.rows {
                    8 => kernel::<8, $nb>(t),
                    7 => kernel::<7, $nb>(t),
                    6 => kernel::<6, $nb>(t),
                    5 => kernel::<5, $nb>(t),
                    4 => kernel::<4, $nb>(t),
                    3 => kernel::<3, $nb>(t),
                    2 => kernel::<2, $nb>(t),
                    _ => kernel::<1, $nb>(t),
                }
            };
        }
        const _: () = assert!(TILE_ROWS == 8 && TILE_BLOCKS == 3);
        unsafe {
            match t.blocks {
                3 => by_rows!(3),
                2 => by_rows!(2),
                _ => by_rows!(1),
            }
        }
    }

    /// [`super::quantize_row`] on 16 values at a time: the same integers as the portable
    /// version (`vcvtps2dq` rounds to nearest even, as `round_ties_even` does).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn quantize_row(src: &[f32], dst: &mut [i8]) -> (f32, i32) {
        assert_eq!(src.len(), dst.len());
        let n = src.len();
        let full = n / 16 * 16;
        let mask = super::super::rowops::x86::tail_mask(n - full);
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        unsafe {
            let mut m = _mm512_setzero_ps();
            for i in (0..full).step_by(16) {
                m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(s.add(i))));
            }
            m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(mask, s.add(full))));
            let amax = _mm512_reduce_max_ps(m);
            let inv = _mm512_set1_ps(if amax > 0.0 { 127.0 / amax } else { 0.0 });
            let (lo, hi) = (_mm512_set1_epi32(-127), _mm512_set1_epi32(127));
            let quantize = |v: __m512| {
                let q = _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(v, inv));
                _mm512_min_epi32(_mm512_max_epi32(q, lo), hi)
            };
            let mut sum = _mm512_setzero_si512();
            for i in (0..full).step_by(16) {
                let q = quantize(_mm512_loadu_ps(s.add(i)));
                _mm512_mask_cvtepi32_storeu_epi8(d.add(i) as *mut _, 0xffff, q);
                sum = _mm512_add_epi32(sum, q);
            }
            let q = quantize(_mm512_maskz_loadu_ps(mask, s.add(full)));
            _mm512_mask_cvtepi32_storeu_epi8(d.add(full) as *mut _, mask, q);
            sum = _mm512_add_epi32(sum, q);
            (amax / 127.0, _mm512_reduce_add_epi32(sum))
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn kernel<const R: usize, const B: usize>(t: &Tile) {
        let l = t.layer;
        let x = t.x;
        let groups = l.groups;
        let mut acc = [[_mm512_setzero_si512(); B]; R];
        unsafe {
            let a = x.values.as_ptr().add(t.row * x.stride);
            let w = l.packed.as_ptr().add(t.block * groups * LANES * GROUP);
            for g in 0..groups {
                let mut wv = [_mm512_setzero_si512(); B];
                for (b, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(w.add((b * groups + g) * LANES * GROUP) as *const _);
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_epi32((a.add(r * x.stride + g * GROUP) as *const i32).read_unaligned());
                    for b in 0..B {
                        acc_r[b] = _mm512_dpbusd_epi32(acc_r[b], wv[b], av);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                for (b, &v) in acc_r.iter().enumerate() {
                    let o = (t.block + b) * LANES;
                    finish_lanes(l, x, t.row + r, o, v, t.out.add(r * l.d_out + o));
                }
            }
        }
    }

    /// Writes the 16 accumulated dot products `acc` of input row `row`, outputs `o..o + 16`, to
    /// `dst` as [`Tile::finish`] does (lanes past `d_out` are not written).
    ///
    /// # Safety
    /// AVX-512F; `dst` valid for the outputs `o..min(o + 16, d_out)` of the row.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn finish_lanes(l: &Int8Linear, x: &QuantizedRows, row: usize, o: usize, acc: __m512i, dst: *mut f32) {
        unsafe {
            let offset = _mm512_set1_epi32(128 * x.sums[row]);
            let dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, offset));
            let scale = _mm512_mul_ps(_mm512_set1_ps(x.scales[row]), _mm512_loadu_ps(l.scales.as_ptr().add(o)));
            let y = _mm512_fmadd_ps(dot, scale, _mm512_loadu_ps(l.bias.as_ptr().add(o)));
            let valid = l.d_out - o;
            if valid >= LANES {
                _mm512_storeu_ps(dst, y);
            } else {
                _mm512_mask_storeu_ps(dst, ((1u32 << valid) - 1) as u16, y);
            }
        }
    }
}

/// The products on AMX tiles. Eight tile registers hold a 32 × 32 block of outputs: C0..C3 (the
/// i32 sums of rows 0–15 / 16–31 × outputs 0–15 / 16–31), A0, A1 (sixteen rows of 64 activation
/// bytes each) and B0, B1 (sixteen groups of 4 inputs × 16 outputs of packed weights — exactly
/// one 1 KiB run of [`Int8Linear::packed`]). One `tdpbsud` is a 16 × 16 × 64 product.
#[cfg(target_arch = "x86_64")]
mod amx {
    use std::arch::asm;
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    use super::{GROUP, Int8Linear, LANES, QuantizedRows, vnni};

    /// Input bytes per tile row, and so per step along the inputs: layers whose input stride is
    /// not a multiple of it run on the VNNI kernel.
    pub(super) const DEPTH: usize = 64;
    /// Rows of a tile.
    const ROWS: usize = 16;
    /// Bytes between the rows of a B tile (one group of every lane of a block).
    const B_STRIDE: usize = LANES * GROUP;

    /// Whether the CPU has AMX-INT8 and Linux gave this process the tile state (a process must
    /// ask for it, once, before any thread uses it).
    pub(super) fn available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            // Leaf 7 is read only where the CPU has it.
            let (max_leaf, _) = __get_cpuid_max(0);
            if max_leaf < 7 {
                return false;
            }
            let edx = __cpuid_count(7, 0).edx;
            let (tile, int8) = (edx >> 24 & 1 == 1, edx >> 25 & 1 == 1);
            tile && int8 && request_tile_state()
        })
    }

    #[cfg(target_os = "linux")]
    fn request_tile_state() -> bool {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with these arguments only changes the process's permissions.
        unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
    }

    #[cfg(not(target_os = "linux"))]
    fn request_tile_state() -> bool {
        false
    }

    /// The tile configuration `ldtilecfg` reads (palette 1).
    #[repr(C, align(64))]
    #[derive(PartialEq)]
    struct Config {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        /// Bytes per row of tiles 0..8 (then 8 reserved).
        bytes_per_row: [u16; 16],
        /// Rows of tiles 0..8 (then 8 reserved).
        rows: [u8; 16],
    }

    impl Config {
        /// C0, C1, A0: `top` rows; C2, C3, A1: `bottom` rows (0: unused); B0, B1: 16 rows.
        fn new(top: usize, bottom: usize) -> Self {
            let mut c = Config { palette: 1, start_row: 0, reserved: [0; 14], bytes_per_row: [0; 16], rows: [0; 16] };
            for (tile, rows) in [(0, top), (1, top), (4, top), (2, bottom), (3, bottom), (5, bottom), (6, ROWS), (7, ROWS)] {
                if rows > 0 {
                    c.rows[tile] = rows as u8;
                    c.bytes_per_row[tile] = DEPTH as u16;
                }
            }
            c
        }
    }

    macro_rules! tile_zero {
        ($t:literal) => {
            asm!(concat!("tilezero tmm", $t), options(nostack, nomem))
        };
    }
    macro_rules! tile_load {
        ($t:literal, $ptr:expr, $stride:expr) => {
            asm!(concat!("tileloadd tmm", $t, ", [{p} + {s}*1]"), p = in(reg) $ptr, s = in(reg) $stride, options(nostack, readonly))
        };
    }
    macro_rules! tile_store {
        ($t:literal, $ptr:expr) => {
            asm!(concat!("tilestored [{p} + {s}*1], tmm", $t), p = in(reg) $ptr, s = in(reg) LANES * 4, options(nostack))
        };
    }
    /// `C += A · B`, A signed bytes (activations), B unsigned bytes (weights + 128).
    macro_rules! tile_dot {
        ($c:literal, $a:literal, $b:literal) => {
            asm!(concat!("tdpbsud tmm", $c, ", tmm", $a, ", tmm", $b), options(nostack, nomem))
        };
    }

    /// Rows `r0..r0 + rows` of `x` times output blocks `b0..b1` of `l`, into `out` (row `r0`,
    /// column 0 of the output), 32 rows × 2 blocks at a time.
    ///
    /// # Safety
    /// [`available`] returned true and the CPU has AVX-512F; `x.stride` is a multiple of
    /// [`DEPTH`]; `out` is valid for `rows` rows of `l.d_out` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn band(l: &Int8Linear, x: &QuantizedRows, r0: usize, rows: usize, b0: usize, b1: usize, out: *mut f32) {
        debug_assert_eq!(x.stride % DEPTH, 0);
        let steps = x.stride / DEPTH;
        let block_bytes = l.groups * B_STRIDE;
        // The four C tiles, stored for the epilogue: [tile][row][lane].
        let mut sums = [[[0i32; LANES]; ROWS]; 4];
        let mut config: Option<Config> = None;
        unsafe {
            for r in (0..rows).step_by(2 * ROWS) {
                let top = (rows - r).min(ROWS);
                let bottom = (rows - r - top).min(ROWS);
                let wanted = Config::new(top, bottom);
                if config.as_ref() != Some(&wanted) {
                    asm!("ldtilecfg [{}]", in(reg) &wanted, options(nostack, readonly));
                    config = Some(wanted);
                }
                let a = x.values.as_ptr().add((r0 + r) * x.stride);
                let a_bottom = a.add(ROWS * x.stride);
                for b in (b0..b1).step_by(2) {
                    let pair = b + 1 < b1;
                    let w = l.packed.as_ptr().add(b * block_bytes);
                    let w_next = w.add(block_bytes);
                    tile_zero!("0");
                    if pair {
                        tile_zero!("1");
                    }
                    if bottom > 0 {
                        tile_zero!("2");
                        if pair {
                            tile_zero!("3");
                        }
                    }
                    for k in 0..steps {
                        tile_load!("4", a.add(k * DEPTH), x.stride);
                        tile_load!("6", w.add(k * ROWS * B_STRIDE), B_STRIDE);
                        tile_dot!("0", "4", "6");
                        if bottom > 0 {
                            tile_load!("5", a_bottom.add(k * DEPTH), x.stride);
                            tile_dot!("2", "5", "6");
                        }
                        if pair {
                            tile_load!("7", w_next.add(k * ROWS * B_STRIDE), B_STRIDE);
                            tile_dot!("1", "4", "7");
                            if bottom > 0 {
                                tile_dot!("3", "5", "7");
                            }
                        }
                    }
                    tile_store!("0", sums[0].as_mut_ptr());
                    if pair {
                        tile_store!("1", sums[1].as_mut_ptr());
                    }
                    if bottom > 0 {
                        tile_store!("2", sums[2].as_mut_ptr());
                        if pair {
                            tile_store!("3", sums[3].as_mut_ptr());
                        }
                    }
                    for (tile, acc) in sums.iter().enumerate() {
                        let (half, block) = (tile / 2, b + tile % 2);
                        let valid = if half == 0 { top } else { bottom };
                        if block >= b1 {
                            continue;
                        }
                        let o = block * LANES;
                        for (i, lanes) in acc.iter().enumerate().take(valid) {
                            let row = r + half * ROWS + i;
                            let v = _mm512_loadu_si512(lanes.as_ptr().cast());
                            vnni::finish_lanes(l, x, r0 + row, o, v, out.add(row * l.d_out + o));
                        }
                    }
                }
            }
            // Hands the tile state back, so the thread does not carry 8 KiB of it through
            // every context switch.
            asm!("tilerelease", options(nostack, nomem));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix in [-1, 1) (xorshift), with a few large entries
    /// like the outlier features of transformer activations.
    fn matrix(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let v = (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                if i % 97 == 0 { v * 8.0 } else { v }
            })
            .collect()
    }

    fn reference(x: &[f32], w: &[f32], b: &[f32], rows: usize, d_in: usize, d_out: usize) -> Vec<f32> {
        let mut y = vec![0f32; rows * d_out];
        for r in 0..rows {
            for o in 0..d_out {
                let mut acc = b[o] as f64;
                for i in 0..d_in {
                    acc += x[r * d_in + i] as f64 * w[i * d_out + o] as f64;
                }
                y[r * d_out + o] = acc as f32;
            }
        }
        y
    }

    /// Relative error of the int8 product: ‖y − ŷ‖ / ‖y‖ over every output.
    fn relative_error(rows: usize, d_in: usize, d_out: usize) -> (f32, Vec<f32>) {
        let x = matrix(rows * d_in, 1 + rows as u64);
        let w = matrix(d_in * d_out, 2 + d_out as u64);
        let b = matrix(d_out, 3);
        let want = reference(&x, &w, &b, rows, d_in, d_out);
        let layer = Int8Linear::new(&w, Some(&b), d_in, d_out);
        let got = layer.forward(&QuantizedRows::quantize(&x, rows, d_in));
        let num: f32 = want.iter().zip(&got).map(|(a, b)| (a - b) * (a - b)).sum();
        let den: f32 = want.iter().map(|a| a * a).sum();
        ((num / den).sqrt(), got)
    }

    #[test]
    fn kernel_computes_the_dequantised_product() {
        // The only error is the rounding to int8: multiplying the dequantised values in f64
        // gives the kernel's result up to f32 rounding.
        let (rows, d_in, d_out) = (21, 384, 100);
        let x = matrix(rows * d_in, 7);
        let w = matrix(d_in * d_out, 8);
        let b = matrix(d_out, 9);
        let layer = Int8Linear::new(&w, Some(&b), d_in, d_out);
        let q = QuantizedRows::quantize(&x, rows, d_in);
        let got = layer.forward(&q);
        for r in 0..rows {
            for o in 0..d_out {
                let (blk, lane) = (o / LANES, o % LANES);
                let mut acc = b[o] as f64;
                for i in 0..d_in {
                    let wq = layer.packed[((blk * layer.groups + i / GROUP) * LANES + lane) * GROUP + i % GROUP] as f64 - 128.0;
                    let xq = q.values[r * q.stride + i] as f64;
                    acc += wq * layer.scales[o] as f64 * xq * q.scales[r] as f64;
                }
                let g = got[r * d_out + o] as f64;
                assert!((g - acc).abs() <= 1e-5 * acc.abs().max(1.0), "row {r} output {o}: {g} vs {acc}");
            }
        }
    }

    #[test]
    fn int8_product_is_close_to_f32() {
        // Shapes of the encoder (384 → 1152, 1536 → 384) and ragged ones that exercise every
        // tile remainder (rows not a multiple of 8, outputs not a multiple of 16 or 48, inputs
        // not a multiple of 4), with few rows (split by outputs) and many (split by rows).
        for &(rows, d_in, d_out) in &[(1, 384, 1152), (7, 1536, 384), (150, 384, 384), (13, 37, 53), (200, 30, 17)] {
            let (err, _) = relative_error(rows, d_in, d_out);
            // Two 127-level roundings; the 8× outliers (1 value in 97) coarsen the step of
            // their row and column to 8/127, which puts the relative error near 3 %.
            assert!(err < 0.05, "{rows}×{d_in}→{d_out}: relative error {err}");
        }
    }

    #[test]
    fn kernels_agree_exactly() {
        // Both kernels compute the same integers; only the f32 epilogue (fma vs mul+add) may
        // differ in the last bit.
        let (rows, d_in, d_out) = (19, 72, 80);
        let x = matrix(rows * d_in, 5);
        let w = matrix(d_in * d_out, 6);
        let layer = Int8Linear::new(&w, None, d_in, d_out);
        let q = QuantizedRows::quantize(&x, rows, d_in);
        let fast = layer.forward(&q);
        let mut portable = vec![0f32; rows * d_out];
        layer.run(Kernel::Portable, &q, 0, rows, 0, layer.blocks, portable.as_mut_ptr());
        for (i, (a, b)) in fast.iter().zip(&portable).enumerate() {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "output {i}: {a} vs {b} (kernel {})", kernel_name());
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn amx_kernel_gives_the_vnni_kernels_results() {
        if !(amx::available() && is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512bw")) {
            eprintln!("SKIPPED amx_kernel_gives_the_vnni_kernels_results: this CPU has no AMX-INT8 (or the OS refused the tile state)");
            return;
        }
        // Row counts around the 16-row tiles and 32-row steps, an odd number of output blocks
        // (80 = 5 × 16), a ragged last block (1100), inputs of one and of several tile depths.
        for &(rows, d_in, d_out) in &[(1, 64, 80), (5, 128, 16), (16, 384, 80), (17, 384, 1100), (31, 64, 48), (33, 1536, 80), (70, 384, 1152)] {
            let x = matrix(rows * d_in, rows as u64);
            let w = matrix(d_in * d_out, d_out as u64);
            let b = matrix(d_out, 3);
            let layer = Int8Linear::new(&w, Some(&b), d_in, d_out);
            let q = QuantizedRows::quantize(&x, rows, d_in);
            let run = |kernel| {
                let mut y = vec![f32::NAN; rows * d_out];
                layer.run(kernel, &q, 0, rows, 0, layer.blocks, y.as_mut_ptr());
                y
            };
            // Same integers, same epilogue: the same bits.
            let (amx, vnni) = (run(Kernel::Amx), run(Kernel::Vnni));
            for (i, (a, v)) in amx.iter().zip(&vnni).enumerate() {
                assert_eq!(a.to_bits(), v.to_bits(), "{rows}×{d_in}→{d_out}, output {i}: amx {a} vs vnni {v}");
            }
            // A band that starts past row 0, over a middle range of blocks (the query path).
            let mut part = vec![f32::NAN; (rows - rows / 2) * d_out];
            layer.run(Kernel::Amx, &q, rows / 2, rows - rows / 2, 1, layer.blocks, part.as_mut_ptr());
            for r in 0..rows - rows / 2 {
                for o in LANES.min(d_out)..d_out {
                    let (got, want) = (part[r * d_out + o], vnni[(rows / 2 + r) * d_out + o]);
                    assert_eq!(got.to_bits(), want.to_bits(), "{rows}×{d_in}→{d_out}, band row {r} output {o}");
                }
            }
        }
    }

    #[test]
    fn quantize_row_agrees_with_the_portable_version() {
        // Widths with and without a 16-lane tail; values that round to ±127, ties, and zeros.
        for width in [1, 3, 16, 37, 384, 1536] {
            let mut x = matrix(width, width as u64);
            x[0] = 0.5;
            if width > 2 {
                x[1] = 0.0;
            }
            let (mut fast, mut portable) = (vec![0i8; width], vec![0i8; width]);
            let a = quantize_row(&x, &mut fast);
            let b = quantize_row_portable(&x, &mut portable);
            assert_eq!(a, b, "width {width}: scale and sum");
            assert_eq!(fast, portable, "width {width}");
        }
        let (mut q, zeros) = (vec![1i8; 5], vec![0f32; 5]);
        assert_eq!(quantize_row(&zeros, &mut q), (0.0, 0));
        assert_eq!(q, vec![0; 5]);
    }

    #[test]
    fn zero_rows_and_zero_weights_give_the_bias() {
        let layer = Int8Linear::new(&[0.0; 8 * 3], Some(&[1.0, -2.0, 3.0]), 8, 3);
        let y = layer.forward(&QuantizedRows::quantize(&[0.0; 2 * 8], 2, 8));
        assert_eq!(y, vec![1.0, -2.0, 3.0, 1.0, -2.0, 3.0]);
    }

    #[test]
    fn reused_buffers_give_what_fresh_ones_give() {
        // A wide input, then a narrower one with row padding (width 10, stride 12): the padding
        // must read 0 again, and the outputs must equal those of fresh buffers.
        let (rows, d_out) = (9, 20);
        let (mut q, mut y) = (QuantizedRows::default(), Vec::new());
        for d_in in [64, 10, 64] {
            let (x, w) = (matrix(rows * d_in, d_in as u64), matrix(d_in * d_out, 7));
            let layer = Int8Linear::new(&w, None, d_in, d_out);
            q.quantize_into(&x, rows, d_in);
            layer.forward_into(&q, &mut y);
            let fresh = QuantizedRows::quantize(&x, rows, d_in);
            assert_eq!((q.values.as_slice(), q.scales.as_slice(), q.sums.as_slice()), (fresh.values.as_slice(), fresh.scales.as_slice(), fresh.sums.as_slice()), "d_in {d_in}");
            assert_eq!(y, layer.forward(&fresh), "d_in {d_in}");
        }
    }
}
