//! `optical._optical`: the Rust side of the Python package `optical`.
//!
//! Thin bindings over the library: an index (open, create, search, read documents back), its
//! writer, the encoder, the ingest and merge calls and an evaluation. Every library error
//! becomes a Python exception of the matching class (`optical.LockedError`, …, all subclasses
//! of `optical.OpticalError`) carrying the library's message unchanged. Long calls (encoding,
//! searching, committing) release the GIL, so Python threads and Ray actors run beside them.
//! The Python package (python/optical/) adds numpy arrays around [`Encoder::encode_raw`].

mod convert;
mod errors;
mod eval;
mod index;

use pyo3::prelude::*;

#[pymodule]
fn _optical(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<index::PyIndex>()?;
    m.add_class::<index::PyWriter>()?;
    m.add_class::<index::Encoder>()?;
    m.add_function(wrap_pyfunction!(index::ingest, m)?)?;
    m.add_function(wrap_pyfunction!(index::merge, m)?)?;
    m.add_function(wrap_pyfunction!(eval::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(index::default_query_model, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
