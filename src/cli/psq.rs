//! `optical psq …`: translation tables for the cross-lingual BM25 leg (PSQ).
use std::path::PathBuf;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::{Args, Subcommand, ValueEnum};
use optical::distill::read_bitexts;
use optical::distill::ot::SinkhornSettings;
use optical::encoder::{self, Encoder, EncoderOptions};
use optical::translate::{
    Model1Options, OtPlanOptions, Pruning, TranslationTable, glossed_query, rendered_query, train_model1, train_ot_plans, translate_query,
};

#[derive(Subcommand)]
pub enum PsqCommand {
    /// Train a translation table p(e | f) from bitext (`X<TAB>English` lines, .tsv or .tsv.gz),
    /// with IBM Model 1 or from the OT plans between a student and a teacher, and write it as a
    /// checksummed TSV.
    Build(BuildArgs),
    /// Interpolate two tables of the same languages: WEIGHT · p_A(e | f) + (1 − WEIGHT) · p_B(e | f),
    /// pruned like a built table.
    Mix {
        /// The first table (weighted by `--weight`).
        a: PathBuf,
        /// The second table (weighted by 1 − `--weight`).
        b: PathBuf,
        /// Weight of the first table, in [0, 1].
        #[arg(long, default_value_t = 0.5)]
        weight: f32,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Show how a query is translated by a table: the BM25 terms, and the text the dense encoder reads.
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
    /// How p(e | f) is learned.
    #[arg(long, value_enum, default_value_t = Method::Model1)]
    pub method: Method,
    /// Use only the first N sentence pairs (all by default).
    #[arg(long)]
    pub max_pairs: Option<usize>,
    /// ot-plans: the model whose token states of the foreign sentence (as a query) align.
    #[arg(long, required_if_eq("method", "ot-plans"))]
    pub student: Option<PathBuf>,
    /// ot-plans: the model whose token states of the English sentence they align to.
    #[arg(long, required_if_eq("method", "ot-plans"))]
    pub teacher: Option<PathBuf>,
    /// ot-plans: entropic regularisation ε of the Sinkhorn solver.
    #[arg(long, default_value_t = OtPlanOptions::default().sinkhorn.epsilon)]
    pub epsilon: f32,
    /// ot-plans: Sinkhorn iterations.
    #[arg(long, default_value_t = OtPlanOptions::default().sinkhorn.iterations)]
    pub sinkhorn_iterations: usize,
    /// ot-plans: device of the encoders (cpu, cuda, cuda:N).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// ot-plans: tokens per sentence at most (special tokens included).
    #[arg(long, default_value_t = 128)]
    pub max_length: usize,
    /// model1: EM iterations.
    #[arg(long, default_value_t = Model1Options::default().iterations)]
    pub iterations: usize,
    /// Query-language words seen in fewer pairs get no entry.
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
        PsqCommand::Mix { a, b, weight, out } => {
            let mixed = TranslationTable::read(&a)?
                .mix(&TranslationTable::read(&b)?, weight, Pruning::default())
                .with_context(|| format!("mixing {} with {}", a.display(), b.display()))?;
            write_table(&mixed, &out)
        }
        PsqCommand::Translate { table, query } => {
            let table = TranslationTable::read(&table)?;
            for t in translate_query(&table, &query) {
                let kind = if t.translated { "translated" } else { "kept" };
                println!("{:<24} {:.4}  {kind} from {}", t.term, t.weight, t.from.join(" "));
            }
            println!("dense query: {}", glossed_query(&table, &query));
            println!("rerank rendering: {}", rendered_query(&table, &query));
            Ok(())
        }
    }
}

/// How a translation table is learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// IBM Model 1 EM over analyzer words.
    Model1,
    /// The OT plans between `--student` and `--teacher` token states, merged to analyzer words.
    OtPlans,
}

fn build(args: BuildArgs) -> Result<()> {
    let mut pairs = read_bitexts(&args.bitext)?;
    if let Some(n) = args.max_pairs {
        pairs.truncate(n);
    }
    let pruning = Pruning { top_k: args.top_k, cumulative: args.cumulative, min_prob: args.min_prob };
    let table = match args.method {
        Method::Model1 => {
            let options = Model1Options { iterations: args.iterations, min_count: args.min_count, pruning };
            eprintln!("training IBM Model 1 on {} sentence pairs ({} iterations)", pairs.len(), options.iterations);
            train_model1(&pairs, &args.lang, options)?
        }
        Method::OtPlans => {
            let options = OtPlanOptions {
                sinkhorn: SinkhornSettings { epsilon: args.epsilon, iterations: args.sinkhorn_iterations, centre: false },
                min_count: args.min_count,
                pruning,
                ..OtPlanOptions::default()
            };
            ensure!(options.sinkhorn.epsilon > 0.0, "--epsilon must be positive");
            let device = encoder::select_device(&args.device)?;
            let load = |dir: &PathBuf| {
                let options = EncoderOptions { max_length: Some(args.max_length), ..Default::default() };
                Encoder::load_with(dir, &device, &options).with_context(|| format!("loading model {}", dir.display()))
            };
            let student = load(args.student.as_ref().expect("clap requires --student"))?;
            let teacher = load(args.teacher.as_ref().expect("clap requires --teacher"))?;
            eprintln!(
                "aligning {} sentence pairs with OT plans (ε {}, {} iterations)",
                pairs.len(),
                options.sinkhorn.epsilon,
                options.sinkhorn.iterations
            );
            let total = pairs.len();
            let started = Instant::now();
            let mut last = Instant::now();
            train_ot_plans(&pairs, &args.lang, &student, &teacher, options, |done| {
                // A line every 10 s: the run takes minutes and must not be silent in a log.
                if last.elapsed() >= Duration::from_secs(10) || done == total {
                    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    eprintln!("ot-plans: {done}/{total} pairs ({rate:.1} pairs/s)");
                    last = Instant::now();
                }
            })?
        }
    };
    write_table(&table, &args.out)
}

fn write_table(table: &TranslationTable, out: &std::path::Path) -> Result<()> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    table.write(out)?;
    eprintln!("wrote {} ({} words, {} translations, {})", out.display(), table.len(), table.rows(), table.method);
    Ok(())
}
