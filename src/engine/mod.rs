//! Index directory: write path (add/delete/upsert/commit), read snapshots, the commit protocol.
//!
//! An index directory holds
//!
//! ```text
//! <dir>/text/       the tantivy index (title/body/lang, the external key, the internal id)
//! <dir>/vectors/    immutable vector segments (*.ovs) and tombstone files (*.tomb)
//! <dir>/keymap/     sled: external key -> internal id (derived state, rebuilt when stale)
//! <dir>/token-codebook.safetensors   the token codebook, when the index stores token codes
//!                   (written before the first commit, never changed; the commit payload's
//!                   configuration holds its fingerprint, and each document's codes are a
//!                   stored bytes field of the tantivy index, so they follow its commits,
//!                   deletes and merges)
//! <dir>/optical.lock  held by the process that has the index open for writing
//! ```
//!
//! # One commit point
//!
//! A commit (1) writes and fsyncs this commit's new vector segment and tombstone file under
//! names no earlier commit used, (2) runs tantivy's `prepare_commit()`, sets the commit payload
//! ([`CommitMeta`]: generation, live segment files, tombstone file, next id, format version,
//! configuration) and commits — tantivy writes `meta.json` atomically, and that write *is* the
//! commit point — then (3) records the new state in sled and flushes it, and (4) deletes vector
//! files the new commit no longer names. A crash before (2) completes leaves the previous
//! `meta.json`, whose payload names only the previous files: the new files are orphans, deleted
//! on the next writable open. A crash after (2) leaves sled behind: its recorded generation
//! differs, so it is rebuilt from tantivy on open. Readers only ever see whole commits because a
//! [`Snapshot`] pairs a tantivy searcher with the vector files named by *that* searcher's payload.

mod bm25;
pub mod check;
mod codec;
mod dense;
mod encoding;
mod failpoint;
pub(crate) mod guard;
pub mod keymap;
mod lookup;
mod merge;
pub mod meta;
mod snapshot;
pub mod sparse;
pub mod text;
pub mod vectors;
mod writer;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context;

use crate::encoder::codebook::{CODEBOOK_FILE, Codebook};
use crate::error::{Error, Result, damaged, invalid};
use tantivy::{IndexReader, ReloadPolicy};

pub use self::check::{CheckReport, Problem, check};
pub use self::codec::{decode as decode_record, encode as encode_record};
pub use self::encoding::{
    ENCODER_SOURCE_FILE, check_document_encoder, encoder_record, index_config_for, load_encoder, load_encoder_with,
    passage_text, recorded_model_dir,
};
pub(crate) use self::encoding::{EncodedDocument, attach_vectors, document_tokens, encode_document_tokens};
#[doc(hidden)]
pub use self::failpoint::CommitStep;
pub use self::keymap::KeyMapState;
pub use self::merge::{MergeReport, merge_indexes};
pub use self::meta::{CommitMeta, EncoderRecord, FORMAT_VERSION, IndexConfig, VectorElem};
pub use self::snapshot::{Snapshot, StoredDoc};
pub use self::writer::{CommitInfo, IndexWriter, MAX_KEY_BYTES};
pub use self::bm25::{MIN_DOCS_FOR_COMMON_TERMS, SparseHit};
pub use self::text::Bm25Fields;
pub use optical_storage::Hit;

use self::text::TextFields;

const TEXT_DIR: &str = "text";
const TEXT_STAGING_DIR: &str = "text.tmp";
const VECTORS_DIR: &str = "vectors";
const KEYMAP_DIR: &str = "keymap";
const LOCK_FILE: &str = "optical.lock";

/// A document to index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Document {
    /// External key, unique in the index (upserts and deletes address documents by it).
    pub key: String,
    /// Title (may be empty).
    pub title: String,
    /// Body text.
    pub body: String,
    /// Language code (ISO 639-3 preferred, e.g. `eng`, `swa`); `und` when unknown.
    pub lang: String,
    /// The document's vector: required by an index with a dimension, refused by a text-only one.
    pub vector: Option<Vec<f32>>,
    /// The passage's token codes ([`crate::encoder::codebook::Codebook::encode`] of its content
    /// tokens' states), stored for the late-interaction rerank by an index with a token
    /// codebook. The index's writer computes them with the vector; a document that brings its
    /// own vector may bring its codes too (a merge copies them).
    pub token_codes: Option<Vec<u8>>,
}

impl Document {
    /// A document with a key and body; language `und`, no title, no vector.
    pub fn new(key: impl Into<String>, body: impl Into<String>) -> Document {
        Document { key: key.into(), body: body.into(), lang: "und".into(), ..Document::default() }
    }

    /// Sets the title.
    pub fn with_title(mut self, title: impl Into<String>) -> Document {
        self.title = title.into();
        self
    }

    /// Sets the language code.
    pub fn with_lang(mut self, lang: impl Into<String>) -> Document {
        self.lang = lang.into();
        self
    }

    /// Sets the vector.
    pub fn with_vector(mut self, vector: Vec<f32>) -> Document {
        self.vector = Some(vector);
        self
    }

    /// Sets the token codes.
    pub fn with_token_codes(mut self, codes: Vec<u8>) -> Document {
        self.token_codes = Some(codes);
        self
    }
}

/// State shared by an [`Index`], its writer and its snapshots.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub vectors_dir: PathBuf,
    pub fields: TextFields,
    /// The token codebook of an index configured with one ([`IndexConfig::token_codebook`]).
    pub codebook: Option<Arc<Codebook>>,
    pub tantivy: tantivy::Index,
    pub reader: IndexReader,
    pub current: RwLock<Snapshot>,
    /// sled, present when the index is open for writing.
    pub keymap: Option<keymap::KeyMap>,
    /// Keeps the directory lock while the index is open for writing.
    _lock: Option<DirLock>,
    /// Test hook: the commit step at which the next commit fails. See
    /// [`Index::fail_next_commit_at`].
    pub fail: failpoint::FailPoint,
    /// Test hook: when set, the next commit damages one of the text files it wrote, right after
    /// tantivy wrote them. See [`Index::damage_next_commit`].
    pub damage_next_commit: AtomicBool,
}

/// An open index directory. Cheap to clone; share it across threads.
///
/// [`Index::open`] / [`Index::create`] open for writing (one process at a time: the directory is
/// locked; within the process, one [`IndexWriter`] at a time). [`Index::open_read_only`] opens
/// for searching from any number of processes beside the writer.
#[derive(Clone)]
pub struct Index {
    shared: Arc<Shared>,
    keymap_state: Option<KeyMapState>,
    orphans_removed: usize,
}

impl Index {
    /// Creates a new index in `dir` (created if absent; must not already hold an index).
    pub fn create(dir: impl AsRef<Path>, config: IndexConfig) -> Result<Index> {
        Index::create_inner(dir.as_ref(), config, None)
    }

    /// [`Index::create`] for an index that stores its passages' token codes: keeps a copy of
    /// `codebook` beside its text and records the copy's fingerprint in the configuration.
    pub fn create_with_codebook(dir: impl AsRef<Path>, mut config: IndexConfig, codebook: &Codebook) -> Result<Index> {
        config.token_codebook = Some(codebook.fingerprint()?);
        Index::create_inner(dir.as_ref(), config, Some(codebook))
    }

    fn create_inner(dir: &Path, config: IndexConfig, codebook: Option<&Codebook>) -> Result<Index> {
        config.validate()?;
        if codebook.is_none() && config.token_codebook.is_some() {
            invalid!("the configuration names a token codebook: create the index with Index::create_with_codebook");
        }
        if Index::exists(dir) {
            return Err(Error::AlreadyExists {
                dir: dir.to_path_buf(),
                message: format!("{} already holds an index", dir.display()),
            });
        }
        check_creatable(dir)?;
        std::fs::create_dir_all(dir.join(VECTORS_DIR)).with_context(|| format!("creating {}", dir.display()))?;
        let lock = lock_dir(dir)?;
        if let Some(book) = codebook {
            // Durable before the first commit names it.
            let path = dir.join(CODEBOOK_FILE);
            book.save(&path)?;
            vectors::sync_dir(dir)?;
        }
        // The tantivy index is built in `text.tmp` and renamed to `text` once its first commit
        // (carrying the configuration) is durable: a crash during creation leaves no `text/`, so
        // the directory is never mistaken for an index without a payload.
        let staging = dir.join(TEXT_STAGING_DIR);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
        }
        std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
        let fields = TextFields::build();
        let index = tantivy::Index::create_in_dir(&staging, fields.schema.clone())
            .with_context(|| format!("creating the tantivy index in {}", staging.display()))?;
        text::register_analyzers(index.tokenizers());
        // Generation 0: an empty commit that carries the configuration in its payload.
        let meta = CommitMeta {
            format: FORMAT_VERSION,
            generation: 0,
            next_id: 0,
            segments: Vec::new(),
            tombstones: None,
            config,
        };
        {
            let mut w: tantivy::IndexWriter = index.writer(writer::WRITER_HEAP).context("creating the tantivy writer")?;
            let mut prepared = w.prepare_commit().context("preparing the initial commit")?;
            prepared.set_payload(&meta.to_payload());
            prepared.commit().context("writing the initial commit")?;
            w.wait_merging_threads().context("closing the tantivy writer")?;
        }
        drop(index);
        vectors::sync_dir(&staging)?;
        let text_dir = dir.join(TEXT_DIR);
        std::fs::rename(&staging, &text_dir)
            .with_context(|| format!("renaming {} to {}", staging.display(), text_dir.display()))?;
        vectors::sync_dir(dir)?;
        let index = tantivy::Index::open_in_dir(&text_dir)
            .with_context(|| format!("opening the tantivy index in {}", text_dir.display()))?;
        text::register_analyzers(index.tokenizers());
        Index::open_locked(dir, index, lock)
    }

    /// Opens an existing index for reading and writing. Reconciles the directory with the last
    /// commit: deletes vector files it does not name (a crashed commit's leftovers) and rebuilds
    /// the sled key map when it is stale or unreadable.
    pub fn open(dir: impl AsRef<Path>) -> Result<Index> {
        let dir = dir.as_ref();
        let text_dir = dir.join(TEXT_DIR);
        if !Index::exists(dir) {
            return Err(not_an_index(dir));
        }
        let lock = lock_dir(dir)?;
        let index = tantivy::Index::open_in_dir(&text_dir)
            .with_context(|| format!("opening the tantivy index in {}", text_dir.display()))?;
        text::register_analyzers(index.tokenizers());
        Index::open_locked(dir, index, lock)
    }

    /// Opens the index at `dir`, creating it with `config` when it does not exist. An existing
    /// index keeps its own configuration.
    pub fn open_or_create(dir: impl AsRef<Path>, config: IndexConfig) -> Result<Index> {
        let dir = dir.as_ref();
        if Index::exists(dir) {
            Index::open(dir)
        } else {
            Index::create(dir, config)
        }
    }

    fn open_locked(dir: &Path, index: tantivy::Index, lock: DirLock) -> Result<Index> {
        let fields = TextFields::from_schema(&index.schema())?;
        let reader = make_reader(dir, &index)?;
        let (searcher, meta) = snapshot::load_commit(dir, &index, &reader)?;
        let codebook = load_index_codebook(dir, &meta.config)?;
        let vectors_dir = dir.join(VECTORS_DIR);
        std::fs::create_dir_all(&vectors_dir).with_context(|| format!("creating {}", vectors_dir.display()))?;
        let removed = vectors::remove_orphans(&vectors_dir, &meta)?;
        let vecs = vectors::VectorSet::open(&vectors_dir, &meta, None)?;
        let snap = Snapshot::new(dir, searcher, fields.clone(), meta, vecs, codebook.clone());
        snapshot::check_agreement(&snap, &vectors_dir).with_context(|| format!("opening index {}", dir.display()))?;
        let (keymap, state) = keymap::KeyMap::open_or_rebuild(&dir.join(KEYMAP_DIR), &snap)?;
        let shared = Shared {
            dir: dir.to_path_buf(),
            vectors_dir,
            fields,
            codebook,
            tantivy: index,
            reader,
            current: RwLock::new(snap),
            keymap: Some(keymap),
            _lock: Some(lock),
            fail: failpoint::FailPoint::default(),
            damage_next_commit: AtomicBool::new(false),
        };
        Ok(Index { shared: Arc::new(shared), keymap_state: Some(state), orphans_removed: removed.len() })
    }

    /// Opens an index for searching only. Needs no lock and never modifies the directory, so it
    /// works beside a writer in another process; call [`Index::reload`] to see newer commits.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Index> {
        let dir = dir.as_ref();
        let text_dir = dir.join(TEXT_DIR);
        if !Index::exists(dir) {
            return Err(not_an_index(dir));
        }
        let index = tantivy::Index::open_in_dir(&text_dir)
            .with_context(|| format!("opening the tantivy index in {}", text_dir.display()))?;
        text::register_analyzers(index.tokenizers());
        let fields = TextFields::from_schema(&index.schema())?;
        let reader = make_reader(dir, &index)?;
        let vectors_dir = dir.join(VECTORS_DIR);
        let (_, meta) = snapshot::load_commit(dir, &index, &reader)?;
        let codebook = load_index_codebook(dir, &meta.config)?;
        let snap = snapshot::load_snapshot(&index, &reader, &fields, &vectors_dir, None, codebook.clone())?;
        snapshot::check_agreement(&snap, &vectors_dir).with_context(|| format!("opening index {}", dir.display()))?;
        let shared = Shared {
            dir: dir.to_path_buf(),
            vectors_dir,
            fields,
            codebook,
            tantivy: index,
            reader,
            current: RwLock::new(snap),
            keymap: None,
            _lock: None,
            fail: failpoint::FailPoint::default(),
            damage_next_commit: AtomicBool::new(false),
        };
        Ok(Index { shared: Arc::new(shared), keymap_state: None, orphans_removed: 0 })
    }

    /// The snapshot of the last commit: consistent across BM25 and vectors, cheap to clone, and
    /// unaffected by later commits.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.current.read().expect("snapshot lock poisoned").clone()
    }

    /// Re-reads the latest commit from disk (for read-only handles; a writer in this process
    /// publishes its commits itself). Returns the new snapshot.
    pub fn reload(&self) -> Result<Snapshot> {
        let prev = self.snapshot();
        let snap = snapshot::load_snapshot(
            &self.shared.tantivy,
            &self.shared.reader,
            &self.shared.fields,
            &self.shared.vectors_dir,
            Some(&prev),
            self.shared.codebook.clone(),
        )?;
        let mut cur = self.shared.current.write().expect("snapshot lock poisoned");
        if snap.generation() >= cur.generation() {
            *cur = snap.clone();
        }
        Ok(cur.clone())
    }

    /// A writer (one per index at a time; errors when one exists or the index is read-only).
    pub fn writer(&self) -> Result<IndexWriter> {
        if self.shared.keymap.is_none() {
            return Err(Error::invalid(format!("index {} is open read-only", self.shared.dir.display())));
        }
        Ok(IndexWriter::new(Arc::clone(&self.shared))?)
    }

    /// Deletes an index that holds no commit but the empty one of its creation (generation 0):
    /// its files go, the directory itself stays. For a caller that created an index and then
    /// failed before committing anything, e.g. `optical index` on a file it rejects, so that
    /// the failure leaves no empty index behind. Errors when the index holds commits, is open
    /// read-only, or other handles (writers, clones) of it are still alive.
    pub fn discard_empty(self) -> Result<()> {
        let dir = self.shared.dir.clone();
        if self.shared.keymap.is_none() {
            return Err(Error::invalid(format!("index {} is open read-only: cannot discard it", dir.display())));
        }
        let generation = self.snapshot().generation();
        if generation != 0 {
            return Err(Error::invalid(format!(
                "index {} holds commits (generation {generation}): refusing to discard it",
                dir.display()
            )));
        }
        let shared = Arc::try_unwrap(self.shared)
            .map_err(|_| Error::Locked {
                dir: dir.clone(),
                message: format!("index {} is still in use by another handle: cannot discard it", dir.display()),
            })?;
        // Close tantivy and sled but keep the lock until the files are gone.
        let Shared { _lock: lock, .. } = shared;
        for sub in [TEXT_DIR, TEXT_STAGING_DIR, VECTORS_DIR, KEYMAP_DIR] {
            let path = dir.join(sub);
            if path.exists() {
                std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        let codebook = dir.join(CODEBOOK_FILE);
        if codebook.exists() {
            std::fs::remove_file(&codebook).with_context(|| format!("removing {}", codebook.display()))?;
        }
        let lock_path = dir.join(LOCK_FILE);
        std::fs::remove_file(&lock_path).with_context(|| format!("removing {}", lock_path.display()))?;
        drop(lock);
        Ok(())
    }

    /// Whether `dir` holds an index (its last commit's text index).
    pub fn exists(dir: impl AsRef<Path>) -> bool {
        dir.as_ref().join(TEXT_DIR).join("meta.json").exists()
    }

    /// The index configuration (dimension, element type, encoder).
    pub fn config(&self) -> IndexConfig {
        self.snapshot().config().clone()
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// How the key map was found at open (`None` for read-only handles).
    pub fn keymap_state(&self) -> Option<&KeyMapState> {
        self.keymap_state.as_ref()
    }

    /// How many orphan vector files the open removed.
    pub fn orphans_removed(&self) -> usize {
        self.orphans_removed
    }

    /// The internal id sled holds for a key (the writer's view of the last commit).
    pub fn keymap_lookup(&self, key: &str) -> Result<Option<u64>> {
        match &self.shared.keymap {
            Some(k) => Ok(k.get(key)?),
            None => Err(Error::invalid(format!("index {} is open read-only: no key map", self.shared.dir.display()))),
        }
    }

    /// Test hook: makes the next commit of this index fail at its sled step, after the tantivy
    /// commit point (what a full disk or an I/O error in sled does). Lets tests exercise a
    /// commit that reached disk but reported an error, without filling a disk.
    #[doc(hidden)]
    pub fn fail_next_keymap_update(&self) {
        self.fail_next_commit_at(CommitStep::KeyMap);
    }

    /// Test hook: makes the next commit of this index fail at `step`, as a full disk or an I/O
    /// error there would (for [`CommitStep::RemoveObsolete`], which is best effort, the files
    /// are left behind and the commit succeeds). Lets tests prove, step by step, that a failed
    /// commit leaves the last commit intact and that the next writer continues correctly.
    #[doc(hidden)]
    pub fn fail_next_commit_at(&self, step: CommitStep) {
        self.shared.fail.arm(step);
    }

    /// Test hook: makes the next commit of this index flip a byte in a text index file it has
    /// just written (after tantivy's commit, before Optical verifies the new files), as a write
    /// that did not land as written would.
    #[doc(hidden)]
    pub fn damage_next_commit(&self) {
        self.shared.damage_next_commit.store(true, Ordering::SeqCst);
    }

    /// Number of keys in sled.
    pub fn keymap_len(&self) -> Option<usize> {
        self.shared.keymap.as_ref().map(|k| k.len())
    }
}

/// The token codebook of the index at `dir`, when its configuration names one: the copy in the
/// directory must be the very file the index was created with (its fingerprint).
pub(crate) fn load_index_codebook(dir: &Path, config: &IndexConfig) -> Result<Option<Arc<Codebook>>> {
    let Some(want) = &config.token_codebook else { return Ok(None) };
    let path = dir.join(CODEBOOK_FILE);
    let book = Codebook::load(&path).map_err(|e| Error::Damaged { message: format!("{e:#} (the index stores token codes made with it)") })?;
    let got = book.fingerprint()?;
    if &got != want {
        damaged!("token codebook {} has fingerprint {got}, the index was created with {want}: the file was changed or replaced", path.display());
    }
    Ok(Some(Arc::new(book)))
}

/// The error of opening `dir`, which holds no index.
pub(crate) fn not_an_index(dir: &Path) -> Error {
    let meta = dir.join(TEXT_DIR).join("meta.json");
    Error::NotAnIndex {
        dir: dir.to_path_buf(),
        message: format!("{} is not an Optical index (no {})", dir.display(), meta.display()),
    }
}

/// Refuses to create an index in a directory that holds anything but the leftovers of an
/// interrupted creation: creating removes `text.tmp/`, and a writable open deletes every file
/// of `vectors/` that no commit names and rebuilds `keymap/`, so a user's folder with those
/// names would lose its files.
fn check_creatable(dir: &Path) -> Result<()> {
    let refuse = |message: String| Err(Error::AlreadyExists { dir: dir.to_path_buf(), message });
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(Error::invalid(format!("{} is not a directory: cannot create an index there", dir.display())));
        }
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display()))?,
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        names.push(if is_dir { format!("{name}/") } else { name });
    }
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    // An interrupted `Index::create` leaves its lock file, an empty `vectors/` and possibly the
    // tantivy staging directory: nothing else, and nothing a user would keep.
    let vectors_empty = std::fs::read_dir(dir.join(VECTORS_DIR)).map(|mut rd| rd.next().is_none()).unwrap_or(false);
    let interrupted = names.iter().any(|n| n == LOCK_FILE)
        && names.iter().all(|n| {
            n == LOCK_FILE
                || n == CODEBOOK_FILE
                || n.as_str() == format!("{TEXT_STAGING_DIR}/")
                || (n.as_str() == format!("{VECTORS_DIR}/") && vectors_empty)
        });
    if interrupted {
        return Ok(());
    }
    const SHOWN: usize = 10;
    let mut listed = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        listed.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    refuse(format!(
        "{} is not empty and is not an Optical index (it holds {listed}): refusing to create an index there, which would delete or overwrite those files; choose an empty or new directory",
        dir.display()
    ))
}

fn make_reader(dir: &Path, index: &tantivy::Index) -> anyhow::Result<IndexReader> {
    // The reader opens the segments of the last commit at once: damage can panic there.
    guard::guard(dir, "opening the segments of the last commit", || {
        index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .context("opening the tantivy reader")
    })
}

/// The write lock of an index directory: an exclusive lock on `optical.lock` and, on Unix, on
/// the directory itself. Deleting `optical.lock` lets a newcomer lock a fresh file of that name,
/// but the directory cannot be replaced without replacing the index, so the second lock still
/// keeps it out. Both are released when the files are closed, including when the process dies.
pub(crate) struct DirLock {
    _file: File,
    #[cfg(unix)]
    _dir: File,
    /// The directory as registered in [`HELD_HERE`].
    key: PathBuf,
}

/// The index directories this process holds the write lock of, so that a failed lock can say
/// whether the holder is this process (a second `Index::open` of the same directory) or another
/// one: the file lock itself does not tell.
static HELD_HERE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// The key of `dir` in [`HELD_HERE`]: canonical when it can be, so two spellings of one
/// directory match.
fn held_key(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut held = HELD_HERE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = held.iter().position(|p| *p == self.key) {
            held.swap_remove(i);
        }
    }
}

/// Takes the write lock of an index directory (see [`DirLock`]). Two handles of one process
/// conflict like two processes do: the lock belongs to the open file, not to the process.
fn lock_dir(dir: &Path) -> Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let key = held_key(dir);
    let busy = |what: &Path| {
        let message = if HELD_HERE.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            format!(
                "index {} is already open for writing in this process (another Index handle holds lock {}); share that handle (Index is cheap to clone) or drop it first, or open the index read-only to search",
                dir.display(),
                what.display()
            )
        } else {
            format!(
                "index {} is already open for writing by another process (lock {} is held); open it read-only to search",
                dir.display(),
                what.display()
            )
        };
        Error::Locked { dir: dir.to_path_buf(), message }
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(busy(&path)),
        Err(std::fs::TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", path.display()))?,
    }
    #[cfg(unix)]
    {
        let dir_file = File::open(dir).with_context(|| format!("opening directory {}", dir.display()))?;
        match dir_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(busy(dir)),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking directory {}", dir.display()))?;
            }
        }
        HELD_HERE.lock().unwrap_or_else(|e| e.into_inner()).push(key.clone());
        Ok(DirLock { _file: file, _dir: dir_file, key })
    }
    #[cfg(not(unix))]
    {
        HELD_HERE.lock().unwrap_or_else(|e| e.into_inner()).push(key.clone());
        Ok(DirLock { _file: file, key })
    }
}
