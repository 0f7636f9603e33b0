//! A document encoder's token codebook: the compressed form in which an index stores its
//! passages' token states, so that the late-interaction rerank ([`crate::search::late`]) reads
//! them instead of running the encoder at query time (ColBERTv2's residual compression).
//!
//! A unit token row `r` is stored as the nearest of `K` unit centroids (by cosine; a `u16`) plus
//! its residual `r − c`, each dimension cut into `2^bits` buckets at the residual values'
//! quantiles; a bucket decodes to the mean residual value that fell into it. The decoded row
//! `c + means[bucket]` is scaled back to unit length. With 4,096 centroids and 2 bits a
//! 384-wide row takes 98 bytes (50 with 1 bit; 1,536 as f32). Measured on AfriQA dev
//! (docs/search.md, "Stored token codes"): the rerank with codes scores as well as with the
//! exact rows.
//!
//! The codebook is fitted once per document encoder (`optical model fit-codebook`: spherical
//! k-means on token states of a sample of text) and kept in the model directory as
//! [`CODEBOOK_FILE`]; an index created with that encoder copies it and records its fingerprint,
//! so that its stored codes stay readable whatever happens to the model directory.
//!
//! File format: safetensors with `centroids` (`K × dim`, f16), `residual_cuts` (`2^bits − 1`,
//! f32, ascending) and `residual_means` (`2^bits`, f32), and the metadata `format`
//! ([`FORMAT`]), `bits` and `encoder_fingerprint` (the weights it was fitted on).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use rand::SeedableRng;
use rand::rngs::StdRng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};

/// File name of a codebook in a model directory and in an index directory.
pub const CODEBOOK_FILE: &str = "token-codebook.safetensors";
/// The `format` metadata of the files this build writes and reads.
pub const FORMAT: &str = "optical-token-codebook/1";
/// Centroids of the codebooks `optical model fit-codebook` fits unless told otherwise.
pub const DEFAULT_CENTROIDS: usize = 4096;
/// Residual bits per dimension unless told otherwise: the shipped e5 codebook's. With codebooks
/// fitted on the bitext, 2-bit codes scored 0.6876–0.6881 on AfriQA dev and 1-bit ones
/// 0.6856–0.6875 (docs/search.md, "Stored token codes"), for twice the bytes.
pub const DEFAULT_BITS: u8 = 2;

/// Rows per block of the nearest-centroid search (bounds the score matrix to 16 MiB at K = 4,096).
const ASSIGN_BLOCK: usize = 1024;

/// A fitted token codebook.
#[derive(Clone, Debug)]
pub struct Codebook {
    /// `k × dim` unit rows.
    centroids: Vec<f32>,
    k: usize,
    dim: usize,
    bits: u8,
    /// `2^bits − 1` ascending bucket boundaries of a residual value.
    cuts: Vec<f32>,
    /// `2^bits` decoded values, one per bucket.
    means: Vec<f32>,
    /// Weights fingerprint of the encoder whose token states it was fitted on.
    encoder_fingerprint: String,
    /// [`Codebook::residual_table`], computed on first use.
    lut: std::sync::OnceLock<Vec<f32>>,
}

/// How to fit a codebook ([`Codebook::fit`]).
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Number of centroids (at most 65,536: codes are `u16`).
    pub centroids: usize,
    /// Residual bits per dimension: 1, 2, 4 or 8.
    pub bits: u8,
    /// Lloyd iterations.
    pub iterations: usize,
    /// Seed of the initial centroids.
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { centroids: DEFAULT_CENTROIDS, bits: DEFAULT_BITS, iterations: 6, seed: 0 }
    }
}

impl Codebook {
    /// Fits a codebook on `rows` (unit rows of width `dim`, one after the other): spherical
    /// k-means from `centroids` distinct rows drawn with `seed`, then the residual buckets.
    /// `progress` is called after each iteration with its number and the mean cosine of a row
    /// to its centroid.
    pub fn fit(rows: &[f32], dim: usize, options: &FitOptions, encoder_fingerprint: &str, mut progress: impl FnMut(usize, f32)) -> Result<Codebook> {
        check_bits(options.bits)?;
        ensure!(dim > 0 && rows.len() % dim == 0, "token rows of width {dim}: {} values is not a whole number of rows", rows.len());
        let n = rows.len() / dim;
        let k = options.centroids;
        ensure!((1..=65536).contains(&k), "{k} centroids: a codebook has 1 to 65,536 (codes are 16-bit)");
        ensure!(n >= k, "{n} token rows cannot fit {k} centroids: give more text or fewer centroids");
        let mut rng = StdRng::seed_from_u64(options.seed);
        let mut centroids = Vec::with_capacity(k * dim);
        for i in rand::seq::index::sample(&mut rng, n, k) {
            centroids.extend_from_slice(&rows[i * dim..(i + 1) * dim]);
        }
        let mut book = Codebook { centroids, k, dim, bits: options.bits, cuts: Vec::new(), means: Vec::new(), encoder_fingerprint: encoder_fingerprint.to_string(), lut: Default::default() };
        for it in 0..options.iterations {
            let (assign, cosines) = book.nearest(rows);
            let mut sums = vec![0f32; k * dim];
            for (i, &c) in assign.iter().enumerate() {
                let dst = &mut sums[c as usize * dim..(c as usize + 1) * dim];
                dst.iter_mut().zip(&rows[i * dim..(i + 1) * dim]).for_each(|(s, x)| *s += x);
            }
            // An empty cluster keeps its centroid (its row may attract rows again later).
            for (centroid, sum) in book.centroids.chunks_exact_mut(dim).zip(sums.chunks_exact(dim)) {
                let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
                if norm > 0.0 {
                    centroid.iter_mut().zip(sum).for_each(|(c, s)| *c = s / norm);
                }
            }
            progress(it + 1, cosines.iter().sum::<f32>() / n as f32);
        }
        // The file keeps f16 centroids: round them now, so that this codebook codes exactly as
        // its saved copy will and the residual buckets fit what is stored.
        book.centroids.iter_mut().for_each(|x| *x = half::f16::from_f32(*x).to_f32());
        book.fit_residuals(rows);
        Ok(book)
    }

    /// Sets the residual buckets: cuts at the quantiles of the residual values of (a sample of
    /// at most 16,384 of) `rows`, each bucket decoded to the mean of the values in it.
    fn fit_residuals(&mut self, rows: &[f32]) {
        let dim = self.dim;
        let n = rows.len() / dim;
        let step = n.div_ceil(16384).max(1);
        let sample: Vec<f32> = (0..n).step_by(step).flat_map(|i| rows[i * dim..(i + 1) * dim].to_vec()).collect();
        let (assign, _) = self.nearest(&sample);
        let mut values: Vec<f32> = Vec::with_capacity(sample.len());
        for (row, &c) in sample.chunks_exact(dim).zip(&assign) {
            values.extend(row.iter().zip(self.centroid(c as usize)).map(|(x, c)| x - c));
        }
        values.sort_by(f32::total_cmp);
        let buckets = 1usize << self.bits;
        self.cuts = (1..buckets).map(|b| values[b * values.len() / buckets]).collect();
        let mut sums = vec![(0f64, 0usize); buckets];
        for &v in &values {
            let b = self.bucket(v);
            sums[b].0 += f64::from(v);
            sums[b].1 += 1;
        }
        self.means = sums.iter().map(|&(s, c)| if c > 0 { (s / c as f64) as f32 } else { 0.0 }).collect();
    }

    /// Number of centroids.
    pub fn centroids(&self) -> usize {
        self.k
    }

    /// Row width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Residual bits per dimension.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Weights fingerprint of the encoder the codebook was fitted on.
    pub fn encoder_fingerprint(&self) -> &str {
        &self.encoder_fingerprint
    }

    /// Bytes of one token's code: the centroid (2) and the residual bits.
    pub fn bytes_per_token(&self) -> usize {
        2 + (self.dim * self.bits as usize).div_ceil(8)
    }

    fn centroid(&self, c: usize) -> &[f32] {
        &self.centroids[c * self.dim..(c + 1) * self.dim]
    }

    fn bucket(&self, v: f32) -> usize {
        self.cuts.partition_point(|&cut| cut <= v)
    }

    /// The nearest centroid (largest dot product) of each row, and that dot product.
    fn nearest(&self, rows: &[f32]) -> (Vec<u16>, Vec<f32>) {
        let (dim, k) = (self.dim, self.k);
        let n = rows.len() / dim;
        let (mut assign, mut best) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut scores = vec![0f32; ASSIGN_BLOCK.min(n) * k];
        for block in rows.chunks(ASSIGN_BLOCK * dim) {
            let m = block.len() / dim;
            // SAFETY: `scores` holds m × k values (row stride k), `block` m × dim (row stride
            // dim), the centroids k × dim read transposed (column stride dim); gemm writes only
            // inside `scores`.
            unsafe {
                gemm::gemm(
                    m, k, dim,
                    scores.as_mut_ptr(), 1, k as isize, false,
                    block.as_ptr(), 1, dim as isize,
                    self.centroids.as_ptr(), dim as isize, 1,
                    0.0, 1.0, false, false, false, gemm::Parallelism::Rayon(0),
                );
            }
            for row in scores[..m * k].chunks_exact(k) {
                let (c, s) = row.iter().enumerate().fold((0, f32::MIN), |acc, (c, &s)| if s > acc.1 { (c, s) } else { acc });
                assign.push(c as u16);
                best.push(s);
            }
        }
        (assign, best)
    }

    /// The codes of `rows` (unit rows of width [`Codebook::dim`]): [`Codebook::bytes_per_token`]
    /// bytes per row — the centroid as little-endian `u16`, then the residual buckets packed
    /// from the low bits of each byte up.
    pub fn encode(&self, rows: &[f32]) -> Vec<u8> {
        let dim = self.dim;
        let (assign, _) = self.nearest(rows);
        let bits = self.bits as usize;
        let mut out = Vec::with_capacity(assign.len() * self.bytes_per_token());
        for (row, &c) in rows.chunks_exact(dim).zip(&assign) {
            out.extend_from_slice(&c.to_le_bytes());
            let start = out.len();
            out.resize(start + self.bytes_per_token() - 2, 0);
            for (d, (x, m)) in row.iter().zip(self.centroid(c as usize)).enumerate() {
                let b = self.bucket(x - m) as u8;
                out[start + d * bits / 8] |= b << (d * bits % 8);
            }
        }
        out
    }

    /// The unit rows `codes` ([`Codebook::encode`]) decode to, one after the other. Errors when
    /// `codes` is not whole tokens or names a centroid the codebook does not have.
    pub fn decode(&self, codes: &[u8]) -> Result<Vec<f32>> {
        let mut rows = Vec::new();
        self.decode_into(codes, &mut rows)?;
        Ok(rows)
    }

    /// [`Codebook::decode`] into `rows` (cleared first), so that a caller decoding many
    /// passages reuses one buffer.
    pub fn decode_into(&self, codes: &[u8], rows: &mut Vec<f32>) -> Result<()> {
        let per = self.bytes_per_token();
        ensure!(codes.len() % per == 0, "{} bytes of token codes is not a whole number of {per}-byte tokens", codes.len());
        let dim = self.dim;
        // Each residual byte holds `per_byte` dimensions: their decoded values, for every byte value.
        let per_byte = 8 / self.bits as usize;
        let lut = self.residual_table();
        rows.clear();
        rows.resize(codes.len() / per * dim, 0.0);
        for (code, row) in codes.chunks_exact(per).zip(rows.chunks_exact_mut(dim)) {
            let c = u16::from_le_bytes([code[0], code[1]]) as usize;
            ensure!(c < self.k, "token code names centroid {c}, the codebook has {}", self.k);
            let (centroid, bytes) = (self.centroid(c), &code[2..]);
            // A fixed number of dimensions per byte lets the compiler unroll and vectorise the
            // loop (`examples/stage_profile.rs`: 1.25 against 2.2 ms for the 30 passages of the
            // default stage, which took ≈ 5 ms in all).
            let squared = match per_byte {
                _ if dim % per_byte != 0 => decode_row_any(bytes, centroid, lut, per_byte, row),
                1 => decode_row::<1>(bytes, centroid, lut, row),
                2 => decode_row::<2>(bytes, centroid, lut, row),
                4 => decode_row::<4>(bytes, centroid, lut, row),
                _ => decode_row::<8>(bytes, centroid, lut, row),
            };
            let norm = squared.sqrt().max(1e-12);
            row.iter_mut().for_each(|x| *x /= norm);
        }
        Ok(())
    }

    /// For each byte value (256), the decoded residual of each of the `8 / bits` dimensions it
    /// packs, lowest bits first.
    fn residual_table(&self) -> &[f32] {
        self.lut.get_or_init(|| {
            let (bits, per_byte) = (self.bits as usize, 8 / self.bits as usize);
            let mask = (1usize << bits) - 1;
            (0..256usize).flat_map(|byte| (0..per_byte).map(move |j| self.means[(byte >> (j * bits)) & mask])).collect()
        })
    }

    /// The file's bytes ([`FORMAT`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let half: Vec<u8> = self.centroids.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect();
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (cuts, means) = (f32s(&self.cuts), f32s(&self.means));
        let tensors = [
            ("centroids", TensorView::new(Dtype::F16, vec![self.k, self.dim], &half)?),
            ("residual_cuts", TensorView::new(Dtype::F32, vec![self.cuts.len()], &cuts)?),
            ("residual_means", TensorView::new(Dtype::F32, vec![self.means.len()], &means)?),
        ];
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("bits".to_string(), self.bits.to_string()),
            ("encoder_fingerprint".to_string(), self.encoder_fingerprint.clone()),
        ]);
        Ok(safetensors::serialize(tensors, Some(metadata))?)
    }

    /// Writes the codebook to `path` (through a temporary file, so a crash leaves no half file).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("safetensors.part");
        std::fs::write(&tmp, self.to_bytes()?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    }

    /// Reads a codebook file; errors name the file and the field at fault.
    pub fn load(path: &Path) -> Result<Codebook> {
        let bytes = std::fs::read(path).with_context(|| format!("reading token codebook {}", path.display()))?;
        Codebook::from_bytes(&bytes).with_context(|| format!("token codebook {}", path.display()))
    }

    /// Parses a codebook file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Codebook> {
        let (_, header) = SafeTensors::read_metadata(bytes).context("not a safetensors file")?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |name: &str| meta.get(name).cloned().with_context(|| format!("metadata has no `{name}`"));
        let format = field("format")?;
        ensure!(format == FORMAT, "metadata `format` is `{format}`, this build reads `{FORMAT}`");
        let bits: u8 = field("bits")?.parse().context("metadata `bits` is not a number")?;
        check_bits(bits)?;
        let tensors = SafeTensors::deserialize(bytes).context("not a safetensors file")?;
        let centroids = tensors.tensor("centroids").context("no tensor `centroids`")?;
        ensure!(centroids.dtype() == Dtype::F16 && centroids.shape().len() == 2, "tensor `centroids` must be a 2-d f16 matrix, is {:?} {:?}", centroids.dtype(), centroids.shape());
        let (k, dim) = (centroids.shape()[0], centroids.shape()[1]);
        ensure!((1..=65536).contains(&k) && dim > 0, "tensor `centroids` is {k} × {dim}: expected 1 to 65,536 rows of at least one value");
        let centroids: Vec<f32> = centroids.data().chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
        ensure!(centroids.iter().all(|x| x.is_finite()), "tensor `centroids` holds a value that is not finite");
        let f32s = |name: &str, len: usize| -> Result<Vec<f32>> {
            let t = tensors.tensor(name).with_context(|| format!("no tensor `{name}`"))?;
            ensure!(t.dtype() == Dtype::F32 && t.shape() == [len], "tensor `{name}` must be {len} f32 values ({bits}-bit residuals), is {:?} {:?}", t.dtype(), t.shape());
            let v: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            ensure!(v.iter().all(|x| x.is_finite()), "tensor `{name}` holds a value that is not finite");
            Ok(v)
        };
        let cuts = f32s("residual_cuts", (1 << bits) - 1)?;
        ensure!(cuts.windows(2).all(|w| w[0] <= w[1]), "tensor `residual_cuts` is not ascending");
        let means = f32s("residual_means", 1 << bits)?;
        Ok(Codebook { centroids, k, dim, bits, cuts, means, encoder_fingerprint: field("encoder_fingerprint")?, lut: Default::default() })
    }

    /// SHA-256 (hex) of what the file stores — format, bits, encoder fingerprint, the f16
    /// centroids, cuts and means, in that order: what an index records to check the copy it
    /// keeps. (Not of the file's bytes: safetensors writes the metadata in no fixed order.)
    pub fn fingerprint(&self) -> Result<String> {
        let mut h = Sha256::new();
        h.update(FORMAT.as_bytes());
        h.update([0, self.bits]);
        h.update(self.encoder_fingerprint.as_bytes());
        h.update([0]);
        h.update((self.k as u64).to_le_bytes());
        h.update((self.dim as u64).to_le_bytes());
        for x in &self.centroids {
            h.update(half::f16::from_f32(*x).to_le_bytes());
        }
        for x in self.cuts.iter().chain(&self.means) {
            h.update(x.to_le_bytes());
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// The rows a codebook codes for one text: the states of its content tokens (`content`, see
/// [`super::Tokenized::content`]; no special or prefix tokens), each scaled to unit length,
/// one after the other. `states` holds one `dim`-wide row per token.
pub fn unit_content_rows(states: &[f32], content: &[bool], dim: usize) -> Vec<f32> {
    let mut rows = Vec::new();
    for (row, _) in states.chunks_exact(dim).zip(content).filter(|(_, c)| **c) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        rows.extend(row.iter().map(|x| x / norm));
    }
    rows
}

fn check_bits(bits: u8) -> Result<()> {
    if ![1, 2, 4, 8].contains(&bits) {
        bail!("{bits} residual bits per dimension: expected 1, 2, 4 or 8");
    }
    Ok(())
}

/// One token's row, `centroid` plus the residual values `lut` holds for each byte of `bytes`
/// (`P` dimensions a byte), written into `row`; returns the row's squared norm. `row.len()` is a
/// multiple of `P`.
fn decode_row<const P: usize>(bytes: &[u8], centroid: &[f32], lut: &[f32], row: &mut [f32]) -> f32 {
    let mut squared = [0f32; P];
    for ((&byte, out), m) in bytes.iter().zip(row.chunks_exact_mut(P)).zip(centroid.chunks_exact(P)) {
        let values = &lut[byte as usize * P..][..P];
        for j in 0..P {
            let x = m[j] + values[j];
            out[j] = x;
            squared[j] += x * x;
        }
    }
    squared.iter().sum()
}

/// [`decode_row`] for a width that is not a multiple of the dimensions a byte packs.
fn decode_row_any(bytes: &[u8], centroid: &[f32], lut: &[f32], per_byte: usize, row: &mut [f32]) -> f32 {
    for ((byte, out), m) in bytes.iter().zip(row.chunks_mut(per_byte)).zip(centroid.chunks(per_byte)) {
        let values = &lut[*byte as usize * per_byte..][..per_byte];
        for ((o, m), v) in out.iter_mut().zip(m).zip(values) {
            *o = m + v;
        }
    }
    row.iter().map(|x| x * x).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// `n` random unit rows of width `dim` around `clusters` directions.
    fn clustered_rows(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..clusters).map(|_| (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect()).collect();
        let mut rows = Vec::with_capacity(n * dim);
        for i in 0..n {
            let row: Vec<f32> = centres[i % clusters].iter().map(|c| c + rng.random_range(-0.3..0.3)).collect();
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            rows.extend(row.iter().map(|x| x / norm));
        }
        rows
    }

    fn cosines(a: &[f32], b: &[f32], dim: usize) -> Vec<f32> {
        a.chunks_exact(dim).zip(b.chunks_exact(dim)).map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum()).collect()
    }

    #[test]
    fn codes_decode_close_to_the_rows_and_more_bits_come_closer() {
        let dim = 48;
        let rows = clustered_rows(4000, dim, 20, 1);
        let mut mean_cos = Vec::new();
        for bits in [1, 2, 4] {
            let book = Codebook::fit(&rows, dim, &FitOptions { centroids: 32, bits, iterations: 5, seed: 3 }, "fp", |_, _| {}).unwrap();
            let codes = book.encode(&rows);
            assert_eq!(codes.len(), 4000 * book.bytes_per_token());
            assert_eq!(book.bytes_per_token(), 2 + dim * bits as usize / 8);
            let decoded = book.decode(&codes).unwrap();
            let cos = cosines(&rows, &decoded, dim);
            mean_cos.push(cos.iter().sum::<f32>() / cos.len() as f32);
            // Decoded rows are unit rows.
            for row in decoded.chunks_exact(dim) {
                assert!((row.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
            }
        }
        // The residual recovers most of what the centroid misses; more bits recover more.
        assert!(mean_cos[0] > 0.9 && mean_cos[0] < mean_cos[1] && mean_cos[1] < mean_cos[2], "{mean_cos:?}");
        // Centroid alone (residual decoded to zero) is worse than with the 1-bit residual.
        let book = Codebook::fit(&rows, dim, &FitOptions { centroids: 32, bits: 1, iterations: 5, seed: 3 }, "fp", |_, _| {}).unwrap();
        let (assign, _) = book.nearest(&rows);
        let centroid_only: Vec<f32> = assign.iter().flat_map(|&c| book.centroid(c as usize).to_vec()).collect();
        let c = cosines(&rows, &centroid_only, dim);
        assert!(c.iter().sum::<f32>() / (c.len() as f32) < mean_cos[0]);
    }

    #[test]
    fn decoding_is_the_centroid_plus_each_dimensions_bucket_mean_at_every_width_and_bit_count() {
        // Widths that are and are not a multiple of the dimensions a byte packs (the unrolled
        // and the generic decoding loop), against a plain reading of the format.
        for (dim, bits) in [(48, 1), (48, 2), (48, 4), (48, 8), (50, 2), (42, 4), (20, 1)] {
            let rows = clustered_rows(300, dim, 6, 7);
            let book = Codebook::fit(&rows, dim, &FitOptions { centroids: 8, bits, iterations: 2, seed: 4 }, "fp", |_, _| {}).unwrap();
            let codes = book.encode(&rows);
            let decoded = book.decode(&codes).unwrap();
            for (code, got) in codes.chunks_exact(book.bytes_per_token()).zip(decoded.chunks_exact(dim)) {
                let c = u16::from_le_bytes([code[0], code[1]]) as usize;
                let bits = bits as usize;
                let mut want: Vec<f32> = (0..dim)
                    .map(|d| {
                        let bucket = (code[2 + d * bits / 8] >> (d * bits % 8)) as usize & ((1 << bits) - 1);
                        book.centroid(c)[d] + book.means[bucket]
                    })
                    .collect();
                let norm = want.iter().map(|x| x * x).sum::<f32>().sqrt();
                want.iter_mut().for_each(|x| *x /= norm);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "dim {dim}, {bits} bits: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn kmeans_finds_the_clusters_and_reports_progress() {
        let dim = 16;
        let rows = clustered_rows(2000, dim, 8, 2);
        let mut seen = Vec::new();
        let book = Codebook::fit(&rows, dim, &FitOptions { centroids: 16, bits: 1, iterations: 8, seed: 0 }, "fp", |i, cos| seen.push((i, cos))).unwrap();
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
        // Lloyd's iterations never lower the mean cosine to the nearest centroid.
        assert!(seen.windows(2).all(|w| w[1].1 >= w[0].1 - 1e-5), "{seen:?}");
        // Each centroid serves one cluster (row i comes from cluster i % 8): the rows of a
        // centroid nearly all share their cluster.
        let (assign, _) = book.nearest(&rows);
        let mut counts = vec![[0usize; 8]; 16];
        for (i, &c) in assign.iter().enumerate() {
            counts[c as usize][i % 8] += 1;
        }
        let majority: usize = counts.iter().map(|c| c.iter().max().unwrap()).sum();
        assert!(majority > 1950, "{majority} of 2000 rows are in their centroid's majority cluster");
    }

    #[test]
    fn the_file_round_trips_and_refuses_damage_naming_the_field() {
        let dim = 8;
        let rows = clustered_rows(300, dim, 4, 5);
        let book = Codebook::fit(&rows, dim, &FitOptions { centroids: 4, bits: 2, iterations: 3, seed: 1 }, "abc", |_, _| {}).unwrap();
        let dir = std::env::temp_dir().join(format!("optical-codebook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(CODEBOOK_FILE);
        book.save(&path).unwrap();
        let back = Codebook::load(&path).unwrap();
        assert_eq!(back.encoder_fingerprint(), "abc");
        assert_eq!((back.centroids(), back.dim(), back.bits()), (4, 8, 2));
        // f16 centroids: the same codes, decoded within f16 precision.
        assert_eq!(back.encode(&rows), book.encode(&rows));
        assert_eq!(back.fingerprint().unwrap(), book.fingerprint().unwrap());
        let a = book.decode(&book.encode(&rows)).unwrap();
        let b = back.decode(&book.encode(&rows)).unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 2e-3));

        // A flipped byte in the header is caught and the error names the file.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(6).position(|w| w == b"format").unwrap();
        bytes[at] = b'F';
        std::fs::write(&path, &bytes).unwrap();
        let e = format!("{:#}", Codebook::load(&path).unwrap_err());
        assert!(e.contains(CODEBOOK_FILE) && e.contains("no `format`"), "{e}");
        // Codes of another width and codes naming a missing centroid are refused.
        assert!(book.decode(&[0u8; 5]).unwrap_err().to_string().contains("whole number"));
        let mut bad = book.encode(&rows[..dim]);
        bad[0] = 9;
        assert!(book.decode(&bad).unwrap_err().to_string().contains("centroid 9"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
