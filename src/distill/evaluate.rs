//! Exhaustive dense retrieval on a BEIR collection, to measure a student against its zero-shot
//! start: queries (language X) through the student, the English corpus through the teacher,
//! cosine scores, metrics from [`crate::eval`].
//!
//! This is a measuring tool for distillation (small collections such as Tatoeba and SIB: every
//! query is scored against every document); searching an index is the engine's job.
use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};

use super::bitext::open_maybe_gz;
use crate::encoder::{Encoder, Role};
use crate::eval::{Averaging, BeirCollection, Evaluation, Metric, Run, evaluate};

/// Dense-retrieval figures for one collection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DenseEval {
    /// Collection name.
    pub collection: String,
    /// Split evaluated.
    pub split: String,
    /// Query encoder (model name).
    pub query_model: String,
    /// Document encoder (model name).
    pub doc_model: String,
    /// Queries and documents.
    pub queries: usize,
    /// See `queries`.
    pub docs: usize,
    /// `(metric, mean)` in [`Metric::defaults`] order.
    pub metrics: Vec<(String, f64)>,
}

#[derive(Deserialize)]
struct CorpusDoc {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
}

/// Reads `(id, "title text")` for every document of a BEIR corpus file (plain or gzipped).
pub fn read_corpus(path: &Path) -> Result<Vec<(String, String)>> {
    let reader = open_maybe_gz(path)?;
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let d: CorpusDoc = serde_json::from_str(&line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        let text = if d.title.is_empty() { d.text } else { format!("{} {}", d.title, d.text) };
        out.push((d.id, text));
    }
    Ok(out)
}

/// Scores every query against every document of `collection` (split `split`, or the
/// collection's only / `test` split) and evaluates the top `k`.
pub fn dense_eval(
    collection: &Path,
    split: Option<&str>,
    query_encoder: &Encoder,
    doc_encoder: &Encoder,
    doc_role: Role,
    k: usize,
) -> Result<(DenseEval, Evaluation)> {
    query_encoder.info().check_compatible(doc_encoder.info()).context("query and document encoders")?;
    let c = BeirCollection::open(collection)?;
    let splits = c.splits()?;
    let split = match split {
        Some(s) => s.to_string(),
        None if splits.iter().any(|s| s == "test") => "test".to_string(),
        None => {
            ensure!(splits.len() == 1, "{}: several splits ({splits:?}); name one", collection.display());
            splits[0].clone()
        }
    };
    let data = c.load_split(&split, None)?;
    let corpus = read_corpus(&c.corpus_path()?)?;
    let qtexts: Vec<&str> = data.queries.iter().map(|q| q.text.as_str()).collect();
    let dtexts: Vec<&str> = corpus.iter().map(|d| d.1.as_str()).collect();
    let qv = query_encoder.encode(&qtexts, Role::Query)?;
    let dv = doc_encoder.encode(&dtexts, doc_role)?;
    let mut run = Run::new();
    for (q, v) in data.queries.iter().zip(&qv) {
        let mut scored: Vec<(usize, f32)> =
            dv.iter().enumerate().map(|(j, d)| (j, v.iter().zip(d).map(|(a, b)| a * b).sum())).collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.truncate(k);
        run.insert(q.id.clone(), scored.into_iter().map(|(j, s)| (corpus[j].0.clone(), s as f64)))?;
    }
    let metrics = Metric::defaults();
    let ev = evaluate(&run, &data.qrels, &metrics, Averaging::AllQrels);
    let summary = DenseEval {
        collection: c.name(),
        split,
        query_model: query_encoder.info().name.clone(),
        doc_model: doc_encoder.info().name.clone(),
        queries: data.queries.len(),
        docs: corpus.len(),
        metrics: metrics.iter().zip(&ev.mean).map(|(m, v)| (m.to_string(), *v)).collect(),
    };
    Ok((summary, ev))
}
