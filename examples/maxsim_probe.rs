//! Late-interaction scores for reranking studies (docs/search.md, "What fusion cannot add"):
//! for the top passages of each query in a TREC run (20, or DEPTH), the MaxSim score between the query
//! encoder's token states and the document encoder's passage token states — the mean over the
//! query's content tokens of the best cosine to any content token of the passage (ColBERT's
//! score, on models that were not trained for it). The student's tokens are distilled toward
//! e5's tokens of the English translation (token-level OT), which is what makes the score
//! cross-lingual. Writes `query<TAB>passage<TAB>score`; `scripts/rerank_study.py` scores it.
//!
//!   cargo run --release --example maxsim_probe -- CORPUS.jsonl.gz QUERIES.jsonl RUN.trec \
//!       QUERY_MODEL_DIR DOC_MODEL_DIR OUT.tsv [DEPTH]
//!
//! Both encoders run as indexing and search do (int8 where the CPU has a fast kernel);
//! `MAXSIM_DOC_LEN=N` cuts the passages to N tokens (e5's own limit is 128); `MAXSIM_DUMP=DIR`
//! also writes the token rows for `scripts/token_compression_study.py`. `optical eval
//! --rerank` runs the same score inside the search pipeline; this probe writes the raw scores
//! so that a grid of weights can be scored offline.
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use optical::encoder::{Encoder, EncoderOptions, Role, default_device};
use optical::engine::passage_text;
use optical::eval::{Run, read_queries};
use optical::search::late::{TokenRows, maxsim};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    ensure!(a.len() == 7 || a.len() == 8, "usage: maxsim_probe CORPUS.jsonl.gz QUERIES.jsonl RUN.trec QUERY_MODEL_DIR DOC_MODEL_DIR OUT.tsv [DEPTH]");
    let (corpus, queries, run, query_model, doc_model, out) = (&a[1], &a[2], &a[3], &a[4], &a[5], &a[6]);
    let depth: usize = match a.get(7) {
        Some(d) => d.parse().with_context(|| format!("DEPTH {d:?} is not a number"))?,
        None => 20,
    };
    let device = default_device();
    let options = EncoderOptions::for_search();
    let query_encoder = Encoder::load_with(query_model, &device, &options)?;
    let max_length = match std::env::var("MAXSIM_DOC_LEN") {
        Ok(n) => Some(n.parse().with_context(|| format!("MAXSIM_DOC_LEN {n:?} is not a number"))?),
        Err(_) => None,
    };
    let doc_options = EncoderOptions { max_length, ..EncoderOptions::for_search() };
    let doc_encoder = Encoder::load_with(doc_model, &device, &doc_options)?;

    // The run's top `depth` per query, in trec_eval's order.
    let run = Run::read_trec(Path::new(run))?;
    let top: HashMap<&str, Vec<&str>> = run
        .query_ids()
        .map(|q| (q, run.ranking(q).unwrap_or_default().into_iter().take(depth).map(|d| d.doc_id.as_str()).collect()))
        .collect();
    let needed: HashSet<&str> = top.values().flatten().copied().collect();

    // Each needed passage's content-token rows, unit length, encoded once.
    let corpus = optical::corpus::read_corpus(corpus)?;
    if let Some(first) = corpus.bad.first() {
        bail!("{first}");
    }
    let passages: Vec<(String, String)> =
        corpus.docs.into_iter().filter(|d| needed.contains(d.id.as_str())).map(|d| { let text = passage_text(&d.title, &d.text); (d.id, text) }).collect();
    eprintln!("{} passages to encode", passages.len());
    let mut passage_rows: HashMap<String, TokenRows> = HashMap::new();
    for chunk in passages.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|p| p.1.as_str()).collect();
        for ((id, _), states) in chunk.iter().zip(doc_encoder.token_states(&texts, Role::Passage)?) {
            passage_rows.insert(id.clone(), TokenRows::from_states(&states));
        }
    }

    let queries: Vec<_> = read_queries(Path::new(queries))?.into_iter().filter(|q| top.contains_key(q.id.as_str())).collect();
    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let query_states = query_encoder.token_states(&texts, Role::Query)?;
    if let Ok(dir) = std::env::var("MAXSIM_DUMP") {
        dump_rows(Path::new(&dir), &passage_rows, queries.iter().map(|q| q.id.as_str()).zip(query_states.iter().map(TokenRows::from_states)))?;
    }
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).with_context(|| format!("creating {out}"))?);
    for (q, states) in queries.iter().zip(&query_states) {
        let query_rows = TokenRows::from_states(states);
        for &d in &top[q.id.as_str()] {
            let rows = passage_rows.get(d).with_context(|| format!("{d} is in the run but not in {corpus_path}", corpus_path = a[1]))?;
            writeln!(w, "{}\t{d}\t{}", q.id, maxsim(&query_rows, rows))?;
        }
    }
    Ok(())
}

/// Writes the token rows for offline studies of stored, compressed token vectors:
/// `DIR/{passages,queries}.f32` (little-endian rows) and `.tsv` (`id<TAB>first row<TAB>rows`).
fn dump_rows<'a>(dir: &Path, passages: &HashMap<String, TokenRows>, queries: impl Iterator<Item = (&'a str, TokenRows)>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, items: &mut dyn Iterator<Item = (String, Vec<f32>, usize)>| -> anyhow::Result<()> {
        let mut data = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{name}.f32")))?);
        let mut index = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{name}.tsv")))?);
        let mut row = 0;
        for (id, flat, n) in items {
            writeln!(index, "{id}\t{row}\t{n}")?;
            for x in flat {
                data.write_all(&x.to_le_bytes())?;
            }
            row += n;
        }
        Ok(())
    };
    write("passages", &mut passages.iter().map(|(id, r)| (id.clone(), r.as_flat().to_vec(), r.len())))?;
    write("queries", &mut queries.map(|(id, r)| (id.to_string(), r.as_flat().to_vec(), r.len())))
}
