//! Exhaustive dense retrieval: every query of a split scored against every document of the
//! collection's corpus, without an index. Queries go through one encoder, documents through
//! another (a student and its teacher, say) in the role asked for: `passage` is how an index
//! encodes documents, `query` is E5's convention for sentence-to-sentence sets such as Tatoeba
//! and SIB. Meant for small collections and for comparing encoders; searching an index is the
//! engine's job (`optical eval --modes dense`).
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::beir::BeirCollection;
use super::metrics::{Averaging, Evaluation, Metric, evaluate};
use super::run::Run;
use crate::corpus::read_corpus;
use crate::encoder::{Encoder, EncoderInfo, Role};
use crate::engine::passage_text;

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

/// The documents of a collection's corpus as `(id, text)`, the text being what an index's
/// encoder sees ([`passage_text`]). A bad line is an error naming it.
pub fn corpus_passages(collection: &BeirCollection) -> Result<Vec<(String, String)>> {
    let path = collection.corpus_path()?;
    let corpus = read_corpus(&path)?;
    if let Some(first) = corpus.bad.first() {
        bail!("{first} ({} bad line{} in all)", corpus.bad.len(), if corpus.bad.len() == 1 { "" } else { "s" });
    }
    Ok(corpus.docs.into_iter().map(|d| { let text = passage_text(&d.title, &d.text); (d.id, text) }).collect())
}

/// Encodes `docs` with `encoder` in `role`: `(id, unit vector)`.
pub fn encode_documents(docs: &[(String, String)], encoder: &Encoder, role: Role) -> Result<Vec<(String, Vec<f32>)>> {
    let texts: Vec<&str> = docs.iter().map(|d| d.1.as_str()).collect();
    let vectors = encoder
        .encode(&texts, role)
        .with_context(|| format!("encoding {} documents with {}", texts.len(), encoder.info().name))?;
    Ok(docs.iter().map(|d| d.0.clone()).zip(vectors).collect())
}

/// The `k` best of `docs` for the query vector `v`, by dot product (cosine: the encoders give
/// unit vectors), best first; equal scores keep corpus order.
pub fn rank_documents(v: &[f32], docs: &[(String, Vec<f32>)], k: usize) -> Vec<(String, f64)> {
    let mut scored: Vec<(usize, f32)> = docs.iter().enumerate().map(|(j, d)| (j, dot(v, &d.1))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.truncate(k);
    scored.into_iter().map(|(j, s)| (docs[j].0.clone(), f64::from(s))).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scores every query of `collection` (split `split`, or the default split: see
/// [`BeirCollection::choose_split`]) against every document, queries through `query_encoder`,
/// documents through `doc_encoder` in `doc_role`, and evaluates the top `k` with
/// [`Metric::defaults`]. The two encoders must write into one embedding space.
pub fn dense_eval(
    collection: &std::path::Path,
    split: Option<&str>,
    query_encoder: &Encoder,
    doc_encoder: &Encoder,
    doc_role: Role,
    k: usize,
) -> Result<(DenseEval, Evaluation)> {
    // Both checked again below; here they fail before the documents' long encoding.
    query_encoder.info().check_compatible(doc_encoder.info()).context("query and document encoders")?;
    let c = BeirCollection::open(collection)?;
    c.choose_split(split)?;
    let docs = encode_documents(&corpus_passages(&c)?, doc_encoder, doc_role)?;
    dense_eval_encoded(&c, split, query_encoder, doc_encoder.info(), &docs, k)
}

/// [`dense_eval`] against documents encoded beforehand ([`encode_documents`] of
/// [`corpus_passages`] by the encoder `doc_info` describes): several query encoders compared on
/// one collection encode its documents once.
pub fn dense_eval_encoded(
    c: &BeirCollection,
    split: Option<&str>,
    query_encoder: &Encoder,
    doc_info: &EncoderInfo,
    docs: &[(String, Vec<f32>)],
    k: usize,
) -> Result<(DenseEval, Evaluation)> {
    query_encoder.info().check_compatible(doc_info).context("query and document encoders")?;
    let split = c.choose_split(split)?;
    let data = c.load_split(&split, None)?;
    let texts: Vec<&str> = data.queries.iter().map(|q| q.text.as_str()).collect();
    let qv = query_encoder.encode(&texts, Role::Query)?;
    let mut run = Run::new();
    for (q, v) in data.queries.iter().zip(&qv) {
        run.insert(q.id.clone(), rank_documents(v, docs, k))?;
    }
    let metrics = Metric::defaults();
    let ev = evaluate(&run, &data.qrels, &metrics, Averaging::AllQrels);
    let summary = DenseEval {
        collection: c.name(),
        split,
        query_model: query_encoder.info().name.clone(),
        doc_model: doc_info.name.clone(),
        queries: data.queries.len(),
        docs: docs.len(),
        metrics: metrics.iter().zip(&ev.mean).map(|(m, v)| (m.to_string(), *v)).collect(),
    };
    Ok((summary, ev))
}
