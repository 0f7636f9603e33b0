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
use std::io::{BufRead, Write};

use optical::encoder::{Encoder, EncoderOptions, Role, default_device};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(a.len() == 7 || a.len() == 8, "usage: maxsim_probe CORPUS.jsonl.gz QUERIES.jsonl RUN.trec QUERY_MODEL_DIR DOC_MODEL_DIR OUT.tsv [DEPTH]");
    let (corpus, queries, run, student, e5, out) = (&a[1], &a[2], &a[3], &a[4], &a[5], &a[6]);
    let depth: usize = a.get(7).map_or(Ok(20), |d| d.parse()).map_err(|e| anyhow::anyhow!("DEPTH {:?}: {e}", a[7]))?;
    let dev = default_device();
    let opts = EncoderOptions::for_search();
    let qenc = Encoder::load_with(student, &dev, &opts)?;
    let penc = Encoder::load_with(e5, &dev, &opts)?;
    // The run's top `depth` per query.
    let mut top: HashMap<String, Vec<String>> = HashMap::new();
    for line in std::io::BufReader::new(std::fs::File::open(run)?).lines() {
        let line = line?;
        let f: Vec<&str> = line.split_whitespace().collect();
        let v = top.entry(f[0].to_string()).or_default();
        if v.len() < depth { v.push(f[2].to_string()); }
    }
    let need: HashSet<&String> = top.values().flatten().collect();
    let mut texts: HashMap<String, String> = HashMap::new();
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(corpus)?);
    for line in std::io::BufReader::new(gz).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let id = v["_id"].as_str().unwrap().to_string();
        if need.contains(&id) {
            texts.insert(id, optical::engine::passage_text(v["title"].as_str().unwrap_or(""), v["text"].as_str().unwrap_or("")));
        }
    }
    let ids: Vec<String> = texts.keys().cloned().collect();
    eprintln!("{} passages to encode", ids.len());
    let mut pstates = HashMap::new();
    for chunk in ids.chunks(256) {
        let t: Vec<&str> = chunk.iter().map(|i| texts[i].as_str()).collect();
        for (id, s) in chunk.iter().zip(penc.token_states(&t, Role::Passage)?) {
            pstates.insert(id.clone(), s);
        }
    }
    let mut qtexts = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(queries)?).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        qtexts.push((v["_id"].as_str().unwrap().to_string(), v["text"].as_str().unwrap().to_string()));
    }
    let qtexts: Vec<_> = qtexts.into_iter().filter(|(q, _)| top.contains_key(q)).collect();
    let qs = qenc.token_states(&qtexts.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), Role::Query)?;
    let norm = |r: &[f32]| { let n = r.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12); r.iter().map(|x| x / n).collect::<Vec<f32>>() };
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    for ((qid, _), q) in qtexts.iter().zip(&qs) {
        let qrows: Vec<Vec<f32>> = (0..q.ids.len()).filter(|&i| q.content[i]).map(|i| norm(q.row(i))).collect();
        for d in &top[qid] {
            let p = &pstates[d];
            let prows: Vec<Vec<f32>> = (0..p.ids.len()).filter(|&i| p.content[i]).map(|i| norm(p.row(i))).collect();
            let s: f32 = qrows.iter().map(|qr| prows.iter().map(|pr| qr.iter().zip(pr).map(|(a, b)| a * b).sum::<f32>()).fold(f32::MIN, f32::max)).sum::<f32>() / qrows.len().max(1) as f32;
            writeln!(w, "{qid}\t{d}\t{s}")?;
        }
    }
    Ok(())
}
