//! The systems an evaluation scores on a split: searches of an index in a mode (bm25, dense,
//! hybrid with its fusions), exhaustive dense retrieval, and existing TREC run files. Each
//! gives [`SystemResult`]s for [`super::output::EvalOutput::record`].
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

use super::beir::{BeirSplit, Query};
use super::exhaustive::{corpus_passages, encode_documents, rank_documents};
use super::fused::fuse_runs;
use super::harness::{Timing, evaluate_system, query_progress};
use super::metrics::{Averaging, Metric, evaluate};
use super::output::SystemResult;
use super::run::Run;
use crate::encoder::{Encoder, EncoderInfo, Role};
use crate::engine::Index;
use crate::eval::BeirCollection;
use crate::search::late::{self, Rerank, RerankChoice};
use crate::search::{Fusion, Mode, SearchRequest, Searcher};
use crate::translate::TranslationTable;

/// Query vectors of a split, by query id.
pub type QueryVectors = HashMap<String, Vec<f32>>;

/// What a search of an index needs besides the index: translation tables for the BM25 leg,
/// the query encoder and the split's query vectors (dense and hybrid).
pub struct SearchSetup<'a> {
    /// Tables for the BM25 leg (PSQ), by source language.
    pub tables: &'a [Arc<TranslationTable>],
    /// The PSQ common-term cut ([`Searcher::with_psq_min_idf`]).
    pub psq_min_idf: f32,
    /// The most translated terms a PSQ query searches ([`Searcher::with_psq_max_terms`]).
    pub psq_max_terms: usize,
    /// The weight of spelling matches ([`Searcher::with_psq_spelling_weight`]).
    pub psq_spelling_weight: f32,
    /// Whether queries are encoded with their tables' glosses ([`Searcher::with_query_gloss`]);
    /// [`dense_query_texts`] gives the texts to encode.
    pub query_gloss: bool,
    /// The weight of queries' English renderings in the rerank stage
    /// ([`Searcher::with_rendering_weight`]).
    pub rendering_weight: f32,
    /// The query encoder (dense and hybrid modes).
    pub query_encoder: Option<&'a Arc<Encoder>>,
    /// The split's query vectors, encoded beforehand.
    pub query_vectors: &'a QueryVectors,
}

impl SearchSetup<'_> {
    /// A searcher of `index` with the tables, and the query encoder when `mode` needs one.
    fn searcher(&self, index: &Index, mode: Mode) -> Result<Searcher> {
        let mut searcher = Searcher::for_index(index);
        for t in self.tables {
            searcher = searcher.with_translation_table(Arc::clone(t));
        }
        searcher = searcher
            .with_psq_min_idf(self.psq_min_idf)
            .with_psq_max_terms(self.psq_max_terms)
            .with_psq_spelling_weight(self.psq_spelling_weight)
            .with_query_gloss(self.query_gloss)
            .with_rendering_weight(self.rendering_weight);
        if mode == Mode::Bm25 {
            return Ok(searcher);
        }
        let Some(e) = self.query_encoder else { bail!("{mode} mode needs a query encoder") };
        Ok(searcher.with_encoder(Arc::clone(e))?)
    }

    /// The vector of query `id`.
    fn vector(&self, id: &str) -> Result<Vec<f32>> {
        self.query_vectors.get(id).cloned().with_context(|| format!("query {id} was not encoded"))
    }
}

/// The search request of a query: its text, and its language when the query file gives one
/// (it picks the translation table of the BM25 leg). No rerank stage: an evaluation scores the
/// rerank as rows of its own ([`reranked_system`]).
fn request(query: &Query, k: usize, mode: Mode) -> SearchRequest {
    let req = SearchRequest::new(&query.text).with_k(k).with_mode(mode).with_rerank_choice(RerankChoice::Off);
    match &query.lang {
        Some(lang) => req.with_query_lang(lang),
        None => req,
    }
}

/// Searches `index` in `mode` (bm25 or dense) for every query of the split and scores the run;
/// `label` names the progress bar.
pub fn search_system(index: &Index, mode: Mode, setup: &SearchSetup, split: &BeirSplit, k: usize, metrics: &[Metric], label: &str) -> Result<SystemResult> {
    let searcher = setup.searcher(index, mode)?;
    let progress = query_progress(split.queries.len(), label);
    let result = evaluate_system(split, k, metrics, &progress, |query, k| {
        let mut req = request(query, k, mode);
        if mode != Mode::Bm25 {
            req = req.with_query_vector(setup.vector(&query.id)?);
        }
        let hits = searcher.search(&req)?.hits;
        Ok(hits.into_iter().map(|h| (h.key, f64::from(h.score))).collect())
    })?;
    Ok(SystemResult { mode: mode.to_string(), evaluation: result.evaluation, timing: Some(result.timing), run: Some(result.run) })
}

/// The two legs of a hybrid search of every query (one search each), as a BM25 run and a dense
/// run, with the ids of the queries the searcher counts as cross-lingual and the search time.
pub struct HybridLegRuns {
    /// The BM25 leg.
    pub bm25: Run,
    /// The dense leg.
    pub dense: Run,
    /// Queries searched cross-lingually (the fusions weigh them differently).
    pub cross: HashSet<String>,
    /// Search time per query, both legs.
    pub timing: Timing,
}

/// Runs both legs of a hybrid search for every query of the split; `label` names the progress bar.
pub fn hybrid_legs(index: &Index, setup: &SearchSetup, split: &BeirSplit, k: usize, label: &str) -> Result<HybridLegRuns> {
    let searcher = setup.searcher(index, Mode::Hybrid)?;
    let progress = query_progress(split.queries.len(), label);
    let (mut bm25, mut dense, mut cross) = (Run::new(), Run::new(), HashSet::new());
    let mut times = Vec::with_capacity(split.queries.len());
    for query in &split.queries {
        let req = request(query, k, Mode::Hybrid).with_query_vector(setup.vector(&query.id)?);
        let start = std::time::Instant::now();
        let legs = searcher.hybrid_legs(&req).with_context(|| format!("searching query {:?}", query.id))?;
        times.push(start.elapsed());
        if legs.cross_lingual {
            cross.insert(query.id.clone());
        }
        let scored = |leg: Vec<(String, f32)>| leg.into_iter().map(|(d, s)| (d, f64::from(s)));
        bm25.insert(query.id.clone(), scored(legs.bm25))?;
        dense.insert(query.id.clone(), scored(legs.dense))?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(HybridLegRuns { bm25, dense, cross, timing: Timing::from_durations(times) })
}

/// One system per fusion, fused from a pair of legs; `name` names a fusion's row.
pub fn fused_systems(
    bm25: &Run,
    dense: &Run,
    cross: &HashSet<String>,
    fusions: &[Fusion],
    name: impl Fn(&Fusion) -> String,
    split: &BeirSplit,
    (k, metrics): (usize, &[Metric]),
    timing: Option<&Timing>,
) -> Result<Vec<SystemResult>> {
    let mut out = Vec::with_capacity(fusions.len());
    for f in fusions {
        let run = fuse_runs(bm25, dense, f, k, &|q| cross.contains(q))?;
        let evaluation = evaluate(&run, &split.qrels, metrics, Averaging::AllQrels);
        out.push(SystemResult { mode: name(f), evaluation, timing: timing.cloned(), run: Some(run) });
    }
    Ok(out)
}

/// The split's queries that the searcher of `index` counts as cross-lingual
/// ([`Searcher::is_cross_lingual`]: the translation tables of `setup`, the index's languages),
/// by id, each with the English rendering its rerank stage reads ([`Searcher::query_rendering`]).
pub fn cross_lingual_queries(index: &Index, setup: &SearchSetup, split: &BeirSplit) -> Result<HashMap<String, Option<late::Rendering>>> {
    let searcher = setup.searcher(index, Mode::Bm25)?;
    let mut cross = HashMap::new();
    for query in &split.queries {
        if searcher.is_cross_lingual(&request(query, 1, Mode::Hybrid))? {
            cross.insert(query.id.clone(), searcher.query_rendering(&query.text, query.lang.as_deref()));
        }
    }
    Ok(cross)
}

/// `system` with each cross-lingual query's top reranked by late interaction (`optical eval
/// --rerank`), as [`Searcher::search`] reranks with [`SearchRequest::rerank`]: the MaxSim of the
/// query's token states (`query_encoder`, the query as written, then its rendering where `cross`
/// gives one) and the top passages' (decoded
/// from the index's stored token codes, else computed by `doc_encoder`, the index's document
/// encoder), mixed into the system's scores by [`late::mix_top`]. Queries not in `cross` keep
/// their ranking, as the searcher keeps them. The row is named `<mode>+<rerank>`; its time per
/// query is the rerank stage's alone (the query's token states are encoded before the clock
/// starts), over the queries reranked.
pub fn reranked_system(
    index: &Index,
    (query_encoder, doc_encoder): (&Encoder, Option<&Encoder>),
    cross: &HashMap<String, Option<late::Rendering>>,
    rerank: Rerank,
    system: &SystemResult,
    split: &BeirSplit,
    (k, metrics): (usize, &[Metric]),
) -> Result<SystemResult> {
    let run = system.run.as_ref().with_context(|| format!("system {} kept no run to rerank", system.mode))?;
    let snapshot = index.snapshot();
    let progress = query_progress(split.queries.len(), &format!("{} {rerank}", system.mode));
    let (mut reranked, mut times) = (Run::new(), Vec::with_capacity(split.queries.len()));
    for query in &split.queries {
        let Some(ranking) = run.ranking(&query.id) else { continue };
        let Some(rendering) = cross.get(&query.id) else {
            reranked.insert(query.id.clone(), ranking.into_iter().take(k).map(|d| (d.doc_id.clone(), d.score)))?;
            progress.inc(1);
            continue;
        };
        // Encoded before the clock starts, as the rows' queries are (the stage is the rest).
        let query_rows = late::query_rows(query_encoder, &query.text, rendering.as_ref())?;
        let start = std::time::Instant::now();
        let ranking: Vec<(String, f32)> = ranking.into_iter().take(k).map(|d| (d.doc_id.clone(), d.score as f32)).collect();
        let late::Rerank::MaxSim { depth, weight } = rerank;
        let candidates = ranking
            .iter()
            .take(depth)
            .map(|(key, _)| match snapshot.document_by_key(key)? {
                Some(doc) => Ok(late::Candidate::from_stored(doc)),
                None => Err(crate::Error::invalid(format!("{key} is in the run of {} but not in the index", system.mode))),
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let rows = late::PassageRows { codebook: snapshot.codebook().map(|b| &**b), encoder: doc_encoder };
        let (mixed, _) = late::rerank_top(&query_rows, rows, &ranking, &candidates, weight)
            .with_context(|| format!("reranking query {:?}", query.id))?;
        times.push(start.elapsed());
        reranked.insert(query.id.clone(), mixed.into_iter().map(|(d, s)| (d, f64::from(s))))?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    let evaluation = evaluate(&reranked, &split.qrels, metrics, Averaging::AllQrels);
    Ok(SystemResult { mode: format!("{}+{rerank}", system.mode), evaluation, timing: Some(Timing::from_durations(times)), run: Some(reranked) })
}

/// Exhaustive dense retrieval (no index) as the system `exhaustive`: every query (its vector in
/// `setup`) against every document of the collection, encoded by `doc_encoder` in `doc_role`.
/// The time per query is the scan alone (queries and documents are encoded beforehand).
pub fn exhaustive_system(
    collection: &BeirCollection,
    setup: &SearchSetup,
    (doc_encoder, doc_role): (&Encoder, Role),
    split: &BeirSplit,
    (k, metrics): (usize, &[Metric]),
) -> Result<SystemResult> {
    if let Some(q) = setup.query_encoder {
        q.info().check_compatible(doc_encoder.info()).context("query and document encoders")?;
    }
    let docs = encode_documents(&corpus_passages(collection)?, doc_encoder, doc_role)?;
    let progress = query_progress(split.queries.len(), &format!("{} exhaustive", collection.name()));
    let result = evaluate_system(split, k, metrics, &progress, |query, k| Ok(rank_documents(&setup.vector(&query.id)?, &docs, k)))?;
    Ok(SystemResult { mode: "exhaustive".to_string(), evaluation: result.evaluation, timing: Some(result.timing), run: Some(result.run) })
}

/// Scores TREC run files against a split (mode name = file stem). A run file cannot list a
/// query that retrieved nothing, so the mean is over every judged query (trec_eval `-c`): a
/// missing query counts 0 instead of silently dropping out; a note says how many.
pub fn score_run_files(files: &[PathBuf], split: &BeirSplit, metrics: &[Metric]) -> Result<Vec<SystemResult>> {
    let mut out = Vec::new();
    for file in files {
        let run = Run::read_trec(file)?;
        let judged = run.query_ids().filter(|q| split.qrels.contains(q)).count();
        if judged == 0 {
            bail!(
                "{}: none of its {} queries is judged in split {:?} (wrong collection or split?)",
                file.display(),
                run.len(),
                split.split
            );
        }
        if judged < split.qrels.len() {
            let missing = split.qrels.len() - judged;
            eprintln!("note: {} has no line for {missing} of the {} judged queries; they count 0", file.display(), split.qrels.len());
        }
        let evaluation = evaluate(&run, &split.qrels, metrics, Averaging::AllQrels);
        let mode = file.file_stem().map_or_else(|| "run".to_string(), |s| s.to_string_lossy().into_owned());
        out.push(SystemResult { mode, evaluation, timing: None, run: None });
    }
    Ok(out)
}

/// The texts the dense encoder reads for the split's queries, in order: each query as written, or
/// with its gloss appended where `index` is searched with a table for its language and glosses
/// are on ([`Searcher::dense_query_text`]).
pub fn dense_query_texts(index: Option<&Index>, tables: &[Arc<TranslationTable>], query_gloss: bool, split: &BeirSplit) -> Vec<String> {
    let searcher = index.map(|index| {
        tables.iter().fold(Searcher::for_index(index), |s, t| s.with_translation_table(Arc::clone(t))).with_query_gloss(query_gloss)
    });
    split
        .queries
        .iter()
        .map(|q| match &searcher {
            Some(s) => s.dense_query_text(&q.text, q.lang.as_deref()).into_owned(),
            None => q.text.clone(),
        })
        .collect()
}

/// The name of a split's cached query vectors: the sha256 of the encoder's description (weights
/// fingerprint, prefixes, length), of the precision it runs in (int8 vectors differ from f32
/// ones) and of every query's id and the text encoded (with its gloss, if any).
pub fn query_vectors_key(info: &EncoderInfo, int8: bool, split: &BeirSplit, texts: &[String]) -> Result<String> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(info)?);
    h.update(if int8 { "int8" } else { "f32" });
    for (q, text) in split.queries.iter().zip(texts) {
        for part in [q.id.as_bytes(), b"\t", text.as_bytes(), b"\n"] {
            h.update(part);
        }
    }
    Ok(h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// The split's queries encoded by `encoder` (query prefix) from `texts` (one per query, in
/// order: [`dense_query_texts`]), by query id. The vectors are cached under `cache_dir`, named by
/// [`query_vectors_key`], so that rows of one sweep that share a query encoder (student, default,
/// no-PSQ) encode each query set once.
pub fn encode_queries(encoder: &Encoder, split: &BeirSplit, texts: &[String], cache_dir: &Path) -> Result<QueryVectors> {
    ensure!(texts.len() == split.queries.len(), "{} texts for {} queries", texts.len(), split.queries.len());
    let key = query_vectors_key(encoder.info(), encoder.is_int8(), split, texts)?;
    let path = cache_dir.join(format!("{key}.f32"));
    let dim = encoder.info().dim;
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() == split.queries.len() * dim * 4
    {
        let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        eprintln!("query vectors reused from {}", path.display());
        return Ok(split.queries.iter().map(|q| q.id.clone()).zip(values.chunks(dim).map(<[f32]>::to_vec)).collect());
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = encoder
        .encode_queries(&texts)
        .with_context(|| format!("encoding the {} queries with {}", texts.len(), encoder.info().name))?;
    std::fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
    let bytes: Vec<u8> = vectors.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    crate::distill::write_atomic(&path, &bytes)?;
    Ok(split.queries.iter().map(|q| q.id.clone()).zip(vectors).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_query_vectors_are_named_by_precision_and_encoded_text() {
        let info = EncoderInfo {
            name: "student".into(),
            dim: 4,
            fingerprint: "f".into(),
            embedding_space: "s".into(),
            query_prefix: "query: ".into(),
            passage_prefix: "passage: ".into(),
            max_length: 128,
        };
        let query = Query { id: "q1".into(), text: "Ina Kano?".into(), lang: None };
        let split = BeirSplit { split: "dev".into(), queries: vec![query], qrels: Default::default() };
        let plain = vec!["Ina Kano?".to_string()];
        let key = |int8| query_vectors_key(&info, int8, &split, &plain).unwrap();
        assert_eq!(key(true), key(true));
        assert_ne!(key(true), key(false), "int8 and f32 vectors of one encoder must not share a cache file");
        let glossed = vec!["Ina Kano? where".to_string()];
        assert_ne!(key(true), query_vectors_key(&info, true, &split, &glossed).unwrap(), "a glossed query is another vector");
    }
}
