//! Streaming segment writer. Vectors stream to `<path>.tmp` through a buffer as they are
//! pushed; ids (8 B/row) and int8 scales (4 B/row) are kept in memory and appended at
//! [`SegmentWriter::finish`], which then writes the header, fsyncs, renames into place and
//! fsyncs the directory.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};
use crate::format::{ALIGN, ElemType, HEADER_LEN, Header, Layout, MAX_DIM, segment_crc};
use crate::fsutil::{commit_tmp, tmp_path};
use crate::quant::quantize_i8;

/// What a finished segment holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    /// Final path of the segment file.
    pub path: PathBuf,
    /// Vector dimension.
    pub dim: usize,
    /// Element type.
    pub elem_type: ElemType,
    /// Number of rows.
    pub len: usize,
    /// Smallest and largest id (`None` for an empty segment).
    pub id_range: Option<(u64, u64)>,
    /// Total file size in bytes.
    pub file_len: u64,
    /// The crc32 stored in the header.
    pub checksum: u32,
}

/// Writes one immutable segment. Ids must be pushed in strictly ascending order.
/// Dropping a writer without calling [`finish`](SegmentWriter::finish) deletes its temporary file.
pub struct SegmentWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
    dim: usize,
    elem: ElemType,
    ids: Vec<u64>,
    scales: Vec<f32>,
    body_crc: crc32fast::Hasher,
    body_len: u64,
    scratch: Vec<u8>,
    qscratch: Vec<i8>,
}

impl SegmentWriter {
    /// Start writing a segment of `dim`-dimensional vectors of type `elem` to `path`
    /// (through `<path>.tmp`; `path` appears only at `finish`).
    pub fn create(path: impl AsRef<Path>, dim: usize, elem: ElemType) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if dim == 0 || dim > MAX_DIM {
            return Err(StorageError::invalid(&path, format!("dimension {dim} is outside 1..={MAX_DIM}")));
        }
        let tmp = tmp_path(&path);
        let file = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        // Placeholder header, rewritten by `finish` once the row count and checksum are known.
        file.write_all(&[0u8; HEADER_LEN]).map_err(|e| StorageError::io(&tmp, e))?;
        Ok(SegmentWriter {
            path,
            tmp,
            file: Some(file),
            dim,
            elem,
            ids: Vec::new(),
            scales: Vec::new(),
            body_crc: crc32fast::Hasher::new(),
            body_len: 0,
            scratch: Vec::with_capacity(dim * 4),
            qscratch: vec![0; dim],
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// No rows pushed yet?
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn check_id(&self, id: u64) -> Result<()> {
        if let Some(&prev) = self.ids.last()
            && id <= prev
        {
            return Err(StorageError::NonAscendingId { path: self.path.clone(), prev, id });
        }
        Ok(())
    }

    fn write_body(&mut self, bytes_from_scratch: bool, extra: &[u8]) -> Result<()> {
        let bytes: &[u8] = if bytes_from_scratch { &self.scratch } else { extra };
        self.body_crc.update(bytes);
        self.body_len += bytes.len() as u64;
        let file = self.file.as_mut().expect("writer used after finish");
        file.write_all(bytes).map_err(|e| StorageError::io(&self.tmp, e))
    }

    /// Append a row. For an `I8` segment the vector is quantized here (see [`quantize_i8`]).
    /// Rejects a wrong dimension, a non-finite value, or an id not greater than the previous one.
    pub fn push(&mut self, id: u64, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dim {
            return Err(StorageError::DimMismatch { path: self.path.clone(), expected: self.dim, found: vector.len() });
        }
        self.check_id(id)?;
        if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
            return Err(StorageError::invalid(&self.path, format!("id {id}: element {i} is {}", vector[i])));
        }
        self.scratch.clear();
        match self.elem {
            ElemType::F32 => {
                for x in vector {
                    self.scratch.extend_from_slice(&x.to_le_bytes());
                }
            }
            ElemType::I8 => {
                let scale = quantize_i8(vector, &mut self.qscratch);
                self.scratch.extend(self.qscratch.iter().map(|&q| q as u8));
                self.scales.push(scale);
            }
        }
        self.write_body(true, &[])?;
        self.ids.push(id);
        Ok(())
    }

    /// Append an already-quantized int8 row (`x ≈ scale · q`) to an `I8` segment — used by
    /// merges so int8 rows are copied, not re-quantized.
    pub fn push_i8(&mut self, id: u64, q: &[i8], scale: f32) -> Result<()> {
        if self.elem != ElemType::I8 {
            return Err(StorageError::invalid(&self.path, "push_i8 on a segment whose element type is f32"));
        }
        if q.len() != self.dim {
            return Err(StorageError::DimMismatch { path: self.path.clone(), expected: self.dim, found: q.len() });
        }
        self.check_id(id)?;
        if !scale.is_finite() || scale < 0.0 {
            return Err(StorageError::invalid(&self.path, format!("id {id}: scale {scale} must be finite and ≥ 0")));
        }
        self.scratch.clear();
        self.scratch.extend(q.iter().map(|&x| x as u8));
        self.write_body(true, &[])?;
        self.scales.push(scale);
        self.ids.push(id);
        Ok(())
    }

    fn pad_to_align(&mut self) -> Result<()> {
        let pos = HEADER_LEN as u64 + self.body_len;
        let pad = (ALIGN - pos % ALIGN) % ALIGN;
        if pad > 0 {
            self.write_body(false, &[0u8; ALIGN as usize][..pad as usize])?;
        }
        Ok(())
    }

    /// Write the scale and id blocks and the header, fsync, rename `<path>.tmp` to `<path>`,
    /// fsync the directory. The segment is durable and visible when this returns `Ok`.
    pub fn finish(mut self) -> Result<SegmentInfo> {
        let rows = self.ids.len() as u64;
        let layout = Layout::compute(self.dim as u64, self.elem, rows)
            .ok_or_else(|| StorageError::invalid(&self.path, "segment too large"))?;
        self.pad_to_align()?;
        if self.elem == ElemType::I8 {
            let mut buf = Vec::with_capacity(self.scales.len() * 4);
            for s in &self.scales {
                buf.extend_from_slice(&s.to_le_bytes());
            }
            self.write_body(false, &buf)?;
            self.pad_to_align()?;
        }
        let mut buf = Vec::with_capacity(self.ids.len() * 8);
        for id in &self.ids {
            buf.extend_from_slice(&id.to_le_bytes());
        }
        self.write_body(false, &buf)?;
        debug_assert_eq!(HEADER_LEN as u64 + self.body_len, layout.file_len);

        let mut header = Header { elem: self.elem, dim: self.dim as u32, rows, layout, crc: 0 };
        header.crc = segment_crc(&header.encode(), &self.body_crc);
        let tmp = self.tmp.clone();
        let file = self.file.take().expect("finish called once");
        let committed = (|| {
            let io = |e| StorageError::io(&tmp, e);
            let mut file = file.into_inner().map_err(|e| io(e.into_error()))?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(&header.encode()).map_err(io)?;
            file.sync_all().map_err(io)?;
            drop(file);
            commit_tmp(&tmp, &self.path)
        })();
        if let Err(e) = committed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(SegmentInfo {
            path: self.path.clone(),
            dim: self.dim,
            elem_type: self.elem,
            len: self.ids.len(),
            id_range: self.ids.first().zip(self.ids.last()).map(|(a, b)| (*a, *b)),
            file_len: layout.file_len,
            checksum: header.crc,
        })
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        // Unfinished (error or abandoned): remove the partial temporary file.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
