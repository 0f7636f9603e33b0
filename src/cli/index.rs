//! `optical index`: add documents from a JSONL file (or a BEIR corpus) to an index directory,
//! through [`optical::ingest`] (which holds the bad-line policy and the encoder choice); this
//! module parses the arguments and prints.
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use optical::corpus::BadLine;
use optical::engine::VectorElem;
use optical::ingest::{IngestOptions, IngestReport, ingest};

/// At most this many bad lines are printed one by one.
const MAX_REPORTED: usize = 50;

/// Seconds between progress lines when stderr is not a terminal (a log file, a job runner): a
/// long indexing job must not be silent there. `OPTICAL_PROGRESS_SECS` overrides it.
const LOG_EVERY_SECS: f64 = 10.0;

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
    #[command(flatten)]
    pub precision: super::Precision,
}

pub fn run(args: IndexArgs) -> Result<()> {
    let options = IngestOptions {
        lang: args.lang,
        skip_invalid: args.skip_invalid,
        dim: args.dim,
        elem: args.elem,
        model: args.model,
        int8: args.precision.int8(),
        ..IngestOptions::default()
    };
    index_and_print(&args.dir, &args.input, options)
}

/// Indexes `input` into `dir` with `options`, printing bad lines as they come, a progress bar
/// on a terminal (progress lines elsewhere), and what was indexed.
pub fn index_and_print(dir: &Path, input: &Path, base: IngestOptions<'_>) -> Result<()> {
    let bar = progress_bar(base.model.is_some());
    let mut bad = 0usize;
    let mut print_bad = |b: &BadLine| {
        if bad < MAX_REPORTED {
            bar.suspend(|| eprintln!("{b}"));
        }
        bad += 1;
    };
    let options = IngestOptions { progress: bar.clone(), on_invalid: Some(&mut print_bad), ..base };
    let result = with_progress_lines(&bar, progress_line_interval(), || ingest(dir, input, options));
    bar.finish_and_clear();
    if bad > MAX_REPORTED {
        eprintln!("... and {} more bad lines", bad - MAX_REPORTED);
    }
    match result {
        Ok(report) => {
            print_report(&report, input);
            Ok(())
        }
        Err(optical::Error::InvalidDocument { .. }) => bail!(
            "{bad} bad line(s) in {}; nothing was indexed (fix them, or pass --skip-invalid to index the good lines)",
            input.display()
        ),
        Err(e) => Err(e.into()),
    }
}

fn print_report(report: &IngestReport, input: &Path) {
    if let (Some(dir), Some(name)) = (&report.encoder_from_index, &report.encoder) {
        eprintln!("used the index's encoder {name} from {}", dir.display());
    }
    if let Some(why) = &report.keymap_rebuilt {
        eprintln!("note: rebuilt the key map from the text index ({why})");
    }
    let skipped = report.skipped.len();
    println!(
        "indexed {} documents ({} replaced{}{}) from {}: {} documents at generation {} ({:.1} passages/s)",
        report.added,
        report.replaced,
        if skipped == 0 { String::new() } else { format!(", {skipped} bad lines skipped") },
        report.encoder.as_ref().map_or(String::new(), |e| format!(", encoded by {e} in {}", report.precision.as_deref().unwrap_or("f32"))),
        input.display(),
        report.docs,
        report.generation,
        report.passages_per_sec()
    );
}

/// How often to print a progress line: never on a terminal (the bar shows it), else every
/// `OPTICAL_PROGRESS_SECS` seconds (default [`LOG_EVERY_SECS`]).
fn progress_line_interval() -> Option<Duration> {
    if std::io::stderr().is_terminal() {
        return None;
    }
    let secs = std::env::var("OPTICAL_PROGRESS_SECS").ok().and_then(|s| s.parse::<f64>().ok());
    Some(Duration::from_secs_f64(secs.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(LOG_EVERY_SECS)))
}

/// Runs `work`, printing `bar`'s count and rate to stderr every `every` until it returns.
fn with_progress_lines<T>(bar: &ProgressBar, every: Option<Duration>, work: impl FnOnce() -> T) -> T {
    let Some(every) = every else { return work() };
    let (stop, stopped) = channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let start = Instant::now();
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let secs = start.elapsed().as_secs_f64();
                let done = bar.position();
                eprintln!("indexing: {done} documents indexed so far, {secs:.0} s, {:.1} documents/s", done as f64 / secs);
            }
        });
        let out = work();
        drop(stop);
        out
    })
}

fn progress_bar(encoding: bool) -> ProgressBar {
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
