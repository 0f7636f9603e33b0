//! Read snapshots: one commit's tantivy searcher together with that commit's vector files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, IndexReader, Searcher, TantivyDocument, Term};

use super::guard::{Damaged, guard};
use super::meta::{CommitMeta, IndexConfig};
use super::vectors::VectorSet;
use super::text::{self, TextFields};
use crate::encoder::codebook::Codebook;
use crate::error::damaged;

/// A document as stored in the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDoc {
    /// External key.
    pub key: String,
    /// Internal id.
    pub id: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Language code.
    pub lang: String,
    /// The passage's token codes, when the index stores them.
    pub token_codes: Option<Vec<u8>>,
}

struct Inner {
    /// The index directory (named in errors).
    dir: PathBuf,
    searcher: Searcher,
    fields: TextFields,
    meta: CommitMeta,
    vectors: VectorSet,
    codebook: Option<Arc<Codebook>>,
}

/// A consistent view of one commit: BM25 and vectors agree on the set of documents. Cheap to
/// clone (`Arc`), `Send + Sync`, and unaffected by later commits.
#[derive(Clone)]
pub struct Snapshot(Arc<Inner>);

impl Snapshot {
    pub(crate) fn new(dir: &Path, searcher: Searcher, fields: TextFields, meta: CommitMeta, vectors: VectorSet, codebook: Option<Arc<Codebook>>) -> Snapshot {
        Snapshot(Arc::new(Inner { dir: dir.to_path_buf(), searcher, fields, meta, vectors, codebook }))
    }

    /// The token codebook the index stores its passages' token codes with, if it has one.
    pub fn codebook(&self) -> Option<&Arc<Codebook>> {
        self.0.codebook.as_ref()
    }

    /// The index directory this snapshot was read from.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// Runs `f` (which reads tantivy segment data of this snapshot), turning a panic inside
    /// tantivy into an error naming the index (see [`guard`](super::guard)).
    pub(crate) fn guarded<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        guard(&self.0.dir, what, f)
    }

    pub(crate) fn vectors(&self) -> &VectorSet {
        &self.0.vectors
    }

    /// The commit generation this snapshot shows.
    pub fn generation(&self) -> u64 {
        self.0.meta.generation
    }

    /// The commit record (payload) of this snapshot.
    pub fn meta(&self) -> &CommitMeta {
        &self.0.meta
    }

    /// The index configuration.
    pub fn config(&self) -> &IndexConfig {
        &self.0.meta.config
    }

    /// The tantivy searcher of this commit.
    pub(crate) fn searcher(&self) -> &Searcher {
        &self.0.searcher
    }

    /// The tantivy fields.
    pub(crate) fn fields(&self) -> &TextFields {
        &self.0.fields
    }

    /// Number of live documents (BM25 side).
    pub fn num_docs(&self) -> u64 {
        self.0.searcher.num_docs()
    }

    /// Number of live vectors (rows not tombstoned).
    pub fn num_vectors(&self) -> u64 {
        self.0.vectors.live
    }

    /// Number of tantivy segments of the text index.
    pub fn num_text_segments(&self) -> usize {
        self.0.searcher.segment_readers().len()
    }

    /// Number of vector segments.
    pub fn num_vector_segments(&self) -> usize {
        self.0.vectors.segments.len()
    }

    /// Number of tombstoned rows still held by vector segments.
    pub fn num_tombstones(&self) -> usize {
        self.0.vectors.tombstones.len()
    }

    /// The internal id of a key in this snapshot.
    pub fn id_of(&self, key: &str) -> crate::Result<Option<u64>> {
        let term = Term::from_field_text(self.0.fields.key, key);
        Ok(self.guarded("looking up a key", || self.find_one(term))?.map(|(_, id)| id))
    }

    fn find_one(&self, term: Term) -> Result<Option<(String, u64)>> {
        let q = TermQuery::new(term, IndexRecordOption::Basic);
        let top = self.0.searcher.search(&q, &TopDocs::with_limit(2).order_by_score())?;
        if top.len() > 1 {
            damaged!("index {} holds two live documents for one key or id: the index is inconsistent", self.0.dir.display());
        }
        match top.first() {
            None => Ok(None),
            Some((_, addr)) => {
                let seg = self.0.searcher.segment_reader(addr.segment_ord);
                Ok(Some(text::key_and_id(seg, addr.doc_id)?))
            }
        }
    }

    /// The stored document with internal id `id`.
    pub fn document(&self, id: u64) -> crate::Result<Option<StoredDoc>> {
        let q = TermQuery::new(Term::from_field_u64(self.0.fields.id, id), IndexRecordOption::Basic);
        Ok(self.guarded("reading a stored document", || self.stored(&q))?)
    }

    /// The stored document with external key `key`.
    pub fn document_by_key(&self, key: &str) -> crate::Result<Option<StoredDoc>> {
        let q = TermQuery::new(Term::from_field_text(self.0.fields.key, key), IndexRecordOption::Basic);
        Ok(self.guarded("reading a stored document", || self.stored(&q))?)
    }

    fn stored(&self, q: &TermQuery) -> Result<Option<StoredDoc>> {
        let top = self.0.searcher.search(q, &TopDocs::with_limit(1).order_by_score())?;
        let Some((_, addr)) = top.first() else { return Ok(None) };
        self.stored_at(*addr).map(Some)
    }

    /// The stored document at `addr`.
    pub(crate) fn stored_at(&self, addr: DocAddress) -> Result<StoredDoc> {
        let doc: TantivyDocument = self.0.searcher.doc(addr).context("reading a stored document")?;
        let f = &self.0.fields;
        let s = |field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let id = doc.get_first(f.id).and_then(|v| v.as_u64()).with_context(|| {
            format!("a stored document of {} has no `id` field: its doc store is damaged", self.0.dir.display())
        })?;
        let token_codes = f.token_codes.and_then(|field| doc.get_first(field)).and_then(|v| v.as_bytes()).map(<[u8]>::to_vec);
        Ok(StoredDoc { key: s(f.key), id, title: s(f.title), body: s(f.body), lang: s(f.lang), token_codes })
    }

    /// Every live document's (key, id), in no particular order.
    pub fn keys(&self) -> crate::Result<Vec<(String, u64)>> {
        Ok(self.guarded("listing the keys", || {
            let mut out = Vec::with_capacity(self.num_docs() as usize);
            for seg in self.0.searcher.segment_readers() {
                for doc in seg.doc_ids_alive() {
                    out.push(text::key_and_id(seg, doc)?);
                }
            }
            Ok(out)
        })?)
    }

    /// The vector of a live document, by internal id.
    pub fn vector(&self, id: u64) -> Option<Vec<f32>> {
        self.0.vectors.get(id)
    }

}

/// Reloads `reader` and returns a searcher together with the commit payload it corresponds to.
/// Reading `meta.json` and opening the segments are two steps, and a commit or merge may land
/// in between: the searcher's segment set is compared with the one `meta.json` listed, and the
/// pair is retried until they agree.
pub(crate) fn load_commit(dir: &Path, index: &tantivy::Index, reader: &IndexReader) -> Result<(Searcher, CommitMeta)> {
    let mut last_err = None;
    for attempt in 0..50u32 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(2 * attempt as u64));
        }
        let metas = match index.load_metas() {
            Ok(m) => m,
            Err(e) => {
                last_err = Some(anyhow::Error::from(e).context("reading tantivy meta.json"));
                continue;
            }
        };
        // Opening new segments reads their footers and dictionaries: damage can panic there.
        if let Err(e) = guard(dir, "opening the segments of the last commit", || Ok(reader.reload()?)) {
            if e.is::<Damaged>() {
                return Err(e);
            }
            // A concurrent writer may have garbage-collected a segment file between the two reads.
            last_err = Some(e.context("reloading the tantivy reader"));
            continue;
        }
        let searcher = reader.searcher();
        let want: BTreeMap<_, _> = metas.segments.iter().map(|s| (s.id(), s.delete_opstamp())).collect();
        if searcher.generation().segments() == &want {
            let meta = CommitMeta::from_payload(metas.payload.as_deref())?;
            return Ok((searcher, meta));
        }
        last_err = Some(anyhow::anyhow!("the index kept changing while it was being opened"));
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("could not open a consistent commit")))
}

/// [`load_commit`] plus the commit's vector files.
pub(crate) fn load_snapshot(
    index: &tantivy::Index,
    reader: &IndexReader,
    fields: &TextFields,
    vectors_dir: &Path,
    previous: Option<&Snapshot>,
    codebook: Option<Arc<Codebook>>,
) -> Result<Snapshot> {
    let dir = vectors_dir.parent().unwrap_or(vectors_dir);
    let mut last_err = None;
    for _ in 0..10 {
        let (searcher, meta) = load_commit(dir, index, reader)?;
        // A concurrent writer deletes the vector files of superseded commits: if they vanished
        // before we opened them, a newer commit exists — load that one.
        match VectorSet::open(vectors_dir, &meta, previous.map(|p| p.vectors())) {
            Ok(v) => return Ok(Snapshot::new(dir, searcher, fields.clone(), meta, v, codebook)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.expect("at least one attempt"))
}

/// Checks that every live document of `snap` has a live vector and every live vector a live
/// document (indexes with vectors only): a commit that broke this (a reused id, an overwritten
/// segment) would make dense search return rows without documents and lose documents.
pub(crate) fn check_agreement(snap: &Snapshot, vectors_dir: &Path) -> Result<()> {
    if snap.config().dim.is_none() {
        return Ok(());
    }
    let vectors = snap.vectors();
    let files = || {
        format!("{} [{}]", vectors_dir.display(), vectors.names.join(", "))
    };
    let mut docs = 0u64;
    for seg in snap.searcher().segment_readers() {
        let ids = seg.fast_fields().u64(text::field::ID).context("opening the `id` fast field")?;
        for doc in seg.doc_ids_alive() {
            let id = ids.first(doc).context("a tantivy document has no internal id")?;
            if !vectors.has_live(id) {
                let (key, _) = text::key_and_id(seg, doc)?;
                damaged!(
                    "the index is inconsistent: document `{key}` (id {id}) has no vector in the vector segments of generation {} in {}",
                    snap.generation(),
                    files()
                );
            }
            docs += 1;
        }
    }
    if docs != vectors.live {
        damaged!(
            "the index is inconsistent: the vector segments of generation {} in {} hold {} live vectors for {docs} documents",
            snap.generation(),
            files(),
            vectors.live
        );
    }
    Ok(())
}
