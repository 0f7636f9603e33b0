//! `optical eval`: retrieval quality on BEIR collections.
//!
//! For each collection: load a split's queries and qrels, run every query through each mode
//! (or score existing TREC run files given with `--run`), write one TREC run per mode, per-query
//! values, and a results table (Markdown + JSON) under `--out`. Results accumulate: rows already
//! in `<out>/results.json` are kept unless the same collection/split/queries/mode is evaluated
//! again, so one output folder can collect a whole sweep and `--markdown docs/results.md`
//! renders all of it.
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use optical::eval::{
    Averaging, BeirCollection, BeirSplit, Evaluation, Metric, Query, ResultRow, ResultsTable, Run,
    evaluate, evaluate_system, query_progress,
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
    #[arg(long = "run", num_args = 1.., conflicts_with = "modes")]
    pub runs: Vec<PathBuf>,
    /// Query encoder model directory (dense and hybrid modes).
    #[arg(long)]
    pub query_model: Option<PathBuf>,
    /// Index to search instead of building one from the collection's corpus.
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// Documents retrieved per query.
    #[arg(short, long, default_value_t = 100)]
    pub k: usize,
    /// Metrics, comma separated (ndcg@k, map, mrr@k, recall@k, p@k).
    #[arg(long, default_value = "ndcg@10,mrr@10,recall@1,recall@10,recall@100,map")]
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
                bail!("unknown mode {mode:?} (expected one of {})", MODES.join(", "));
            }
        }
    }
    if args.index.is_some() && args.collections.len() > 1 {
        bail!("--index names one index: give a single --collection with it");
    }
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
        let queries_name = queries_path
            .file_name()
            .map_or_else(|| "queries".to_string(), |n| n.to_string_lossy().into_owned());
        eprintln!(
            "{name}/{split_name}: {} queries ({queries_name}), {} judgements",
            split.queries.len(),
            split.qrels.num_judgements()
        );
        let systems: Vec<(String, Evaluation, Option<optical::eval::Timing>, Option<Run>)> =
            if args.runs.is_empty() {
                let mut out = Vec::new();
                for mode in &args.modes {
                    let mut search = searcher(mode, &collection, &args)?;
                    let label = format!("{name} {mode}");
                    let progress = query_progress(split.queries.len(), &label);
                    let result =
                        evaluate_system(&split, args.k, &metrics, &progress, |q, k| search(q, k))
                            .with_context(|| format!("{name}: mode {mode}"))?;
                    out.push((mode.clone(), result.evaluation, Some(result.timing), Some(result.run)));
                }
                out
            } else {
                score_run_files(&args.runs, &split, &metrics)?
            };

        for (mode, evaluation, timing, run) in systems {
            let mode = match &args.label {
                Some(label) => format!("{mode} ({label})"),
                None => mode,
            };
            let stem = file_stem(&name, &split_name, &queries_name, &mode);
            if let Some(run) = run {
                let path = args.out.join("runs").join(format!("{stem}.trec"));
                run.write_trec_file(&path, &sanitize(&mode))?;
            }
            let per_query = args.out.join("per-query").join(format!("{stem}.json"));
            std::fs::write(&per_query, serde_json::to_string_pretty(&evaluation)? + "\n")
                .with_context(|| format!("writing {}", per_query.display()))?;
            let row = ResultRow::new(&name, &split_name, &queries_name, &mode, &evaluation, timing);
            print_row(&row, &metrics);
            fresh.upsert(row);
        }
    }

    table.merge(fresh.clone());
    table.sort(&MODES);
    table.write_json(&results_path)?;
    let doc = table.to_document("Retrieval results", &document_preamble());
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
        args.markdown.as_ref().map_or(String::new(), |p| format!(", {}", p.display()))
    );
    Ok(())
}

/// A search function for `mode`: query → ranked (document id, score).
type Searcher = Box<dyn FnMut(&Query, usize) -> Result<Vec<(String, f64)>>>;

fn searcher(mode: &str, collection: &BeirCollection, _args: &EvalArgs) -> Result<Searcher> {
    bail!(
        "mode {mode} on {}: searching from `optical eval` is not wired to the search pipeline yet; \
         score existing runs with --run FILE.trec",
        collection.dir().display()
    )
}

/// Scores TREC run files against a split. A run file cannot list a query that retrieved nothing,
/// so the mean is over every judged query (trec_eval `-c`): a missing query counts 0 instead of
/// silently dropping out.
fn score_run_files(
    files: &[PathBuf],
    split: &BeirSplit,
    metrics: &[Metric],
) -> Result<Vec<(String, Evaluation, Option<optical::eval::Timing>, Option<Run>)>> {
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
    let queries = if queries == "queries" { String::new() } else { format!(".{queries}") };
    sanitize(&format!("{collection}.{split}{queries}.{mode}"))
}

/// Keeps letters, digits, `.`, `-`, `_`; anything else becomes `_` (also makes a valid run tag).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect()
}

fn print_row(row: &ResultRow, metrics: &[Metric]) {
    let scores: Vec<String> = metrics
        .iter()
        .map(|m| format!("{m} {:.3}", row.score(*m).unwrap_or(f64::NAN)))
        .collect();
    let ms = row.timing.as_ref().map_or(String::new(), |t| format!("  {:.1} ms/query", t.mean_ms));
    eprintln!("  {:<10} {}{ms}", row.mode, scores.join("  "));
}

/// What the results document says about how it was produced.
fn document_preamble() -> String {
    "Generated by `optical eval` (see `scripts/eval-results.sh`); every row's TREC run and \
     per-query values are in the output folder. Metrics follow trec_eval / pytrec_eval exactly \
     (checked by `tests/eval_metrics.rs`): ties in score are ranked by document id descending, \
     relevance ≤ 0 is non-relevant, nDCG uses graded gains with a log2 discount and its ideal \
     from the qrels, MRR@k is reciprocal rank within the top k, and the mean is over every \
     judged query of the split (a query that retrieved nothing counts 0)."
        .to_string()
}

