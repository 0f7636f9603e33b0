//! Retrieval runs: per query, a list of (document id, score), and the TREC run format
//! (`qid Q0 docid rank score tag`, whitespace separated).
//!
//! A [`Run`] keeps documents as they were given; [`Run::ranking`] orders them the way
//! trec_eval does, which is what every metric and the TREC writer use.
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// One retrieved document of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredDoc {
    /// External document id (BEIR `_id`).
    pub doc_id: String,
    /// Retrieval score; larger is better. Always finite.
    pub score: f64,
}

/// A retrieval run: query id → retrieved documents (any order; see [`Run::ranking`]).
///
/// A query may be present with an empty list: it then counts as "retrieved nothing", as a query
/// with an empty dict does in pytrec_eval. (A TREC run file cannot express that; see
/// [`crate::eval::Averaging`].)
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    queries: BTreeMap<String, Vec<ScoredDoc>>,
}

/// trec_eval's order: score descending, then document id descending (byte-wise, like `strcmp`).
///
/// This is `comp_sim_docno` in trec_eval's `form_res_rels.c`; pytrec_eval uses the same code, and
/// `tests/eval_metrics.rs` checks the tie order against it.
pub fn trec_order(a: &ScoredDoc, b: &ScoredDoc) -> Ordering {
    b.score
        .partial_cmp(&a.score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| b.doc_id.as_bytes().cmp(a.doc_id.as_bytes()))
}

impl Run {
    /// An empty run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the documents retrieved for `query_id`, replacing any earlier list.
    ///
    /// Errors on a non-finite score or a document listed twice (trec_eval rejects both).
    pub fn insert(
        &mut self,
        query_id: impl Into<String>,
        docs: impl IntoIterator<Item = (String, f64)>,
    ) -> Result<()> {
        let query_id = query_id.into();
        let mut seen = HashSet::new();
        let mut list = Vec::new();
        for (doc_id, score) in docs {
            if !score.is_finite() {
                bail!("query {query_id:?}: document {doc_id:?} has a non-finite score {score}");
            }
            if !seen.insert(doc_id.clone()) {
                bail!("query {query_id:?}: document {doc_id:?} is listed twice");
            }
            list.push(ScoredDoc { doc_id, score });
        }
        self.queries.insert(query_id, list);
        Ok(())
    }

    /// Query ids in the run, in byte order.
    pub fn query_ids(&self) -> impl Iterator<Item = &str> {
        self.queries.keys().map(String::as_str)
    }

    /// Number of queries in the run (including those that retrieved nothing).
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// True when the run holds no query.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Whether `query_id` is in the run (possibly with no documents).
    pub fn contains(&self, query_id: &str) -> bool {
        self.queries.contains_key(query_id)
    }

    /// The documents of `query_id` as stored (not sorted).
    pub fn docs(&self, query_id: &str) -> Option<&[ScoredDoc]> {
        self.queries.get(query_id).map(Vec::as_slice)
    }

    /// The documents of `query_id` in trec_eval's rank order ([`trec_order`]).
    pub fn ranking(&self, query_id: &str) -> Option<Vec<&ScoredDoc>> {
        let docs = self.queries.get(query_id)?;
        let mut ranked: Vec<&ScoredDoc> = docs.iter().collect();
        ranked.sort_by(|a, b| trec_order(a, b));
        Some(ranked)
    }

    /// Reads a TREC run file (`qid Q0 docid rank score tag`).
    ///
    /// As trec_eval does, the rank column is ignored (documents are ranked by score, ties by
    /// document id) and the second and sixth columns are not interpreted. Blank lines are
    /// skipped. Errors name the file and line.
    pub fn read_trec(path: &Path) -> Result<Run> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening TREC run {}", path.display()))?;
        Self::parse_trec(BufReader::new(file), &path.display().to_string())
    }

    /// Parses a TREC run from any reader; `source` names it in errors.
    pub fn parse_trec(reader: impl BufRead, source: &str) -> Result<Run> {
        let mut queries: BTreeMap<String, Vec<ScoredDoc>> = BTreeMap::new();
        // Where each (query, doc) pair was first seen, to name both lines on a duplicate.
        let mut first_line: std::collections::HashMap<(String, String), usize> =
            std::collections::HashMap::new();
        for (i, line) in reader.lines().enumerate() {
            let lineno = i + 1;
            let line = line.with_context(|| format!("{source}:{lineno}: reading line"))?;
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() != 6 {
                bail!(
                    "{source}:{lineno}: expected 6 fields `qid Q0 docid rank score tag`, found {}",
                    fields.len()
                );
            }
            let (qid, docid) = (fields[0], fields[2]);
            fields[3].parse::<i64>().map_err(|_| {
                anyhow::anyhow!("{source}:{lineno}: rank {:?} is not an integer", fields[3])
            })?;
            let score: f64 = fields[4].parse().map_err(|_| {
                anyhow::anyhow!("{source}:{lineno}: score {:?} is not a number", fields[4])
            })?;
            if !score.is_finite() {
                bail!("{source}:{lineno}: score {:?} is not finite", fields[4]);
            }
            if let Some(prev) = first_line.insert((qid.to_string(), docid.to_string()), lineno) {
                bail!(
                    "{source}:{lineno}: document {docid:?} is listed twice for query {qid:?} (first on line {prev})"
                );
            }
            queries.entry(qid.to_string()).or_default().push(ScoredDoc {
                doc_id: docid.to_string(),
                score,
            });
        }
        Ok(Run { queries })
    }

    /// Writes the run in TREC format: queries in byte order, each in trec_eval rank order with
    /// ranks from 1, scores printed so that they read back bit-identical.
    ///
    /// Queries with no documents produce no line (the format cannot express them). Errors when
    /// an id or the tag is empty or contains whitespace, which would corrupt the columns.
    pub fn write_trec(&self, out: &mut impl Write, tag: &str) -> Result<()> {
        check_token(tag, "run tag")?;
        let mut buf = String::new();
        for qid in self.queries.keys() {
            check_token(qid, "query id")?;
            for (rank, doc) in self.ranking(qid).unwrap_or_default().into_iter().enumerate() {
                check_token(&doc.doc_id, "document id")?;
                // `{}` on f64 prints the shortest string that parses back to the same value.
                writeln!(buf, "{qid} Q0 {} {} {} {tag}", doc.doc_id, rank + 1, doc.score)
                    .expect("writing to a String");
            }
            out.write_all(buf.as_bytes())?;
            buf.clear();
        }
        Ok(())
    }

    /// Writes the run to `path` in TREC format (see [`Run::write_trec`]).
    pub fn write_trec_file(&self, path: &Path, tag: &str) -> Result<()> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("creating TREC run {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        self.write_trec(&mut out, tag)
            .and_then(|()| out.flush().map_err(Into::into))
            .with_context(|| format!("writing TREC run {}", path.display()))
    }
}

/// TREC files are whitespace-separated: an id with whitespace would shift every column.
pub(crate) fn check_token(token: &str, what: &str) -> Result<()> {
    if token.is_empty() || token.chars().any(char::is_whitespace) {
        bail!("{what} {token:?} is empty or contains whitespace: it cannot be written in TREC format");
    }
    Ok(())
}
