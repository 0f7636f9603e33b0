//! What an evaluation writes into its output folder: one TREC run (`runs/`) and one file of
//! per-query values (`per-query/`) per system, and the results table (`results.json`,
//! `results.md`). The table accumulates: rows already in `results.json` are kept unless the
//! same collection/split/queries/mode is evaluated again, so one folder can collect a sweep.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::harness::Timing;
use super::metrics::{Evaluation, Metric};
use super::report::{ResultRow, ResultsTable};
use super::run::Run;
use super::stats::compare;

/// Random sign patterns per significance test: p-values near 0.05 are then good to about ±0.005.
pub const RANDOMIZATION_TRIALS: usize = 10_000;

/// One evaluated system of a split: its mode name, per-query values, search time (when it
/// searched) and run (when it produced one, rather than scoring a run file).
#[derive(Debug, Clone)]
pub struct SystemResult {
    /// Mode name (`bm25`, `dense`, `hybrid[rrf:60]`, a run file's stem, ...).
    pub mode: String,
    /// Per-query values and means.
    pub evaluation: Evaluation,
    /// Search time per query.
    pub timing: Option<Timing>,
    /// The ranked documents of every query.
    pub run: Option<Run>,
}

/// Which queries were evaluated: the names the output files and table rows carry.
#[derive(Debug, Clone)]
pub struct SplitName {
    /// Collection name.
    pub collection: String,
    /// Split name.
    pub split: String,
    /// Queries file name (`queries.jsonl`, `queries.eng.jsonl`, ...).
    pub queries: String,
}

impl SplitName {
    /// `<collection>.<split>[.<queries>].<mode>`, safe as a file name.
    pub fn file_stem(&self, mode: &str) -> String {
        let queries = self.queries.trim_end_matches(".gz").trim_end_matches(".jsonl");
        let queries = if queries == "queries" { String::new() } else { format!(".{queries}") };
        sanitize(&format!("{}.{}{queries}.{mode}", self.collection, self.split))
    }
}

/// An output folder and the results table it holds.
pub struct EvalOutput {
    dir: PathBuf,
    /// Appended to mode names in the table (`mode (label)`), e.g. a student's name.
    label: Option<String>,
    /// Every row of `results.json`, this evaluation's included once recorded.
    table: ResultsTable,
    /// The rows of this evaluation.
    fresh: ResultsTable,
}

impl EvalOutput {
    /// Opens (creating) `dir` with its `runs/` and `per-query/` folders, and reads the rows
    /// already in its `results.json`.
    pub fn open(dir: &Path, label: Option<String>, metrics: &[Metric]) -> Result<EvalOutput> {
        for sub in ["runs", "per-query"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        }
        let results = dir.join("results.json");
        let table = if results.is_file() { ResultsTable::read_json(&results)? } else { ResultsTable::new(metrics.to_vec()) };
        Ok(EvalOutput { dir: dir.to_path_buf(), label, table, fresh: ResultsTable::new(metrics.to_vec()) })
    }

    /// The mode name shown in tables: `mode (label)` when a label is set.
    pub fn label_mode(&self, mode: &str) -> String {
        match &self.label {
            Some(label) => format!("{mode} ({label})"),
            None => mode.to_string(),
        }
    }

    /// Path of the run file named `stem`.
    pub fn run_path(&self, stem: &str) -> PathBuf {
        self.dir.join("runs").join(format!("{stem}.trec"))
    }

    /// Writes the runs and per-query values of `systems` and adds their rows; every system after
    /// the first is tested against the first, metric by metric. Returns the new rows.
    pub fn record(&mut self, name: &SplitName, systems: Vec<SystemResult>, metrics: &[Metric]) -> Result<Vec<ResultRow>> {
        let baseline = systems.first().map(|s| (s.mode.clone(), s.evaluation.clone()));
        let mut rows = Vec::with_capacity(systems.len());
        for system in systems {
            let mut p_values = BTreeMap::new();
            if let Some((_, base)) = baseline.as_ref().filter(|(m, _)| *m != system.mode) {
                for &metric in metrics {
                    let c = compare(base, &system.evaluation, metric, RANDOMIZATION_TRIALS, 0)?;
                    p_values.insert(metric.to_string(), c.p_value);
                }
            }
            let mode = self.label_mode(&system.mode);
            let stem = name.file_stem(&mode);
            if let Some(run) = &system.run {
                run.write_trec_file(&self.run_path(&stem), &sanitize(&mode))?;
            }
            let per_query = self.dir.join("per-query").join(format!("{stem}.json"));
            std::fs::write(&per_query, serde_json::to_string_pretty(&system.evaluation)? + "\n")
                .with_context(|| format!("writing {}", per_query.display()))?;
            let mut row = ResultRow::new(&name.collection, &name.split, &name.queries, &mode, &system.evaluation, system.timing);
            if !p_values.is_empty() {
                row.baseline = baseline.as_ref().map(|(m, _)| self.label_mode(m));
                row.p_values = p_values;
            }
            self.fresh.upsert(row.clone());
            rows.push(row);
        }
        Ok(rows)
    }

    /// Merges this evaluation's rows into the table and writes `results.json` and the results
    /// document (`results.md`, and `markdown` when given), rows in `mode_order`. Returns this
    /// evaluation's rows, sorted the same way, and the number of rows in the whole table.
    pub fn publish(mut self, mode_order: &[&str], title: &str, preamble: &str, markdown: Option<&Path>) -> Result<(ResultsTable, usize)> {
        self.table.merge(self.fresh.clone());
        self.table.sort(mode_order);
        self.table.write_json(&self.dir.join("results.json"))?;
        let doc = self.table.to_document(title, preamble);
        for path in std::iter::once(self.dir.join("results.md")).chain(markdown.map(Path::to_path_buf)) {
            std::fs::write(&path, &doc).with_context(|| format!("writing {}", path.display()))?;
        }
        self.fresh.sort(mode_order);
        Ok((self.fresh, self.table.rows.len()))
    }
}

/// Keeps letters, digits, `.`, `-`, `_`; anything else becomes `_` (also makes a valid run tag).
pub fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}
