//! Batch order: a seeded shuffle per epoch, with light length bucketing so a batch pads little.
//!
//! The order of epoch `e` depends only on `(seed, e)`, so a resumed run replays exactly the
//! batches it had not done yet: the data position is just `(epoch, batch index)`.
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};

/// Batches per bucketing window: pairs are shuffled, cut into windows of this many batches,
/// sorted by length inside a window, batched, and the batches shuffled again. Large enough to
/// cut padding, small enough that batches still mix the data.
pub const BUCKET_WINDOW: usize = 50;

/// The batches of epoch `epoch`: indices into `lengths`, every index exactly once. The last
/// batch of a window may be short; batches shorter than `min_batch` are dropped.
pub fn epoch_batches(lengths: &[usize], batch_size: usize, seed: u64, epoch: usize, min_batch: usize) -> Vec<Vec<usize>> {
    let mut rng = epoch_rng(seed, epoch);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(&mut rng);
    bucket(order, lengths, batch_size, min_batch, &mut rng)
}

fn epoch_rng(seed: u64, epoch: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Share of each source under temperature sampling: `p_i ∝ n_i^(1/T)`.
fn source_shares(sizes: &[usize], temperature: f64) -> Vec<f64> {
    let w: Vec<f64> = sizes.iter().map(|&n| (n as f64).powf(1.0 / temperature)).collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|x| x / total.max(f64::MIN_POSITIVE)).collect()
}

/// The batches of epoch `epoch` when the data is several sources (consecutive index ranges of
/// `sizes[i]` pairs each) sampled by temperature: source i contributes `round(N · p_i)` pairs,
/// `N` the total, drawn in fresh shuffled passes over the source (a small source repeats, a
/// large one is subsampled; no pair repeats before its source is exhausted). Then the same
/// length bucketing as [`epoch_batches`]. Depends only on `(seed, epoch)`.
pub fn sampled_epoch_batches(
    lengths: &[usize],
    sizes: &[usize],
    temperature: f64,
    batch_size: usize,
    seed: u64,
    epoch: usize,
    min_batch: usize,
) -> Vec<Vec<usize>> {
    assert_eq!(sizes.iter().sum::<usize>(), lengths.len(), "source sizes must cover every pair");
    let mut rng = epoch_rng(seed, epoch);
    let total = lengths.len();
    let mut order = Vec::with_capacity(total);
    let mut start = 0;
    for (&n, p) in sizes.iter().zip(source_shares(sizes, temperature)) {
        let quota = (total as f64 * p).round() as usize;
        // Passes continue across epochs: pass k of this source starts at draw epoch·quota + k·n.
        let first_draw = epoch * quota;
        let mut drawn = 0;
        while drawn < quota && n > 0 {
            let pass = (first_draw + drawn) / n;
            let at = (first_draw + drawn) % n;
            let mut pass_order: Vec<usize> = (start..start + n).collect();
            pass_order.shuffle(&mut StdRng::seed_from_u64(seed ^ ((start as u64) << 32) ^ pass as u64));
            let take = (n - at).min(quota - drawn);
            order.extend_from_slice(&pass_order[at..at + take]);
            drawn += take;
        }
        start += n;
    }
    order.shuffle(&mut rng);
    bucket(order, lengths, batch_size, min_batch, &mut rng)
}

/// The batch order of a run: one call per epoch, always the same batches for the same epoch.
pub(super) struct Schedule {
    /// Token count of every training pair.
    pub lengths: Vec<usize>,
    /// Pairs per training file (consecutive ranges), for temperature sampling.
    pub sizes: Vec<usize>,
    /// `sampling_temperature` of the config.
    pub temperature: Option<f64>,
    /// Pairs per batch.
    pub batch_size: usize,
    /// Seed of the order.
    pub seed: u64,
}

impl Schedule {
    /// The batches of epoch `epoch`; a batch of a single pair is dropped unless the batch size
    /// is 1.
    pub fn epoch(&self, epoch: usize) -> Vec<Vec<usize>> {
        let min_batch = 2.min(self.batch_size);
        match self.temperature {
            Some(t) => sampled_epoch_batches(&self.lengths, &self.sizes, t, self.batch_size, self.seed, epoch, min_batch),
            None => epoch_batches(&self.lengths, self.batch_size, self.seed, epoch, min_batch),
        }
    }
}

/// Source sizes after keeping only the first `limit` pairs of their concatenation.
pub(super) fn limit_sizes(sizes: &[usize], limit: usize) -> Vec<usize> {
    let mut left = limit;
    sizes
        .iter()
        .map(|&n| {
            let k = n.min(left);
            left -= k;
            k
        })
        .filter(|&k| k > 0)
        .collect()
}

/// Cuts a shuffled order into windows, sorts each by length, batches, and shuffles the batches.
fn bucket(mut order: Vec<usize>, lengths: &[usize], batch_size: usize, min_batch: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let bs = batch_size.max(1);
    let mut batches = Vec::new();
    for window in order.chunks_mut(bs * BUCKET_WINDOW) {
        window.sort_by_key(|&i| lengths[i]);
        for b in window.chunks(bs) {
            if b.len() >= min_batch.max(1) {
                batches.push(b.to_vec());
            }
        }
    }
    batches.shuffle(rng);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_sampling_balances_sources_and_covers_small_ones() {
        // One large source (10,000 pairs) and two small ones (100, 400).
        let sizes = [10_000usize, 100, 400];
        let lengths: Vec<usize> = (0..10_500).map(|i| i % 40 + 3).collect();
        let count = |batches: &[Vec<usize>]| {
            let mut c = [0usize; 3];
            for &i in batches.iter().flatten() {
                c[if i < 10_000 { 0 } else if i < 10_100 { 1 } else { 2 }] += 1;
            }
            c
        };
        // T = 1 is proportional: the same mix as the concatenation.
        let c1 = count(&sampled_epoch_batches(&lengths, &sizes, 1.0, 32, 5, 0, 1));
        assert!((c1[1] as i64 - 100).abs() <= 1 && (c1[2] as i64 - 400).abs() <= 1, "{c1:?}");
        // T = 5 flattens: the 100-pair source gets (100/10000)^(1/5) ≈ 0.40 of the large one's share.
        let c5 = count(&sampled_epoch_batches(&lengths, &sizes, 5.0, 32, 5, 0, 1));
        let ratio = c5[1] as f64 / c5[0] as f64;
        assert!((ratio - 0.01f64.powf(0.2)).abs() < 0.01, "{c5:?} ratio {ratio}");
        // A repeated small source goes through every pair before repeating any.
        let small: Vec<usize> = sampled_epoch_batches(&lengths, &sizes, 5.0, 32, 5, 0, 1)
            .into_iter()
            .flatten()
            .filter(|&i| (10_000..10_100).contains(&i))
            .collect();
        let mut uniq = small.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 100, "every small-source pair drawn at least once");
        // Reproducible per (seed, epoch); epochs differ.
        assert_eq!(
            sampled_epoch_batches(&lengths, &sizes, 5.0, 32, 5, 3, 1),
            sampled_epoch_batches(&lengths, &sizes, 5.0, 32, 5, 3, 1)
        );
        assert_ne!(
            sampled_epoch_batches(&lengths, &sizes, 5.0, 32, 5, 3, 1),
            sampled_epoch_batches(&lengths, &sizes, 5.0, 32, 5, 4, 1)
        );
    }

    #[test]
    fn epochs_cover_every_pair_once_and_are_reproducible() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 61 + 3).collect();
        let a = epoch_batches(&lengths, 32, 7, 0, 1);
        let b = epoch_batches(&lengths, 32, 7, 0, 1);
        let c = epoch_batches(&lengths, 32, 7, 1, 1);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut seen: Vec<usize> = a.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        // Bucketing: the mean spread of lengths inside a batch is far below the global spread.
        let spread: f64 = a
            .iter()
            .map(|b| {
                let l: Vec<usize> = b.iter().map(|&i| lengths[i]).collect();
                (l.iter().max().unwrap() - l.iter().min().unwrap()) as f64
            })
            .sum::<f64>()
            / a.len() as f64;
        assert!(spread < 15.0, "{spread}");
    }
}
