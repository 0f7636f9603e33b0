//! `optical export`: an index's documents and vectors for a serving engine.
//!
//! - `--to opensearch-bulk DIR` writes files for OpenSearch: `bulk.ndjson` (the `_bulk` body:
//!   title, text, language and the vector as a `knn_vector`), `mapping.json` (the index
//!   settings and mapping) and `search-pipeline.json` (a hybrid search pipeline fusing the
//!   BM25 and k-NN sub-queries as Optical's default fusion does for cross-lingual queries).
//! - `--to milvus --uri URI --collection NAME` writes a Milvus collection. Milvus speaks gRPC
//!   (protobuf over HTTP/2); its maintained client is pymilvus, so the export runs in the Python
//!   package (`python -m optical.milvus export`, python/optical/milvus.py) with the interpreter
//!   `$OPTICAL_PYTHON` (default `python3`), which must have the `optical` wheel and pymilvus
//!   installed (docs/scaling.md says why not a Rust gRPC client).
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use optical::engine::Index;
use optical::search::fusion::DEFAULT_CROSS_WEIGHT;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A Milvus collection (dense + BM25 sparse vectors), through pymilvus.
    Milvus,
    /// Files for OpenSearch: `_bulk` NDJSON, the index mapping and a hybrid search pipeline.
    OpensearchBulk,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Index directory.
    pub dir: PathBuf,
    /// What to export to.
    #[arg(long)]
    pub to: Target,
    /// opensearch-bulk: the output directory (created; files in it are overwritten).
    #[arg(required_if_eq("to", "opensearch-bulk"))]
    pub out: Option<PathBuf>,
    /// milvus: the server, e.g. http://127.0.0.1:19530.
    #[arg(long, required_if_eq("to", "milvus"))]
    pub uri: Option<String>,
    /// The Milvus collection, or the OpenSearch index name the bulk file addresses.
    #[arg(long, default_value = "optical")]
    pub collection: String,
    /// milvus: drop an existing collection of that name first.
    #[arg(long)]
    pub replace: bool,
}

pub fn run(args: ExportArgs) -> Result<()> {
    match args.to {
        Target::OpensearchBulk => {
            let out = args.out.as_deref().context("--to opensearch-bulk needs an output directory")?;
            let n = opensearch_bulk(&args.dir, out, &args.collection)?;
            eprintln!("wrote {n} documents for OpenSearch index {:?} to {}", args.collection, out.display());
            Ok(())
        }
        Target::Milvus => milvus(&args),
    }
}

/// Runs the Python package's Milvus export.
fn milvus(args: &ExportArgs) -> Result<()> {
    let uri = args.uri.as_deref().context("--to milvus needs --uri")?;
    if !optical::engine::Index::exists(&args.dir) {
        // The library's own message, before a Python process starts.
        Index::open_read_only(&args.dir)?;
    }
    let python = std::env::var_os("OPTICAL_PYTHON").unwrap_or_else(|| "python3".into());
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "optical.milvus", "export"]).arg(&args.dir).args(["--uri", uri, "--collection", &args.collection]);
    if args.replace {
        cmd.arg("--replace");
    }
    let status = cmd.status().with_context(|| {
        format!("the Milvus export runs in the Python package; starting {} failed (set OPTICAL_PYTHON to a python with the optical wheel and pymilvus)", Path::new(&python).display())
    })?;
    if !status.success() {
        bail!(
            "the Milvus export (`{} -m optical.milvus export`) failed ({status}); it needs the optical wheel (scripts/build-wheel.sh) and pymilvus installed in that python (OPTICAL_PYTHON)",
            Path::new(&python).display()
        );
    }
    Ok(())
}

/// The weights of the OpenSearch pipeline, BM25 then dense: Optical's default fusion for
/// cross-lingual queries (`bylang:0.8:0.5`, docs/search.md).
const OPENSEARCH_WEIGHTS: [f64; 2] = [1.0 - DEFAULT_CROSS_WEIGHT as f64, DEFAULT_CROSS_WEIGHT as f64];

/// Writes `bulk.ndjson`, `mapping.json` and `search-pipeline.json` into `out`; returns the
/// number of documents. Documents are written in key order, so the files are reproducible.
pub fn opensearch_bulk(dir: &Path, out: &Path, name: &str) -> Result<u64> {
    let index = Index::open_read_only(dir)?;
    let snap = index.snapshot();
    let dim = snap.config().dim;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    let mut keys = snap.keys()?;
    keys.sort();
    let path = out.join("bulk.ndjson");
    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for (key, id) in &keys {
        let doc = snap.document(*id)?.with_context(|| format!("document {key} vanished from its snapshot"))?;
        let action = serde_json::json!({"index": {"_index": name, "_id": key}});
        let mut source = serde_json::json!({"title": doc.title, "text": doc.body, "lang": doc.lang});
        if dim.is_some() {
            let v = snap.vector(*id).with_context(|| format!("document {key} has no vector in {}", dir.display()))?;
            source["vector"] = serde_json::json!(v);
        }
        writeln!(w, "{action}\n{source}").with_context(|| format!("writing {}", path.display()))?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;

    // Text as Optical indexes it: language-neutral words, and an English-stemmed sub-field.
    let text_field = serde_json::json!({"type": "text", "analyzer": "standard", "fields": {"eng": {"type": "text", "analyzer": "english"}}});
    let mut properties = serde_json::json!({
        "title": text_field,
        "text": text_field,
        "lang": {"type": "keyword"},
    });
    let mut settings = serde_json::json!({"index": {"number_of_shards": 1}});
    if let Some(dim) = dim {
        // Unit vectors: inner product is their cosine, the score Optical's dense leg uses.
        properties["vector"] = serde_json::json!({
            "type": "knn_vector",
            "dimension": dim,
            "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct"},
        });
        settings["index"]["knn"] = serde_json::json!(true);
    }
    let mut meta = serde_json::json!({"optical_index": name});
    if let Some(enc) = &snap.config().encoder {
        meta["encoder"] = serde_json::json!({"name": enc.name, "dim": enc.dim, "fingerprint": enc.fingerprint, "embedding_space": enc.embedding_space});
    }
    let mapping = serde_json::json!({"settings": settings, "mappings": {"_meta": meta, "properties": properties}});
    write_json(&out.join("mapping.json"), &mapping)?;

    let pipeline = serde_json::json!({
        "description": format!("Optical's hybrid fusion for cross-lingual queries: z-scores of the BM25 and k-NN sub-queries (in that order), dense weight {DEFAULT_CROSS_WEIGHT}"),
        "phase_results_processors": [{
            "normalization-processor": {
                "normalization": {"technique": "z_score"},
                "combination": {
                    "technique": "arithmetic_mean",
                    "parameters": {"weights": OPENSEARCH_WEIGHTS}
                }
            }
        }]
    });
    write_json(&out.join("search-pipeline.json"), &pipeline)?;
    Ok(keys.len() as u64)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
