//! The sled key map: external key → internal id, plus a copy of the index metadata.
//!
//! Everything here is derived state. The commit payload (in tantivy) and the key/id stored with
//! every tantivy document are the truth; sled is a fast lookup for the writer. It records the
//! generation it reflects, and [`KeyMap::open_or_rebuild`] rebuilds it from tantivy whenever that
//! generation differs from the committed one, its counts disagree, or sled fails to open (sled
//! 0.34 has reported corruption after an abrupt stop and crash-consistency gaps: spacejam/sled
//! issues #1533 and #1077).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::codec;
use super::meta::IndexConfig;
use super::snapshot::Snapshot;
use crate::Result;
use crate::error::Error;
use super::text;

const KEYS_TREE: &str = "keys";
const META_KEY: &[u8] = b"optical_meta";

/// What sled records about the commit it reflects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMapMeta {
    /// The commit generation the key map reflects.
    pub generation: u64,
    /// Number of keys (live documents) at that generation.
    pub docs: u64,
    /// The index configuration (a cached copy; the commit payload is authoritative).
    pub config: IndexConfig,
}

/// How [`KeyMap::open_or_rebuild`] found sled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMapState {
    /// sled was current.
    Current,
    /// sled was rebuilt from tantivy; the string says why.
    Rebuilt(String),
}

/// The sled database of an index.
pub struct KeyMap {
    path: PathBuf,
    db: sled::Db,
    keys: sled::Tree,
}

fn open_sled(path: &Path) -> anyhow::Result<(sled::Db, sled::Tree)> {
    // sled may panic on some corrupt files instead of returning an error: treat a panic as a
    // failed open (the map is rebuilt from tantivy anyway).
    let opened = std::panic::catch_unwind(|| sled::Config::new().path(path).open());
    let db = match opened {
        Ok(r) => r.with_context(|| format!("opening sled database {}", path.display()))?,
        Err(_) => anyhow::bail!("sled panicked opening {}", path.display()),
    };
    let keys = db.open_tree(KEYS_TREE).with_context(|| format!("opening tree `{KEYS_TREE}` in {}", path.display()))?;
    Ok((db, keys))
}

/// How long a writable open waits for sled's file lock. sled releases it a moment after its
/// last handle is dropped (its background threads still hold the files), so reopening an index
/// right after closing it in the same process can find it busy. The caller holds the index's
/// own lock, which rules out another writer: a lock still busy after this wait is reported.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// [`open_sled`], waiting up to [`SLED_LOCK_WAIT`] while sled's lock is busy.
fn open_sled_waiting(path: &Path) -> anyhow::Result<(sled::Db, sled::Tree)> {
    let start = std::time::Instant::now();
    loop {
        match open_sled(path) {
            Err(e) if is_lock_busy(&e) && start.elapsed() < SLED_LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Whether a failed sled open means that another handle holds sled's file lock. sled 0.34
/// reports it as an I/O error "could not acquire lock on ..." (of kind `Other`, wrapping the
/// `WouldBlock` of the lock call).
fn is_lock_busy(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| match cause.downcast_ref::<sled::Error>() {
        Some(sled::Error::Io(io)) => {
            io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock")
        }
        _ => cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::WouldBlock),
    })
}

/// Decodes the value sled holds for a key: the internal id, 8 bytes big-endian. Any other
/// length is damage (sled's files are read back from disk), reported instead of sliced.
pub fn decode_id(bytes: &[u8]) -> Result<u64> {
    let a: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::damaged(format!("damaged key map entry: the id is {} bytes long, not 8", bytes.len())))?;
    Ok(u64::from_be_bytes(a))
}

impl KeyMap {
    /// Opens the key map at `path` and checks it against the commit `snap` shows (its
    /// generation and live documents); rebuilds it from the snapshot's text index when it is
    /// stale, inconsistent or unreadable.
    pub fn open_or_rebuild(path: &Path, snap: &Snapshot) -> crate::Result<(KeyMap, KeyMapState)> {
        let (generation, docs) = (snap.generation(), snap.num_docs());
        let why = match open_sled_waiting(path) {
            Ok((db, keys)) => {
                let map = KeyMap { path: path.to_path_buf(), db, keys };
                if map.is_current(generation, docs) {
                    return Ok((map, KeyMapState::Current));
                }
                match map.meta() {
                    Ok(Some(m)) => format!(
                        "sled reflects generation {} with {} documents ({} keys), the commit is generation {generation} with {docs}",
                        m.generation,
                        m.docs,
                        map.keys.len()
                    ),
                    Ok(None) => "sled has no metadata record".to_string(),
                    Err(e) => format!("sled metadata unreadable: {e:#}"),
                }
            }
            // Another writer has the database open: that is a lock, not damage. Rebuilding
            // would delete the live key map under it.
            Err(e) if is_lock_busy(&e) => {
                return Err(Error::Locked {
                    dir: snap.dir().to_path_buf(),
                    message: format!(
                        "key map {} is locked by another writer (sled's lock is held): the index is open for writing elsewhere ({e:#})",
                        path.display()
                    ),
                });
            }
            Err(e) => format!("{e:#}"),
        };
        let map = KeyMap::rebuild(path, snap)
            .with_context(|| format!("rebuilding the key map {} ({why})", path.display()))?;
        Ok((map, KeyMapState::Rebuilt(why)))
    }

    /// Deletes the sled directory and rebuilds it from the key and id fast fields of every live
    /// document of `snap`.
    pub fn rebuild(path: &Path, snap: &Snapshot) -> Result<KeyMap> {
        if path.exists() {
            std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
        }
        let (db, keys) = open_sled(path)?;
        let map = KeyMap { path: path.to_path_buf(), db, keys };
        map.resync(snap)?;
        Ok(map)
    }

    /// Whether sled reflects exactly the commit `generation` with `docs` live documents.
    pub fn is_current(&self, generation: u64, docs: u64) -> bool {
        matches!(self.meta(), Ok(Some(m)) if m.generation == generation && m.docs == docs && self.keys.len() as u64 == docs)
    }

    /// Replaces every key with those of the live documents of `snap`, in the open database:
    /// used when a commit reached tantivy but not sled, and the index stays open.
    pub fn resync(&self, snap: &Snapshot) -> Result<()> {
        self.keys.clear().context("clearing the key map")?;
        let mut docs = 0u64;
        for seg in snap.searcher().segment_readers() {
            let mut batch = sled::Batch::default();
            for doc in seg.doc_ids_alive() {
                let (key, id) = text::key_and_id(seg, doc)?;
                batch.insert(key.as_bytes(), &id.to_be_bytes());
                docs += 1;
            }
            self.keys.apply_batch(batch).context("writing the rebuilt key map")?;
        }
        self.set_meta(&KeyMapMeta { generation: snap.generation(), docs, config: snap.config().clone() })?;
        self.flush()
    }

    /// The metadata record, if any.
    pub fn meta(&self) -> Result<Option<KeyMapMeta>> {
        match self.db.get(META_KEY).context("reading sled metadata")? {
            None => Ok(None),
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        }
    }

    fn set_meta(&self, meta: &KeyMapMeta) -> Result<()> {
        self.db.insert(META_KEY, codec::encode(meta)?).context("writing sled metadata")?;
        Ok(())
    }

    /// The internal id of a key at the last applied commit.
    pub fn get(&self, key: &str) -> Result<Option<u64>> {
        let v = self.keys.get(key.as_bytes()).with_context(|| format!("reading key `{key}` from sled"))?;
        v.map(|b| decode_id(&b).with_context(|| format!("key `{key}` in sled database {}", self.path.display())))
            .transpose()
            .map_err(Error::from)
    }

    /// Applies one commit's key changes (`Some(id)` = set, `None` = remove), records the new
    /// generation and flushes. Called only after the tantivy commit is durable.
    pub fn apply_commit<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a str, Option<u64>)>,
        meta: &KeyMapMeta,
    ) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (key, id) in changes {
            match id {
                Some(id) => batch.insert(key.as_bytes(), &id.to_be_bytes()),
                None => batch.remove(key.as_bytes()),
            }
        }
        self.keys.apply_batch(batch).context("writing the key map")?;
        self.set_meta(meta)?;
        self.flush()
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<()> {
        self.db.flush().with_context(|| format!("flushing sled database {}", self.path.display()))?;
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
