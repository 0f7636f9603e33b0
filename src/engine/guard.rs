//! Turning a panic inside tantivy into an error that names the index.
//!
//! tantivy returns errors for most damage it meets, but on some corrupt files (a flipped byte in
//! a term dictionary block, a posting list or a doc store) it panics instead: an index out of
//! bounds, a bad VInt, a slice past the end. An embedded search engine must not take its host
//! application down because one of its files is damaged, so every entry into tantivy that reads
//! segment data goes through [`guard`]. (This relies on unwinding: a host built with
//! `panic = "abort"` still aborts.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use anyhow::Result;

/// The error of a panic caught by [`guard`]: the index is damaged (retrying will not help).
#[derive(Debug)]
pub struct Damaged(pub String);

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Damaged {}

/// Runs `f`; a panic becomes an error naming the index `dir` and what was being done.
pub(crate) fn guard<T>(dir: &Path, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    // `AssertUnwindSafe`: after a panic nothing `f` touched is used again by this call, and the
    // snapshot it read from is immutable.
    match catch_unwind(AssertUnwindSafe(f)) {
        // tantivy's errors about damage ("data corruption", a bad footer, invalid UTF-8 in a
        // column) rarely say which index they are about.
        Ok(Err(e))
            if e.chain()
                .any(|c| c.is::<tantivy::TantivyError>() || c.is::<std::io::Error>()) =>
        {
            Err(e.context(format!("{what} in the text index of {}", dir.display())))
        }
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_string());
            Err(Damaged(format!(
                "the text index of {} is damaged: tantivy panicked while {what} ({msg}); run `optical check {}` to find the damaged files",
                dir.display(),
                dir.display()
            ))
            .into())
        }
    }
}
