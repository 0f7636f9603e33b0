//! The crate's error type. Every variant names the file it concerns, so a caller can report
//! "which segment is broken" without adding context of its own.

use std::path::PathBuf;

/// Errors from reading, writing, merging or scanning vector segments and tombstone files.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system I/O failure (open, read, write, fsync, rename, mmap).
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was acting on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file does not start with the expected magic bytes: it is not a file of this kind.
    #[error("{}: not a {kind} file (bad magic bytes {found:02x?})", path.display())]
    BadMagic {
        /// The file at fault.
        path: PathBuf,
        /// What the file was expected to be ("vector segment" or "tombstone").
        kind: &'static str,
        /// The first bytes actually found (fewer when the file is shorter than the magic).
        found: Vec<u8>,
    },

    /// The file's format version is not one this build can read.
    #[error("{}: unsupported {kind} format version {found} (this build reads version {supported})", path.display())]
    UnsupportedVersion {
        /// The file at fault.
        path: PathBuf,
        /// What the file was expected to be.
        kind: &'static str,
        /// The version stored in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },

    /// The file is structurally invalid: truncated, inconsistent sizes, bad field values.
    #[error("{}: corrupt file: {reason}", path.display())]
    Corrupt {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong, naming the field.
        reason: String,
    },

    /// The stored checksum does not match the file's contents (bit rot, partial overwrite).
    #[error("{}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})", path.display())]
    ChecksumMismatch {
        /// The file at fault.
        path: PathBuf,
        /// The crc32 stored in the file.
        stored: u32,
        /// The crc32 of the bytes actually present.
        computed: u32,
    },

    /// Ids pushed into a segment (or a merge's inputs) were not strictly ascending,
    /// which would break lookups by id (binary search).
    #[error("{}: ids must be strictly ascending, got {id} after {prev}", path.display())]
    NonAscendingId {
        /// The segment being written.
        path: PathBuf,
        /// The previous id.
        prev: u64,
        /// The offending id.
        id: u64,
    },

    /// A vector or query has the wrong number of dimensions for the segment.
    #[error("{}: dimension mismatch: segment has {expected} dimensions, got {found}", path.display())]
    DimMismatch {
        /// The segment concerned.
        path: PathBuf,
        /// The segment's dimension.
        expected: usize,
        /// The dimension offered.
        found: usize,
    },

    /// An argument is not acceptable (zero or too large dimension, non-finite value,
    /// wrong element type for the operation, ...).
    #[error("{}: invalid input: {reason}", path.display())]
    InvalidInput {
        /// The file the operation concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Corrupt { path: path.into(), reason: reason.into() }
    }
    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::InvalidInput { path: path.into(), reason: reason.into() }
    }

    /// The file this error concerns.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Io { path, .. }
            | Self::BadMagic { path, .. }
            | Self::UnsupportedVersion { path, .. }
            | Self::Corrupt { path, .. }
            | Self::ChecksumMismatch { path, .. }
            | Self::NonAscendingId { path, .. }
            | Self::DimMismatch { path, .. }
            | Self::InvalidInput { path, .. } => path,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
