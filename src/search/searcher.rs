//! [`Searcher`]: one commit's snapshot plus the query encoders, running BM25, dense and hybrid
//! searches.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::compat::check_query_encoder;
use super::fusion::Fusion;
use super::late::{self, Rerank, RerankChoice};
use super::request::{Explain, Mode, SearchHit, SearchRequest, SearchResults, StageTimings};
use crate::Result;
use crate::encoder::Encoder;
use crate::error::{Error, invalid};
use crate::engine::sparse::SparseVector;
use crate::engine::{Bm25Fields, Hit, Index, Snapshot, SparseHit, check_document_encoder};
use crate::translate::{
    DEFAULT_PSQ_MAX_TERMS, DEFAULT_PSQ_MIN_IDF, DEFAULT_PSQ_SPELLING_WEIGHT, PsqFields, TranslatedTerm, TranslationTable, glossed_query, heaviest_translations, rendered_query, translate_query,
};

#[derive(Clone)]
struct Encoders {
    default: Option<Arc<Encoder>>,
    by_lang: HashMap<String, Arc<Encoder>>,
    /// The index's document encoder: passage token states for a rerank stage.
    document: Option<Arc<Encoder>>,
    /// Translation tables for the BM25 leg (PSQ), by query language.
    tables: HashMap<String, Arc<TranslationTable>>,
    /// Translations into terms with a lower BM25 idf in this index are left out of PSQ queries.
    psq_min_idf: f32,
    /// At most this many translated terms (the heaviest) are searched per PSQ query.
    psq_max_terms: usize,
    /// Weight of the English terms spelled like an untranslated query word (0: none).
    psq_spelling_weight: f32,
    /// Whether the dense encoder reads a query with its table's English gloss appended.
    query_gloss: bool,
    /// The weight of the English rendering's MaxSim in the rerank stage (0: not read).
    rendering_weight: f32,
}

impl Default for Encoders {
    fn default() -> Self {
        Encoders {
            default: None,
            by_lang: HashMap::new(),
            document: None,
            tables: HashMap::new(),
            psq_min_idf: DEFAULT_PSQ_MIN_IDF,
            psq_max_terms: DEFAULT_PSQ_MAX_TERMS,
            psq_spelling_weight: DEFAULT_PSQ_SPELLING_WEIGHT,
            query_gloss: true,
            rendering_weight: late::DEFAULT_RENDERING_WEIGHT,
        }
    }
}

/// Searches one commit. Cheap to clone and `Send + Sync`: share one across threads, and
/// [`Searcher::with_snapshot`] (or [`Searcher::refresh`]) to move on to a newer commit.
///
/// The query encoder is chosen per search: the encoder registered for the request's
/// `query_lang` (e.g. a student distilled for Hausa), else the default one. Every encoder is
/// checked against the index when it is registered: a different dimension or embedding space is
/// refused.
#[derive(Clone)]
pub struct Searcher {
    snapshot: Snapshot,
    encoders: Arc<Encoders>,
}

/// Candidates of one search, before assembly.
struct Ranked {
    /// (id, fused or single score), best first.
    order: Vec<(u64, f32)>,
    bm25: Vec<SparseHit>,
    /// Exact dense scores, best first.
    dense: Vec<Hit>,
    /// The hits a rerank stage scored, and their MaxSim score.
    late: HashMap<u64, f32>,
    /// After a rerank stage: every hit's score before it.
    before_rerank: HashMap<u64, f32>,
}

impl Searcher {
    /// A searcher over `snapshot` with no query encoder (BM25, or dense with ready query vectors).
    pub fn new(snapshot: Snapshot) -> Searcher {
        Searcher {
            snapshot,
            encoders: Arc::new(Encoders::default()),
        }
    }

    /// A searcher over the latest commit of `index`.
    pub fn for_index(index: &Index) -> Searcher {
        Searcher::new(index.snapshot())
    }

    /// Sets the default query encoder; errors when it does not fit the index.
    pub fn with_encoder(self, encoder: Arc<Encoder>) -> Result<Searcher> {
        check_query_encoder(self.snapshot.config(), encoder.info())?;
        Ok(self.with_changed(|enc| enc.default = Some(encoder)))
    }

    /// Registers the query encoder for queries in `lang`; errors when it does not fit the index.
    pub fn with_language_encoder(
        self,
        lang: impl Into<String>,
        encoder: Arc<Encoder>,
    ) -> Result<Searcher> {
        let lang = lang.into();
        check_query_encoder(self.snapshot.config(), encoder.info())
            .with_context(|| format!("query encoder for language {lang}"))?;
        Ok(self.with_changed(|enc| {
            enc.by_lang.insert(lang, encoder);
        }))
    }

    /// Sets the index's document encoder, which a rerank stage ([`Rerank`]) encodes the candidate
    /// passages with; errors when it is not the encoder the index's vectors came from.
    pub fn with_document_encoder(self, encoder: Arc<Encoder>) -> Result<Searcher> {
        check_document_encoder(self.snapshot.config(), encoder.info()).context("document encoder for reranking")?;
        Ok(self.with_changed(|enc| enc.document = Some(encoder)))
    }

    /// This searcher with its encoders and settings changed by `change` (a copy: clones of the
    /// old searcher keep theirs).
    fn with_changed(self, change: impl FnOnce(&mut Encoders)) -> Searcher {
        let mut enc = (*self.encoders).clone();
        change(&mut enc);
        Searcher {
            snapshot: self.snapshot,
            encoders: Arc::new(enc),
        }
    }

    /// Registers a translation table for queries in `table.source`: their BM25 leg then runs the
    /// translated query (PSQ, [`crate::translate`]) instead of the query's own words.
    pub fn with_translation_table(self, table: Arc<TranslationTable>) -> Searcher {
        self.with_changed(|enc| {
            enc.tables.insert(table.source.clone(), table);
        })
    }

    /// Leaves out of PSQ queries the translations into terms whose BM25 idf in this index is
    /// below `min_idf` (0 keeps every translation). Tables learn function words too ("the",
    /// "of", "in"): they add almost nothing to a score and their long posting lists cost most of
    /// the BM25 stage's time.
    pub fn with_psq_min_idf(self, min_idf: f32) -> Searcher {
        self.with_changed(|enc| enc.psq_min_idf = min_idf)
    }

    /// Searches at most `max_terms` translated terms per PSQ query, the heaviest (the words kept
    /// untranslated are not counted). A query of eight words can expand to forty terms, each a
    /// posting list for the BM25 stage to walk; the light ones barely move a score.
    pub fn with_psq_max_terms(self, max_terms: usize) -> Searcher {
        self.with_changed(|enc| enc.psq_max_terms = max_terms)
    }

    /// Adds to a PSQ query, for each word kept untranslated that no English document contains,
    /// the English terms spelled like it (`Liberiya` → `liberia`), sharing `weight` (0 adds none;
    /// [`Snapshot::with_spelling_matches`](crate::engine::Snapshot::with_spelling_matches)).
    pub fn with_psq_spelling_weight(self, weight: f32) -> Searcher {
        self.with_changed(|enc| enc.psq_spelling_weight = weight)
    }

    /// Whether a query in a language with a translation table is encoded with its English gloss
    /// appended (on by default; [`crate::translate::gloss`]): the dense leg then also reads the
    /// English words of the table's best translations.
    pub fn with_query_gloss(self, on: bool) -> Searcher {
        self.with_changed(|enc| enc.query_gloss = on)
    }

    /// The weight at which the rerank stage mixes in the MaxSim of the English rendering of a
    /// query whose language has a translation table ([`late::Rendering`]; default
    /// [`late::DEFAULT_RENDERING_WEIGHT`], 0 turns the rendering off).
    pub fn with_rendering_weight(self, weight: f32) -> Searcher {
        self.with_changed(|enc| enc.rendering_weight = weight)
    }

    /// The English rendering the rerank stage reads for `text` in `lang` besides `text` itself:
    /// when its weight is above 0 and a table is registered for `lang`.
    pub fn query_rendering(&self, text: &str, lang: Option<&str>) -> Option<late::Rendering> {
        let table = lang.and_then(|l| self.encoders.tables.get(l))?;
        let weight = self.encoders.rendering_weight;
        (weight > 0.0).then(|| late::Rendering { text: rendered_query(table, text), weight })
    }

    /// The text the dense encoder reads for `text` in `lang`: with its English gloss appended when
    /// glosses are on and a table is registered for `lang`, else `text` itself.
    pub fn dense_query_text<'a>(&self, text: &'a str, lang: Option<&str>) -> Cow<'a, str> {
        match lang.and_then(|l| self.encoders.tables.get(l)) {
            Some(table) if self.encoders.query_gloss => Cow::Owned(glossed_query(table, text)),
            _ => Cow::Borrowed(text),
        }
    }

    /// The query's terms after translation (spelling matches added, common terms left out, see
    /// [`Searcher::with_psq_min_idf`], then at most [`Searcher::with_psq_max_terms`] of them),
    /// when a table is registered for its language.
    pub fn translated_query(&self, req: &SearchRequest) -> Result<Option<Vec<TranslatedTerm>>> {
        let Some(table) = req.query_lang.as_deref().and_then(|l| self.encoders.tables.get(l)) else {
            return Ok(None);
        };
        let terms = translate_query(table, &req.query);
        let terms = self.snapshot.with_spelling_matches(terms, self.encoders.psq_spelling_weight)?;
        let terms = self.snapshot.without_common_translations(terms, self.encoders.psq_min_idf)?;
        Ok(Some(heaviest_translations(terms, self.encoders.psq_max_terms)))
    }

    /// Whether the request's query is in another language than the documents: its language has a
    /// translation table here, or no live document of the index is in it. A query without a
    /// language counts as one in the documents' language.
    pub fn is_cross_lingual(&self, req: &SearchRequest) -> Result<bool> {
        let Some(lang) = req.query_lang.as_deref() else { return Ok(false) };
        if self.encoders.tables.contains_key(lang) {
            return Ok(true);
        }
        Ok(!self.snapshot.has_lang(lang)?)
    }

    /// BM25 candidates of the request: of the translated query when its language has a table,
    /// its translations searched in the English fields `which` names.
    fn bm25_leg(&self, req: &SearchRequest, which: PsqFields, n: usize) -> Result<Vec<SparseHit>> {
        match self.translated_query(req)? {
            Some(terms) => self.snapshot.psq_candidates(&terms, which, n, req.lang.as_deref()),
            None => self.snapshot.bm25_candidates(&req.query, n, req.lang.as_deref(), Bm25Fields::default()),
        }
    }

    /// The BM25 leg of `req` as a sparse vector ([`crate::engine::sparse`]): the translated
    /// query when its language has a table (translations in bodies for a hybrid request, in
    /// titles and bodies for a BM25 one, as the searches run them), else the query's words. Its
    /// dot product with a document's [`Snapshot::bm25_sparse_documents`] vector is the score
    /// that leg gives the document. The language filter is not part of it.
    pub fn bm25_sparse_query(&self, req: &SearchRequest) -> Result<SparseVector> {
        let which = if req.mode == Mode::Hybrid { PsqFields::Body } else { PsqFields::TitleAndBody };
        Ok(match self.translated_query(req)? {
            Some(terms) => self.snapshot.psq_sparse_query(&terms, which),
            None => self.snapshot.bm25_sparse_query(&req.query),
        })
    }

    /// The same encoders over another snapshot of the same index (a later commit).
    pub fn with_snapshot(&self, snapshot: Snapshot) -> Searcher {
        Searcher {
            snapshot,
            encoders: Arc::clone(&self.encoders),
        }
    }

    /// The same encoders over the latest commit of `index`.
    pub fn refresh(&self, index: &Index) -> Searcher {
        self.with_snapshot(index.snapshot())
    }

    /// The snapshot searched.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The query encoder a request in `lang` would use.
    pub fn query_encoder(&self, lang: Option<&str>) -> Option<&Arc<Encoder>> {
        lang.and_then(|l| self.encoders.by_lang.get(l))
            .or(self.encoders.default.as_ref())
    }

    /// Encodes a query with the encoder for `lang` (see [`Searcher::query_encoder`]).
    pub fn encode_query(&self, text: &str, lang: Option<&str>) -> Result<Vec<f32>> {
        let Some(enc) = self.query_encoder(lang) else {
            invalid!(
                "dense search needs a query encoder (a model) or a ready query vector; none was given"
            )
        };
        let mut v = enc.encode_queries(&[text]).context("encoding the query").map_err(Error::encoder)?;
        v.pop().ok_or_else(|| Error::Encoder { message: "the encoder returned no vector for the query".into() })
    }

    /// Runs one search. A damaged text index, even one that makes the text engine panic, comes
    /// back as an error naming the index (the snapshot's reads turn it into one).
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults> {
        let start = Instant::now();
        req.validate()?;
        let mut t = StageTimings::default();
        let snap = &self.snapshot;
        let capped = capped_to(req, snap.num_docs());
        let req = capped.as_ref().unwrap_or(req);
        if req.mode != Mode::Bm25 && snap.config().dim.is_none() {
            invalid!(
                "the index is text-only (no vectors): {} search is impossible, use bm25 mode",
                req.mode
            );
        }
        let stage = req.rerank_stage(snap.codebook().is_some());
        // The stage reranks cross-lingual queries only ([`Searcher::rerank`]); such a query has
        // its token states encoded with its vector, in one encoder call
        // ([`late::query_vector_and_rows`]). `bylang` fusion asks the same question.
        let hybrid_by_lang = req.mode == Mode::Hybrid && matches!(req.fusion, Fusion::ByLanguage { .. });
        let cross_lingual = (stage.is_some() || hybrid_by_lang) && self.is_cross_lingual(req)?;
        let with_rows = stage.is_some() && cross_lingual && req.query_vector.is_none();
        let (qvec, query_rows) = match req.mode {
            Mode::Bm25 => (None, None),
            _ => {
                let (v, rows) = self.query_vector(req, with_rows, &mut t)?;
                (Some(v), rows)
            }
        };
        if req.k == 0 {
            t.total = start.elapsed();
            return Ok(SearchResults {
                hits: Vec::new(),
                generation: snap.generation(),
                mode: req.mode,
                timings: t,
            });
        }
        let ranked = match req.mode {
            Mode::Bm25 => self.bm25_only(req, &mut t)?,
            Mode::Dense => {
                self.dense_only(req, qvec.as_deref().expect("dense has a vector"), &mut t)?
            }
            Mode::Hybrid => {
                self.hybrid(req, qvec.as_deref().expect("hybrid has a vector"), cross_lingual, &mut t)?
            }
        };
        let ranked = match stage {
            Some(rerank) => self.rerank(req, ranked, rerank, cross_lingual, query_rows, &mut t)?,
            None => ranked,
        };
        let t0 = Instant::now();
        let hits = self.assemble(req, ranked)?;
        t.fusion += t0.elapsed();
        t.total = start.elapsed();
        Ok(SearchResults {
            hits,
            generation: snap.generation(),
            mode: req.mode,
            timings: t,
        })
    }

    /// The request's query vector (checked against the index), or the query encoded now — and,
    /// when `with_rows` and the query is encoded, its token rows for the rerank stage from the
    /// same encoder call.
    fn query_vector(&self, req: &SearchRequest, with_rows: bool, t: &mut StageTimings) -> Result<(Vec<f32>, Option<late::QueryRows>)> {
        let mut rows = None;
        let v = match &req.query_vector {
            Some(v) => {
                let dim = self.snapshot.config().dim.expect("checked by the caller");
                if v.len() != dim {
                    invalid!(
                        "query vector has dimension {}, the index holds dimension {dim}",
                        v.len()
                    );
                }
                v.clone()
            }
            None => {
                let t0 = Instant::now();
                let lang = req.query_lang.as_deref();
                let dense_text = self.dense_query_text(&req.query, lang);
                let v = match self.query_encoder(lang) {
                    Some(enc) if with_rows => {
                        let rendering = self.query_rendering(&req.query, lang);
                        let (v, r) = late::query_vector_and_rows(enc, &dense_text, &req.query, rendering.as_ref())?;
                        rows = Some(r);
                        v
                    }
                    _ => self.encode_query(&dense_text, lang)?,
                };
                t.encode = t0.elapsed();
                v
            }
        };
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            invalid!("query vector component {i} is not finite");
        }
        Ok((v, rows))
    }

    /// The two legs of a hybrid search, unfused, by document key: BM25's top
    /// `max(sparse_depth, k)` and the exact dense score of every candidate (the dense top
    /// `max(rescore_factor·k, dense_depth)` ∪ the BM25 candidates), each best first.
    /// `req.fusion.fuse_for(&legs.bm25, &legs.dense, legs.cross_lingual)` ranks them as
    /// [`Searcher::search`] would, up to the order of tied scores; `optical eval` scores several fusions from one such pair.
    pub fn hybrid_legs(&self, req: &SearchRequest) -> Result<HybridLegs> {
        let start = Instant::now();
        req.validate()?;
        let capped = capped_to(req, self.snapshot.num_docs());
        let req = capped.as_ref().unwrap_or(req);
        if self.snapshot.config().dim.is_none() {
            invalid!("the index is text-only (no vectors): it has no dense leg, use bm25 mode");
        }
        let mut t = StageTimings::default();
        let (q, _) = self.query_vector(req, false, &mut t)?;
        let cross_lingual = self.is_cross_lingual(req)?;
        let ranked = self.hybrid(req, &q, cross_lingual, &mut t)?;
        let t0 = Instant::now();
        let bm25_ids: Vec<u64> = ranked.bm25.iter().map(|h| h.id).collect();
        let bm25_keys = self.snapshot.keys_of(&bm25_ids, &ranked.bm25)?;
        let dense_ids: Vec<u64> = ranked.dense.iter().map(|h| h.id).collect();
        let dense_keys = self.snapshot.keys_of(&dense_ids, &ranked.bm25)?;
        t.fusion += t0.elapsed();
        t.total = start.elapsed();
        Ok(HybridLegs {
            cross_lingual,
            bm25: bm25_keys
                .into_iter()
                .zip(ranked.bm25.iter().map(|h| h.score))
                .collect(),
            dense: dense_keys
                .into_iter()
                .zip(ranked.dense.iter().map(|h| h.score))
                .collect(),
            timings: t,
        })
    }

    fn bm25_only(&self, req: &SearchRequest, t: &mut StageTimings) -> Result<Ranked> {
        let t0 = Instant::now();
        let bm25 = self.bm25_leg(req, PsqFields::TitleAndBody, req.k)?;
        t.bm25 = t0.elapsed();
        let order = bm25.iter().map(|h| (h.id, h.score)).collect();
        Ok(Ranked {
            order,
            bm25,
            dense: Vec::new(),
            late: HashMap::new(),
            before_rerank: HashMap::new(),
        })
    }

    /// The language filter as a set of allowed ids (`None` = no filter).
    fn allowed(&self, req: &SearchRequest) -> Result<Option<HashSet<u64>>> {
        req.lang
            .as_deref()
            .map(|l| self.snapshot.ids_with_lang(l))
            .transpose()
    }

    /// Dense top-`want`, exactly scored. When the first pass is approximate (int8) it keeps
    /// `depth ≥ want` rows, and those are rescored on f32.
    fn dense_top(
        &self,
        req: &SearchRequest,
        q: &[f32],
        want: usize,
        depth: usize,
        t: &mut StageTimings,
    ) -> Result<Vec<Hit>> {
        let t0 = Instant::now();
        let allowed = self.allowed(req)?;
        let exact = self.snapshot.dense_first_pass_is_exact();
        let depth = if exact { want } else { depth.max(want) };
        let first = self.snapshot.dense_first_pass(q, depth, allowed.as_ref())?;
        t.dense_scan += t0.elapsed();
        if exact {
            return Ok(first);
        }
        let t0 = Instant::now();
        let ids: Vec<u64> = first.iter().map(|h| h.id).collect();
        let mut hits = self.snapshot.exact_scores(q, &ids)?;
        hits.truncate(want);
        t.rerank += t0.elapsed();
        Ok(hits)
    }

    fn dense_only(&self, req: &SearchRequest, q: &[f32], t: &mut StageTimings) -> Result<Ranked> {
        let dense = self.dense_top(req, q, req.k, req.k.saturating_mul(req.rescore_factor), t)?;
        let order = dense.iter().map(|h| (h.id, h.score)).collect();
        Ok(Ranked {
            order,
            bm25: Vec::new(),
            dense,
            late: HashMap::new(),
            before_rerank: HashMap::new(),
        })
    }

    /// BM25 and dense legs fused; `cross_lingual` ([`Searcher::is_cross_lingual`]) is read by
    /// `bylang` fusion only.
    fn hybrid(&self, req: &SearchRequest, q: &[f32], cross_lingual: bool, t: &mut StageTimings) -> Result<Ranked> {
        // One after the other: running BM25 beside the (already parallel) dense scan was
        // measured slower on 2 cores (p50 10.7 vs 9.5 ms, p99 26 vs 18 ms).
        let t0 = Instant::now();
        let bm25 = self.bm25_leg(req, PsqFields::Body, req.sparse_depth.max(req.k))?;
        t.bm25 = t0.elapsed();
        // The int8 pass keeps max(rescore_factor·k, dense_depth) rows, all rescored exactly: the
        // exact top-k is (with the storage's measured int8 recall) among them, and the whole
        // list takes part in the fusion.
        let depth = req
            .k
            .saturating_mul(req.rescore_factor)
            .max(req.dense_depth);
        let mut dense = self.dense_top(req, q, depth, depth, t)?;
        // BM25 candidates the dense pass did not keep get their exact dense score too, so the
        // dense ranking covers the whole union.
        let t0 = Instant::now();
        let have: HashSet<u64> = dense.iter().map(|h| h.id).collect();
        let missing: Vec<u64> = bm25
            .iter()
            .map(|h| h.id)
            .filter(|id| !have.contains(id))
            .collect();
        // A document without a live vector cannot happen in a consistent snapshot; if it did,
        // it would simply take no part in the dense ranking.
        dense.extend(self.snapshot.exact_scores(q, &missing)?);
        dense.sort_unstable_by(Hit::rank_cmp);
        t.rerank += t0.elapsed();
        let t0 = Instant::now();
        let sparse: Vec<(u64, f32)> = bm25.iter().map(|h| (h.id, h.score)).collect();
        let dense_list: Vec<(u64, f32)> = dense.iter().map(|h| (h.id, h.score)).collect();
        let order = req.fusion.fuse_for(&sparse, &dense_list, cross_lingual);
        t.fusion += t0.elapsed();
        Ok(Ranked { order, bm25, dense, late: HashMap::new(), before_rerank: HashMap::new() })
    }

    /// `ranked` with its top reordered by the late-interaction score ([`late`]): the query's
    /// token states from its query encoder (the query as written, then its English rendering
    /// when it has one: a gloss is for the pooled vector; `query_rows` when they were encoded
    /// with the vector, else encoded here), the top
    /// passages' decoded from their stored token codes, or else computed by the document
    /// encoder. Cross-lingual queries only (`cross_lingual`, [`Searcher::is_cross_lingual`]): on
    /// queries in the documents' language, where e5 reads both sides, it lowered MasakhaNEWS dev
    /// (docs/search.md), so they keep the fused order.
    fn rerank(&self, req: &SearchRequest, mut ranked: Ranked, rerank: Rerank, cross_lingual: bool, query_rows: Option<late::QueryRows>, t: &mut StageTimings) -> Result<Ranked> {
        let codebook = self.snapshot.codebook().map(|b| &**b);
        let rendering_weight = self.encoders.rendering_weight;
        if !(0.0..=1.0).contains(&rendering_weight) {
            invalid!("rendering weight {rendering_weight}: the rendering's MaxSim is mixed in at a weight from 0 to 1 (with_rendering_weight)")
        }
        if codebook.is_none() && self.encoders.document.is_none() {
            invalid!("rerank {rerank}: the index stores no token codes, so the stage encodes the candidate passages with the index's document encoder, and this searcher has none (register it with with_document_encoder)")
        }
        let Some(query_encoder) = self.query_encoder(req.query_lang.as_deref()) else {
            if req.rerank == RerankChoice::Auto {
                return Ok(ranked); // a search with a ready query vector: the default stage has no query tokens
            }
            invalid!("rerank {rerank} needs the query's token states: this searcher has no query encoder")
        };
        if !cross_lingual {
            return Ok(ranked);
        }
        // The query's token states are query encoding (timed as such); the stage is the rest.
        let query = match query_rows {
            Some(rows) => rows,
            None => {
                let t_encode = Instant::now();
                let rendering = self.query_rendering(&req.query, req.query_lang.as_deref());
                let rows = late::query_rows(query_encoder, &req.query, rendering.as_ref())?;
                t.encode += t_encode.elapsed();
                rows
            }
        };
        let t0 = Instant::now();
        // The top's documents in one read (BM25 hits carry their addresses, the others come from
        // the `id` postings) rather than a search per id.
        let Rerank::MaxSim { depth, weight } = rerank;
        let top: Vec<u64> = ranked.order.iter().take(depth).map(|h| h.0).collect();
        let candidates: Vec<late::Candidate> = self.snapshot.documents(&top, &ranked.bm25)?.into_iter().map(late::Candidate::from_stored).collect();
        let rows = late::PassageRows { codebook, encoder: self.encoders.document.as_deref() };
        let (order, scores) = late::rerank_top(&query, rows, &ranked.order, &candidates, weight)?;
        ranked.late = ranked.order.iter().zip(&scores).map(|(h, &late)| (h.0, late)).collect();
        ranked.before_rerank = ranked.order.iter().copied().collect();
        ranked.order = order;
        t.late_interaction = t0.elapsed();
        Ok(ranked)
    }

    /// The top `k` of the ranking with keys and (on request) explanations.
    fn assemble(&self, req: &SearchRequest, ranked: Ranked) -> Result<Vec<SearchHit>> {
        let top: Vec<(u64, f32)> = ranked.order.into_iter().take(req.k).collect();
        let bm25_pos: HashMap<u64, usize> = ranked
            .bm25
            .iter()
            .enumerate()
            .map(|(i, h)| (h.id, i))
            .collect();
        let dense_pos: HashMap<u64, usize> = ranked
            .dense
            .iter()
            .enumerate()
            .map(|(i, h)| (h.id, i))
            .collect();
        // Keys, for the returned hits only.
        let top_ids: Vec<u64> = top.iter().map(|h| h.0).collect();
        let keys = self.snapshot.keys_of(&top_ids, &ranked.bm25)?;
        let mut hits = Vec::with_capacity(top.len());
        for ((id, score), key) in top.into_iter().zip(keys) {
            let explain = req.explain.then(|| {
                let b = bm25_pos.get(&id).map(|&i| (i + 1, ranked.bm25[i].score));
                let d = dense_pos.get(&id).map(|&i| (i + 1, ranked.dense[i].score));
                Explain {
                    bm25_rank: b.map(|x| x.0),
                    bm25_score: b.map(|x| x.1),
                    dense_rank: d.map(|x| x.0),
                    dense_score: d.map(|x| x.1),
                    fused_score: ranked.before_rerank.get(&id).copied().unwrap_or(score),
                    maxsim_score: ranked.late.get(&id).copied(),
                }
            });
            hits.push(SearchHit {
                key,
                id,
                score,
                explain,
            });
        }
        Ok(hits)
    }
}

/// The unfused legs of a hybrid search ([`Searcher::hybrid_legs`]): `(document key, score)`,
/// best first.
#[derive(Clone, Debug, PartialEq)]
pub struct HybridLegs {
    /// BM25 candidates and their BM25 scores.
    pub bm25: Vec<(String, f32)>,
    /// Every candidate (dense top-N ∪ BM25 candidates) and its exact dense score.
    pub dense: Vec<(String, f32)>,
    /// Whether the query counts as cross-lingual ([`Searcher::is_cross_lingual`]); fuse with
    /// `fusion.fuse_for(&legs.bm25, &legs.dense, legs.cross_lingual)`.
    pub cross_lingual: bool,
    /// Where the time went (encoding, BM25, dense scan, rescoring; key lookup as fusion).
    pub timings: StageTimings,
}

/// `req` with `k` and the candidate depths capped at the number of live documents (`None` when
/// nothing exceeds it). No search returns more, and the stages allocate room for `k` or a depth
/// up front: a caller's `usize::MAX` must not reach them.
fn capped_to(req: &SearchRequest, docs: u64) -> Option<SearchRequest> {
    let docs = usize::try_from(docs).unwrap_or(usize::MAX);
    if req.k <= docs && req.sparse_depth <= docs && req.dense_depth <= docs {
        return None;
    }
    let mut r = req.clone();
    r.k = r.k.min(docs);
    r.sparse_depth = r.sparse_depth.min(docs);
    r.dense_depth = r.dense_depth.min(docs);
    Some(r)
}

/// `Duration` in milliseconds, for reports.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
