//! BM25 candidates for fusion: tantivy's top-N with internal ids read from the `id` fast field
//! (one column per segment), and external keys read only for the hits that are returned —
//! reading keys for every candidate cost more than the BM25 query itself at depth 100.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use anyhow::{Context, Result};
use tantivy::{DocAddress, Searcher, SegmentOrdinal, SegmentReader};
use tantivy::collector::TopDocs;

use crate::engine::Snapshot;
use crate::text::{self, Bm25Fields};
use crate::translate::{TranslatedTerm, psq_query};

/// One BM25 candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseHit {
    /// Internal id.
    pub id: u64,
    /// BM25 score.
    pub score: f32,
    /// Where tantivy holds the document in this snapshot.
    pub addr: DocAddress,
}

/// BM25 top-`n` of `query` (best first); `lang` keeps only documents of that language.
pub fn bm25_candidates(
    snapshot: &Snapshot,
    query: &str,
    n: usize,
    lang: Option<&str>,
) -> Result<Vec<SparseHit>> {
    match text::bm25_query(snapshot.fields(), query, lang, Bm25Fields::default()) {
        Some(q) => top_n(snapshot, q.as_ref(), n),
        None => Ok(Vec::new()),
    }
}

/// BM25 top-`n` of a query translated through a table (PSQ, [`crate::translate`]), best first.
pub fn psq_candidates(
    snapshot: &Snapshot,
    terms: &[TranslatedTerm],
    n: usize,
    lang: Option<&str>,
) -> Result<Vec<SparseHit>> {
    match psq_query(snapshot.fields(), terms, lang) {
        Some(q) => top_n(snapshot, q.as_ref(), n),
        None => Ok(Vec::new()),
    }
}

/// tantivy's top-`n` of `q` with internal ids.
fn top_n(snapshot: &Snapshot, q: &dyn tantivy::query::Query, n: usize) -> Result<Vec<SparseHit>> {
    // tantivy reserves room for `n` hits up front: never ask for more than there are documents.
    let n = n.min(usize::try_from(snapshot.num_docs()).unwrap_or(usize::MAX));
    if n == 0 {
        return Ok(Vec::new());
    }
    let searcher = snapshot.searcher();
    let top = searcher
        .search(q, &TopDocs::with_limit(n).order_by_score())
        .context("running the BM25 query")?;
    let mut columns = HashMap::new();
    let mut out = Vec::with_capacity(top.len());
    for (score, addr) in top {
        let col = segment_column(&mut columns, &searcher, addr, |r| {
            r.fast_fields().u64(text::field::ID).context("opening the `id` fast field")
        })?;
        let id = col
            .first(addr.doc_id)
            .with_context(|| format!("document {addr:?} has no id"))?;
        out.push(SparseHit { id, score, addr });
    }
    Ok(out)
}

/// External keys of documents by address (the `key` column opened once per segment).
pub fn keys_at(snapshot: &Snapshot, addrs: &[DocAddress]) -> Result<Vec<String>> {
    let searcher = snapshot.searcher();
    let mut columns = HashMap::new();
    let mut out = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let col = segment_column(&mut columns, &searcher, *addr, |r| {
            r.fast_fields()
                .str(text::field::KEY)
                .context("opening the `key` fast field")?
                .context("the `key` fast field is missing")
        })?;
        let ord = col
            .term_ords(addr.doc_id)
            .next()
            .with_context(|| format!("document {addr:?} has no key"))?;
        let mut key = String::new();
        col.ord_to_str(ord, &mut key)
            .context("reading the `key` fast field")?;
        out.push(key);
    }
    Ok(out)
}

/// The column of `addr`'s segment, opened with `open` the first time that segment is met.
fn segment_column<'a, C>(
    columns: &'a mut HashMap<SegmentOrdinal, C>,
    searcher: &Searcher,
    addr: DocAddress,
    open: impl FnOnce(&SegmentReader) -> Result<C>,
) -> Result<&'a C> {
    match columns.entry(addr.segment_ord) {
        Entry::Occupied(e) => Ok(e.into_mut()),
        Entry::Vacant(e) => Ok(e.insert(open(searcher.segment_reader(addr.segment_ord))?)),
    }
}
