//! The write path: add, upsert, delete, commit (see the module docs of `engine` for the protocol).

use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};

use crate::error::{Error, invalid};
use tantivy::{TantivyDocument, Term};

use super::failpoint::CommitStep;
use super::keymap::KeyMapMeta;
use super::meta::{CommitMeta, FORMAT_VERSION};
use super::snapshot::{self, Snapshot};
use super::vectors::{self, VectorSet};
use super::encoding::{check_document_encoder, encode_documents, record_model_dir};
use super::{Document, Shared};
use crate::encoder::Encoder;
use crate::encoder::codebook::Codebook;
use super::text;

/// Memory budget of the tantivy writer.
pub(crate) const WRITER_HEAP: usize = 64 * 1024 * 1024;

/// The longest document key, in bytes (UTF-8). A key is one term of tantivy's `key` field,
/// and tantivy drops longer terms from the term index without an error: such a document could
/// never be found, replaced or deleted by its key.
pub const MAX_KEY_BYTES: usize = tantivy::tokenizer::MAX_TOKEN_LEN;

/// What a commit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The new generation.
    pub generation: u64,
    /// Documents added (including the new versions of upserted documents).
    pub added: u64,
    /// Documents removed (deleted, or replaced by an upsert).
    pub removed: u64,
    /// Live documents after the commit.
    pub docs: u64,
}

/// The tantivy writer, which waits for its background merges when it is dropped. Otherwise a
/// merge that ends after the engine's writer is gone saves a new meta.json and deletes the merged
/// segments' files while the next writer, or `check`, still works from the commit before it.
struct MergeWaitingWriter(Option<tantivy::IndexWriter>);

impl Deref for MergeWaitingWriter {
    type Target = tantivy::IndexWriter;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("the tantivy writer is only taken when it is dropped")
    }
}

impl DerefMut for MergeWaitingWriter {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_mut().expect("the tantivy writer is only taken when it is dropped")
    }
}

impl Drop for MergeWaitingWriter {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take() {
            // A failed merge leaves the last commit as it was, so there is nothing to undo; the
            // error is reported because Drop cannot return it.
            if let Err(e) = writer.wait_merging_threads() {
                eprintln!("optical: a background merge of the text index failed: {e}");
            }
        }
    }
}

/// Adds, replaces and deletes documents; [`IndexWriter::commit`] makes the changes visible at
/// once in BM25 and vectors, [`IndexWriter::rollback`] drops them. One per index at a time.
///
/// Documents bring their vectors, or, on a writer given the index's document encoder
/// ([`IndexWriter::with_encoder`]), come without one and the writer computes it.
pub struct IndexWriter {
    shared: Arc<Shared>,
    /// The document encoder that computes the vectors of documents added without one.
    encoder: Option<Arc<Encoder>>,
    tantivy: MergeWaitingWriter,
    /// The commit the pending changes apply to.
    base: Snapshot,
    next_id: u64,
    /// Key changes since `base`: `Some(id)` = the key now names `id`, `None` = deleted.
    pending_keys: HashMap<String, Option<u64>>,
    /// Vectors of documents added since `base`, by id.
    pending_rows: BTreeMap<u64, Vec<f32>>,
    /// Committed ids removed since `base` (their vector rows get tombstoned).
    pending_removed: Vec<u64>,
    added: u64,
    /// Set when a commit failed half-way: the writer refuses further work.
    failed: bool,
}

impl IndexWriter {
    pub(crate) fn new(shared: Arc<Shared>) -> Result<IndexWriter> {
        let tantivy = shared.tantivy.writer(WRITER_HEAP).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => anyhow::Error::from(Error::Locked {
                dir: shared.dir.clone(),
                message: format!("index {} already has a writer open", shared.dir.display()),
            }),
            other => anyhow::Error::from(other).context("creating the tantivy writer"),
        })?;
        // A process killed mid-commit can leave tantivy files (e.g. `<segment>.<opstamp>.del`)
        // that no commit references. The next writer restarts from the last committed opstamp
        // and would try to create the very same file names ("File already exists"), so remove
        // them before any work: the garbage collector deletes every managed file that neither the
        // last commit nor a live searcher of this process uses.
        tantivy
            .garbage_collect_files()
            .wait()
            .context("removing files left by an interrupted tantivy commit")?;
        let base = latest_commit(&shared)?;
        Ok(IndexWriter {
            next_id: base.meta().next_id,
            base,
            shared,
            encoder: None,
            tantivy: MergeWaitingWriter(Some(tantivy)),
            pending_keys: HashMap::new(),
            pending_rows: BTreeMap::new(),
            pending_removed: Vec::new(),
            added: 0,
            failed: false,
        })
    }

    /// Gives the writer the index's document encoder: documents added without a vector get
    /// theirs from it, and a commit records its model directory beside the index. Errors
    /// ([`Error::IncompatibleEncoder`]) unless the index was created for this very encoder.
    pub fn with_encoder(mut self, encoder: Arc<Encoder>) -> crate::Result<IndexWriter> {
        check_document_encoder(self.base.config(), encoder.info())
            .with_context(|| format!("indexing into {}", self.shared.dir.display()))?;
        self.encoder = Some(encoder);
        Ok(self)
    }

    /// The document encoder, if the writer has one.
    pub fn encoder(&self) -> Option<&Arc<Encoder>> {
        self.encoder.as_ref()
    }

    /// The index's token codebook, if it stores token codes.
    pub(crate) fn codebook(&self) -> Option<&Arc<Codebook>> {
        self.shared.codebook.as_ref()
    }

    /// Computes the vectors of `docs` with the writer's encoder in one encoder call (cheaper
    /// than one document at a time); a no-op without an encoder. With one, no document may
    /// bring its own vector.
    pub(crate) fn encode(&self, docs: &mut [Document]) -> crate::Result<()> {
        match &self.encoder {
            Some(encoder) => encode_documents(encoder, docs, self.shared.codebook.as_deref()),
            None => Ok(()),
        }
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed {
            invalid!("an earlier commit failed; drop this writer and reopen the index");
        }
        Ok(())
    }

    /// The id a key has in the pending state (uncommitted changes included).
    pub fn id_of(&self, key: &str) -> crate::Result<Option<u64>> {
        if let Some(p) = self.pending_keys.get(key) {
            return Ok(*p);
        }
        Ok(self.shared.keymap.as_ref().expect("writable index has a key map").get(key)?)
    }

    /// Checks a document against the index without adding it (key, vector, dimension): what
    /// [`IndexWriter::add`] and [`IndexWriter::upsert`] refuse. Lets a caller treat a bad
    /// document as a bad input line and go on with the others.
    pub fn validate(&self, doc: &Document) -> crate::Result<()> {
        if doc.key.is_empty() {
            invalid!("document key is empty");
        }
        if doc.key.len() > MAX_KEY_BYTES {
            let head: String = doc.key.chars().take(40).collect();
            invalid!(
                "document key `{head}…` is {} bytes long; keys are limited to {MAX_KEY_BYTES} bytes (UTF-8)",
                doc.key.len()
            );
        }
        match (self.base.config().dim, &doc.vector) {
            (None, None) => {}
            (None, Some(_)) => invalid!("document `{}` has a vector but the index is text-only", doc.key),
            (Some(d), None) => invalid!("document `{}` has no vector; the index stores one of dimension {d} per document", doc.key),
            (Some(d), Some(v)) => {
                if v.len() != d {
                    invalid!("document `{}` has a vector of dimension {}, the index stores dimension {d}", doc.key, v.len());
                }
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    invalid!("document `{}` has a non-finite vector component at {i}", doc.key);
                }
            }
        }
        match (&self.shared.codebook, &doc.token_codes) {
            (_, None) => {}
            (None, Some(_)) => invalid!("document `{}` brings token codes, but the index stores none (it was created without a token codebook)", doc.key),
            (Some(book), Some(codes)) => {
                if codes.len() % book.bytes_per_token() != 0 {
                    invalid!("document `{}` has {} bytes of token codes, not a whole number of the index's {}-byte token codes", doc.key, codes.len(), book.bytes_per_token());
                }
            }
        }
        Ok(())
    }

    /// Adds a new document; errors when its key already exists (use [`IndexWriter::upsert`]).
    /// Returns its internal id.
    pub fn add(&mut self, mut doc: Document) -> crate::Result<u64> {
        self.check_usable()?;
        self.encode(std::slice::from_mut(&mut doc))?;
        self.validate(&doc)?;
        if self.id_of(&doc.key)?.is_some() {
            invalid!("a document with key `{}` already exists (use upsert to replace it)", doc.key);
        }
        Ok(self.insert(doc)?)
    }

    /// Adds documents; validates all of them before adding any (a bad one adds nothing).
    pub fn add_batch(&mut self, docs: impl IntoIterator<Item = Document>) -> crate::Result<Vec<u64>> {
        self.check_usable()?;
        let mut docs: Vec<Document> = docs.into_iter().collect();
        self.encode(&mut docs)?;
        let mut seen = std::collections::HashSet::new();
        for d in &docs {
            self.validate(d)?;
            if !seen.insert(d.key.as_str()) {
                invalid!("key `{}` appears twice in the batch", d.key);
            }
            if self.id_of(&d.key)?.is_some() {
                invalid!("a document with key `{}` already exists (use upsert to replace it)", d.key);
            }
        }
        Ok(docs.into_iter().map(|d| self.insert(d)).collect::<Result<_>>()?)
    }

    /// Adds a document, replacing any document with the same key (delete + add with a new id,
    /// visible together at the next commit). Returns the new internal id.
    pub fn upsert(&mut self, mut doc: Document) -> crate::Result<u64> {
        self.check_usable()?;
        self.encode(std::slice::from_mut(&mut doc))?;
        self.upsert_encoded(doc)
    }

    /// [`IndexWriter::upsert`] of a document whose vector [`IndexWriter::encode`] has computed
    /// (ingest encodes a chunk of documents in one encoder call).
    pub(crate) fn upsert_encoded(&mut self, doc: Document) -> crate::Result<u64> {
        self.check_usable()?;
        self.validate(&doc)?;
        self.delete(&doc.key)?;
        Ok(self.insert(doc)?)
    }

    /// Deletes the document with this key; returns whether one existed.
    pub fn delete(&mut self, key: &str) -> crate::Result<bool> {
        self.check_usable()?;
        let Some(id) = self.id_of(key)? else { return Ok(false) };
        // tantivy deletes every document with this key added before this point, committed or not.
        self.tantivy.delete_term(Term::from_field_text(self.shared.fields.key, key));
        if id >= self.base.meta().next_id {
            // Added since the last commit: it never reached a segment.
            self.pending_rows.remove(&id);
            self.added -= 1;
        } else {
            self.pending_removed.push(id);
        }
        self.pending_keys.insert(key.to_string(), None);
        Ok(true)
    }

    fn insert(&mut self, doc: Document) -> Result<u64> {
        let id = self.next_id;
        let f = &self.shared.fields;
        let lang = if doc.lang.trim().is_empty() { "und" } else { doc.lang.trim() };
        let mut td = TantivyDocument::default();
        td.add_text(f.key, &doc.key);
        td.add_u64(f.id, id);
        td.add_text(f.lang, lang);
        td.add_text(f.title, &doc.title);
        td.add_text(f.body, &doc.body);
        // One analyzer per document: English is stemmed, everything else matched on exact words.
        if text::is_english(lang) {
            td.add_text(f.title_eng, &doc.title);
            td.add_text(f.body_eng, &doc.body);
        } else {
            td.add_text(f.title_words, &doc.title);
            td.add_text(f.body_words, &doc.body);
        }
        if let (Some(field), Some(codes)) = (f.token_codes, &doc.token_codes) {
            td.add_bytes(field, codes);
        }
        self.tantivy
            .add_document(td)
            .with_context(|| format!("adding document `{}` to tantivy", doc.key))?;
        self.next_id += 1;
        if let Some(v) = doc.vector {
            self.pending_rows.insert(id, v);
        }
        self.pending_keys.insert(doc.key, Some(id));
        self.added += 1;
        Ok(id)
    }

    /// Number of uncommitted key changes.
    pub fn pending(&self) -> usize {
        self.pending_keys.len()
    }

    /// Drops every uncommitted change.
    pub fn rollback(&mut self) -> crate::Result<()> {
        self.tantivy.rollback().context("rolling back the tantivy writer")?;
        self.clear_pending();
        Ok(())
    }

    fn clear_pending(&mut self) {
        self.pending_keys.clear();
        self.pending_rows.clear();
        self.pending_removed.clear();
        self.added = 0;
        self.next_id = self.base.meta().next_id;
    }

    /// Makes every pending change durable and visible, in BM25 and vectors at once.
    pub fn commit(&mut self) -> crate::Result<CommitInfo> {
        self.check_usable()?;
        match self.commit_inner() {
            Ok(info) => {
                if let Some(encoder) = &self.encoder {
                    record_model_dir(&self.shared.dir, encoder).with_context(|| {
                        format!("generation {} is committed, but its encoder's model directory was not recorded", info.generation)
                    })?;
                }
                Ok(info)
            }
            Err(e) => {
                // The commit may or may not have reached disk; the next open finds out.
                self.failed = true;
                Err(e.into())
            }
        }
    }

    fn commit_inner(&mut self) -> Result<CommitInfo> {
        let base = self.base.meta().clone();
        let generation = base.generation + 1;
        // A commit builds only on the latest commit: the ids, vector file names and tombstones
        // below are computed from `base`, and building on an older one would reuse ids and
        // overwrite the vector segment of the commit that came after it.
        let on_disk = committed_meta(&self.shared)?;
        if on_disk.generation != base.generation {
            bail!(
                "index {} is at generation {} on disk, but this writer started from generation {}; drop this writer and create a new one",
                self.shared.dir.display(),
                on_disk.generation,
                base.generation
            );
        }
        // (1) vector files, written and fsynced under fresh names.
        let planned = match base.config.dim {
            Some(dim) => Some(vectors::write_commit_files(
                &self.shared.vectors_dir,
                self.base.vectors(),
                generation,
                dim,
                base.config.elem,
                &self.pending_rows,
                &self.pending_removed,
                &self.shared.fail,
            )?),
            None => None,
        };
        let meta = CommitMeta {
            format: FORMAT_VERSION,
            generation,
            next_id: self.next_id,
            segments: planned.as_ref().map(|p| p.segments.clone()).unwrap_or_default(),
            tombstones: planned.as_ref().and_then(|p| p.tombstones.clone()),
            config: base.config.clone(),
        };
        // (2) the commit point: tantivy writes meta.json, payload included, atomically.
        let fail = &self.shared.fail;
        let mut prepared = self.tantivy.prepare_commit().context("preparing the tantivy commit")?;
        fail.check(CommitStep::TextPrepare)?;
        prepared.set_payload(&meta.to_payload());
        fail.check(CommitStep::TextCommit)?;
        prepared.commit().context("committing to tantivy")?;
        fail.check(CommitStep::VerifyText)?;
        self.verify_new_text_segments(generation)?;
        // The new snapshot: the searcher must be the one of *this* commit.
        fail.check(CommitStep::OpenCommit)?;
        let (searcher, loaded) = snapshot::load_commit(&self.shared.dir, &self.shared.tantivy, &self.shared.reader)?;
        if loaded.generation != generation {
            bail!("after committing generation {generation}, tantivy shows generation {}", loaded.generation);
        }
        let vecs = VectorSet::open(&self.shared.vectors_dir, &loaded, Some(self.base.vectors()))?;
        let snap = Snapshot::new(&self.shared.dir, searcher, self.shared.fields.clone(), loaded, vecs, self.shared.codebook.clone());
        let info = CommitInfo {
            generation,
            added: self.added,
            removed: self.pending_removed.len() as u64,
            docs: snap.num_docs(),
        };
        // (3) sled follows the commit. If this fails the commit still stands and sled is rebuilt
        // on the next open (its generation is behind).
        let keymap = self.shared.keymap.as_ref().expect("writable index has a key map");
        fail.check(CommitStep::KeyMap)?;
        let km_meta = KeyMapMeta { generation, docs: snap.num_docs(), config: meta.config.clone() };
        keymap
            .apply_commit(self.pending_keys.iter().map(|(k, v)| (k.as_str(), *v)), &km_meta)
            .context("updating the sled key map (the commit itself succeeded)")?;
        // Publish, then (4) delete the files the new commit no longer names.
        *self.shared.current.write().expect("snapshot lock poisoned") = snap.clone();
        self.base = snap;
        if let Some(p) = planned
            && !fail.fires(CommitStep::RemoveObsolete)
        {
            vectors::remove_files(&self.shared.vectors_dir, &p.obsolete);
        }
        self.pending_keys.clear();
        self.pending_rows.clear();
        self.pending_removed.clear();
        self.added = 0;
        Ok(info)
    }
}

impl IndexWriter {
    /// Verifies the checksums of the tantivy segments the commit just made live (its own, and
    /// the outputs of merges that finished meanwhile), before the commit is published to this
    /// process and the key map. tantivy 0.27 does not tell which files an uncommitted segment
    /// has, and background merges write files beside it, so the check cannot run before the
    /// commit point; a damaged write is still reported by the commit that made it, naming the
    /// files, instead of surfacing later as wrong search results.
    fn verify_new_text_segments(&self, generation: u64) -> Result<()> {
        let text_dir = self.shared.dir.join(super::TEXT_DIR);
        let metas = self.shared.tantivy.load_metas().context("reading tantivy meta.json")?;
        let before = self.base.searcher().generation().segments();
        let new: Vec<tantivy::SegmentMeta> =
            metas.segments.iter().filter(|s| !before.contains_key(&s.id())).cloned().collect();
        if self.shared.damage_next_commit.swap(false, Ordering::SeqCst) {
            damage_a_segment_file(&text_dir, &new);
        }
        let mut report = super::check::CheckReport::default();
        super::check::check_segments(&self.shared.tantivy, &text_dir, &new, &mut report);
        if !report.problems.is_empty() {
            let list: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
            bail!(
                "commit of generation {generation} reached disk, but the text index files it wrote are damaged: {}; the index needs repair (`optical check {}` lists the damage)",
                list.join("; "),
                self.shared.dir.display()
            );
        }
        Ok(())
    }
}

/// Test hook behind [`super::Index::damage_next_commit`]: flips one byte in the middle of the
/// `.store` file of the first of `segments`, as a write that did not land as written would.
fn damage_a_segment_file(text_dir: &std::path::Path, segments: &[tantivy::SegmentMeta]) {
    let Some(segment) = segments.first() else { return };
    let path = text_dir.join(segment.relative_path(tantivy::index::SegmentComponent::Store));
    if let Ok(mut bytes) = std::fs::read(&path) {
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        let _ = std::fs::write(&path, bytes);
    }
}

/// The commit payload `meta.json` holds now.
fn committed_meta(shared: &Shared) -> Result<CommitMeta> {
    let metas = shared.tantivy.load_metas().context("reading tantivy meta.json")?;
    Ok(CommitMeta::from_payload(metas.payload.as_deref())?)
}

/// The latest commit on disk, published as the index's snapshot, with the key map brought up to
/// it. Called with the tantivy writer lock held, so nothing commits meanwhile. The in-memory
/// snapshot can lag behind the disk when a commit failed after its commit point (e.g. at the
/// sled step): that commit stands, and a new writer must start from it.
fn latest_commit(shared: &Shared) -> Result<Snapshot> {
    let current = shared.current.read().expect("snapshot lock poisoned").clone();
    let keymap = shared.keymap.as_ref().expect("writable index has a key map");
    // The common case, cheaply: sled records its generation after applying a commit's keys, so
    // a matching generation means it is current (counting its keys would scan all of them).
    let keymap_generation = keymap.meta().ok().flatten().map(|m| m.generation);
    if committed_meta(shared)?.generation == current.generation() && keymap_generation == Some(current.generation()) {
        // A commit that failed before its commit point leaves the vector files it wrote: remove
        // them as a writable open does, so that the directory holds what the commit names.
        vectors::remove_orphans(&shared.vectors_dir, current.meta())?;
        return Ok(current);
    }
    let snap = snapshot::load_snapshot(&shared.tantivy, &shared.reader, &shared.fields, &shared.vectors_dir, Some(&current), shared.codebook.clone())?;
    snapshot::check_agreement(&snap, &shared.vectors_dir)?;
    // Vector files a failed commit wrote but no commit names would be overwritten by the next
    // commit of the same generation: remove them as a writable open does.
    vectors::remove_orphans(&shared.vectors_dir, snap.meta())?;
    if !keymap.is_current(snap.generation(), snap.num_docs()) {
        keymap
            .resync(&snap)
            .with_context(|| format!("rebuilding the key map of {} from the text index", shared.dir.display()))?;
    }
    *shared.current.write().expect("snapshot lock poisoned") = snap.clone();
    Ok(snap)
}
