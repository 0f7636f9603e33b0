//! `optical index`: add documents from a JSONL file (or a BEIR corpus) to an index directory.
//!
//! A file is indexed as one commit. By default a file with any bad line indexes nothing: every
//! bad line is reported (file:line: reason) and the command fails, so an index never holds half
//! a file. With `--skip-invalid` the good lines are indexed and the bad ones reported.
//! Documents whose key already exists replace the old version (upsert).
//!
//! With `--model DIR` every document is encoded (title + text, the model's passage prefix) by
//! that encoder; a new index records the encoder and an existing one refuses any other. The
//! model directory is remembered beside the index ([`ENCODER_SOURCE_FILE`]) so that `optical
//! search` and later `optical index` runs can find it again.
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use optical::corpus::{BadLine, BadLineKind, CorpusReader};
use optical::encoder::{Encoder, default_device};
use optical::engine::{CommitInfo, Document, Index, IndexConfig, IndexWriter, VectorElem};
use optical::search::{EncodingWriter, open_or_create_for};
use serde::{Deserialize, Serialize};

/// File in the index directory naming the model directory of its document encoder. It is a
/// hint for the CLI only (the index's own record, with the weights fingerprint, is what is
/// checked), so a stale or missing file costs nothing but a `--model` flag.
pub const ENCODER_SOURCE_FILE: &str = "encoder-source.json";

/// Contents of [`ENCODER_SOURCE_FILE`].
#[derive(Serialize, Deserialize)]
pub struct EncoderSource {
    /// Absolute path of the model directory.
    pub model_dir: PathBuf,
    /// Weights fingerprint of the encoder loaded from it when the index was written.
    pub fingerprint: String,
}

/// The model directory recorded beside the index at `dir`, if any and still present.
pub fn recorded_model_dir(dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dir.join(ENCODER_SOURCE_FILE)).ok()?;
    let src: EncoderSource = serde_json::from_str(&text).ok()?;
    src.model_dir.is_dir().then_some(src.model_dir)
}

fn record_model_dir(dir: &Path, encoder: &Encoder) -> Result<()> {
    let model_dir = std::fs::canonicalize(encoder.dir()).unwrap_or_else(|_| encoder.dir().to_path_buf());
    let src = EncoderSource { model_dir, fingerprint: encoder.info().fingerprint.clone() };
    let path = dir.join(ENCODER_SOURCE_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&src)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// Loads an encoder model directory on the default device, naming it on failure.
pub fn load_encoder(dir: &Path) -> Result<Encoder> {
    Encoder::load(dir, &default_device()).with_context(|| format!("loading model {}", dir.display()))
}

/// At most this many bad lines are printed one by one.
const MAX_REPORTED: usize = 50;

#[derive(Args)]
pub struct IndexArgs {
    /// Index directory (created if absent).
    pub dir: PathBuf,
    /// JSONL documents (`{"id","title","text","lang"}` per line; BEIR `_id` and `.gz` accepted).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Language of documents whose line has no `lang` field.
    #[arg(long, default_value = "und")]
    pub lang: String,
    /// Index the good lines of a file that has bad ones (the bad ones are still reported).
    #[arg(long)]
    pub skip_invalid: bool,
    /// When creating the index: vector dimension (documents then need a `vector` field). On an
    /// existing index it must match.
    #[arg(long)]
    pub dim: Option<usize>,
    /// When creating the index: vector element type (f32, i8 or f32+i8; default f32). On an
    /// existing index it must match.
    #[arg(long)]
    pub elem: Option<VectorElem>,
    /// Encoder model directory: documents are encoded with it (passage prefix). A new index
    /// records it; an existing index must have been built with the same model.
    #[arg(long, conflicts_with_all = ["dim"])]
    pub model: Option<PathBuf>,
}

/// Where documents go: straight to the engine (caller vectors or text only), or through the
/// encoder.
enum Sink<'a> {
    Plain(IndexWriter),
    Encoding(EncodingWriter<'a>),
}

impl Sink<'_> {
    fn contains(&self, key: &str) -> Result<bool> {
        match self {
            Sink::Plain(w) => Ok(w.id_of(key)?.is_some()),
            Sink::Encoding(w) => w.contains(key),
        }
    }
    fn upsert(&mut self, doc: Document) -> Result<()> {
        match self {
            Sink::Plain(w) => w.upsert(doc).map(|_| ()),
            Sink::Encoding(w) => w.upsert(doc),
        }
    }
    fn rollback(&mut self) -> Result<()> {
        match self {
            Sink::Plain(w) => w.rollback(),
            Sink::Encoding(w) => w.rollback(),
        }
    }
    fn commit(&mut self) -> Result<CommitInfo> {
        match self {
            Sink::Plain(w) => w.commit(),
            Sink::Encoding(w) => w.commit(),
        }
    }
}

pub fn run(args: IndexArgs) -> Result<()> {
    // Without --model, an existing index that records an encoder keeps using it (its model
    // directory is known from the last run), so documents never arrive without vectors.
    let model_dir = match &args.model {
        Some(m) => Some(m.clone()),
        None if args.dir.join("text").join("meta.json").exists() => {
            let existing = Index::open_read_only(&args.dir)
                .with_context(|| format!("opening index {}", args.dir.display()))?;
            match existing.config().encoder {
                None => None,
                Some(rec) => match recorded_model_dir(&args.dir) {
                    Some(dir) => {
                        eprintln!("using the index's encoder {} from {}", rec.name, dir.display());
                        Some(dir)
                    }
                    None => bail!(
                        "index {} computes its vectors with encoder {} (fingerprint {}): pass its model directory with --model",
                        args.dir.display(),
                        rec.name,
                        rec.fingerprint
                    ),
                },
            }
        }
        None => None,
    };
    let encoder = model_dir.as_deref().map(load_encoder).transpose()?;
    // The input is opened before the index: a missing file must not leave an empty index.
    let reader = CorpusReader::open(&args.input)?;
    let dir_existed = args.dir.exists();
    let existed = args.dir.join("text").join("meta.json").exists();
    let index = match &encoder {
        Some(enc) => open_or_create_for(&args.dir, enc)?,
        None => Index::open_or_create(&args.dir, IndexConfig { dim: args.dim, elem: args.elem.unwrap_or_default(), encoder: None })?,
    };
    if existed {
        check_creation_flags(&args, &index.config())?;
    }
    if let (true, Some(optical::engine::KeyMapState::Rebuilt(why))) = (existed, index.keymap_state()) {
        eprintln!("note: rebuilt the key map from the text index ({why})");
    }
    let result = index_file(&args, &index, encoder.as_ref(), reader);
    if result.is_err() && !existed && index.snapshot().generation() == 0 {
        // This run created the index and committed nothing: leave the directory as it was.
        if let Err(e) = index.discard_empty() {
            eprintln!("note: could not remove the empty index this run created: {e:#}");
        } else if !dir_existed {
            let _ = std::fs::remove_dir(&args.dir);
        }
    }
    result
}

/// `--dim` and `--elem` describe a new index; on an existing one they must agree with it, or
/// the user would believe they had taken effect.
fn check_creation_flags(args: &IndexArgs, config: &IndexConfig) -> Result<()> {
    if let Some(dim) = args.dim
        && config.dim != Some(dim)
    {
        let has = config.dim.map_or("no vectors (text-only)".to_string(), |d| format!("vectors of dimension {d}"));
        bail!("--dim {dim} does not match index {}, which stores {has}; --dim only applies when creating an index", args.dir.display());
    }
    if let Some(elem) = args.elem
        && elem != config.elem
    {
        bail!(
            "--elem {elem} does not match index {}, which stores {} vectors; --elem only applies when creating an index",
            args.dir.display(),
            config.elem
        );
    }
    Ok(())
}

/// Indexes one file as one commit (or nothing, on a bad line without `--skip-invalid`).
fn index_file(args: &IndexArgs, index: &Index, encoder: Option<&Encoder>, mut reader: CorpusReader) -> Result<()> {
    let bar = progress_bar(reader.file_len(), encoder.is_some());
    let mut writer = match encoder {
        Some(enc) => Sink::Encoding(EncodingWriter::new(index, enc)?.with_progress(bar.clone())),
        None => Sink::Plain(index.writer()?),
    };
    let mut bad = Vec::new();
    let (mut added, mut replaced) = (0u64, 0u64);
    while let Some(item) = reader.next_line()? {
        let (line, doc) = match item {
            Ok(d) => d,
            Err(b) => {
                if bad.len() < MAX_REPORTED {
                    bar.suspend(|| eprintln!("{b}"));
                }
                bad.push(b);
                continue;
            }
        };
        let d = Document {
            key: doc.id,
            title: doc.title,
            body: doc.text,
            lang: doc.lang.unwrap_or_else(|| args.lang.clone()),
            vector: doc.vector,
        };
        // A document the index refuses (a vector of the wrong dimension, a missing vector) is
        // a bad line like a malformed one: reported as file:line, skipped with --skip-invalid.
        if let Sink::Plain(w) = &writer
            && let Err(e) = w.validate(&d)
        {
            let b = BadLine { path: args.input.clone(), line, kind: BadLineKind::BadField, reason: e.to_string() };
            if bad.len() < MAX_REPORTED {
                bar.suspend(|| eprintln!("{b}"));
            }
            bad.push(b);
            continue;
        }
        if !bad.is_empty() && !args.skip_invalid {
            continue; // nothing will be committed: just keep scanning for more bad lines
        }
        if encoder.is_some() && d.vector.is_some() {
            bail!(
                "{}:{line}: document `{}` brings its own vector, but --model computes the vectors (drop one of them)",
                args.input.display(),
                d.key
            );
        }
        if writer.contains(&d.key)? {
            replaced += 1;
        }
        writer
            .upsert(d)
            .with_context(|| format!("{}:{line}", args.input.display()))?;
        added += 1;
        if encoder.is_none() {
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if bad.len() > MAX_REPORTED {
        eprintln!("... and {} more bad lines", bad.len() - MAX_REPORTED);
    }
    if !bad.is_empty() && !args.skip_invalid {
        writer.rollback()?;
        bail!(
            "{} bad line(s) in {}; nothing was indexed (fix them, or pass --skip-invalid to index the good lines)",
            bad.len(),
            args.input.display()
        );
    }
    let info = writer.commit()?;
    bar.finish_and_clear();
    if let Some(enc) = encoder {
        record_model_dir(&args.dir, enc)?;
    }
    println!(
        "indexed {added} documents ({replaced} replaced{}{}) from {}: {} documents at generation {}",
        if bad.is_empty() { String::new() } else { format!(", {} bad lines skipped", bad.len()) },
        encoder.map_or(String::new(), |e| format!(", encoded by {}", e.info().name)),
        args.input.display(),
        info.docs,
        info.generation
    );
    Ok(())
}

fn progress_bar(_file_len: Option<u64>, encoding: bool) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let what = if encoding { "documents encoded" } else { "documents" };
    bar.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {{human_pos}} {what}  {{per_sec}}  {{elapsed}}"))
            .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
