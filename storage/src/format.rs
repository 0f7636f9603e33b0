//! Byte layout of segment files (documented in `storage/FORMAT.md`). Everything on disk is
//! little-endian; the layout is computed from the header's `dim`, `elem_type` and `rows`, and
//! the offsets stored in the header must equal the computed ones, so a reader never follows an
//! offset it has not derived itself.

use std::path::Path;

use crate::error::{Result, StorageError};

/// Magic bytes at offset 0 of a segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"OPTVSEG\0";
/// The only segment format version this build reads and writes.
pub const SEGMENT_VERSION: u32 = 1;
/// Size of the fixed segment header in bytes.
pub(crate) const HEADER_LEN: usize = 64;
/// Alignment of the vector block, the scale block and the id block (a cache line, and enough
/// for any SIMD load up to AVX-512).
pub const ALIGN: u64 = 64;
/// Largest dimension accepted. Bounds the int8 kernel's i32 accumulator:
/// 65 536 · 128 · 128 = 2^30 < 2^31, so it cannot overflow even on adversarial data.
pub const MAX_DIM: usize = 1 << 16;
/// Offset of the crc32 field inside the header.
pub(crate) const CRC_OFFSET: usize = 60;

/// Element type of the stored vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElemType {
    /// 32-bit IEEE-754 floats, stored exactly.
    F32,
    /// Symmetric int8 quantization with one f32 scale per row: `x ≈ scale · q`, `q ∈ [-127, 127]`.
    I8,
}

impl ElemType {
    /// The code stored in the header.
    pub(crate) fn code(self) -> u32 {
        match self {
            ElemType::F32 => 0,
            ElemType::I8 => 1,
        }
    }
    pub(crate) fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(ElemType::F32),
            1 => Some(ElemType::I8),
            _ => None,
        }
    }
    /// Bytes per vector element.
    pub fn size(self) -> usize {
        match self {
            ElemType::F32 => 4,
            ElemType::I8 => 1,
        }
    }
}

impl std::fmt::Display for ElemType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ElemType::F32 => "f32",
            ElemType::I8 => "i8",
        })
    }
}

/// Round `x` up to a multiple of [`ALIGN`], or `None` on overflow.
pub(crate) fn align_up(x: u64) -> Option<u64> {
    x.checked_add(ALIGN - 1).map(|v| v / ALIGN * ALIGN)
}

/// Where each block lives in a segment file. All offsets are from the start of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub vectors_off: u64,
    pub vectors_len: u64,
    /// 0 for F32 segments (no scale block).
    pub scales_off: u64,
    pub ids_off: u64,
    pub file_len: u64,
}

impl Layout {
    /// Compute the layout for `rows` rows of `dim` elements of type `elem`, with checked
    /// arithmetic: `None` means the sizes do not fit in a u64 (only a corrupt header can ask that).
    pub fn compute(dim: u64, elem: ElemType, rows: u64) -> Option<Layout> {
        let vectors_off = HEADER_LEN as u64;
        let vectors_len = rows.checked_mul(dim)?.checked_mul(elem.size() as u64)?;
        let vectors_end = align_up(vectors_off.checked_add(vectors_len)?)?;
        let (scales_off, ids_off) = match elem {
            ElemType::F32 => (0, vectors_end),
            ElemType::I8 => {
                let scales_end = vectors_end.checked_add(rows.checked_mul(4)?)?;
                (vectors_end, align_up(scales_end)?)
            }
        };
        let file_len = ids_off.checked_add(rows.checked_mul(8)?)?;
        Some(Layout { vectors_off, vectors_len, scales_off, ids_off, file_len })
    }
}

/// The decoded fixed-size header of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub elem: ElemType,
    pub dim: u32,
    pub rows: u64,
    pub layout: Layout,
    pub crc: u32,
}

impl Header {
    /// Encode to the 64 header bytes (the crc field is written as `self.crc`).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.elem.code().to_le_bytes());
        b[16..20].copy_from_slice(&self.dim.to_le_bytes());
        // 20..24 flags: zero in version 1.
        b[24..32].copy_from_slice(&self.rows.to_le_bytes());
        b[32..40].copy_from_slice(&self.layout.vectors_off.to_le_bytes());
        b[40..48].copy_from_slice(&self.layout.scales_off.to_le_bytes());
        b[48..56].copy_from_slice(&self.layout.ids_off.to_le_bytes());
        // 56..60 reserved: zero in version 1.
        b[CRC_OFFSET..64].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Decode and validate a header against the actual file length. Checks, in order: magic,
    /// version, element type, flags, dimension, offsets (recomputed with checked arithmetic),
    /// file length. The checksum is verified by the caller, which has the body.
    pub fn decode(path: &Path, bytes: &[u8], actual_len: u64) -> Result<Header> {
        if bytes.len() < SEGMENT_MAGIC.len() || bytes[0..8] != SEGMENT_MAGIC {
            return Err(StorageError::BadMagic {
                path: path.to_path_buf(),
                kind: "vector segment",
                found: bytes[..bytes.len().min(8)].to_vec(),
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(StorageError::corrupt(
                path,
                format!("file is {} bytes, shorter than the {HEADER_LEN}-byte header (truncated?)", bytes.len()),
            ));
        }
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
        let version = u32_at(8);
        if version != SEGMENT_VERSION {
            return Err(StorageError::UnsupportedVersion {
                path: path.to_path_buf(),
                kind: "vector segment",
                found: version,
                supported: SEGMENT_VERSION,
            });
        }
        let elem = ElemType::from_code(u32_at(12))
            .ok_or_else(|| StorageError::corrupt(path, format!("unknown element type code {} at offset 12", u32_at(12))))?;
        let dim = u32_at(16);
        if dim == 0 || dim as usize > MAX_DIM {
            return Err(StorageError::corrupt(path, format!("dimension {dim} at offset 16 is outside 1..={MAX_DIM}")));
        }
        let flags = u32_at(20);
        if flags != 0 {
            return Err(StorageError::corrupt(path, format!("flags field at offset 20 is {flags:#x}, must be 0 in version 1")));
        }
        let reserved = u32_at(56);
        if reserved != 0 {
            return Err(StorageError::corrupt(path, format!("reserved field at offset 56 is {reserved:#x}, must be 0")));
        }
        let rows = u64_at(24);
        let layout = Layout::compute(dim as u64, elem, rows).ok_or_else(|| {
            StorageError::corrupt(path, format!("row count {rows} × dimension {dim} overflows the file size"))
        })?;
        let stored = (u64_at(32), u64_at(40), u64_at(48));
        let expected = (layout.vectors_off, layout.scales_off, layout.ids_off);
        if stored != expected {
            return Err(StorageError::corrupt(
                path,
                format!(
                    "block offsets (vectors, scales, ids) = {stored:?} do not match {expected:?} computed from \
                     {rows} rows × {dim} dims of {elem}"
                ),
            ));
        }
        if actual_len != layout.file_len {
            return Err(StorageError::corrupt(
                path,
                format!(
                    "file is {actual_len} bytes but its header ({rows} rows × {dim} dims of {elem}) needs {} bytes{}",
                    layout.file_len,
                    if actual_len < layout.file_len { " (truncated?)" } else { " (trailing bytes)" }
                ),
            ));
        }
        Ok(Header { elem, dim, rows, layout, crc: u32_at(CRC_OFFSET) })
    }
}

/// The segment checksum: crc32 over header bytes `0..60` followed by every byte from offset 64
/// to the end of the file (padding included). `body_crc` is the crc32 of the body alone.
/// The writer streams the body before it knows the header, hence `combine` (which is the crc of
/// the concatenation).
pub(crate) fn segment_crc(header: &[u8; HEADER_LEN], body_crc: &crc32fast::Hasher) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header[..CRC_OFFSET]);
    h.combine(body_crc);
    h.finalize()
}
