//! Relevance judgements (qrels): per query, document id → graded relevance.
//!
//! Two on-disk formats: TREC (`qid iter docid rel`, whitespace separated) and BEIR
//! (`qrels/<split>.tsv`: header `query-id<TAB>corpus-id<TAB>score`, then one judgement a line).
//! A relevance ≤ 0 means "judged non-relevant" (trec_eval's default relevance level is 1).
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::run::check_token;

/// Relevance judgements: query id → (document id → relevance).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qrels {
    queries: BTreeMap<String, HashMap<String, i32>>,
}

impl Qrels {
    /// No judgements.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one judgement. Errors when the pair is already judged (the formats allow one
    /// judgement per pair; a second one is almost always a mistake in the file).
    pub fn insert(
        &mut self,
        query_id: impl Into<String>,
        doc_id: impl Into<String>,
        relevance: i32,
    ) -> Result<()> {
        let (query_id, doc_id) = (query_id.into(), doc_id.into());
        let judged = self.queries.entry(query_id.clone()).or_default();
        if judged.contains_key(&doc_id) {
            bail!("query {query_id:?}: document {doc_id:?} is judged twice");
        }
        judged.insert(doc_id, relevance);
        Ok(())
    }

    /// Query ids with at least one judgement (relevant or not), in byte order.
    pub fn query_ids(&self) -> impl Iterator<Item = &str> {
        self.queries.keys().map(String::as_str)
    }

    /// Number of judged queries.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// True when nothing is judged.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Whether `query_id` has any judgement.
    pub fn contains(&self, query_id: &str) -> bool {
        self.queries.contains_key(query_id)
    }

    /// The judgements of `query_id`.
    pub fn judgements(&self, query_id: &str) -> Option<&HashMap<String, i32>> {
        self.queries.get(query_id)
    }

    /// Number of documents judged relevant (relevance ≥ 1) for `query_id`.
    pub fn num_relevant(&self, query_id: &str) -> usize {
        self.queries
            .get(query_id)
            .map_or(0, |j| j.values().filter(|&&r| r >= 1).count())
    }

    /// Total number of judgements.
    pub fn num_judgements(&self) -> usize {
        self.queries.values().map(HashMap::len).sum()
    }

    /// Reads a TREC qrels file (`qid iter docid rel`; the `iter` column is ignored, as in trec_eval).
    /// Blank lines are skipped. Errors name the file and line.
    pub fn read_trec(path: &Path) -> Result<Qrels> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening TREC qrels {}", path.display()))?;
        Self::parse_trec(BufReader::new(file), &path.display().to_string())
    }

    /// Parses TREC qrels from any reader; `source` names it in errors.
    pub fn parse_trec(reader: impl BufRead, source: &str) -> Result<Qrels> {
        let mut qrels = Qrels::new();
        let mut first_line = HashMap::new();
        for (i, line) in reader.lines().enumerate() {
            let lineno = i + 1;
            let line = line.with_context(|| format!("{source}:{lineno}: reading line"))?;
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() != 4 {
                bail!(
                    "{source}:{lineno}: expected 4 fields `qid iter docid rel`, found {}",
                    fields.len()
                );
            }
            let rel = parse_relevance(fields[3])
                .with_context(|| format!("{source}:{lineno}: bad relevance"))?;
            qrels.add_line(fields[0], fields[2], rel, lineno, &mut first_line, source)?;
        }
        Ok(qrels)
    }

    /// Reads a BEIR qrels file (`qrels/<split>.tsv`): tab-separated `query-id corpus-id score`,
    /// with a header line. The first line is taken as the header when its score column is not a
    /// number (BEIR's own loader always skips line 1, which would silently drop a judgement from a
    /// header-less file). Errors name the file and line.
    pub fn read_beir(path: &Path) -> Result<Qrels> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening BEIR qrels {}", path.display()))?;
        Self::parse_beir(BufReader::new(file), &path.display().to_string())
    }

    /// Parses BEIR qrels TSV from any reader; `source` names it in errors.
    pub fn parse_beir(reader: impl BufRead, source: &str) -> Result<Qrels> {
        let mut qrels = Qrels::new();
        let mut first_line = HashMap::new();
        for (i, line) in reader.lines().enumerate() {
            let lineno = i + 1;
            let line = line.with_context(|| format!("{source}:{lineno}: reading line"))?;
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() != 3 {
                bail!(
                    "{source}:{lineno}: expected 3 tab-separated fields `query-id corpus-id score`, found {}",
                    fields.len()
                );
            }
            let rel = match parse_relevance(fields[2]) {
                Ok(rel) => rel,
                Err(_) if lineno == 1 => continue, // the header
                Err(e) => return Err(e.context(format!("{source}:{lineno}: bad score"))),
            };
            let (qid, docid) = (fields[0].trim(), fields[1].trim());
            if qid.is_empty() || docid.is_empty() {
                bail!("{source}:{lineno}: empty query-id or corpus-id");
            }
            qrels.add_line(qid, docid, rel, lineno, &mut first_line, source)?;
        }
        Ok(qrels)
    }

    fn add_line(
        &mut self,
        qid: &str,
        docid: &str,
        rel: i32,
        lineno: usize,
        first_line: &mut HashMap<(String, String), usize>,
        source: &str,
    ) -> Result<()> {
        if let Some(prev) = first_line.insert((qid.to_string(), docid.to_string()), lineno) {
            bail!(
                "{source}:{lineno}: query {qid:?} judges document {docid:?} twice (first on line {prev})"
            );
        }
        self.queries
            .entry(qid.to_string())
            .or_default()
            .insert(docid.to_string(), rel);
        Ok(())
    }

    /// Writes TREC qrels (`qid 0 docid rel`), queries and documents in byte order.
    pub fn write_trec(&self, out: &mut impl Write) -> Result<()> {
        for (qid, judged) in &self.queries {
            check_token(qid, "query id")?;
            let mut docs: Vec<(&String, &i32)> = judged.iter().collect();
            docs.sort();
            for (docid, rel) in docs {
                check_token(docid, "document id")?;
                writeln!(out, "{qid} 0 {docid} {rel}")?;
            }
        }
        Ok(())
    }

    /// Writes TREC qrels to `path` (see [`Qrels::write_trec`]).
    pub fn write_trec_file(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("creating TREC qrels {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        self.write_trec(&mut out)
            .and_then(|()| out.flush().map_err(Into::into))
            .with_context(|| format!("writing TREC qrels {}", path.display()))
    }
}

/// An integer relevance; `2.0`-style integral decimals are accepted too (some BEIR exports write them).
fn parse_relevance(field: &str) -> Result<i32> {
    let field = field.trim();
    if let Ok(rel) = field.parse::<i32>() {
        return Ok(rel);
    }
    match field.parse::<f64>() {
        Ok(x) if x.fract() == 0.0 && x.abs() <= i32::MAX as f64 => Ok(x as i32),
        _ => bail!("relevance {field:?} is not an integer"),
    }
}
