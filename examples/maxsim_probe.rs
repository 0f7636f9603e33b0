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
//! Both encoders run as indexing and search do (int8 where the CPU has a fast kernel).
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use optical::encoder::{Encoder, EncoderOptions, Role, TokenStates, default_device};
use optical::engine::passage_text;
use optical::eval::{Run, read_queries};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let static_tokens = std::env::var("MAXSIM_STATIC").is_ok();
    let idf_weights = std::env::var("MAXSIM_IDF").is_ok();
    ensure!(a.len() == 7 || a.len() == 8, "usage: maxsim_probe CORPUS.jsonl.gz QUERIES.jsonl RUN.trec QUERY_MODEL_DIR DOC_MODEL_DIR OUT.tsv [DEPTH]");
    let (corpus, queries, run, query_model, doc_model, out) = (&a[1], &a[2], &a[3], &a[4], &a[5], &a[6]);
    let depth: usize = match a.get(7) {
        Some(d) => d.parse().with_context(|| format!("DEPTH {d:?} is not a number"))?,
        None => 20,
    };
    let device = default_device();
    let options = EncoderOptions::for_search();
    let query_encoder = Encoder::load_with(query_model, &device, &options)?;
    let doc_encoder = Encoder::load_with(doc_model, &device, &options)?;

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
        corpus.docs.into_iter().filter(|d| static_tokens || idf_weights || needed.contains(d.id.as_str())).map(|d| { let text = passage_text(&d.title, &d.text); (d.id, text) }).collect();
    eprintln!("{} passages to encode", passages.len());
    let mut passage_rows: HashMap<String, Vec<Vec<f32>>> = HashMap::new();
    let mut passage_ids: HashMap<String, Vec<u32>> = HashMap::new();
    let mut table: HashMap<u32, (Vec<f32>, usize)> = HashMap::new();
    let mut df: HashMap<u32, usize> = HashMap::new();
    let mut passage_tok: HashMap<String, Vec<u32>> = HashMap::new();
    for chunk in passages.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|p| p.1.as_str()).collect();
        for ((id, _), states) in chunk.iter().zip(doc_encoder.token_states(&texts, Role::Passage)?) {
            let rows = content_rows(&states);
            let unique: HashSet<u32> = (0..states.ids.len()).filter(|&i| states.content[i]).map(|i| states.ids[i]).collect();
            for t in unique { *df.entry(t).or_insert(0usize) += 1; }
            if idf_weights && needed.contains(id.as_str()) {
                passage_tok.insert(id.clone(), (0..states.ids.len()).filter(|&i| states.content[i]).map(|i| states.ids[i]).collect());
            }
            if static_tokens {
                let ids: Vec<u32> = (0..states.ids.len()).filter(|&i| states.content[i]).map(|i| states.ids[i]).collect();
                for (t, r) in ids.iter().zip(&rows) {
                    let e = table.entry(*t).or_insert_with(|| (vec![0.0; r.len()], 0));
                    e.0.iter_mut().zip(r).for_each(|(a, b)| *a += b);
                    e.1 += 1;
                }
                passage_ids.insert(id.clone(), ids);
            } else {
                passage_rows.insert(id.clone(), rows);
            }
        }
        eprint!(".");
    }
    if static_tokens {
        eprintln!("{} token ids in the table", table.len());
        let unit = |v: &Vec<f32>| { let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12); v.iter().map(|x| x / n).collect::<Vec<f32>>() };
        let table: HashMap<u32, Vec<f32>> = table.iter().map(|(t, (sum, _))| (*t, unit(sum))).collect();
        for (id, ids) in passage_ids {
            if needed.contains(id.as_str()) {
                let unique: HashSet<u32> = ids.into_iter().collect();
                passage_rows.insert(id, unique.iter().map(|t| table[t].clone()).collect());
            }
        }
    }

    let queries: Vec<_> = read_queries(Path::new(queries))?.into_iter().filter(|q| top.contains_key(q.id.as_str())).collect();
    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let query_states = query_encoder.token_states(&texts, Role::Query)?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).with_context(|| format!("creating {out}"))?);
    for (q, states) in queries.iter().zip(&query_states) {
        let query_rows = content_rows(states);
        for &d in &top[q.id.as_str()] {
            let rows = passage_rows.get(d).with_context(|| format!("{d} is in the run but not in {corpus_path}", corpus_path = a[1]))?;
            if idf_weights {
                let toks = &passage_tok[d];
                let n = passages.len() as f32;
                let idf: Vec<f32> = toks.iter().map(|t| (n / df[t] as f32).ln()).collect();
                let mut cols = Vec::new();
                for power in [1.0f32, 2.0] {
                    let (mut num, mut den) = (0.0f32, 0.0f32);
                    for q in &query_rows {
                        let (best, arg) = rows.iter().enumerate().map(|(j, p)| (q.iter().zip(p).map(|(a, b)| a * b).sum::<f32>(), j)).fold((f32::MIN, 0), |a, b| if b.0 > a.0 { b } else { a });
                        let wgt = idf[arg].powf(power);
                        num += wgt * best;
                        den += wgt;
                    }
                    cols.push(num / den.max(1e-12));
                }
                // idf-weighted passage side: mean over passage tokens with idf > 3 of best cosine to a query token
                writeln!(w, "{}\t{d}\t{}\t{}\t{}", q.id, maxsim(&query_rows, rows), cols[0], cols[1])?;
            } else {
                writeln!(w, "{}\t{d}\t{}", q.id, maxsim(&query_rows, rows))?;
            }
        }
    }
    Ok(())
}

/// The content tokens' states (no special or prefix tokens), scaled to unit length.
fn content_rows(states: &TokenStates) -> Vec<Vec<f32>> {
    (0..states.ids.len())
        .filter(|&i| states.content[i])
        .map(|i| {
            let row = states.row(i);
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            row.iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// Mean over the query rows of the best cosine to any passage row.
fn maxsim(query: &[Vec<f32>], passage: &[Vec<f32>]) -> f32 {
    let best = |q: &Vec<f32>| passage.iter().map(|p| q.iter().zip(p).map(|(a, b)| a * b).sum::<f32>()).fold(f32::MIN, f32::max);
    query.iter().map(best).sum::<f32>() / query.len().max(1) as f32
}
