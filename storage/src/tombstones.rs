//! Tombstones: the set of deleted ids, kept beside immutable segments until a merge drops the
//! rows for good. Small, so it is read and written whole (atomically; see FORMAT.md).

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Result, StorageError};
use crate::fsutil::write_atomic;

pub(crate) const TOMB_MAGIC: [u8; 8] = *b"OPTTOMB\0";
/// The only tombstone format version this build reads and writes.
pub const TOMB_VERSION: u32 = 1;
const TOMB_HEADER: usize = 24;

/// A set of deleted ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    ids: BTreeSet<u64>,
}

impl Tombstones {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mark `id` deleted. Returns whether it was newly inserted.
    pub fn insert(&mut self, id: u64) -> bool {
        self.ids.insert(id)
    }

    /// Unmark `id` (e.g. after a merge has physically dropped it). Returns whether it was present.
    pub fn remove(&mut self, id: u64) -> bool {
        self.ids.remove(&id)
    }

    /// Is `id` deleted?
    #[inline]
    pub fn contains(&self, id: u64) -> bool {
        !self.ids.is_empty() && self.ids.contains(&id)
    }

    /// Number of deleted ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// No deleted ids?
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Deleted ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ids.iter().copied()
    }

    /// Drop every id outside `keep` (e.g. ids no live segment still holds).
    pub fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) {
        self.ids.retain(|&id| keep(id));
    }

    /// Serialise to the on-disk format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(TOMB_HEADER + 8 * self.ids.len() + 4);
        b.extend_from_slice(&TOMB_MAGIC);
        b.extend_from_slice(&TOMB_VERSION.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(self.ids.len() as u64).to_le_bytes());
        for id in &self.ids {
            b.extend_from_slice(&id.to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parse and validate the on-disk format; `path` is only used in errors.
    pub fn from_bytes(path: &Path, b: &[u8]) -> Result<Self> {
        if b.len() < 8 || b[0..8] != TOMB_MAGIC {
            return Err(StorageError::BadMagic {
                path: path.to_path_buf(),
                kind: "tombstone",
                found: b[..b.len().min(8)].to_vec(),
            });
        }
        if b.len() < TOMB_HEADER + 4 {
            return Err(StorageError::corrupt(path, format!("file is {} bytes, shorter than the minimum {}", b.len(), TOMB_HEADER + 4)));
        }
        let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
        if version != TOMB_VERSION {
            return Err(StorageError::UnsupportedVersion {
                path: path.to_path_buf(),
                kind: "tombstone",
                found: version,
                supported: TOMB_VERSION,
            });
        }
        let reserved = u32::from_le_bytes(b[12..16].try_into().unwrap());
        if reserved != 0 {
            return Err(StorageError::corrupt(path, format!("reserved field at offset 12 is {reserved:#x}, must be 0")));
        }
        let count = u64::from_le_bytes(b[16..24].try_into().unwrap());
        let expected = count
            .checked_mul(8)
            .and_then(|n| n.checked_add(TOMB_HEADER as u64 + 4))
            .ok_or_else(|| StorageError::corrupt(path, format!("id count {count} at offset 16 overflows")))?;
        if b.len() as u64 != expected {
            return Err(StorageError::corrupt(
                path,
                format!("file is {} bytes but its count of {count} ids needs {expected} bytes", b.len()),
            ));
        }
        let body_end = b.len() - 4;
        let stored = u32::from_le_bytes(b[body_end..].try_into().unwrap());
        let computed = crc32fast::hash(&b[..body_end]);
        if stored != computed {
            return Err(StorageError::ChecksumMismatch { path: path.to_path_buf(), stored, computed });
        }
        let mut ids = BTreeSet::new();
        let mut prev: Option<u64> = None;
        for chunk in b[TOMB_HEADER..body_end].chunks_exact(8) {
            let id = u64::from_le_bytes(chunk.try_into().unwrap());
            if let Some(p) = prev
                && id <= p
            {
                return Err(StorageError::corrupt(path, format!("ids not strictly ascending: {id} after {p}")));
            }
            prev = Some(id);
            ids.insert(id);
        }
        Ok(Tombstones { ids })
    }

    /// Atomically write the set to `path` (tmp + fsync + rename + directory fsync).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes())
    }

    /// Read and validate a tombstone file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| StorageError::io(path, e))?;
        Self::from_bytes(path, &bytes)
    }
}

impl FromIterator<u64> for Tombstones {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        Tombstones { ids: iter.into_iter().collect() }
    }
}

impl Extend<u64> for Tombstones {
    fn extend<I: IntoIterator<Item = u64>>(&mut self, iter: I) {
        self.ids.extend(iter)
    }
}
