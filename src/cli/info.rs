//! `optical info`: what an index holds.
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use optical::engine::Index;

#[derive(Args)]
pub struct InfoArgs {
    /// Index directory.
    pub dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let index = Index::open_read_only(&args.dir)?;
    let snap = index.snapshot();
    let meta = snap.meta();
    let cfg = snap.config();
    let bytes = dir_size(&args.dir);
    if args.json {
        let v = serde_json::json!({
            "dir": args.dir,
            "format": meta.format,
            "generation": meta.generation,
            "documents": snap.num_docs(),
            "vectors": snap.num_vectors(),
            "dim": cfg.dim,
            "elem": cfg.elem.to_string(),
            "encoder": cfg.encoder,
            "token_codes": snap.codebook().map(|b| serde_json::json!({"fingerprint": cfg.token_codebook, "centroids": b.centroids(), "bits": b.bits(), "bytes_per_token": b.bytes_per_token()})),
            "vector_segments": meta.segments,
            "tombstones": snap.num_tombstones(),
            "next_id": meta.next_id,
            "text_segments": snap.num_text_segments(),
            "bytes": bytes,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("index        {}", args.dir.display());
    println!("format       {}", meta.format);
    println!("generation   {}", meta.generation);
    println!("documents    {}", snap.num_docs());
    match cfg.dim {
        None => println!("vectors      none (text-only index)"),
        Some(d) => println!(
            "vectors      {} live, dim {d}, {}, {} segment(s), {} tombstone(s)",
            snap.num_vectors(),
            cfg.elem,
            meta.segments.len(),
            snap.num_tombstones()
        ),
    }
    match &cfg.encoder {
        None => println!("encoder      (none recorded)"),
        Some(e) => println!(
            "encoder      {} (dim {}, space {}, fingerprint {})",
            e.name, e.dim, e.embedding_space, e.fingerprint
        ),
    }
    match snap.codebook() {
        None => println!("token codes  none (a rerank stage encodes passages at query time)"),
        Some(b) => println!(
            "token codes  {} centroids, {}-bit residuals, {} bytes a token (codebook {})",
            b.centroids(),
            b.bits(),
            b.bytes_per_token(),
            cfg.token_codebook.as_deref().unwrap_or("?")
        ),
    }
    println!("text         {} tantivy segment(s)", snap.num_text_segments());
    println!("next id      {}", meta.next_id);
    println!("size         {:.1} MiB", bytes as f64 / (1024.0 * 1024.0));
    Ok(())
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}
