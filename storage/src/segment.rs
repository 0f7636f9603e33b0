//! Read side: a validated, memory-mapped segment file.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Result, StorageError};
use crate::format::{ALIGN, CRC_OFFSET, ElemType, HEADER_LEN, Header};
use crate::quant::dequantize_i8;
use crate::writer::SegmentInfo;

/// An open, validated, read-only segment. Cheap to share across threads (`Send + Sync`).
///
/// Segment files are immutable: writers never modify a file in place (they rename a new file
/// over it, which leaves existing mappings of the old inode intact). Modifying a mapped segment
/// file behind the library's back is outside its contract.
pub struct Segment {
    path: PathBuf,
    mmap: Mmap,
    header: Header,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("dim", &self.header.dim)
            .field("elem_type", &self.header.elem)
            .field("len", &self.header.rows)
            .finish()
    }
}

/// Lets the scan, score and merge functions take a slice of whatever holds the segments: owned
/// [`Segment`]s, references, or the `Arc<Segment>`s a caller shares between readers.
impl AsRef<Segment> for Segment {
    fn as_ref(&self) -> &Segment {
        self
    }
}

#[cfg(target_endian = "big")]
compile_error!(
    "optical-storage maps little-endian files directly into memory and supports little-endian targets only"
);

/// Reinterpret `len` elements at byte `off` of `bytes` as `&[T]`. The caller has checked that
/// `off + len·size_of::<T>() ≤ bytes.len()` and that `bytes.as_ptr() + off` is aligned for `T`;
/// `T` is a plain number type for which every bit pattern is valid.
fn cast_slice<T: Copy>(bytes: &[u8], off: usize, len: usize) -> &[T] {
    let size = std::mem::size_of::<T>();
    let end = off + len * size;
    let sub = &bytes[off..end]; // bounds re-checked here, so a logic error panics instead of reading out of bounds
    assert_eq!(
        sub.as_ptr().align_offset(std::mem::align_of::<T>()),
        0,
        "misaligned block"
    );
    // SAFETY: `sub` is in bounds and aligned (asserted above), T is u64/f32/i8, valid for any bits,
    // and the returned slice borrows `bytes`.
    unsafe { std::slice::from_raw_parts(sub.as_ptr().cast::<T>(), len) }
}

impl Segment {
    /// Open and validate a segment file: magic, version, element type, dimension, block offsets
    /// and total size (checked arithmetic), alignment, the crc32 over the whole file, and that
    /// ids ascend strictly. Any failure is an error naming the file; nothing is trusted before
    /// it is checked. Reads the whole file once (for the checksum).
    pub fn open(path: impl AsRef<Path>) -> Result<Segment> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| StorageError::io(&path, e))?;
        let actual_len = file
            .metadata()
            .map_err(|e| StorageError::io(&path, e))?
            .len();
        if actual_len < HEADER_LEN as u64 {
            // Too short to map meaningfully; read what is there for a precise message.
            let bytes = std::fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
            Header::decode(&path, &bytes, actual_len)?;
            unreachable!("a header shorter than {HEADER_LEN} bytes never decodes");
        }
        // SAFETY: segment files are immutable by contract (see the type's docs); the mapping is
        // read-only and every access below is bounds-checked against the validated layout.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| StorageError::io(&path, e))?;
        if mmap.len() as u64 != actual_len {
            return Err(StorageError::corrupt(
                &path,
                "file changed size while being opened",
            ));
        }
        let header = Header::decode(&path, &mmap, actual_len)?;

        let mut h = crc32fast::Hasher::new();
        h.update(&mmap[..CRC_OFFSET]);
        h.update(&mmap[HEADER_LEN..]);
        let computed = h.finalize();
        if computed != header.crc {
            return Err(StorageError::ChecksumMismatch {
                path,
                stored: header.crc,
                computed,
            });
        }
        if mmap.as_ptr().align_offset(ALIGN as usize) != 0 {
            return Err(StorageError::corrupt(
                &path,
                format!("mapping is not {ALIGN}-byte aligned"),
            ));
        }
        let seg = Segment { path, mmap, header };
        let ids = seg.ids();
        if let Some(w) = ids.windows(2).find(|w| w[1] <= w[0]) {
            return Err(StorageError::NonAscendingId {
                path: seg.path.clone(),
                prev: w[0],
                id: w[1],
            });
        }
        if let Some(s) = seg.scales().iter().find(|s| !s.is_finite() || **s < 0.0) {
            return Err(StorageError::corrupt(
                &seg.path,
                format!("int8 row scale {s} is not finite and ≥ 0"),
            ));
        }
        Ok(seg)
    }

    /// The file this segment was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.header.dim as usize
    }

    /// Number of rows (tombstoned rows included: the segment itself is immutable).
    pub fn len(&self) -> usize {
        self.header.rows as usize
    }

    /// No rows?
    pub fn is_empty(&self) -> bool {
        self.header.rows == 0
    }

    /// Element type of the stored vectors.
    pub fn elem_type(&self) -> ElemType {
        self.header.elem
    }

    /// The crc32 stored in (and verified against) the file.
    pub fn checksum(&self) -> u32 {
        self.header.crc
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.header.layout.file_len
    }

    /// Summary of the segment.
    pub fn info(&self) -> SegmentInfo {
        SegmentInfo {
            path: self.path.clone(),
            dim: self.dim(),
            elem_type: self.elem_type(),
            len: self.len(),
            id_range: self.id_range(),
            file_len: self.file_len(),
            checksum: self.checksum(),
        }
    }

    /// Row ids, strictly ascending.
    pub fn ids(&self) -> &[u64] {
        cast_slice(&self.mmap, self.header.layout.ids_off as usize, self.len())
    }

    /// Smallest and largest id (`None` if empty).
    pub fn id_range(&self) -> Option<(u64, u64)> {
        let ids = self.ids();
        Some((*ids.first()?, *ids.last()?))
    }

    /// The row index holding `id` (binary search), tombstones not consulted.
    pub fn row_of(&self, id: u64) -> Option<usize> {
        self.ids().binary_search(&id).ok()
    }

    /// Does this segment hold a row for `id` (tombstones not consulted)?
    pub fn contains(&self, id: u64) -> bool {
        self.row_of(id).is_some()
    }

    /// The whole f32 vector block (row-major, `len() × dim()`), or `None` for an int8 segment.
    pub fn vectors_f32(&self) -> Option<&[f32]> {
        (self.elem_type() == ElemType::F32).then(|| {
            cast_slice(
                &self.mmap,
                self.header.layout.vectors_off as usize,
                self.len() * self.dim(),
            )
        })
    }

    /// The whole int8 vector block (row-major, `len() × dim()`), or `None` for an f32 segment.
    pub fn vectors_i8(&self) -> Option<&[i8]> {
        (self.elem_type() == ElemType::I8).then(|| {
            cast_slice(
                &self.mmap,
                self.header.layout.vectors_off as usize,
                self.len() * self.dim(),
            )
        })
    }

    /// Per-row int8 scales (empty for an f32 segment).
    pub fn scales(&self) -> &[f32] {
        match self.elem_type() {
            ElemType::F32 => &[],
            ElemType::I8 => cast_slice(
                &self.mmap,
                self.header.layout.scales_off as usize,
                self.len(),
            ),
        }
    }

    /// Row `row` of an f32 segment (`None` if out of range or not f32).
    pub fn row_f32(&self, row: usize) -> Option<&[f32]> {
        let d = self.dim();
        self.vectors_f32()?
            .get(row.checked_mul(d)?..row.checked_add(1)?.checked_mul(d)?)
    }

    /// Row `row` of an int8 segment and its scale (`None` if out of range or not int8).
    pub fn row_i8(&self, row: usize) -> Option<(&[i8], f32)> {
        let d = self.dim();
        let q = self
            .vectors_i8()?
            .get(row.checked_mul(d)?..row.checked_add(1)?.checked_mul(d)?)?;
        Some((q, *self.scales().get(row)?))
    }

    /// Row `row` as f32 (exact for f32 segments, `scale · q` for int8 ones).
    pub fn row_vec(&self, row: usize) -> Option<Vec<f32>> {
        match self.elem_type() {
            ElemType::F32 => self.row_f32(row).map(<[f32]>::to_vec),
            ElemType::I8 => {
                let (q, s) = self.row_i8(row)?;
                let mut out = vec![0f32; q.len()];
                dequantize_i8(q, s, &mut out);
                Some(out)
            }
        }
    }

    /// The vector stored for `id` (exact for f32 segments, dequantized for int8 ones), or
    /// `None` when the segment has no such row. Tombstones are not consulted here: use
    /// [`get_live`](Segment::get_live) or [`crate::get_vector`] to hide deleted ids.
    pub fn get(&self, id: u64) -> Option<Vec<f32>> {
        self.row_vec(self.row_of(id)?)
    }

    /// Like [`get`](Segment::get), but `None` for an id in `tombstones`.
    pub fn get_live(&self, id: u64, tombstones: &crate::Tombstones) -> Option<Vec<f32>> {
        if tombstones.contains(id) {
            None
        } else {
            self.get(id)
        }
    }
}
