//! BM25 candidates of a snapshot: tantivy's top-N with internal ids read from the `id` fast
//! field (one column per segment). External keys are read later ([`Snapshot::keys_of`]), only
//! for the hits a search returns: reading keys for every candidate cost more than the BM25 query
//! itself at depth 100.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use anyhow::{Context, Result};
use tantivy::collector::TopDocs;
use tantivy::query::Query;
use tantivy::{DocAddress, Searcher, SegmentOrdinal, SegmentReader, Term};

use super::snapshot::Snapshot;
use super::text::{self, Bm25Fields};
use crate::translate::words::{Spellings, edit_distance, spelling_distance};
use crate::translate::{PsqFields, TranslatedTerm, psq_query};

/// One BM25 candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseHit {
    /// Internal id.
    pub id: u64,
    /// BM25 score.
    pub score: f32,
    /// Where tantivy holds the document in this snapshot (its key is read from there).
    pub(crate) addr: DocAddress,
}

/// Below this many documents, document frequencies say too little to call a term common (in a
/// three-document index every term has an idf under 1): [`Snapshot::without_common_translations`]
/// keeps all.
pub const MIN_DOCS_FOR_COMMON_TERMS: u64 = 100;

impl Snapshot {
    /// BM25 top-`n` of `query` over `fields` (best first; [`Bm25Fields::default`] reaches every
    /// document); `lang` keeps only documents of that language.
    pub fn bm25_candidates(
        &self,
        query: &str,
        n: usize,
        lang: Option<&str>,
        fields: Bm25Fields,
    ) -> crate::Result<Vec<SparseHit>> {
        Ok(self.guarded("running a BM25 query", || match text::bm25_query(self.fields(), query, lang, fields) {
            Some(q) => self.top_n(q.as_ref(), n),
            None => Ok(Vec::new()),
        })?)
    }

    /// BM25 top-`n` of a query translated through a table (PSQ, [`crate::translate`]), best
    /// first, its translations searched in the English fields `which` names.
    pub fn psq_candidates(
        &self,
        terms: &[TranslatedTerm],
        which: PsqFields,
        n: usize,
        lang: Option<&str>,
    ) -> crate::Result<Vec<SparseHit>> {
        Ok(self.guarded("running a translated BM25 query", || match psq_query(self.fields(), terms, which, lang) {
            Some(q) => self.top_n(q.as_ref(), n),
            None => Ok(Vec::new()),
        })?)
    }

    /// `terms` without the translations whose BM25 idf in this snapshot (on the English body
    /// field, tantivy's formula) is below `min_idf`; words kept untranslated always stay, and so
    /// does everything in an index of fewer than [`MIN_DOCS_FOR_COMMON_TERMS`] documents.
    pub fn without_common_translations(
        &self,
        terms: Vec<TranslatedTerm>,
        min_idf: f32,
    ) -> crate::Result<Vec<TranslatedTerm>> {
        let searcher = self.searcher();
        if min_idf <= 0.0 || searcher.num_docs() < MIN_DOCS_FOR_COMMON_TERMS {
            return Ok(terms);
        }
        let n = searcher.num_docs() as f32;
        let field = self.fields().body_eng;
        let kept = self.guarded("reading document frequencies", || {
            let mut kept = Vec::with_capacity(terms.len());
            for t in terms {
                if t.translated {
                    let df = searcher
                        .doc_freq(&Term::from_field_text(field, &t.term))
                        .context("reading a term's document frequency")? as f32;
                    if (1.0 + (n - df + 0.5) / (df + 0.5)).ln() < min_idf {
                        continue;
                    }
                }
                kept.push(t);
            }
            Ok(kept)
        })?;
        Ok(kept)
    }

    /// `terms` with, for each word kept untranslated that no English document contains, the
    /// English body terms spelled most like it (at most [`spelling_distance`] edits): names
    /// written the query language's way (`Liberiya`, `Siloveniya`, `Nijeriya`) find `liberia`,
    /// `slovenia`, `nigeria`. The closest terms share `weight` and are searched like
    /// translations (`--explain` lists them as translated from the word); the word itself stays.
    pub fn with_spelling_matches(&self, terms: Vec<TranslatedTerm>, weight: f32) -> crate::Result<Vec<TranslatedTerm>> {
        if weight <= 0.0 {
            return Ok(terms);
        }
        let searcher = self.searcher();
        let fields = self.fields();
        let mut stem = text::stemmed_analyzer(tantivy::tokenizer::Language::English);
        let matched = self.guarded("looking up spelling matches", || {
            let mut matched: Vec<TranslatedTerm> = Vec::new();
            for t in terms.iter().filter(|t| !t.translated) {
                let Some(stemmed) = text::analyze(&mut stem, &t.term).pop() else { continue };
                let distance = spelling_distance(&stemmed);
                if distance == 0 {
                    continue;
                }
                let mut occurs = false;
                for field in [fields.body_eng, fields.title_eng] {
                    occurs |= searcher.doc_freq(&Term::from_field_text(field, &stemmed)).context("reading a document frequency")? > 0;
                }
                if occurs {
                    continue;
                }
                let spellings = Spellings::within(&stemmed, distance);
                let mut near: Vec<(u32, String)> = Vec::new();
                for seg in searcher.segment_readers() {
                    let index = seg.inverted_index(fields.body_eng).context("opening the English body terms")?;
                    let mut stream = index.terms().search(&spellings).into_stream()?;
                    while stream.advance() {
                        let Ok(term) = std::str::from_utf8(stream.key()) else { continue };
                        if !near.iter().any(|(_, t)| t == term) {
                            near.push((edit_distance(&stemmed, term), term.to_string()));
                        }
                    }
                }
                let Some(closest) = near.iter().map(|(d, _)| *d).min() else { continue };
                near.retain(|(d, _)| *d == closest);
                let share = weight / near.len() as f32;
                for (_, term) in near {
                    matched.push(TranslatedTerm { term, weight: share, from: vec![t.term.clone()], translated: true });
                }
            }
            Ok(matched)
        })?;
        let mut out = terms;
        out.extend(matched);
        Ok(out)
    }

    /// tantivy's top-`n` of `q` with internal ids.
    fn top_n(&self, q: &dyn Query, n: usize) -> Result<Vec<SparseHit>> {
        // tantivy reserves room for `n` hits up front: never ask for more than there are documents.
        let n = n.min(usize::try_from(self.num_docs()).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.searcher();
        let top = searcher.search(q, &TopDocs::with_limit(n).order_by_score()).context("running the BM25 query")?;
        let mut columns = HashMap::new();
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let col = segment_column(&mut columns, searcher, addr, |r| {
                r.fast_fields().u64(text::field::ID).context("opening the `id` fast field")
            })?;
            let id = col.first(addr.doc_id).with_context(|| format!("document {addr:?} has no id"))?;
            out.push(SparseHit { id, score, addr });
        }
        Ok(out)
    }
}

/// The column of `addr`'s segment, opened with `open` the first time that segment is met.
pub(crate) fn segment_column<'a, C>(
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
