//! `optical psq …`: translation tables for the cross-lingual BM25 leg (PSQ).
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use optical::distill::bitext::read_bitexts;
use optical::translate::{Model1Options, Pruning, TranslationTable, train_model1, translate_query};

#[derive(Subcommand)]
pub enum PsqCommand {
    /// Train a translation table p(e | f) with IBM Model 1 from bitext (`X<TAB>English` lines,
    /// .tsv or .tsv.gz) and write it as a checksummed TSV.
    Build(BuildArgs),
    /// Show how a query is translated by a table.
    Translate {
        /// Translation table file.
        table: PathBuf,
        /// The query text.
        query: String,
    },
}

#[derive(Args)]
pub struct BuildArgs {
    /// Bitext files of one language (repeat or list several).
    #[arg(long, required = true, num_args = 1..)]
    pub bitext: Vec<PathBuf>,
    /// The bitext's non-English language (ISO 639-3): the queries the table translates.
    #[arg(long)]
    pub lang: String,
    /// Output file, e.g. `students/multilingual/psq/hau.tsv`.
    #[arg(long)]
    pub out: PathBuf,
    /// EM iterations.
    #[arg(long, default_value_t = Model1Options::default().iterations)]
    pub iterations: usize,
    /// Query-language words seen fewer times get no entry.
    #[arg(long, default_value_t = Model1Options::default().min_count)]
    pub min_count: usize,
    /// At most this many translations per word.
    #[arg(long, default_value_t = Pruning::default().top_k)]
    pub top_k: usize,
    /// Keep a word's translations until their probabilities sum to this.
    #[arg(long, default_value_t = Pruning::default().cumulative)]
    pub cumulative: f32,
    /// Drop translations less probable than this.
    #[arg(long, default_value_t = Pruning::default().min_prob)]
    pub min_prob: f32,
}

pub fn run(cmd: PsqCommand) -> Result<()> {
    match cmd {
        PsqCommand::Build(args) => build(args),
        PsqCommand::Translate { table, query } => {
            let table = TranslationTable::read(&table)?;
            for t in translate_query(&table, &query) {
                let kind = if t.translated { "translated" } else { "kept" };
                println!("{:<24} {:.4}  {kind} from {}", t.term, t.weight, t.from.join(" "));
            }
            Ok(())
        }
    }
}

fn build(args: BuildArgs) -> Result<()> {
    let pairs = read_bitexts(&args.bitext)?;
    let options = Model1Options {
        iterations: args.iterations,
        min_count: args.min_count,
        pruning: Pruning { top_k: args.top_k, cumulative: args.cumulative, min_prob: args.min_prob },
    };
    eprintln!("training IBM Model 1 on {} sentence pairs ({} iterations)", pairs.len(), options.iterations);
    let table = train_model1(&pairs, &args.lang, options)?;
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    table.write(&args.out)?;
    eprintln!("wrote {} ({} words, {} translations)", args.out.display(), table.len(), table.rows());
    Ok(())
}
