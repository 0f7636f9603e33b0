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
    let bs = batch_size.max(1);
    let mut rng = StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(&mut rng);
    let mut batches = Vec::new();
    for window in order.chunks_mut(bs * BUCKET_WINDOW) {
        window.sort_by_key(|&i| lengths[i]);
        for b in window.chunks(bs) {
            if b.len() >= min_batch.max(1) {
                batches.push(b.to_vec());
            }
        }
    }
    batches.shuffle(&mut rng);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

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
