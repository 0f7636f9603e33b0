//! Crash-safe file replacement: write `<path>.tmp`, fsync it, rename over `<path>`, fsync the
//! directory. After a crash at any instant, `<path>` is either the old complete file, the new
//! complete file, or absent (when there was none) — never a torn mix. A stale `.tmp` may remain;
//! writers overwrite it and callers may delete it.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};

/// `<path>.tmp` (appending, so `a.seg` becomes `a.seg.tmp`, not `a.tmp`).
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsync the directory containing `path`, so a rename into it is durable.
pub(crate) fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = parent_dir(path);
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| StorageError::io(dir, e))?;
        d.sync_all().map_err(|e| StorageError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened for fsync on this platform; rename is the best we have.
        let _ = dir;
    }
    Ok(())
}

/// Move the fsynced `tmp` over `path` and make the rename durable.
pub(crate) fn commit_tmp(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path).map_err(|e| StorageError::io(path, e))?;
    sync_parent_dir(path)
}

/// Atomically replace `path` with `bytes` (tmp + fsync + rename + directory fsync).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| StorageError::io(&tmp, e))?;
        f.sync_all().map_err(|e| StorageError::io(&tmp, e))?;
        drop(f);
        commit_tmp(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
