//! `optical eval`: retrieval quality on BEIR collections.
//!
//! For each collection: load a split's queries and qrels, run every query through each mode
//! (or score existing TREC run files given with `--run`), write one TREC run per mode, per-query
//! values, and a results table (Markdown + JSON) under `--out`. Results accumulate: rows already
//! in `<out>/results.json` are kept unless the same collection/split/queries/mode is evaluated
//! again, so one output folder can collect a whole sweep and `--markdown docs/results.md`
//! renders all of it. This file reads the arguments, picks the models and prints; the work is
//! `optical::eval` (`systems`: the modes, `output`: the files).
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use optical::encoder::students;
use optical::encoder::{Encoder, EncoderOptions, Role, WEIGHTS_FILE, default_device, weights_fingerprint};
use optical::engine::Index;
use optical::ingest::IngestOptions;
use optical::eval::output::{EvalOutput, SplitName, SystemResult, sanitize};
use optical::eval::systems::{
    SearchSetup, cross_lingual_queries, dense_query_texts, encode_queries, exhaustive_system, fused_systems, hybrid_legs, reranked_system, score_run_files, search_system,
};
use optical::eval::{BeirCollection, BeirSplit, Metric, ResultRow, Run};
use optical::search::{Fusion, Mode, RerankChoice};

/// How the exhaustive mode encodes the documents (`--doc-role`).
#[derive(Clone, Copy, ValueEnum)]
pub enum DocRole {
    /// With the query prefix (E5's convention for sentence-to-sentence sets: Tatoeba, SIB).
    Query,
    /// With the passage prefix, as an index encodes them.
    Passage,
}

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
    /// Retrieval modes to run, comma separated: bm25, dense, hybrid (searching an index), and
    /// exhaustive (dense retrieval without an index: every query scored against every document,
    /// for small collections and for comparing encoders, e.g. a student with its teacher).
    #[arg(long, value_delimiter = ',', default_value = "bm25")]
    pub modes: Vec<String>,
    /// How the exhaustive mode encodes the documents: `passage` (as an index does, the default)
    /// or `query` (E5's convention for sentence-to-sentence sets such as Tatoeba and SIB).
    #[arg(long, value_enum)]
    pub doc_role: Option<DocRole>,
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
    /// Also score each dense and hybrid row reranked by late interaction as `optical search
    /// --rerank` runs it (cross-lingual queries only), as a row `<mode>+<SPEC>` (its ms/query is
    /// the rerank stage's, the query's token states encoded beforehand like the query vectors):
    /// `maxsim[:DEPTH[:WEIGHT]]`, `auto` (the default: `maxsim:30:0.4` on
    /// an index that stores token codes, which is what `optical search` does, nothing
    /// otherwise) or `none`. On an index without token codes the passages are encoded by the
    /// searched index's document encoder.
    #[arg(long, default_value = "auto")]
    pub rerank: RerankChoice,
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
    pub psq_options: super::search::PsqOptions,
    /// Query encoder model directory (dense, hybrid and exhaustive modes). Default: the shipped student
    /// installed for the document encoder's embedding space (chosen by the queries' `lang`),
    /// else the document encoder (or, with `--index`, the model directory recorded beside it).
    #[arg(long)]
    pub query_model: Option<PathBuf>,
    /// Document encoder model directory: builds the dense index (dense and hybrid modes) and
    /// encodes the corpus in the exhaustive mode.
    /// Default: multilingual-e5-small in the model cache (`$OPTICAL_CACHE/models`, or
    /// `~/.cache/optical/models`).
    #[arg(long)]
    pub doc_model: Option<PathBuf>,
    /// Index to search instead of building one from the collection's corpus.
    #[arg(long)]
    pub index: Option<PathBuf>,
    // Precision of the document and query encoders; an int8 dense index built for the
    // collection is a separate one (`.int8`).
    #[command(flatten)]
    pub precision: super::Precision,
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

/// Modes the eval command knows, in the order the results table lists them.
const MODES: [&str; 4] = ["bm25", "dense", "hybrid", "exhaustive"];

pub fn run(args: EvalArgs) -> Result<()> {
    let metrics = parse_metrics(&args)?;
    let fusions = parse_fusions(&args)?;
    check_arguments(&args)?;
    let searching = args.runs.is_empty() && args.legs.is_empty();
    let dense = if searching && args.modes.iter().any(|m| m != "bm25") { Some(DenseSetup::new(&args)?) } else { None };
    let mut output = EvalOutput::open(&args.out, args.label.clone(), &metrics)?;
    for dir in &args.collections {
        let collection = BeirCollection::open(dir)?;
        let (name, split) = load_split(&collection, &args)?;
        let systems = if !args.legs.is_empty() {
            leg_files_systems(&args, &split, &fusions, &metrics)?
        } else if searching {
            let ctx = Modes { args: &args, fusions: &fusions, metrics: &metrics, dense: dense.as_ref() };
            ctx.run(&collection, &name, &split, &output)?
        } else {
            score_run_files(&args.runs, &split, &metrics)?
        };
        for row in output.record(&name, systems, &metrics)? {
            print_row(&row, &metrics);
        }
    }
    publish(output, &args)
}

fn parse_metrics(args: &EvalArgs) -> Result<Vec<Metric>> {
    let metrics = Metric::parse_list(&args.metrics)?;
    if metrics.is_empty() {
        bail!("--metrics names no metric");
    }
    Ok(metrics)
}

/// `--fusion`, or the library's default fusion.
fn parse_fusions(args: &EvalArgs) -> Result<Vec<Fusion>> {
    let Some(specs) = &args.fusion else { return Ok(vec![Fusion::default()]) };
    let list = Fusion::parse_list(specs, args.fusion_defaults.rrf_k, args.fusion_defaults.dense_weight).context("--fusion")?;
    if list.is_empty() {
        bail!("--fusion names no fusion");
    }
    Ok(list)
}

/// Rejects combinations of arguments that cannot mean anything.
fn check_arguments(args: &EvalArgs) -> Result<()> {
    if args.k == 0 {
        bail!("-k must be at least 1");
    }
    if args.runs.is_empty() {
        if let Some(mode) = args.modes.iter().find(|m| !MODES.contains(&m.as_str())) {
            bail!("unknown mode {mode:?} (expected one of {})", MODES.join(", "));
        }
    }
    if args.doc_role.is_some() && !args.modes.iter().any(|m| m == "exhaustive") {
        bail!("--doc-role applies to the exhaustive mode only (an index encodes its documents as passages)");
    }
    if !args.legs.is_empty() && args.collections.len() > 1 {
        bail!("--legs scores one collection's runs: give a single --collection with it");
    }
    if args.index.is_some() && args.collections.len() > 1 {
        bail!("--index names one index: give a single --collection with it");
    }
    if matches!(args.rerank, RerankChoice::On(_)) && (!args.runs.is_empty() || !args.legs.is_empty() || !args.modes.iter().any(|m| m == "dense" || m == "hybrid")) {
        bail!("--rerank reranks the rows of a dense or hybrid search: give --modes dense or hybrid (not --run or --legs)");
    }
    Ok(())
}

/// The split to evaluate and its queries, with the names its output files carry.
fn load_split(collection: &BeirCollection, args: &EvalArgs) -> Result<(SplitName, BeirSplit)> {
    let split_name = collection.choose_split(args.split.as_deref())?;
    let split = collection.load_split(&split_name, args.queries.as_deref())?;
    let queries_path = collection.queries_path(args.queries.as_deref());
    let queries = queries_path.file_name().map_or_else(|| "queries".to_string(), |n| n.to_string_lossy().into_owned());
    let name = SplitName { collection: collection.name(), split: split_name, queries };
    eprintln!(
        "{}/{}: {} queries ({}), {} judgements",
        name.collection,
        name.split,
        split.queries.len(),
        name.queries,
        split.qrels.num_judgements()
    );
    Ok((name, split))
}

/// A hybrid row is named by its fusion unless the default fusion was left implicit.
fn hybrid_name(args: &EvalArgs, f: &Fusion) -> String {
    match &args.fusion {
        Some(_) => format!("hybrid[{f}]"),
        None => "hybrid".to_string(),
    }
}

/// `--legs`: the fusions scored from a pair of leg runs written by an earlier hybrid eval.
fn leg_files_systems(args: &EvalArgs, split: &BeirSplit, fusions: &[Fusion], metrics: &[Metric]) -> Result<Vec<SystemResult>> {
    let sparse = Run::read_trec(&args.legs[0])?;
    let dense = Run::read_trec(&args.legs[1])?;
    // As the searcher decides, for indexes built by eval: a query is cross-lingual when its
    // language is not the documents'.
    let cross: HashSet<String> = split
        .queries
        .iter()
        .filter(|q| q.lang.as_deref().is_some_and(|l| l != args.doc_lang))
        .map(|q| q.id.clone())
        .collect();
    fused_systems(&sparse, &dense, &cross, fusions, |f| hybrid_name(args, f), split, (args.k, metrics), None)
}

/// What running `--modes` on a split needs beside the split.
struct Modes<'a> {
    args: &'a EvalArgs,
    fusions: &'a [Fusion],
    metrics: &'a [Metric],
    dense: Option<&'a DenseSetup>,
}

impl Modes<'_> {
    /// Every mode of `--modes` on one split, in the order given.
    fn run(&self, collection: &BeirCollection, name: &SplitName, split: &BeirSplit, output: &EvalOutput) -> Result<Vec<SystemResult>> {
        let args = self.args;
        let index_dir = match args.modes.iter().any(|m| m != "exhaustive") {
            true => Some(match self.dense {
                Some(d) => dense_index(collection, args, d)?,
                None => text_index(collection, args)?,
            }),
            false => None,
        };
        let index = match &index_dir {
            Some(dir) => Some(Index::open_read_only(dir).with_context(|| format!("opening index {}", dir.display()))?),
            None => None,
        };
        // Query vectors of the split, encoded once in batches and shared by the dense, hybrid and
        // exhaustive modes (the ms/query column is then search time without query encoding).
        let query_encoder = self.dense.map(|d| d.query_encoder(queries_lang(split))).transpose()?;
        let tables = match &index {
            Some(index) => psq_tables(index, split, args)?,
            None => Vec::new(),
        };
        let query_gloss = !args.psq_options.no_query_gloss;
        let query_vectors = match &query_encoder {
            Some(e) => {
                let texts = dense_query_texts(index.as_ref(), &tables, query_gloss, split);
                encode_queries(e, split, &texts, &args.out.join("query-vectors"))?
            }
            None => HashMap::new(),
        };
        let setup = SearchSetup {
            tables: &tables,
            psq_min_idf: args.psq_options.psq_min_idf,
            psq_max_terms: args.psq_options.psq_max_terms,
            psq_spelling_weight: args.psq_options.psq_spelling_weight,
            query_gloss,
            rendering_weight: args.psq_options.rendering_weight,
            query_encoder: query_encoder.as_ref(),
            query_vectors: &query_vectors,
        };
        let mut out = Vec::new();
        for mode in &args.modes {
            let on = index_dir.as_ref().map_or(String::new(), |d| format!(" on index {}", d.display()));
            let context = || format!("{}: mode {mode}{on}", name.collection);
            match (mode.as_str(), &index) {
                ("exhaustive", _) => out.push(self.exhaustive(collection, &setup, split).with_context(context)?),
                ("hybrid", Some(index)) => out.extend(self.hybrid(index, &setup, name, split, output).with_context(context)?),
                (_, Some(index)) => {
                    let label = format!("{} {mode}", name.collection);
                    out.push(search_system(index, mode.parse::<Mode>()?, &setup, split, args.k, self.metrics, &label).with_context(context)?);
                }
                (_, None) => unreachable!("an index is opened for every mode but exhaustive"),
            }
        }
        let has_codes = index.as_ref().is_some_and(|i| i.snapshot().codebook().is_some());
        if let (Some(rerank), Some(index), Some(dense), Some(query_encoder)) = (args.rerank.stage(has_codes), &index, self.dense, &query_encoder) {
            let doc_encoder = if has_codes { None } else { Some(dense.index_encoder()?) };
            let cross = cross_lingual_queries(index, &setup, split)?;
            let searched: Vec<usize> = (0..out.len()).filter(|&i| out[i].mode == "dense" || out[i].mode.starts_with("hybrid")).collect();
            for i in searched {
                let context = || format!("{}: {} reranked by {rerank}", name.collection, out[i].mode);
                let reranked = reranked_system(index, (query_encoder, doc_encoder.as_deref()), &cross, rerank, &out[i], split, (args.k, self.metrics)).with_context(context)?;
                out.push(reranked);
            }
        }
        Ok(out)
    }

    /// The hybrid rows: both legs searched once per query (and written as runs), every fusion
    /// scored from them.
    fn hybrid(&self, index: &Index, setup: &SearchSetup, name: &SplitName, split: &BeirSplit, output: &EvalOutput) -> Result<Vec<SystemResult>> {
        let legs = hybrid_legs(index, setup, split, self.args.k, &format!("{} legs", name.collection))?;
        let stem = name.file_stem(&output.label_mode("legs"));
        for (leg, run) in [("bm25", &legs.bm25), ("dense", &legs.dense)] {
            run.write_trec_file(&output.run_path(&format!("{stem}.{leg}")), &format!("{leg}-leg"))?;
        }
        let (k, metrics) = (self.args.k, self.metrics);
        fused_systems(&legs.bm25, &legs.dense, &legs.cross, self.fusions, |f| hybrid_name(self.args, f), split, (k, metrics), Some(&legs.timing))
    }

    /// The exhaustive row: the corpus encoded by the document encoder in `--doc-role`.
    fn exhaustive(&self, collection: &BeirCollection, setup: &SearchSetup, split: &BeirSplit) -> Result<SystemResult> {
        let dense = self.dense.context("the exhaustive mode needs a document encoder")?;
        let options = EncoderOptions { int8: self.args.precision.int8(), ..EncoderOptions::default() };
        let doc_encoder = Encoder::load_with(&dense.doc_model, &default_device(), &options).with_context(|| format!("loading model {}", dense.doc_model.display()))?;
        let role = match self.args.doc_role {
            Some(DocRole::Query) => Role::Query,
            Some(DocRole::Passage) | None => Role::Passage,
        };
        exhaustive_system(collection, setup, (&doc_encoder, role), split, (self.args.k, self.metrics))
    }
}

/// The translation tables of the BM25 leg for the split's query languages (`--psq`, else the
/// tables shipped with the student of the index's embedding space), each announced.
fn psq_tables(index: &Index, split: &BeirSplit, args: &EvalArgs) -> Result<Vec<Arc<optical::translate::TranslationTable>>> {
    let space = index.config().encoder.as_ref().map(|e| e.embedding_space.clone());
    let mut langs: Vec<&str> = split.queries.iter().filter_map(|q| q.lang.as_deref()).collect();
    langs.sort_unstable();
    langs.dedup();
    let tables = super::search::translation_tables(args.psq.as_deref(), space.as_deref(), &langs, Some(&args.doc_lang))?;
    for t in tables.iter().filter(|t| langs.contains(&t.source.as_str())) {
        eprintln!("BM25 leg: {} queries translated with the {} → {} table ({} words, {})", t.source, t.source, t.target, t.len(), t.method);
    }
    Ok(tables)
}

/// Writes the results table and documents, and prints this evaluation's rows.
fn publish(output: EvalOutput, args: &EvalArgs) -> Result<()> {
    let mut preamble = document_preamble();
    if let Some(path) = &args.preamble {
        let extra = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        preamble = format!("{}\n\n{preamble}", extra.trim_end());
    }
    let (fresh, rows) = output.publish(&MODES, "Retrieval results", &preamble, args.markdown.as_deref())?;
    println!("\n{}", fresh.to_markdown());
    let markdown = args.markdown.as_ref().map_or(String::new(), |p| format!(", {}", p.display()));
    eprintln!("wrote {} ({rows} rows), {}{markdown}", args.out.join("results.json").display(), args.out.join("results.md").display());
    Ok(())
}

/// The encoders of the dense, hybrid and exhaustive modes: the document encoder, and query
/// encoders loaded once each (the default one can differ per collection, with the queries'
/// language).
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
    /// The precision in force (`Precision::int8`): query encoders run the int8 path.
    int8: bool,
}

impl DenseSetup {
    fn new(args: &EvalArgs) -> Result<DenseSetup> {
        let doc_model = match &args.doc_model {
            Some(d) => d.clone(),
            None => default_doc_model(),
        };
        let weights = doc_model.join(WEIGHTS_FILE);
        let exhaustive = args.modes.iter().any(|m| m == "exhaustive");
        if (args.index.is_none() || exhaustive) && !weights.is_file() {
            bail!(
                "dense, hybrid and exhaustive modes encode the corpus with a document encoder, but {} is missing: pass --doc-model DIR, or prepare multilingual-e5-small with `bash scripts/setup-models.sh`",
                weights.display()
            );
        }
        let doc_fingerprint = if args.index.is_none() { weights_fingerprint(&weights)? } else { String::new() };
        let index_encoder = match &args.index {
            Some(index) => optical::engine::recorded_model_dir(index).unwrap_or_else(|| doc_model.clone()),
            None => doc_model.clone(),
        };
        Ok(DenseSetup { doc_model, doc_fingerprint, index_encoder, query_model: args.query_model.clone(), doc_lang: args.doc_lang.clone(), loaded: Default::default(), int8: args.precision.int8() })
    }

    /// The searched index's document encoder (encodes passages for `--rerank`), loaded once.
    fn index_encoder(&self) -> Result<Arc<Encoder>> {
        self.load(&self.index_encoder)
    }

    /// The query encoder for queries in `lang`: `--query-model`, else the default.
    fn query_encoder(&self, lang: Option<&str>) -> Result<Arc<Encoder>> {
        let dir = match &self.query_model {
            Some(q) => q.clone(),
            None => default_query_model(&self.index_encoder, lang, &self.doc_lang)?,
        };
        let fresh = !self.loaded.borrow().contains_key(&dir);
        let encoder = self.load(&dir)?;
        if fresh {
            eprintln!(
                "query encoder {} ({}), document encoder {}",
                encoder.info().name,
                dir.display(),
                self.doc_model.display()
            );
        }
        Ok(encoder)
    }

    /// The encoder in `dir`, loaded once.
    fn load(&self, dir: &Path) -> Result<Arc<Encoder>> {
        if let Some(e) = self.loaded.borrow().get(dir) {
            return Ok(Arc::clone(e));
        }
        let options = EncoderOptions { int8: self.int8, ..EncoderOptions::default() };
        let encoder = Arc::new(optical::engine::load_encoder_with(dir, &options)?);
        self.loaded.borrow_mut().insert(dir.to_path_buf(), Arc::clone(&encoder));
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

/// The dense index of the collection's corpus: `--index`, or one built with the document
/// encoder under `<out>/indexes/`, named by corpus content, document language and encoder
/// fingerprint (so every query encoder in that embedding space reuses it).
fn dense_index(collection: &BeirCollection, args: &EvalArgs, dense: &DenseSetup) -> Result<PathBuf> {
    if let Some(index) = &args.index {
        return Ok(index.clone());
    }
    let lang = sanitize(&args.doc_lang);
    let int8 = if args.precision.int8() { ".int8" } else { "" };
    // An index made with a token codebook stores codes made with it: one built with another
    // codebook (or none) is another index.
    let codebook = dense.doc_model.join(optical::encoder::codebook::CODEBOOK_FILE);
    let codes = match codebook.is_file() {
        true => format!(".codes-{}", &optical::encoder::codebook::Codebook::load(&codebook)?.fingerprint()?[..16]),
        false => String::new(),
    };
    let name = format!("{}.{lang}.{}{int8}{codes}", collection.corpus_fingerprint()?, dense.doc_fingerprint);
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
    let options = IngestOptions { lang: args.doc_lang.clone(), model: model.map(Path::to_path_buf), int8: args.precision.int8(), ..IngestOptions::default() };
    super::index::index_and_print(&staging, &corpus, options).with_context(|| format!("indexing {}", corpus.display()))?;
    std::fs::rename(&staging, &dir)
        .with_context(|| format!("renaming {} to {}", staging.display(), dir.display()))?;
    Ok(dir)
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
