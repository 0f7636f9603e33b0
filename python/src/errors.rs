//! The library's [`optical::Error`] as Python exceptions: one class per variant, all under
//! `OpticalError`, each with the library's message unchanged.
use optical::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(optical, OpticalError, PyException, "Any error of Optical; its message is the library's.");
create_exception!(optical, LockedError, OpticalError, "The index is open for writing elsewhere.");
create_exception!(optical, NotAnIndexError, OpticalError, "The directory holds no Optical index.");
create_exception!(optical, AlreadyExistsError, OpticalError, "The directory already holds an index.");
create_exception!(optical, IncompatibleEncoderError, OpticalError, "An encoder does not fit the index.");
create_exception!(
    optical,
    InvalidDocumentError,
    OpticalError,
    "A line of an input file the index cannot take (attributes file, line, reason)."
);
create_exception!(optical, InvalidError, OpticalError, "A request, document or option the index cannot take.");
create_exception!(optical, DamagedError, OpticalError, "The index's files are damaged (`optical check` says which).");
create_exception!(optical, StorageError, OpticalError, "The vector storage failed.");
create_exception!(optical, TantivyError, OpticalError, "tantivy failed.");
create_exception!(optical, IoError, OpticalError, "A file-system operation failed.");
create_exception!(optical, EncoderError, OpticalError, "The encoder failed (loading, tokenizing, running).");

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("OpticalError", py.get_type::<OpticalError>())?;
    m.add("LockedError", py.get_type::<LockedError>())?;
    m.add("NotAnIndexError", py.get_type::<NotAnIndexError>())?;
    m.add("AlreadyExistsError", py.get_type::<AlreadyExistsError>())?;
    m.add("IncompatibleEncoderError", py.get_type::<IncompatibleEncoderError>())?;
    m.add("InvalidDocumentError", py.get_type::<InvalidDocumentError>())?;
    m.add("InvalidError", py.get_type::<InvalidError>())?;
    m.add("DamagedError", py.get_type::<DamagedError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("TantivyError", py.get_type::<TantivyError>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("EncoderError", py.get_type::<EncoderError>())?;
    Ok(())
}

/// The Python exception for a library error, with the same message.
pub fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Locked { .. } => LockedError::new_err(message),
        Error::NotAnIndex { .. } => NotAnIndexError::new_err(message),
        Error::AlreadyExists { .. } => AlreadyExistsError::new_err(message),
        Error::IncompatibleEncoder { .. } => IncompatibleEncoderError::new_err(message),
        Error::InvalidDocument { file, line, reason } => {
            let err = InvalidDocumentError::new_err(message);
            // The fields as attributes, so that a caller can report or skip the line itself.
            Python::attach(|py| {
                let value = err.value(py);
                let _ = value.setattr("file", file.display().to_string());
                let _ = value.setattr("line", line);
                let _ = value.setattr("reason", reason);
            });
            err
        }
        Error::Invalid { .. } => InvalidError::new_err(message),
        Error::Damaged { .. } => DamagedError::new_err(message),
        Error::Storage { .. } => StorageError::new_err(message),
        Error::Tantivy { .. } => TantivyError::new_err(message),
        Error::Io { .. } => IoError::new_err(message),
        Error::Encoder { .. } => EncoderError::new_err(message),
        _ => OpticalError::new_err(message),
    }
}

/// `Result<T, optical::Error>` → `PyResult<T>`.
pub trait IntoPy<T> {
    /// The value, or the Python exception for the error.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for optical::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// An `anyhow` error of a library helper that has no typed error (reading a translation table,
/// a BEIR collection): classified the way the library classifies errors leaving it.
pub fn anyhow_to_py(e: anyhow::Error) -> PyErr {
    to_py(Error::from(e))
}
