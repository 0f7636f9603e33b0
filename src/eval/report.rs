//! Results tables: one row per (collection, split, queries file, mode), written as Markdown and
//! JSON, and read back from JSON so that tables from several runs can be merged.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::harness::Timing;
use super::metrics::{Evaluation, Metric};

/// One evaluated system on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Collection name (its directory name).
    pub collection: String,
    /// Split (`test`, `dev`, ...).
    pub split: String,
    /// Queries file used (`queries.jsonl`, `queries.eng.jsonl`, ...).
    pub queries: String,
    /// Retrieval mode or system name (`bm25`, `dense`, `hybrid`, ...).
    pub mode: String,
    /// Free-form description of the system (model, fusion, ...); may be empty.
    #[serde(default)]
    pub system: String,
    /// Number of queries averaged.
    pub num_queries: usize,
    /// Mean value of each metric, by metric name (`nDCG@10`, ...).
    pub scores: BTreeMap<String, f64>,
    /// Search latency, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
}

impl ResultRow {
    /// A row from an evaluation's means.
    pub fn new(
        collection: impl Into<String>,
        split: impl Into<String>,
        queries: impl Into<String>,
        mode: impl Into<String>,
        evaluation: &Evaluation,
        timing: Option<Timing>,
    ) -> ResultRow {
        ResultRow {
            collection: collection.into(),
            split: split.into(),
            queries: queries.into(),
            mode: mode.into(),
            system: String::new(),
            num_queries: evaluation.num_queries,
            scores: evaluation
                .metrics
                .iter()
                .zip(&evaluation.mean)
                .map(|(m, v)| (m.to_string(), *v))
                .collect(),
            timing,
        }
    }

    /// The row's value of `metric`, if it has one.
    pub fn score(&self, metric: Metric) -> Option<f64> {
        self.scores.get(&metric.to_string()).copied()
    }

    fn key(&self) -> (&str, &str, &str, &str) {
        (&self.collection, &self.split, &self.queries, &self.mode)
    }
}

/// A table of results; `metrics` fixes the column order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResultsTable {
    /// Metric columns, in order.
    pub metrics: Vec<Metric>,
    /// Rows, in insertion order.
    pub rows: Vec<ResultRow>,
}

/// Three decimals: one query out of a few hundred moves a mean by ~0.003.
fn fmt_score(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.3}"))
}

/// Markdown cells must not contain `|` or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

impl ResultsTable {
    /// An empty table with these metric columns.
    pub fn new(metrics: Vec<Metric>) -> ResultsTable {
        ResultsTable { metrics, rows: Vec::new() }
    }

    /// Adds a row, replacing an existing row with the same collection, split, queries and mode.
    pub fn upsert(&mut self, row: ResultRow) {
        match self.rows.iter_mut().find(|r| r.key() == row.key()) {
            Some(existing) => *existing = row,
            None => self.rows.push(row),
        }
    }

    /// Adds every row of `other` ([`ResultsTable::upsert`]) and any metric column it has that
    /// this table lacks.
    pub fn merge(&mut self, other: ResultsTable) {
        for m in other.metrics {
            if !self.metrics.contains(&m) {
                self.metrics.push(m);
            }
        }
        for row in other.rows {
            self.upsert(row);
        }
    }

    /// Sorts rows by collection, split, queries file, then mode in `mode_order` (others after,
    /// alphabetically).
    pub fn sort(&mut self, mode_order: &[&str]) {
        let rank = |m: &str| mode_order.iter().position(|&o| o == m).unwrap_or(mode_order.len());
        self.rows.sort_by(|a, b| {
            (&a.collection, &a.split, &a.queries, rank(&a.mode), &a.mode)
                .cmp(&(&b.collection, &b.split, &b.queries, rank(&b.mode), &b.mode))
        });
    }

    /// The full table: one line per row, one column per metric, then queries and ms/query.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("| collection | split | queries | mode |");
        for m in &self.metrics {
            let _ = write!(out, " {m} |");
        }
        out.push_str(" n | ms/query |\n|---|---|---|---|");
        for _ in &self.metrics {
            out.push_str("--:|");
        }
        out.push_str("--:|--:|\n");
        for row in &self.rows {
            let _ = write!(
                out,
                "| {} | {} | {} | {} |",
                cell(&row.collection),
                cell(&row.split),
                cell(&row.queries),
                cell(&row.mode)
            );
            for m in &self.metrics {
                let _ = write!(out, " {} |", fmt_score(row.score(*m)));
            }
            let ms = row.timing.as_ref().map_or_else(|| "–".to_string(), |t| format!("{:.1}", t.mean_ms));
            let _ = writeln!(out, " {} | {ms} |", row.num_queries);
        }
        out
    }

    /// A compact view of one metric: one line per (collection, split, queries), one column per
    /// mode (in order of first appearance); the best value of each line in bold.
    pub fn to_markdown_pivot(&self, metric: Metric) -> String {
        let mut modes: Vec<&str> = Vec::new();
        let mut lines: Vec<(&str, &str, &str)> = Vec::new();
        for row in &self.rows {
            if !modes.contains(&row.mode.as_str()) {
                modes.push(&row.mode);
            }
            let key = (row.collection.as_str(), row.split.as_str(), row.queries.as_str());
            if !lines.contains(&key) {
                lines.push(key);
            }
        }
        let mut out = String::new();
        let _ = write!(out, "| collection | split | queries |");
        for mode in &modes {
            let _ = write!(out, " {} |", cell(mode));
        }
        out.push_str("\n|---|---|---|");
        for _ in &modes {
            out.push_str("--:|");
        }
        out.push('\n');
        for (collection, split, queries) in lines {
            let values: Vec<Option<f64>> = modes
                .iter()
                .map(|mode| {
                    self.rows
                        .iter()
                        .find(|r| r.key() == (collection, split, queries, mode))
                        .and_then(|r| r.score(metric))
                })
                .collect();
            // Bold every value that rounds to the best one: a 3-decimal tie is a tie to the reader.
            let best = values
                .iter()
                .flatten()
                .copied()
                .reduce(f64::max)
                .map(|b| fmt_score(Some(b)));
            let _ = write!(out, "| {} | {} | {} |", cell(collection), cell(split), cell(queries));
            for v in values {
                let s = fmt_score(v);
                if v.is_some() && modes.len() > 1 && best.as_deref() == Some(s.as_str()) {
                    let _ = write!(out, " **{s}** |");
                } else {
                    let _ = write!(out, " {s} |");
                }
            }
            out.push('\n');
        }
        out
    }

    /// A Markdown document: `title`, `preamble`, then a pivot (modes side by side) for each of the
    /// first two metrics, then the full table.
    pub fn to_document(&self, title: &str, preamble: &str) -> String {
        let mut out = format!("# {title}\n\n{preamble}\n\n");
        for metric in self.metrics.iter().take(2) {
            let _ = write!(out, "## {metric}\n\n{}\n", self.to_markdown_pivot(*metric));
        }
        let _ = write!(out, "## All metrics\n\n{}", self.to_markdown());
        out
    }

    /// Pretty JSON of the whole table.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a results table always serialises") + "\n"
    }

    /// Writes [`ResultsTable::to_json`] to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json())
            .with_context(|| format!("writing results {}", path.display()))
    }

    /// Reads a table written by [`ResultsTable::write_json`].
    pub fn read_json(path: &Path) -> Result<ResultsTable> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading results {}", path.display()))?;
        let table: ResultsTable = serde_json::from_str(&text)
            .with_context(|| format!("parsing results {}", path.display()))?;
        for row in &table.rows {
            for name in row.scores.keys() {
                if name.parse::<Metric>().is_err() {
                    bail!(
                        "{}: row {}/{}/{} has unknown metric {name:?}",
                        path.display(),
                        row.collection,
                        row.split,
                        row.mode
                    );
                }
            }
        }
        Ok(table)
    }
}
