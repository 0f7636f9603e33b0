//! `optical search`: BM25, dense or hybrid search over an index.
//!
//! The mode defaults to hybrid when the index records a document encoder and to BM25 otherwise.
//! Dense and hybrid searches need a query encoder: `--model DIR`, or by default the shipped
//! student installed in the model cache for the index's embedding space
//! ([`optical::encoder::students`]), or else the document encoder recorded in the index when
//! `optical index --model` left its directory beside the index. A query encoder that does not
//! fit the index (other dimension or embedding space) is refused with the library's error.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use optical::engine::{Index, Snapshot};
use optical::search::{Fusion, Mode, RerankChoice, SearchRequest, SearchResults, Searcher};
use optical::translate::{TranslatedTerm, TranslationTable, read_tables};

use optical::encoder::{EncoderOptions, students};
use optical::engine::{load_encoder_with, recorded_model_dir};

#[derive(Args)]
pub struct SearchArgs {
    /// Index directory.
    pub dir: PathBuf,
    /// Query text.
    pub query: String,
    /// Number of results.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// bm25, dense or hybrid. Default: hybrid when the index has an encoder, else bm25.
    #[arg(long)]
    pub mode: Option<Mode>,
    /// Query encoder model directory (dense and hybrid). Default: the shipped student installed
    /// for the index's embedding space (see `--query-lang`), else the index's own encoder.
    #[arg(long)]
    pub model: Option<PathBuf>,
    // Precision of the query encoder.
    #[command(flatten)]
    pub precision: super::Precision,
    /// Language of the query (ISO 639-3): picks a per-language student when one is installed,
    /// routes English to the index's encoder when the student says so, and keeps the index's
    /// encoder when it equals `--lang` (monolingual search); passed to the pipeline.
    #[arg(long)]
    pub query_lang: Option<String>,
    /// Only documents in this language.
    #[arg(long)]
    pub lang: Option<String>,
    /// How hybrid mode combines BM25 and dense rankings: `rrf[:K]`, `linear[:DENSE_WEIGHT]`
    /// (min-max normalised), `zscore[:DENSE_WEIGHT]`, `confidence[:PRIOR]` or
    /// `bylang[:CROSS:MONO]`. Default: `bylang:0.8:0.5` (docs/search.md says how it was chosen).
    #[arg(long)]
    pub fusion: Option<String>,
    #[command(flatten)]
    pub fusion_defaults: FusionDefaults,
    /// Translation table for the BM25 leg (PSQ): a table file (`optical psq build`), a directory
    /// of `<lang>.tsv` tables, or `none`. Default: the table for `--query-lang` shipped with the
    /// installed student of the index's embedding space (none when `--query-lang` equals `--lang`).
    #[arg(long)]
    pub psq: Option<PathBuf>,
    #[command(flatten)]
    pub psq_options: PsqOptions,
    /// Rerank the top hits by late interaction (dense and hybrid modes, cross-lingual queries:
    /// a query in the documents' language keeps the fused order). `maxsim[:DEPTH[:WEIGHT]]`
    /// mixes each of the top DEPTH hits' score with the MaxSim of the query's and the passage's
    /// token states (DEPTH 30, WEIGHT 0.4 unless given); `auto` (the default) runs `maxsim` on an
    /// index that stores token codes (a few ms) and nothing on one that does not; `none` turns it
    /// off. On an index without token codes a stage encodes the passages at query time with the
    /// index's document encoder (≈ 0.1 s per query on 2 cores).
    #[arg(long, default_value = "auto")]
    pub rerank: RerankChoice,
    /// The index's document encoder, for `--rerank` on an index without token codes. Default:
    /// the model directory recorded beside the index by `optical index --model`.
    #[arg(long)]
    pub doc_model: Option<PathBuf>,
    /// Show per hit the BM25 rank and score, the dense rank and score, and the fused score.
    #[arg(long)]
    pub explain: bool,
    /// Print JSON (one object with the hits) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// How translated queries are searched: how much of one the BM25 leg keeps, and whether the dense
/// leg reads the query's gloss; `optical search` and `optical eval` share it.
#[derive(Args, Debug, Clone)]
pub struct PsqOptions {
    /// Leave out translations into terms whose BM25 idf in the index is below this (function
    /// words such as "the"; 0 keeps all).
    #[arg(long, default_value_t = optical::translate::DEFAULT_PSQ_MIN_IDF)]
    pub psq_min_idf: f32,
    /// Search at most this many translated terms per query, the heaviest (after the idf cut).
    #[arg(long, default_value_t = optical::translate::DEFAULT_PSQ_MAX_TERMS)]
    pub psq_max_terms: usize,
    /// Weight shared by the English terms spelled like a query word that has no translation and
    /// occurs in no English document (a name spelled the query language's way; 0 turns it off).
    #[arg(long, default_value_t = optical::translate::DEFAULT_PSQ_SPELLING_WEIGHT)]
    pub psq_spelling_weight: f32,
    /// Encode a query for the dense leg as written, without the English gloss (its words' best
    /// translations) appended when its language has a translation table.
    #[arg(long)]
    pub no_query_gloss: bool,
    /// Weight of the MaxSim of the query's English rendering (each word's best translation in
    /// place, names kept) in the rerank stage, when its language has a translation table (0: the
    /// stage reads the query as written only).
    #[arg(long, default_value_t = optical::search::late::DEFAULT_RENDERING_WEIGHT, value_parser = unit_weight)]
    pub rendering_weight: f32,
}

/// A weight from 0 to 1 (clap's parser for `--rendering-weight`).
fn unit_weight(arg: &str) -> std::result::Result<f32, String> {
    let weight: f32 = arg.parse().map_err(|e| format!("{arg:?} is not a number: {e}"))?;
    if (0.0..=1.0).contains(&weight) { Ok(weight) } else { Err(format!("{weight} is not a weight from 0 to 1")) }
}

impl PsqOptions {
    /// `searcher` with these settings for its translated queries.
    pub fn apply(&self, searcher: optical::search::Searcher) -> optical::search::Searcher {
        searcher
            .with_psq_min_idf(self.psq_min_idf)
            .with_psq_max_terms(self.psq_max_terms)
            .with_psq_spelling_weight(self.psq_spelling_weight)
            .with_query_gloss(!self.no_query_gloss)
            .with_rendering_weight(self.rendering_weight)
    }
}

/// The numbers a fusion spec without its own takes (`--fusion rrf`, `--fusion linear`, …);
/// `optical search` and `optical eval` share them.
#[derive(Args, Debug, Clone)]
pub struct FusionDefaults {
    /// RRF constant k for a spec `rrf` without a value.
    #[arg(long, default_value_t = optical::search::fusion::DEFAULT_RRF_K)]
    pub rrf_k: f32,
    /// Weight of the dense score, in [0, 1] (the prior for `confidence`), for a spec `linear`,
    /// `zscore` or `confidence` without a value.
    #[arg(long, default_value_t = optical::search::fusion::DEFAULT_DENSE_WEIGHT)]
    pub dense_weight: f32,
}

pub fn run(args: SearchArgs) -> Result<()> {
    if args.k == 0 {
        bail!("-k must be at least 1");
    }
    // BM25 finds nothing for a query without words, and a dense search would rank the whole
    // index by the encoding of punctuation: neither is an answer.
    if !args.query.chars().any(char::is_alphanumeric) {
        bail!("no query text: {:?} has no words to search for", args.query);
    }
    let index = Index::open_read_only(&args.dir)?;
    let config = index.config();
    let mode = args.mode.unwrap_or(if config.encoder.is_some() { Mode::Hybrid } else { Mode::Bm25 });
    let mut searcher = Searcher::for_index(&index);
    if mode != Mode::Bm25 {
        if config.dim.is_none() {
            bail!(
                "index {} is text-only (no vectors): {mode} search is impossible, use --mode bm25",
                args.dir.display()
            );
        }
        let model = query_model(&args, &args.dir, &index)?;
        let encoder = Arc::new(load_encoder_with(&model, &EncoderOptions { int8: args.precision.int8(), ..Default::default() })?);
        searcher = searcher
            .with_encoder(encoder)
            .with_context(|| format!("query encoder {} on index {}", model.display(), args.dir.display()))?;
        if needs_doc_encoder(&args, mode, searcher.snapshot().codebook().is_some()) {
            let Some(doc_model) = args.doc_model.clone().or_else(|| recorded_model_dir(&args.dir)) else {
                bail!("--rerank encodes the top passages with the index's document encoder, but index {} does not know its model directory: pass it with --doc-model DIR", args.dir.display())
            };
            let encoder = Arc::new(load_encoder_with(&doc_model, &EncoderOptions { int8: args.precision.int8(), ..Default::default() })?);
            searcher = searcher
                .with_document_encoder(encoder)
                .with_context(|| format!("--doc-model {} on index {}", doc_model.display(), args.dir.display()))?;
        }
    }
    let space = config.encoder.as_ref().map(|e| e.embedding_space.as_str());
    let query_langs: Vec<&str> = args.query_lang.as_deref().into_iter().collect();
    for table in translation_tables(args.psq.as_deref(), space, &query_langs, args.lang.as_deref())? {
        searcher = searcher.with_translation_table(table);
    }
    searcher = args.psq_options.apply(searcher);
    let req = request(&args, mode)?;
    let results = searcher.search(&req)?;
    let snap = searcher.snapshot();
    let translated = if mode == Mode::Dense { None } else { searcher.translated_query(&req)? };
    // The text the dense leg encoded, when it is not the query as written (a gloss was appended).
    let dense_query = match mode {
        Mode::Bm25 => None,
        _ => Some(searcher.dense_query_text(&req.query, req.query_lang.as_deref())).filter(|t| *t != req.query),
    };
    // The English rendering whose token states the rerank stage reads besides the query's (a
    // query with a table is cross-lingual, so the stage reranks it whenever it runs).
    let rendering = match (mode, req.rerank) {
        (Mode::Bm25, _) | (_, RerankChoice::Off) => None,
        _ => searcher.query_rendering(&req.query, req.query_lang.as_deref()).map(|r| r.text),
    };
    if args.json {
        print_json(&args, snap, &results, translated.as_deref(), dense_query.as_deref(), rendering.as_deref())
    } else {
        if args.explain {
            if let Some(terms) = &translated {
                print_translation(terms);
            }
            if let Some(text) = &dense_query {
                println!("dense query (glossed): {text}");
            }
            if let Some(text) = &rendering {
                println!("rerank query (rendered): {text}");
            }
        }
        print_table(&args, snap, &results)
    }
}

/// The search request the arguments describe.
fn request(args: &SearchArgs, mode: Mode) -> Result<SearchRequest> {
    let fusion = match &args.fusion {
        Some(spec) => Fusion::parse_with_defaults(spec, args.fusion_defaults.rrf_k, args.fusion_defaults.dense_weight)
            .context("--fusion")?,
        None => Fusion::default(),
    };
    let mut req = SearchRequest::new(&args.query)
        .with_k(args.k)
        .with_mode(mode)
        .with_fusion(fusion)
        .with_explain(args.explain);
    if let Some(l) = &args.query_lang {
        req = req.with_query_lang(l);
    }
    if let Some(l) = &args.lang {
        req = req.with_lang_filter(l);
    }
    Ok(req.with_rerank_choice(args.rerank))
}

/// Whether the search runs a rerank stage that encodes passages: one asked for on an index
/// without stored token codes.
fn needs_doc_encoder(args: &SearchArgs, mode: Mode, has_codes: bool) -> bool {
    !has_codes && mode != Mode::Bm25 && matches!(args.rerank, RerankChoice::On(_))
}

/// The translation tables to register: `--psq` (a file or a directory; `none` for no table),
/// else the default table of each query language (see [`students::default_translation_table`]);
/// a table from `doc_lang` is left out.
pub fn translation_tables(
    psq: Option<&Path>,
    space: Option<&str>,
    query_langs: &[&str],
    doc_lang: Option<&str>,
) -> Result<Vec<Arc<TranslationTable>>> {
    let paths: Vec<PathBuf> = match psq {
        Some(p) if p == Path::new("none") => return Ok(Vec::new()),
        Some(p) => vec![p.to_path_buf()],
        None => match space {
            Some(space) => query_langs
                .iter()
                .filter_map(|l| students::default_translation_table(space, Some(l), doc_lang))
                .collect(),
            None => Vec::new(),
        },
    };
    let mut tables = Vec::new();
    for path in paths {
        // A table translates queries *into* the documents' language: never for queries already in it.
        tables.extend(
            read_tables(&path)?
                .into_iter()
                .filter(|t| doc_lang != Some(t.source.as_str()))
                .map(Arc::new),
        );
    }
    Ok(tables)
}

/// The BM25 leg's translated query, most weighted terms first.
fn print_translation(terms: &[TranslatedTerm]) {
    let shown: Vec<String> = terms
        .iter()
        .take(24)
        .map(|t| if t.translated { format!("{}:{:.2}", t.term, t.weight) } else { format!("{} (kept)", t.term) })
        .collect();
    let more = terms.len().saturating_sub(shown.len());
    let more = if more > 0 { format!(" … {more} more") } else { String::new() };
    println!("translated query (PSQ): {}{more}", shown.join(" "));
}

/// `--model`, else the installed student in the index's embedding space (for `--query-lang`),
/// else the model directory recorded beside the index, else a clear error.
fn query_model(args: &SearchArgs, dir: &Path, index: &Index) -> Result<PathBuf> {
    if let Some(m) = &args.model {
        return Ok(m.clone());
    }
    if let Some(rec) = &index.config().encoder
        && let Some(m) = students::default_student(&rec.embedding_space, args.query_lang.as_deref(), args.lang.as_deref())
    {
        return Ok(m);
    }
    if let Some(m) = recorded_model_dir(dir) {
        return Ok(m);
    }
    let mode = args.mode.map_or("hybrid".to_string(), |m| m.to_string());
    match index.config().encoder {
        Some(rec) => bail!(
            "{mode} search needs a query encoder: index {} was built with encoder {} (fingerprint {}) but does not know its model directory; pass it (or a student in its embedding space) with --model DIR",
            dir.display(),
            rec.name,
            rec.fingerprint
        ),
        None => bail!(
            "{mode} search needs a query encoder: index {} records none; pass --model DIR (a model whose vectors match the index's)",
            dir.display()
        ),
    }
}

fn print_json(
    args: &SearchArgs,
    snap: &Snapshot,
    results: &SearchResults,
    translated: Option<&[TranslatedTerm]>,
    dense_query: Option<&str>,
    rendering: Option<&str>,
) -> Result<()> {
    let mut out = Vec::with_capacity(results.hits.len());
    for (rank, h) in results.hits.iter().enumerate() {
        let doc = snap.document(h.id)?;
        out.push(serde_json::json!({
            "rank": rank + 1,
            "key": h.key,
            "id": h.id,
            "score": h.score,
            "title": doc.as_ref().map(|d| d.title.as_str()),
            "lang": doc.as_ref().map(|d| d.lang.as_str()),
            "snippet": doc.as_ref().map(|d| clip(&d.body, 200)),
            "explain": h.explain,
        }));
    }
    let v = serde_json::json!({
        "query": args.query,
        "query_lang": args.query_lang,
        "mode": results.mode.to_string(),
        "generation": results.generation,
        "took_ms": optical::search::millis(results.timings.total),
        "translated_query": translated,
        "dense_query": dense_query,
        "rerank_rendering": rendering,
        "hits": out,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn print_table(args: &SearchArgs, snap: &Snapshot, results: &SearchResults) -> Result<()> {
    if results.hits.is_empty() {
        println!("no results ({} search)", results.mode);
        return Ok(());
    }
    for (rank, h) in results.hits.iter().enumerate() {
        let doc = snap.document(h.id)?;
        let (title, body, lang) = doc.map(|d| (d.title, d.body, d.lang)).unwrap_or_default();
        let title = if title.trim().is_empty() { "(no title)".to_string() } else { clip(&title, 60) };
        println!("{:>3}. {:>8.4}  {}  [{}]  {}", rank + 1, h.score, printable(&h.key), printable(&lang), title);
        if !body.trim().is_empty() {
            println!("       {}", clip(&body, 100));
        }
        if let Some(e) = &h.explain {
            let bm25 = match (e.bm25_rank, e.bm25_score) {
                (Some(r), Some(s)) => format!("bm25 #{r} {s:.3}"),
                _ => "bm25 -".to_string(),
            };
            let dense = match (e.dense_rank, e.dense_score) {
                (Some(r), Some(s)) => format!("dense #{r} {s:.4}"),
                (None, Some(s)) => format!("dense {s:.4}"),
                _ => "dense -".to_string(),
            };
            match e.maxsim_score {
                Some(m) => println!("       [{bm25} | {dense} | fused {:.5} | maxsim {m:.4}]", e.fused_score),
                None => println!("       [{bm25} | {dense} | fused {:.5}]", e.fused_score),
            }
        }
    }
    if args.explain {
        let t = &results.timings;
        let ms = optical::search::millis;
        println!(
            "({} search, generation {}: encode {:.1} ms, bm25 {:.1} ms, dense scan {:.1} ms, rescoring {:.1} ms, late interaction {:.1} ms, total {:.1} ms)",
            results.mode,
            results.generation,
            ms(t.encode),
            ms(t.bm25),
            ms(t.dense_scan),
            ms(t.rerank),
            ms(t.late_interaction),
            ms(t.total)
        );
    }
    Ok(())
}

/// The first `n` characters of one line of text (line breaks and tabs become spaces, other
/// control characters are escaped by [`printable`]).
fn clip(s: &str, n: usize) -> String {
    let s = s.replace(['\n', '\t', '\r'], " ");
    let s = s.trim();
    if s.chars().count() <= n {
        printable(s)
    } else {
        format!("{}…", printable(&s.chars().take(n).collect::<String>()))
    }
}

/// `s` with control characters escaped (`\n`, `\t`, `\r`, `\0`, else `\u{..}`), and the
/// bidirectional overrides too: keys and text come from the indexed documents, and printed raw
/// a newline or tab would break the table's one-line rows, a NUL or an escape sequence would
/// reach the terminal, and an override would reorder what is shown. JSON output (`--json`)
/// is the exact form.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}
