//! The library's error: what went wrong as a variant an application can match on, and a message
//! that names the file, index, field or line at fault.
//!
//! Inside the engine, errors travel as `anyhow` chains that gather context on the way up ("opening
//! index X: reading Y: …"). Where they leave the library they become an [`Error`]: a typed error
//! made at its origin (a lock held, a directory that is no index, an encoder that does not fit)
//! keeps its variant, an error of tantivy, the storage crate or the file system becomes
//! [`Error::Tantivy`], [`Error::Storage`] or [`Error::Io`] with the original error beside it, and
//! every variant's message is the whole chain, so nothing the context said is lost.

use std::path::PathBuf;

use optical_storage::StorageError;

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of the engine, search or ingest. Its `Display` is the full message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The index is open for writing elsewhere: by another process, another handle of this
    /// process, or another writer of this handle.
    #[error("{message}")]
    Locked {
        /// The index directory.
        dir: PathBuf,
        /// What holds it and what to do instead.
        message: String,
    },
    /// The directory holds no Optical index.
    #[error("{message}")]
    NotAnIndex {
        /// The directory.
        dir: PathBuf,
        /// The message.
        message: String,
    },
    /// The directory already holds an index, or files an index would overwrite.
    #[error("{message}")]
    AlreadyExists {
        /// The directory.
        dir: PathBuf,
        /// What it holds.
        message: String,
    },
    /// An encoder does not fit the index: another model (fingerprint), dimension or embedding
    /// space than the one its vectors came from, or an index without vectors.
    #[error("{message}")]
    IncompatibleEncoder {
        /// Both encoders, named.
        message: String,
    },
    /// A line of an input file that is not a document the index can take.
    #[error("{}:{line}: {reason}", file.display())]
    InvalidDocument {
        /// The input file.
        file: PathBuf,
        /// Its line, from 1.
        line: u64,
        /// Why the line was refused.
        reason: String,
    },
    /// A request or document the index cannot take: a vector of the wrong dimension, an empty
    /// key, a dense search on a text-only index, a write on a read-only handle, an invalid option.
    #[error("{message}")]
    Invalid {
        /// The message.
        message: String,
    },
    /// The index's files are damaged or disagree with each other (`optical check` finds which).
    #[error("{message}")]
    Damaged {
        /// The message.
        message: String,
    },
    /// The vector storage failed (a segment file unreadable, invalid or not writable).
    #[error("{message}")]
    Storage {
        /// The whole chain, naming the file.
        message: String,
        /// The storage crate's error.
        error: StorageError,
    },
    /// tantivy failed.
    #[error("{message}")]
    Tantivy {
        /// The whole chain, naming the index.
        message: String,
        /// tantivy's error.
        error: tantivy::TantivyError,
    },
    /// A file-system operation failed.
    #[error("{message}")]
    Io {
        /// The whole chain, naming the file.
        message: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The encoder failed (loading a model, tokenizing, running it).
    #[error("{message}")]
    Encoder {
        /// The message.
        message: String,
    },
    /// Anything else (the key map database, a record that does not decode); the message says
    /// what and where.
    #[error("{message}")]
    Other {
        /// The message.
        message: String,
    },
}

impl Error {
    /// An [`Error::Invalid`].
    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::Invalid { message: message.into() }
    }

    /// An [`Error::Damaged`].
    pub(crate) fn damaged(message: impl Into<String>) -> Error {
        Error::Damaged { message: message.into() }
    }

    /// An [`Error::Encoder`] from the encoder's own (`anyhow`) error.
    pub(crate) fn encoder(error: anyhow::Error) -> Error {
        Error::Encoder { message: format!("{error:#}") }
    }

    /// The same error with its message replaced (by the chain of context around it).
    fn with_message(self, full: String) -> Error {
        match self {
            Error::Locked { dir, .. } => Error::Locked { dir, message: full },
            Error::NotAnIndex { dir, .. } => Error::NotAnIndex { dir, message: full },
            Error::AlreadyExists { dir, .. } => Error::AlreadyExists { dir, message: full },
            Error::IncompatibleEncoder { .. } => Error::IncompatibleEncoder { message: full },
            Error::Invalid { .. } => Error::Invalid { message: full },
            Error::Damaged { .. } => Error::Damaged { message: full },
            Error::Storage { error, .. } => Error::Storage { message: full, error },
            Error::Tantivy { error, .. } => Error::Tantivy { message: full, error },
            Error::Io { error, .. } => Error::Io { message: full, error },
            Error::Encoder { .. } => Error::Encoder { message: full },
            Error::Other { .. } => Error::Other { message: full },
            // Its message is its file, line and reason: context around it adds nothing.
            e @ Error::InvalidDocument { .. } => e,
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        let full = format!("{e:#}");
        if e.chain().any(|c| c.is::<Error>()) {
            if let Ok(inner) = e.downcast::<Error>() {
                return inner.with_message(full);
            }
            return Error::Other { message: full };
        }
        if e.chain().any(|c| c.is::<crate::engine::guard::Damaged>()) {
            return Error::Damaged { message: full };
        }
        let e = match e.downcast::<StorageError>() {
            Ok(error) => return Error::Storage { message: full, error },
            Err(e) => e,
        };
        let e = match e.downcast::<tantivy::TantivyError>() {
            Ok(error) => return Error::Tantivy { message: full, error },
            Err(e) => e,
        };
        match e.downcast::<std::io::Error>() {
            Ok(error) => Error::Io { message: full, error },
            Err(_) => Error::Other { message: full },
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::Io { message: error.to_string(), error }
    }
}

impl From<StorageError> for Error {
    fn from(error: StorageError) -> Error {
        Error::Storage { message: error.to_string(), error }
    }
}

/// Returns an [`Error::Invalid`] with a formatted message from a function returning either
/// `anyhow::Result` or the library's [`Result`].
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::invalid(format!($($arg)*)).into())
    };
}

/// Returns an [`Error::Damaged`] with a formatted message (see [`invalid!`]).
macro_rules! damaged {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::damaged(format!($($arg)*)).into())
    };
}

/// Returns an [`Error::IncompatibleEncoder`] with a formatted message (see [`invalid!`]).
macro_rules! incompatible {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::IncompatibleEncoder { message: format!($($arg)*) }.into())
    };
}

pub(crate) use {damaged, incompatible, invalid};
