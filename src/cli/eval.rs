//! `optical eval`: retrieval quality on BEIR collections.
//!
//! For each collection: load a split's queries and qrels, run every query through each mode
//! (or score existing TREC run files given with `--run`), write one TREC run per mode, per-query
//! values, and a results table (Markdown + JSON) under `--out`. Results accumulate: rows already
//! in `<out>/results.json` are kept unless the same collection/split/queries/mode is evaluated
//! again, so one output folder can collect a whole sweep and `--markdown docs/results.md`
//! renders all of it.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use optical::encoder::students;
use optical::encoder::{Encoder, WEIGHTS_FILE, weights_fingerprint};
use optical::engine::Index;
use optical::ingest::IngestOptions;
use optical::search::{Fusion, Mode, SearchRequest, Searcher as QuerySearcher};
use optical::translate::TranslationTable;
use super::search::PsqQueryLimits;
use optical::eval::{
    Averaging, BeirCollection, BeirSplit, Evaluation, Metric, Query, ResultRow, ResultsTable, Run,
    compare, evaluate, evaluate_system, fuse_runs, query_progress,
};

#[derive(Args)]
pub struct EvalArgs {
    /// BEIR collection directories (repeat the flag or list several).
    #[arg(long = "collection", required = true, num_args = 1..)]
    pub collections: Vec<PathBuf>,
    /// Split to evaluate (`qrels/<split>.tsv`). Default: `test` when present, else the only split.
    #[arg(long)]
    pub split: Option<String>,
    /// Queries file, e.g. `queries.eng.jsonl` (a bare name is looked up in each collection).
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Retrieval modes to run, comma separated: bm25, dense, hybrid.
    #[arg(long, value_delimiter = ',', default_value = "bm25")]
    pub modes: Vec<String>,
    /// Score existing TREC run files instead of searching (mode name = file stem).
    #[arg(long = "run", num_args = 1.., conflicts_with_all = ["modes", "legs"])]
    pub runs: Vec<PathBuf>,
    /// Fusions scored in hybrid mode, comma separated: `rrf[:K]`, `linear[:DENSE_WEIGHT]`
    /// (min-max), `zscore[:DENSE_WEIGHT]`, `confidence[:PRIOR]`, `bylang[:CROSS:MONO]`
    /// (docs/search.md). Every fusion is scored from one search per query (its two legs, also
    /// written as `runs/<…>.legs<…>.bm25.trec` and `.dense.trec`); each is a row
    /// `hybrid[SPEC]`. Default: the library's default fusion, as the row `hybrid`.
    #[arg(long)]
    pub fusion: Option<String>,
    #[command(flatten)]
    pub fusion_defaults: super::search::FusionDefaults,
    /// Score `--fusion` from a pair of hybrid leg runs written by an earlier hybrid eval
    /// (`runs/<…>.legs<…>.bm25.trec` and `.dense.trec`, in that order), without searching.
    #[arg(long, num_args = 2, value_names = ["BM25_LEG", "DENSE_LEG"], conflicts_with = "modes")]
    pub legs: Vec<PathBuf>,
    /// Translation tables for the BM25 leg (PSQ) in bm25 and hybrid modes: a table file, a
    /// directory of `<lang>.tsv` tables (`optical psq build`), or `none`. Queries whose `lang`
    /// has a table search BM25 with their translation. Default: the table shipped with the
    /// installed student for the queries' language (none when they are in `--doc-lang`).
    #[arg(long)]
    pub psq: Option<PathBuf>,
    #[command(flatten)]
    pub psq_limits: PsqQueryLimits,
    /// Query encoder model directory (dense and hybrid modes). Default: the shipped student
    /// installed for the document encoder's embedding space (chosen by the queries' `lang`),
    /// else the document encoder (or, with `--index`, the model directory recorded beside it).
    #[arg(long)]
    pub query_model: Option<PathBuf>,
    /// Document encoder model directory used to build the dense index (dense and hybrid modes).
    /// Default: multilingual-e5-small in the model cache (`$OPTICAL_CACHE/models`, or
    /// `~/.cache/optical/models`).
    #[arg(long)]
    pub doc_model: Option<PathBuf>,
    /// Index to search instead of building one from the collection's corpus.
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// Language of the corpus documents when building an index (`eng` gets the English stemmer;
    /// other codes are indexed as Unicode words). Lines with a `lang` field keep theirs.
    #[arg(long, default_value = "eng")]
    pub doc_lang: String,
    /// Documents retrieved per query.
    #[arg(short, long, default_value_t = 100)]
    pub k: usize,
    /// Metrics, comma separated (ndcg@k, map, mrr@k, recall@k, p@k).
    #[arg(
        long,
        default_value = "ndcg@10,mrr@10,recall@1,recall@10,recall@100,map"
    )]
    pub metrics: String,
    /// A label appended to the mode names in the table, e.g. the student's name.
    #[arg(long)]
    pub label: Option<String>,
    /// Output folder: runs/, per-query/, results.json, results.md.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Also write the results document (all rows of results.json) to this Markdown file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Markdown file whose text goes into the results document after the standard preamble
    /// (e.g. what each labelled row is).
    #[arg(long)]
    pub preamble: Option<PathBuf>,
}

/// Modes the eval command knows. Wiring to the search pipeline lives in [`searcher`].
const MODES: [&str; 3] = ["bm25", "dense", "hybrid"];

pub fn run(args: EvalArgs) -> Result<()> {
    let metrics = Metric::parse_list(&args.metrics)?;
    if metrics.is_empty() {
        bail!("--metrics names no metric");
    }
    if args.k == 0 {
        bail!("-k must be at least 1");
    }
    if args.runs.is_empty() {
        for mode in &args.modes {
            if !MODES.contains(&mode.as_str()) {
                bail!(
                    "unknown mode {mode:?} (expected one of {})",
                    MODES.join(", ")
                );
            }
        }
    }
    let fusions = match &args.fusion {
        Some(specs) => {
            let list = Fusion::parse_list(specs, args.fusion_defaults.rrf_k, args.fusion_defaults.dense_weight).context("--fusion")?;
            if list.is_empty() {
                bail!("--fusion names no fusion");
            }
            list
        }
        None => vec![Fusion::default()],
    };
    // A hybrid row is named by its fusion unless the default fusion was left implicit.
    let hybrid_name = |f: &Fusion| match &args.fusion {
        Some(_) => format!("hybrid[{f}]"),
        None => "hybrid".to_string(),
    };
    if !args.legs.is_empty() && args.collections.len() > 1 {
        bail!("--legs scores one collection's runs: give a single --collection with it");
    }
    if args.index.is_some() && args.collections.len() > 1 {
        bail!("--index names one index: give a single --collection with it");
    }
    let searching = args.runs.is_empty() && args.legs.is_empty();
    let dense = if searching && args.modes.iter().any(|m| m != "bm25") {
        Some(DenseSetup::new(&args)?)
    } else {
        None
    };
    for dir in ["runs", "per-query"] {
        let path = args.out.join(dir);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    let results_path = args.out.join("results.json");
    let mut table = if results_path.is_file() {
        ResultsTable::read_json(&results_path)?
    } else {
        ResultsTable::new(metrics.clone())
    };
    let mut fresh = ResultsTable::new(metrics.clone());

    for dir in &args.collections {
        let collection = BeirCollection::open(dir)?;
        let name = collection.name();
        let split_name = pick_split(&collection, args.split.as_deref())?;
        let split = collection.load_split(&split_name, args.queries.as_deref())?;
        let queries_path = collection.queries_path(args.queries.as_deref());
        let queries_name = queries_path.file_name().map_or_else(
            || "queries".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        eprintln!(
            "{name}/{split_name}: {} queries ({queries_name}), {} judgements",
            split.queries.len(),
            split.qrels.num_judgements()
        );
        let systems: Vec<(
            String,
            Evaluation,
            Option<optical::eval::Timing>,
            Option<Run>,
        )> = if !args.legs.is_empty() {
            let sparse = Run::read_trec(&args.legs[0])?;
            let dense_leg = Run::read_trec(&args.legs[1])?;
            // As the searcher decides, for indexes built by eval: a query is cross-lingual when
            // its language is not the documents'.
            let cross: HashSet<String> = split
                .queries
                .iter()
                .filter(|q| q.lang.as_deref().is_some_and(|l| l != args.doc_lang))
                .map(|q| q.id.clone())
                .collect();
            let mut out = Vec::new();
            for f in &fusions {
                let run = fuse_runs(&sparse, &dense_leg, f, args.k, &|q| cross.contains(q))?;
                let evaluation = evaluate(&run, &split.qrels, &metrics, Averaging::AllQrels);
                out.push((hybrid_name(f), evaluation, None, Some(run)));
            }
            out
        } else if searching {
            let mut out = Vec::new();
            let index_dir = match &dense {
                Some(d) => dense_index(&collection, &args, d)?,
                None => text_index(&collection, &args)?,
            };
            let index = Index::open_read_only(&index_dir)
                .with_context(|| format!("opening index {}", index_dir.display()))?;
            // Query vectors of the split, encoded once in batches and shared by the dense and
            // hybrid modes (the ms/query column is then search time without query encoding).
            let query_encoder = match &dense {
                Some(d) => Some(d.query_encoder(queries_lang(&split))?),
                None => None,
            };
            let space = index.config().encoder.as_ref().map(|e| e.embedding_space.clone());
            let mut langs: Vec<&str> = split.queries.iter().filter_map(|q| q.lang.as_deref()).collect();
            langs.sort_unstable();
            langs.dedup();
            let tables = super::search::translation_tables(
                args.psq.as_deref(),
                space.as_deref(),
                &langs,
                Some(&args.doc_lang),
            )?;
            for t in tables.iter().filter(|t| langs.contains(&t.source.as_str())) {
                eprintln!("BM25 leg: {} queries translated with the {} → {} table ({} words, {})", t.source, t.source, t.target, t.len(), t.method);
            }
            let query_vectors = match &query_encoder {
                Some(e) => Arc::new(encode_queries(e, &split, &args.out.join("query-vectors"))?),
                None => Arc::new(HashMap::new()),
            };
            for mode in &args.modes {
                let context = || format!("{name}: mode {mode} on index {}", index_dir.display());
                if mode == "hybrid" {
                    let encoder = query_encoder.as_ref().context("hybrid mode needs a query encoder")?;
                    let search = with_tables(QuerySearcher::for_index(&index), &tables, &args.psq_limits)
                        .with_encoder(Arc::clone(encoder))
                        .with_context(context)?;
                    let (bm25_leg, dense_leg, cross, timing) =
                        search_legs(&search, &split, args.k, &query_vectors, &format!("{name} legs"))
                            .with_context(context)?;
                    let stem = file_stem(&name, &split_name, &queries_name, &label_mode("legs", args.label.as_deref()));
                    for (leg, run) in [("bm25", &bm25_leg), ("dense", &dense_leg)] {
                        let path = args.out.join("runs").join(format!("{stem}.{leg}.trec"));
                        run.write_trec_file(&path, &format!("{}-leg", leg))?;
                    }
                    for f in &fusions {
                        let run = fuse_runs(&bm25_leg, &dense_leg, f, args.k, &|q| cross.contains(q))?;
                        let evaluation = evaluate(&run, &split.qrels, &metrics, Averaging::AllQrels);
                        out.push((hybrid_name(f), evaluation, Some(timing.clone()), Some(run)));
                    }
                    continue;
                }
                let mut search = searcher(mode, &index, (&tables, &args.psq_limits), query_encoder.as_ref(), &query_vectors)
                    .with_context(context)?;
                let label = format!("{name} {mode}");
                let progress = query_progress(split.queries.len(), &label);
                let result =
                    evaluate_system(&split, args.k, &metrics, &progress, |q, k| search(q, k))
                        .with_context(|| format!("{name}: mode {mode}"))?;
                out.push((
                    mode.clone(),
                    result.evaluation,
                    Some(result.timing),
                    Some(result.run),
                ));
            }
            out
        } else {
            score_run_files(&args.runs, &split, &metrics)?
        };

        // Every system after the first is tested against the first, metric by metric.
        let baseline = systems
            .first()
            .map(|(mode, evaluation, _, _)| (mode.clone(), evaluation.clone()));
        for (mode, evaluation, timing, run) in systems {
            let mut p_values = std::collections::BTreeMap::new();
            if let Some((_, base)) = baseline.as_ref().filter(|(m, _)| *m != mode) {
                for &metric in &metrics {
                    let c = compare(base, &evaluation, metric, RANDOMIZATION_TRIALS, 0)?;
                    p_values.insert(metric.to_string(), c.p_value);
                }
            }
            let mode = label_mode(&mode, args.label.as_deref());
            let stem = file_stem(&name, &split_name, &queries_name, &mode);
            if let Some(run) = run {
                let path = args.out.join("runs").join(format!("{stem}.trec"));
                run.write_trec_file(&path, &sanitize(&mode))?;
            }
            let per_query = args.out.join("per-query").join(format!("{stem}.json"));
            std::fs::write(
                &per_query,
                serde_json::to_string_pretty(&evaluation)? + "\n",
            )
            .with_context(|| format!("writing {}", per_query.display()))?;
            let mut row = ResultRow::new(
                &name,
                &split_name,
                &queries_name,
                &mode,
                &evaluation,
                timing,
            );
            if !p_values.is_empty() {
                row.baseline = baseline
                    .as_ref()
                    .map(|(m, _)| label_mode(m, args.label.as_deref()));
                row.p_values = p_values;
            }
            print_row(&row, &metrics);
            fresh.upsert(row);
        }
    }

    table.merge(fresh.clone());
    table.sort(&MODES);
    table.write_json(&results_path)?;
    let mut preamble = document_preamble();
    if let Some(path) = &args.preamble {
        let extra = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        preamble = format!("{}\n\n{preamble}", extra.trim_end());
    }
    let doc = table.to_document("Retrieval results", &preamble);
    let md_path = args.out.join("results.md");
    std::fs::write(&md_path, &doc).with_context(|| format!("writing {}", md_path.display()))?;
    if let Some(path) = &args.markdown {
        std::fs::write(path, &doc).with_context(|| format!("writing {}", path.display()))?;
    }
    fresh.sort(&MODES);
    println!("\n{}", fresh.to_markdown());
    eprintln!(
        "wrote {} ({} rows), {}{}",
        results_path.display(),
        table.rows.len(),
        md_path.display(),
        args.markdown
            .as_ref()
            .map_or(String::new(), |p| format!(", {}", p.display()))
    );
    Ok(())
}

/// A search function for `mode`: query → ranked (document id, score).
type Searcher = Box<dyn FnMut(&Query, usize) -> Result<Vec<(String, f64)>>>;

/// The encoders of dense and hybrid modes: the document encoder, and query encoders loaded
/// once each (the default one can differ per collection, with the queries' language).
struct DenseSetup {
    /// Document encoder directory (builds the dense indexes).
    doc_model: PathBuf,
    /// Its weights fingerprint: part of the cached index's name.
    doc_fingerprint: String,
    /// The encoder of the searched index (`--index`'s recorded model, else the document encoder).
    index_encoder: PathBuf,
    /// `--query-model`, when given.
    query_model: Option<PathBuf>,
    /// `--doc-lang`: the documents' language (a monolingual search keeps the index's encoder).
    doc_lang: String,
    /// Query encoders loaded so far, by directory.
    loaded: std::cell::RefCell<HashMap<PathBuf, Arc<Encoder>>>,
}

impl DenseSetup {
    fn new(args: &EvalArgs) -> Result<DenseSetup> {
        let doc_model = match &args.doc_model {
            Some(d) => d.clone(),
            None => default_doc_model(),
        };
        let weights = doc_model.join(WEIGHTS_FILE);
        if args.index.is_none() && !weights.is_file() {
            bail!(
                "dense and hybrid modes index the corpus with a document encoder, but {} is missing: pass --doc-model DIR, or prepare multilingual-e5-small with `bash scripts/setup-models.sh`",
                weights.display()
            );
        }
        let doc_fingerprint = if args.index.is_none() { weights_fingerprint(&weights)? } else { String::new() };
        let index_encoder = match &args.index {
            Some(index) => optical::engine::recorded_model_dir(index).unwrap_or_else(|| doc_model.clone()),
            None => doc_model.clone(),
        };
        Ok(DenseSetup { doc_model, doc_fingerprint, index_encoder, query_model: args.query_model.clone(), doc_lang: args.doc_lang.clone(), loaded: Default::default() })
    }

    /// The query encoder for queries in `lang`: `--query-model`, else the default.
    fn query_encoder(&self, lang: Option<&str>) -> Result<Arc<Encoder>> {
        let dir = match &self.query_model {
            Some(q) => q.clone(),
            None => default_query_model(&self.index_encoder, lang, &self.doc_lang)?,
        };
        if let Some(e) = self.loaded.borrow().get(&dir) {
            return Ok(Arc::clone(e));
        }
        let encoder = Arc::new(optical::engine::load_encoder(&dir)?);
        eprintln!(
            "query encoder {} ({}), document encoder {}",
            encoder.info().name,
            dir.display(),
            self.doc_model.display()
        );
        self.loaded.borrow_mut().insert(dir, Arc::clone(&encoder));
        Ok(encoder)
    }
}

/// The language of a split's queries when they all give the same one.
fn queries_lang(split: &BeirSplit) -> Option<&str> {
    let first = split.queries.first()?.lang.as_deref()?;
    split.queries.iter().all(|q| q.lang.as_deref() == Some(first)).then_some(first)
}

/// `$OPTICAL_CACHE/models/multilingual-e5-small`, or the same under `~/.cache/optical`.
fn default_doc_model() -> PathBuf {
    students::models_dir().join("multilingual-e5-small")
}

/// The query encoder when `--query-model` is not given: the installed student in the document
/// encoder's embedding space (per-language for `query_lang` when there is one; English routed
/// as the student's manifest says; none when queries and documents share a language), else the
/// document encoder itself.
fn default_query_model(index_encoder: &Path, query_lang: Option<&str>, doc_lang: &str) -> Result<PathBuf> {
    let space = optical::encoder::load_meta_space(index_encoder)?;
    Ok(students::default_student(&space, query_lang, Some(doc_lang)).unwrap_or_else(|| index_encoder.to_path_buf()))
}

/// Every query of the split encoded by `encoder` (query prefix), by query id. The vectors are
/// cached under `cache_dir`, named by the sha256 of the encoder's description (weights
/// fingerprint, prefixes, length) and of every query's id and text, so that rows of one sweep
/// that share a query encoder (student, default, no-PSQ) encode each query set once.
fn encode_queries(encoder: &Encoder, split: &BeirSplit, cache_dir: &Path) -> Result<HashMap<String, Vec<f32>>> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(encoder.info())?);
    for q in &split.queries {
        for part in [q.id.as_bytes(), b"\t", q.text.as_bytes(), b"\n"] {
            h.update(part);
        }
    }
    let key: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    let path = cache_dir.join(format!("{key}.f32"));
    let dim = encoder.info().dim;
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() == split.queries.len() * dim * 4
    {
        let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        eprintln!("query vectors reused from {}", path.display());
        return Ok(split.queries.iter().map(|q| q.id.clone()).zip(values.chunks(dim).map(<[f32]>::to_vec)).collect());
    }
    let texts: Vec<&str> = split.queries.iter().map(|q| q.text.as_str()).collect();
    let vectors = encoder
        .encode_queries(&texts)
        .with_context(|| format!("encoding the {} queries with {}", texts.len(), encoder.info().name))?;
    std::fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
    let bytes: Vec<u8> = vectors.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    optical::distill::cache::write_atomic(&path, &bytes)?;
    Ok(split.queries.iter().map(|q| q.id.clone()).zip(vectors).collect())
}

fn searcher(
    mode: &str,
    index: &Index,
    (tables, psq_limits): (&[Arc<TranslationTable>], &PsqQueryLimits),
    query_encoder: Option<&Arc<Encoder>>,
    query_vectors: &Arc<HashMap<String, Vec<f32>>>,
) -> Result<Searcher> {
    let mode: Mode = mode.parse()?;
    let mut searcher = with_tables(QuerySearcher::for_index(index), tables, psq_limits);
    if mode != Mode::Bm25 {
        let Some(e) = query_encoder else { bail!("{mode} mode needs a query encoder") };
        searcher = searcher.with_encoder(Arc::clone(e))?;
    }
    let vectors = Arc::clone(query_vectors);
    Ok(Box::new(move |query: &Query, k: usize| {
        let mut req = request(query, k, mode);
        if mode != Mode::Bm25 {
            let v = vectors
                .get(&query.id)
                .with_context(|| format!("query {} was not encoded", query.id))?;
            req = req.with_query_vector(v.clone());
        }
        let results = searcher.search(&req)?;
        Ok(results
            .hits
            .into_iter()
            .map(|h| (h.key, f64::from(h.score)))
            .collect())
    }))
}

/// The search request of a query: its text, and its language when the query file gives one
/// (it picks the translation table of the BM25 leg).
fn request(query: &Query, k: usize, mode: Mode) -> SearchRequest {
    let req = SearchRequest::new(&query.text).with_k(k).with_mode(mode);
    match &query.lang {
        Some(lang) => req.with_query_lang(lang),
        None => req,
    }
}

fn with_tables(mut searcher: QuerySearcher, tables: &[Arc<TranslationTable>], limits: &PsqQueryLimits) -> QuerySearcher {
    for t in tables {
        searcher = searcher.with_translation_table(Arc::clone(t));
    }
    limits.apply(searcher)
}

/// Both legs of a hybrid search for every query of the split (one search each, query vectors
/// encoded beforehand), as a BM25 run and a dense run, the ids of the queries the searcher
/// counts as cross-lingual, and the search time per query.
fn search_legs(
    searcher: &QuerySearcher,
    split: &BeirSplit,
    k: usize,
    vectors: &HashMap<String, Vec<f32>>,
    label: &str,
) -> Result<(Run, Run, HashSet<String>, optical::eval::Timing)> {
    let progress = query_progress(split.queries.len(), label);
    let (mut bm25, mut dense) = (Run::new(), Run::new());
    let mut cross = HashSet::new();
    let mut times = Vec::with_capacity(split.queries.len());
    for query in &split.queries {
        let v = vectors
            .get(&query.id)
            .with_context(|| format!("query {} was not encoded", query.id))?;
        let req = request(query, k, Mode::Hybrid).with_query_vector(v.clone());
        let start = std::time::Instant::now();
        let legs = searcher
            .hybrid_legs(&req)
            .with_context(|| format!("searching query {:?}", query.id))?;
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
    Ok((bm25, dense, cross, optical::eval::Timing::from_durations(times)))
}

/// The dense index of the collection's corpus: `--index`, or one built with the document
/// encoder under `<out>/indexes/`, named by corpus content, document language and encoder
/// fingerprint (so every query encoder in that embedding space reuses it).
fn dense_index(collection: &BeirCollection, args: &EvalArgs, dense: &DenseSetup) -> Result<PathBuf> {
    if let Some(index) = &args.index {
        return Ok(index.clone());
    }
    let lang = sanitize(&args.doc_lang);
    let name = format!("{}.{lang}.{}", collection.corpus_fingerprint()?, dense.doc_fingerprint);
    build_index(collection, args, &name, Some(&dense.doc_model))
}

/// The index to search: `--index`, or one built from the collection's corpus under
/// `<out>/indexes/`, named by the corpus content and document language so that collections
/// sharing a corpus (the AfriQA sets, the SIB sets) share one index. It is built in a staging
/// folder and renamed when complete, so an interrupted build is never reused.
fn text_index(collection: &BeirCollection, args: &EvalArgs) -> Result<PathBuf> {
    if let Some(index) = &args.index {
        return Ok(index.clone());
    }
    let lang = sanitize(&args.doc_lang);
    let name = format!("{}.{lang}", collection.corpus_fingerprint()?);
    build_index(collection, args, &name, None)
}

/// Builds (or reuses) `<out>/indexes/<name>` from the collection's corpus with `optical index`,
/// encoding the documents with `model` when given.
fn build_index(collection: &BeirCollection, args: &EvalArgs, name: &str, model: Option<&Path>) -> Result<PathBuf> {
    let dir = args.out.join("indexes").join(name);
    if dir.is_dir() {
        eprintln!("reusing index {}", dir.display());
        return Ok(dir);
    }
    let staging = args.out.join("indexes").join(format!("{name}.partial"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing an interrupted build {}", staging.display()))?;
    }
    std::fs::create_dir_all(staging.parent().expect("staging has a parent"))?;
    let corpus = collection.corpus_path()?;
    eprintln!("indexing {} into {}", corpus.display(), dir.display());
    // What `optical index` runs, so that eval measures exactly what users build.
    let options = IngestOptions { lang: args.doc_lang.clone(), model: model.map(Path::to_path_buf), ..IngestOptions::default() };
    super::index::index_and_print(&staging, &corpus, options).with_context(|| format!("indexing {}", corpus.display()))?;
    std::fs::rename(&staging, &dir)
        .with_context(|| format!("renaming {} to {}", staging.display(), dir.display()))?;
    Ok(dir)
}


/// Scores TREC run files against a split. A run file cannot list a query that retrieved nothing,
/// so the mean is over every judged query (trec_eval `-c`): a missing query counts 0 instead of
/// silently dropping out.
fn score_run_files(
    files: &[PathBuf],
    split: &BeirSplit,
    metrics: &[Metric],
) -> Result<
    Vec<(
        String,
        Evaluation,
        Option<optical::eval::Timing>,
        Option<Run>,
    )>,
> {
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
            eprintln!(
                "note: {} has no line for {} of the {} judged queries; they count 0",
                file.display(),
                split.qrels.len() - judged,
                split.qrels.len()
            );
        }
        let evaluation = evaluate(&run, &split.qrels, metrics, Averaging::AllQrels);
        let mode = file
            .file_stem()
            .map_or_else(|| "run".to_string(), |s| s.to_string_lossy().into_owned());
        out.push((mode, evaluation, None, None));
    }
    Ok(out)
}

/// The mode name shown in tables: `mode (label)` when `--label` is given.
fn label_mode(mode: &str, label: Option<&str>) -> String {
    match label {
        Some(label) => format!("{mode} ({label})"),
        None => mode.to_string(),
    }
}

/// Random sign patterns per significance test: p-values near 0.05 are then good to about ±0.005.
const RANDOMIZATION_TRIALS: usize = 10_000;

/// `--split`, or `test` when the collection has it, or its only split.
fn pick_split(collection: &BeirCollection, wanted: Option<&str>) -> Result<String> {
    if let Some(split) = wanted {
        return Ok(split.to_string());
    }
    let splits = collection.splits()?;
    if splits.iter().any(|s| s == "test") {
        return Ok("test".to_string());
    }
    match splits.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!("{}: no qrels/<split>.tsv", collection.dir().display()),
        many => bail!(
            "{}: several splits ({}); choose one with --split",
            collection.dir().display(),
            many.join(", ")
        ),
    }
}

/// `<collection>.<split>[.<queries>].<mode>`, safe as a file name.
fn file_stem(collection: &str, split: &str, queries: &str, mode: &str) -> String {
    let queries = queries.trim_end_matches(".gz").trim_end_matches(".jsonl");
    let queries = if queries == "queries" {
        String::new()
    } else {
        format!(".{queries}")
    };
    sanitize(&format!("{collection}.{split}{queries}.{mode}"))
}

/// Keeps letters, digits, `.`, `-`, `_`; anything else becomes `_` (also makes a valid run tag).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn print_row(row: &ResultRow, metrics: &[Metric]) {
    let scores: Vec<String> = metrics
        .iter()
        .map(|m| format!("{m} {:.3}", row.score(*m).unwrap_or(f64::NAN)))
        .collect();
    let ms = row
        .timing
        .as_ref()
        .map_or(String::new(), |t| format!("  {:.1} ms/query", t.mean_ms));
    eprintln!("  {:<10} {}{ms}", row.mode, scores.join("  "));
}

/// What the results document says about how it was produced.
fn document_preamble() -> String {
    "Generated by `optical eval` (see `scripts/eval-results.sh`); every row's TREC run and \
     per-query values are in the output folder. Metrics follow trec_eval / pytrec_eval exactly \
     (checked by `tests/eval_metrics.rs`): ties in score are ranked by document id descending, \
     relevance ≤ 0 is non-relevant, nDCG uses graded gains with a log2 discount and its ideal \
     from the qrels, MRR@k is reciprocal rank within the top k, and the mean is over every \
     judged query of the split (a query that retrieved nothing counts 0). In dense and hybrid \
     rows, ms/query is the search alone: the queries are encoded beforehand, in batches."
        .to_string()
}
