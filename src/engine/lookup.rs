//! From internal ids to documents and back without stored-document reads: a document's address
//! comes from its BM25 hit or from the postings of the indexed `id` field, its key from the `key`
//! fast field, and the language filters from the postings of the `lang` field. Resolving a page
//! of dense hits costs a few term lookups.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, DocSet, SegmentReader, TERMINATED, Term};

use super::bm25::{SparseHit, segment_column};
use super::snapshot::{Snapshot, StoredDoc};
use super::text;
use crate::error::damaged;

impl Snapshot {
    /// The external key of each of `ids`, in order. Ids among the BM25 candidates `known` are
    /// read at the address their hit carries, the others found through the `id` postings. Errors
    /// when an id has no live document: dense ids always have one in a consistent snapshot.
    pub fn keys_of(&self, ids: &[u64], known: &[SparseHit]) -> crate::Result<Vec<String>> {
        Ok(self.guarded("reading document keys", || {
            let addrs = self.addresses(ids, known)?;
            self.keys_at(&addrs)
        })?)
    }

    /// The stored documents `ids`, in order, found as [`Snapshot::keys_of`] finds them (the BM25
    /// candidates `known` at their hits' addresses, the others through the `id` postings) rather
    /// than by one search per id. Errors when an id has no live document.
    pub fn documents(&self, ids: &[u64], known: &[SparseHit]) -> crate::Result<Vec<StoredDoc>> {
        Ok(self.guarded("reading stored documents", || {
            self.addresses(ids, known)?.into_iter().map(|addr| self.stored_at(addr)).collect()
        })?)
    }

    /// Whether any live document is in language `lang`.
    pub fn has_lang(&self, lang: &str) -> crate::Result<bool> {
        let mut found = false;
        self.guarded("reading the `lang` postings", || {
            self.for_each_live_with_lang(lang, |_, _| {
                found = true;
                Ok(false)
            })
        })?;
        Ok(found)
    }

    /// The internal ids of every live document whose language is `lang` (a language filter).
    pub fn ids_with_lang(&self, lang: &str) -> crate::Result<HashSet<u64>> {
        let mut out = HashSet::new();
        let mut ids = None;
        self.guarded("reading the `lang` postings", || {
            self.for_each_live_with_lang(lang, |seg, doc| {
                // The `id` column of the segment being walked (segments come one after the other).
                let col = match &ids {
                    Some((ord, col)) if *ord == seg.segment_id() => col,
                    _ => {
                        let col = seg.fast_fields().u64(text::field::ID).context("opening the `id` fast field")?;
                        &ids.insert((seg.segment_id(), col)).1
                    }
                };
                out.insert(col.first(doc).with_context(|| format!("document {doc} has no id"))?);
                Ok(true)
            })
        })?;
        Ok(out)
    }

    /// Where the documents `ids` are in tantivy: BM25 candidates carry their address, the others
    /// are found through the `id` postings.
    fn addresses(&self, ids: &[u64], known: &[SparseHit]) -> Result<Vec<DocAddress>> {
        let known: HashMap<u64, DocAddress> = known.iter().map(|h| (h.id, h.addr)).collect();
        let unknown: Vec<u64> = ids.iter().copied().filter(|id| !known.contains_key(id)).collect();
        let mut found: HashMap<u64, DocAddress> = HashMap::with_capacity(unknown.len());
        for (id, a) in unknown.iter().zip(self.addresses_of(&unknown)?) {
            match a {
                Some(a) => found.insert(*id, a),
                // A vector without a document cannot happen in a consistent snapshot.
                None => damaged!(
                    "vector id {id} has no live document in generation {} of {}",
                    self.generation(),
                    self.dir().display()
                ),
            };
        }
        Ok(ids.iter().map(|id| known.get(id).copied().unwrap_or_else(|| found[id])).collect())
    }

    /// The address of each id's live document (`None` for ids with none in this snapshot).
    fn addresses_of(&self, ids: &[u64]) -> Result<Vec<Option<DocAddress>>> {
        let field = self.fields().id;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let mut found = None;
            self.for_each_live_with(&Term::from_field_u64(field, id), text::field::ID, |ord, _, doc| {
                found = Some(DocAddress::new(ord, doc));
                Ok(false)
            })?;
            out.push(found);
        }
        Ok(out)
    }

    /// External keys of documents by address (the `key` column opened once per segment).
    fn keys_at(&self, addrs: &[DocAddress]) -> Result<Vec<String>> {
        let searcher = self.searcher();
        let mut columns = HashMap::new();
        let mut out = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let col = segment_column(&mut columns, searcher, *addr, |r| {
                r.fast_fields()
                    .str(text::field::KEY)
                    .context("opening the `key` fast field")?
                    .context("the `key` fast field is missing")
            })?;
            let ord = col.term_ords(addr.doc_id).next().with_context(|| format!("document {addr:?} has no key"))?;
            let mut key = String::new();
            col.ord_to_str(ord, &mut key).context("reading the `key` fast field")?;
            out.push(key);
        }
        Ok(out)
    }

    /// Calls `f(segment, doc)` for every live document in language `lang`, segment by segment,
    /// until it returns `false`.
    fn for_each_live_with_lang(
        &self,
        lang: &str,
        mut f: impl FnMut(&SegmentReader, DocId) -> Result<bool>,
    ) -> Result<()> {
        let term = Term::from_field_text(self.fields().lang, lang);
        self.for_each_live_with(&term, text::field::LANG, |_, seg, doc| f(seg, doc))
    }

    /// Calls `f(segment ordinal, segment, doc)` for every live document whose indexed field
    /// `name` holds `term`, segment by segment, until it returns `false`.
    fn for_each_live_with(
        &self,
        term: &Term,
        name: &str,
        mut f: impl FnMut(u32, &SegmentReader, DocId) -> Result<bool>,
    ) -> Result<()> {
        for (ord, seg) in self.searcher().segment_readers().iter().enumerate() {
            let inverted = seg.inverted_index(term.field()).with_context(|| format!("opening the `{name}` postings"))?;
            let Some(mut postings) = inverted
                .read_postings(term, IndexRecordOption::Basic)
                .with_context(|| format!("reading the `{name}` postings"))?
            else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if !seg.is_deleted(doc) && !f(ord as u32, seg, doc)? {
                    return Ok(());
                }
                doc = postings.advance();
            }
        }
        Ok(())
    }
}
