//! BM25 as sparse vectors, for serving engines that score sparse dot products (Milvus's
//! `SPARSE_FLOAT_VECTOR` with the IP metric): a document's vector holds, per (field, term) it
//! contains, the BM25 weight tantivy gives that term in that document; a query's vector holds,
//! per (field, term) the BM25 leg would search, the clause's boost (1, or a PSQ translation's
//! weight). Their dot product is then the document's BM25 score under Optical's own analyzers
//! and PSQ translation (up to tantivy's one-byte length norms, which are read, not recomputed).
//!
//! The idf and average lengths are this snapshot's: a serving engine fed with these vectors
//! scores with the statistics of the export, not of later commits.
//!
//! A dimension is the 32-bit FNV-1a hash of the field name and the term ([`sparse_dim`]); two
//! (field, term) pairs may share one (about one pair in 4·10⁹ per other pair), which adds a
//! term's weight where it does not belong, rarely and slightly.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use tantivy::fieldnorm::FieldNormReader;
use tantivy::schema::{Field, Value};
use tantivy::tokenizer::Language;
use tantivy::{DocId, TantivyDocument, Term};

use super::snapshot::Snapshot;
use super::text::{self, TextFields, analyze, stemmed_analyzer, words_analyzer};
use crate::translate::{PsqFields, TranslatedTerm};

/// tantivy's BM25 constants (`tantivy::query::bm25`).
const K1: f32 = 1.2;
const B: f32 = 0.75;

/// A sparse vector: (dimension, value), sorted by dimension, dimensions unique.
pub type SparseVector = Vec<(u32, f32)>;

/// The dimension of `term` in field `field`: FNV-1a (32 bits) of the field name, a 0xff byte
/// (never in UTF-8) and the term.
pub fn sparse_dim(field: &str, term: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in field.as_bytes().iter().chain([0xffu8].iter()).chain(term.as_bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Sums values that land on the same dimension and sorts by dimension.
fn collect(entries: impl IntoIterator<Item = (u32, f32)>) -> SparseVector {
    let mut map: BTreeMap<u32, f32> = BTreeMap::new();
    for (d, v) in entries {
        *map.entry(d).or_insert(0.0) += v;
    }
    map.into_iter().filter(|&(_, v)| v != 0.0).collect()
}

/// Field names of the analysed BM25 fields, by field.
fn field_name(fields: &TextFields, f: Field) -> &'static str {
    if f == fields.title_words {
        text::field::TITLE_WORDS
    } else if f == fields.body_words {
        text::field::BODY_WORDS
    } else if f == fields.title_eng {
        text::field::TITLE_ENG
    } else {
        text::field::BODY_ENG
    }
}

impl Snapshot {
    /// Every live document's key and BM25 sparse vector (see the module docs), in no particular
    /// order.
    pub fn bm25_sparse_documents(&self) -> crate::Result<Vec<(String, SparseVector)>> {
        Ok(self.guarded("computing BM25 sparse vectors", || {
            let searcher = self.searcher();
            let fields = self.fields().clone();
            let total_docs: u64 = searcher.segment_readers().iter().map(|s| u64::from(s.max_doc())).sum();
            let analysed = [fields.title_words, fields.body_words, fields.title_eng, fields.body_eng];
            let mut avg_len = HashMap::new();
            for f in analysed {
                let mut tokens = 0u64;
                for seg in searcher.segment_readers() {
                    tokens += seg.inverted_index(f)?.total_num_tokens();
                }
                avg_len.insert(f, tokens as f32 / total_docs.max(1) as f32);
            }
            let mut idf_cache: HashMap<(Field, String), f32> = HashMap::new();
            let mut out = Vec::with_capacity(self.num_docs() as usize);
            let (mut words, mut english) = (words_analyzer(), stemmed_analyzer(Language::English));
            for seg in searcher.segment_readers() {
                let store = seg.get_store_reader(64).context("opening a doc store")?;
                let norms: HashMap<Field, FieldNormReader> =
                    analysed.iter().map(|&f| Ok((f, seg.get_fieldnorms_reader(f)?))).collect::<Result<_>>()?;
                for doc in seg.doc_ids_alive() {
                    let stored: TantivyDocument = store.get(doc).context("reading a stored document")?;
                    let s = |f| stored.get_first(f).and_then(|v| v.as_str()).unwrap_or("").to_string();
                    let key = s(fields.key);
                    let lang = s(fields.lang);
                    // The fields and analyzer the writer indexed this document with.
                    let (targets, analyzer) = if text::is_english(&lang) {
                        ([(fields.title_eng, fields.title), (fields.body_eng, fields.body)], &mut english)
                    } else {
                        ([(fields.title_words, fields.title), (fields.body_words, fields.body)], &mut words)
                    };
                    let mut entries = Vec::new();
                    for (indexed, source) in targets {
                        let mut tf: HashMap<String, u32> = HashMap::new();
                        for token in analyze(analyzer, &s(source)) {
                            *tf.entry(token).or_insert(0) += 1;
                        }
                        let norm = norm_of(&norms[&indexed], doc);
                        let len_part = K1 * (1.0 - B + B * norm / avg_len[&indexed].max(f32::MIN_POSITIVE));
                        for (term, n) in tf {
                            let idf = match idf_cache.get(&(indexed, term.clone())) {
                                Some(&v) => v,
                                None => {
                                    let df = searcher.doc_freq(&Term::from_field_text(indexed, &term))?;
                                    let v = idf(df, total_docs);
                                    idf_cache.insert((indexed, term.clone()), v);
                                    v
                                }
                            };
                            let tf = n as f32;
                            let weight = idf * (1.0 + K1) * tf / (tf + len_part);
                            entries.push((sparse_dim(field_name(&fields, indexed), &term), weight));
                        }
                    }
                    out.push((key, collect(entries)));
                }
            }
            Ok(out)
        })?)
    }

    /// The sparse vector of a BM25 query: each distinct token of `query` in the four analysed
    /// fields (each analyzer's own tokens), weight 1 — what [`Snapshot::bm25_candidates`] scores.
    pub fn bm25_sparse_query(&self, query: &str) -> SparseVector {
        collect(plain_entries(query))
    }

    /// The sparse vector of a translated (PSQ) query: each translation in the English fields
    /// `which` names with its weight, and the words kept untranslated as in
    /// [`Snapshot::bm25_sparse_query`] — what [`Snapshot::psq_candidates`] scores.
    pub fn psq_sparse_query(&self, terms: &[TranslatedTerm], which: PsqFields) -> SparseVector {
        let english: &[&str] = match which {
            PsqFields::TitleAndBody => &[text::field::TITLE_ENG, text::field::BODY_ENG],
            PsqFields::Body => &[text::field::BODY_ENG],
        };
        let mut entries = Vec::new();
        for t in terms.iter().filter(|t| t.translated) {
            for f in english {
                entries.push((sparse_dim(f, &t.term), t.weight));
            }
        }
        let kept: Vec<&str> = terms.iter().filter(|t| !t.translated).map(|t| t.term.as_str()).collect();
        entries.extend(plain_entries(&kept.join(" ")));
        collect(entries)
    }
}

/// (dimension, 1) for each distinct token of `query` in each analysed field.
fn plain_entries(query: &str) -> Vec<(u32, f32)> {
    let mut entries = Vec::new();
    let mut add = |tokens: Vec<String>, names: [&str; 2]| {
        let distinct: std::collections::HashSet<String> = tokens.into_iter().collect();
        for t in distinct {
            for f in names {
                entries.push((sparse_dim(f, &t), 1.0));
            }
        }
    };
    add(analyze(&mut words_analyzer(), query), [text::field::TITLE_WORDS, text::field::BODY_WORDS]);
    add(analyze(&mut stemmed_analyzer(Language::English), query), [text::field::TITLE_ENG, text::field::BODY_ENG]);
    entries
}

/// tantivy's idf.
fn idf(doc_freq: u64, doc_count: u64) -> f32 {
    let x = (doc_count.saturating_sub(doc_freq) as f32 + 0.5) / (doc_freq as f32 + 0.5);
    (1.0 + x).ln()
}

/// The document's field length as tantivy stores it (one byte, decoded).
fn norm_of(reader: &FieldNormReader, doc: DocId) -> f32 {
    reader.fieldnorm(doc) as f32
}
