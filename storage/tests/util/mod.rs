//! Shared helpers for the storage tests and bench: a tiny deterministic RNG (so the crate needs
//! no `rand` dependency), data generators, and a brute-force top-k reference.
#![allow(dead_code)]

use std::path::Path;

use optical_storage::{ElemType, Hit, SegmentInfo, SegmentWriter, Tombstones};

/// splitmix64: deterministic, seedable, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
    /// A random L2-normalised vector.
    pub fn unit_vec(&mut self, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| self.normal()).collect();
        normalize(&mut v);
        v
    }
    /// A vector on the grid {-1, -0.75, …, 1}: dot products of such vectors (dim ≤ 2^16) are
    /// exact in f32 whatever the summation order, so kernels can be checked for equality.
    pub fn grid_vec(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| (self.below(9) as f32 - 4.0) / 4.0).collect()
    }
}

pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Random rows with strictly ascending ids (random gaps, starting at `first_id`).
pub fn rows_with_ids(rng: &mut Rng, n: usize, first_id: u64, mut make: impl FnMut(&mut Rng) -> Vec<f32>) -> Vec<(u64, Vec<f32>)> {
    let mut id = first_id;
    (0..n)
        .map(|_| {
            id += 1 + rng.below(3);
            (id, make(rng))
        })
        .collect()
}

pub fn write_segment(path: &Path, dim: usize, elem: ElemType, rows: &[(u64, Vec<f32>)]) -> SegmentInfo {
    let mut w = SegmentWriter::create(path, dim, elem).unwrap();
    for (id, v) in rows {
        w.push(*id, v).unwrap();
    }
    w.finish().unwrap()
}

/// Reference top-k: naive f64 dot products, full sort, score desc then id asc.
pub fn brute_force(rows: &[(u64, Vec<f32>)], query: &[f32], k: usize, tomb: &Tombstones) -> Vec<Hit> {
    let mut all: Vec<Hit> = rows
        .iter()
        .filter(|(id, _)| !tomb.contains(*id))
        .map(|(id, v)| Hit { id: *id, score: v.iter().zip(query).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() as f32 + 0.0 })
        .collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    all.truncate(k);
    all
}
