//! `optical index`: add documents from a JSONL file (or a BEIR corpus) to an index directory.
//!
//! A file is indexed as one commit. By default a file with any bad line indexes nothing: every
//! bad line is reported (file:line: reason) and the command fails, so an index never holds half
//! a file. With `--skip-invalid` the good lines are indexed and the bad ones reported.
//! Documents whose key already exists replace the old version (upsert).
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use optical::corpus::CorpusReader;
use optical::engine::{Document, Index, IndexConfig, VectorElem};

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
    /// When creating the index: vector dimension (documents then need a `vector` field).
    #[arg(long)]
    pub dim: Option<usize>,
    /// When creating the index: vector element type (f32 or i8).
    #[arg(long, default_value = "f32")]
    pub elem: VectorElem,
}

pub fn run(args: IndexArgs) -> Result<()> {
    let config = IndexConfig { dim: args.dim, elem: args.elem, encoder: None };
    let index = Index::open_or_create(&args.dir, config)?;
    if let Some(optical::engine::KeyMapState::Rebuilt(why)) = index.keymap_state() {
        eprintln!("note: rebuilt the key map from the text index ({why})");
    }
    let mut writer = index.writer()?;
    let mut reader = CorpusReader::open(&args.input)?;
    let bar = progress_bar(reader.file_len());
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
        if !bad.is_empty() && !args.skip_invalid {
            continue; // nothing will be committed: just keep scanning for more bad lines
        }
        let d = Document {
            key: doc.id,
            title: doc.title,
            body: doc.text,
            lang: doc.lang.unwrap_or_else(|| args.lang.clone()),
            vector: doc.vector,
        };
        if writer.id_of(&d.key)?.is_some() {
            replaced += 1;
        }
        writer
            .upsert(d)
            .with_context(|| format!("{}:{line}", args.input.display()))?;
        added += 1;
        bar.inc(1);
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
    println!(
        "indexed {added} documents ({replaced} replaced{}) from {}: {} documents at generation {}",
        if bad.is_empty() { String::new() } else { format!(", {} bad lines skipped", bad.len()) },
        args.input.display(),
        info.docs,
        info.generation
    );
    Ok(())
}

fn progress_bar(_file_len: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} documents  {per_sec}  {elapsed}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
