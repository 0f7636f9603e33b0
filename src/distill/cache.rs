//! On-disk cache of teacher outputs, memory-mapped, filled lazily and reused across epochs and
//! runs.
//!
//! For pair `i` the cache holds the teacher's last-layer states of the tokens the loss sees
//! (`rows[i]` of them, f16) and the teacher's pooled sentence vector (f32, as the encoder pools at
//! search time). The files are sized up front from the tokenised bitext, so every pair has a fixed
//! slot; pairs are computed the first time a batch needs them.
//!
//! Layout of a cache directory:
//! - `meta.json`: the key (a hash of everything the contents depend on), pair count, dim, rows;
//! - `tokens.f16`: all token rows back to back, little-endian f16;
//! - `pooled.f32`: one `dim`-wide f32 row per pair;
//! - `filled.bin`: one byte per pair, 1 when its slot is valid.
//!
//! `filled.bin` is only rewritten (atomically, by rename) *after* the data maps are flushed, so a
//! crash at any point can lose recent work but never marks garbage as valid. A directory whose key
//! differs (other teacher, bitext, prefix, lengths or masks) is rebuilt from scratch.
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use half::f16;
use memmap2::MmapMut;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Meta {
    key: String,
    pairs: usize,
    dim: usize,
    total_rows: u64,
}

/// A memory-mapped teacher cache (see the module docs).
pub struct TeacherCache {
    dir: PathBuf,
    dim: usize,
    /// Row offset of each pair, `pairs + 1` entries.
    offsets: Vec<u64>,
    tokens: MmapMut,
    pooled: MmapMut,
    filled: Vec<u8>,
    dirty: bool,
}

impl std::fmt::Debug for TeacherCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeacherCache")
            .field("dir", &self.dir)
            .field("pairs", &self.len())
            .field("filled", &self.filled_count())
            .finish()
    }
}

fn map_file(path: &Path, len: u64) -> Result<MmapMut> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let cur = file.metadata().with_context(|| format!("stat {}", path.display()))?.len();
    if cur != len {
        file.set_len(len).with_context(|| format!("sizing {} to {len} bytes", path.display()))?;
    }
    if len == 0 {
        // mmap of an empty file fails; an anonymous empty map stands in.
        return MmapMut::map_anon(0).context("empty map");
    }
    // SAFETY: the file is private to this cache directory and sized above; the map lives as long
    // as `TeacherCache`, and we only hand out copies of its contents.
    unsafe { MmapMut::map_mut(&file) }.with_context(|| format!("mapping {}", path.display()))
}

impl TeacherCache {
    /// Opens (or creates) the cache at `dir` for `rows[i]` token rows per pair, `dim` wide.
    /// `key` must change whenever the contents would (see the module docs); a mismatch
    /// discards the old contents.
    pub fn open(dir: &Path, key: &str, rows: &[usize], dim: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        let mut acc = 0u64;
        offsets.push(0);
        for &r in rows {
            acc += r as u64;
            offsets.push(acc);
        }
        let meta = Meta { key: key.to_string(), pairs: rows.len(), dim, total_rows: acc };
        let meta_path = dir.join("meta.json");
        let filled_path = dir.join("filled.bin");
        let reuse = match std::fs::read_to_string(&meta_path) {
            Ok(text) => serde_json::from_str::<Meta>(&text).map(|m| m == meta).unwrap_or(false),
            Err(_) => false,
        };
        if !reuse {
            // Invalidate first, so a crash half-way through never pairs old data with new meta.
            let _ = std::fs::remove_file(&filled_path);
            let _ = std::fs::remove_file(dir.join("tokens.f16"));
            let _ = std::fs::remove_file(dir.join("pooled.f32"));
            write_atomic(&meta_path, serde_json::to_string_pretty(&meta)?.as_bytes())?;
        }
        let tokens = map_file(&dir.join("tokens.f16"), acc * dim as u64 * 2)?;
        let pooled = map_file(&dir.join("pooled.f32"), (rows.len() * dim * 4) as u64)?;
        let filled = match std::fs::read(&filled_path) {
            Ok(bytes) if reuse && bytes.len() == rows.len() => bytes,
            Ok(_) | Err(_) => vec![0u8; rows.len()],
        };
        Ok(Self { dir: dir.to_path_buf(), dim, offsets, tokens, pooled, filled, dirty: false })
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.filled.len()
    }

    /// Pairs whose slot is valid.
    pub fn filled_count(&self) -> usize {
        self.filled.iter().filter(|&&b| b == 1).count()
    }

    /// Whether pair `i` is cached.
    pub fn contains(&self, i: usize) -> bool {
        self.filled.get(i) == Some(&1)
    }

    /// Token rows stored for pair `i`.
    pub fn rows(&self, i: usize) -> usize {
        (self.offsets[i + 1] - self.offsets[i]) as usize
    }

    /// Appends pair `i`'s token rows (as f32) to `out_tokens` and its pooled vector to
    /// `out_pooled`. Returns false (appending nothing) when the pair is not cached.
    pub fn read_into(&self, i: usize, out_tokens: &mut Vec<f32>, out_pooled: &mut Vec<f32>) -> bool {
        if !self.contains(i) {
            return false;
        }
        let d = self.dim;
        let (a, b) = (self.offsets[i] as usize * d * 2, self.offsets[i + 1] as usize * d * 2);
        out_tokens.extend(
            self.tokens[a..b]
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()),
        );
        let p = &self.pooled[i * d * 4..(i + 1) * d * 4];
        out_pooled.extend(p.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        true
    }

    /// Stores pair `i`: `tokens` holds `rows(i) × dim` values, `pooled` `dim` values.
    pub fn write(&mut self, i: usize, tokens: &[f32], pooled: &[f32]) -> Result<()> {
        let d = self.dim;
        ensure!(i < self.len(), "teacher cache: pair {i} out of range ({})", self.len());
        ensure!(
            tokens.len() == self.rows(i) * d && pooled.len() == d,
            "teacher cache: pair {i} expects {}×{d} token values and {d} pooled, got {} and {}",
            self.rows(i),
            tokens.len(),
            pooled.len()
        );
        let a = self.offsets[i] as usize * d * 2;
        for (dst, &x) in self.tokens[a..a + tokens.len() * 2].chunks_exact_mut(2).zip(tokens) {
            dst.copy_from_slice(&f16::from_f32(x).to_le_bytes());
        }
        for (dst, &x) in self.pooled[i * d * 4..(i + 1) * d * 4].chunks_exact_mut(4).zip(pooled) {
            dst.copy_from_slice(&x.to_le_bytes());
        }
        self.filled[i] = 1;
        self.dirty = true;
        Ok(())
    }

    /// Makes everything written so far durable: flushes the data maps, then replaces
    /// `filled.bin`.
    pub fn persist(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.tokens.flush().with_context(|| format!("flushing {}", self.dir.join("tokens.f16").display()))?;
        self.pooled.flush().with_context(|| format!("flushing {}", self.dir.join("pooled.f32").display()))?;
        write_atomic(&self.dir.join("filled.bin"), &self.filled)?;
        self.dirty = false;
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let Some(name) = path.file_name() else { bail!("{} has no file name", path.display()) };
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    {
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_reopen_and_invalidate() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [2usize, 0, 3];
        let dim = 4;
        let mut c = TeacherCache::open(dir.path(), "k1", &rows, dim).unwrap();
        assert_eq!(c.filled_count(), 0);
        let t0: Vec<f32> = (0..8).map(|x| x as f32 * 0.5).collect();
        let p0 = vec![1.0, -2.0, 3.5, 1e-3];
        c.write(0, &t0, &p0).unwrap();
        assert!(c.write(2, &t0, &p0).is_err(), "wrong row count must be refused");
        c.persist().unwrap();
        drop(c);
        let c = TeacherCache::open(dir.path(), "k1", &rows, dim).unwrap();
        assert!(c.contains(0) && !c.contains(1) && !c.contains(2));
        let (mut t, mut p) = (Vec::new(), Vec::new());
        assert!(c.read_into(0, &mut t, &mut p));
        assert_eq!(t, t0); // halves are exact in f16
        assert_eq!(p, p0);
        assert!(!c.read_into(2, &mut t, &mut p));
        drop(c);
        let c = TeacherCache::open(dir.path(), "k2", &rows, dim).unwrap();
        assert_eq!(c.filled_count(), 0, "a new key discards old contents");
    }

    #[test]
    fn unpersisted_writes_are_not_trusted_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = TeacherCache::open(dir.path(), "k", &[1], 2).unwrap();
        c.write(0, &[1.0, 2.0], &[3.0, 4.0]).unwrap();
        drop(c); // no persist: as if the process died
        let c = TeacherCache::open(dir.path(), "k", &[1], 2).unwrap();
        assert!(!c.contains(0));
    }
}
