//! `optical search`: BM25 search over an index (dense scoring arrives with the encoder).
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use optical::engine::Index;

#[derive(Args)]
pub struct SearchArgs {
    /// Index directory.
    pub dir: PathBuf,
    /// Query text.
    pub query: String,
    /// Number of results.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Only documents in this language.
    #[arg(long)]
    pub lang: Option<String>,
    /// Print JSON (one object with the hits) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SearchArgs) -> Result<()> {
    let index = Index::open_read_only(&args.dir)?;
    let snap = index.snapshot();
    let hits = snap.bm25(&args.query, args.k, args.lang.as_deref())?;
    if args.json {
        let mut out = Vec::with_capacity(hits.len());
        for (rank, h) in hits.iter().enumerate() {
            let doc = snap.document(h.id)?;
            out.push(serde_json::json!({
                "rank": rank + 1,
                "key": h.key,
                "id": h.id,
                "score": h.score,
                "title": doc.as_ref().map(|d| d.title.as_str()),
                "lang": doc.as_ref().map(|d| d.lang.as_str()),
            }));
        }
        let v = serde_json::json!({ "query": args.query, "generation": snap.generation(), "hits": out });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if hits.is_empty() {
        println!("no results");
    }
    for (rank, h) in hits.iter().enumerate() {
        let doc = snap.document(h.id)?;
        let (title, body, lang) = doc.map(|d| (d.title, d.body, d.lang)).unwrap_or_default();
        let shown = if title.is_empty() { body } else { title };
        println!("{:>3}. {:>8.3}  {}  [{}]  {}", rank + 1, h.score, h.key, lang, clip(&shown, 90));
    }
    Ok(())
}

/// The first `n` characters of one line of text.
fn clip(s: &str, n: usize) -> String {
    let s = s.replace(['\n', '\t'], " ");
    if s.chars().count() <= n {
        s
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}
