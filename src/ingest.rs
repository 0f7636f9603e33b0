//! Indexing a JSONL file or BEIR corpus as one call: read the documents, apply the bad-line
//! policy, encode them with the index's encoder, commit, and report what happened.
//!
//! A file is indexed as one commit. By default a file with any bad line indexes nothing: every
//! bad line is reported (to [`IngestOptions::on_invalid`]) and the call fails with the first one
//! ([`Error::InvalidDocument`]), so an index never holds half a file. With
//! [`IngestOptions::skip_invalid`] the good lines are indexed and the bad ones reported.
//! Documents whose key already exists replace the old version (upsert).
//!
//! The encoder is the index's: the model directory given, else (for an index that records an
//! encoder) the one the index's hint file names ([`crate::engine::recorded_model_dir`]). A new
//! index made with a model records the encoder; an existing one refuses any other.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;

use crate::corpus::{BadLine, BadLineKind, CorpusReader};
use crate::encoder::{Encoder, EncoderOptions};
use crate::engine::{Document, Index, IndexConfig, IndexWriter, KeyMapState, VectorElem, attach_vectors, document_tokens, encode_document_tokens, load_encoder_with, recorded_model_dir};
use crate::error::{Error, Result};

/// Documents encoded per encoder call (the encoder batches by length inside it).
pub const ENCODE_CHUNK: usize = 256;

/// How to index a file. `IngestOptions::default()` indexes into a text-only or existing index
/// with language `und` and refuses a file with any bad line.
pub struct IngestOptions<'a> {
    /// Language of documents whose line has no `lang` field.
    pub lang: String,
    /// Index the good lines of a file that has bad ones.
    pub skip_invalid: bool,
    /// When creating the index: vector dimension (documents then bring a `vector`). On an
    /// existing index it must match.
    pub dim: Option<usize>,
    /// When creating the index: vector element type (default f32). On an existing index it
    /// must match.
    pub elem: Option<VectorElem>,
    /// Encoder model directory: documents are encoded with it. A new index records it; an
    /// existing index must have been built with the same model.
    pub model: Option<PathBuf>,
    /// Encode with the int8 inference path ([`crate::encoder::EncoderOptions::int8`]):
    /// faster on the CPU, vectors close to but not equal to the f32 ones. Default: as
    /// [`crate::encoder::EncoderOptions::for_search`] (int8 where the CPU has a fast kernel).
    pub int8: bool,
    /// Advanced once per document written.
    pub progress: ProgressBar,
    /// Called with each bad line as it is found.
    pub on_invalid: Option<&'a mut dyn FnMut(&BadLine)>,
}

impl Default for IngestOptions<'_> {
    fn default() -> Self {
        IngestOptions {
            lang: "und".into(),
            skip_invalid: false,
            dim: None,
            elem: None,
            model: None,
            int8: EncoderOptions::for_search().int8,
            progress: ProgressBar::hidden(),
            on_invalid: None,
        }
    }
}

/// What an ingest did.
#[derive(Debug)]
pub struct IngestReport {
    /// Documents added (including new versions of existing keys).
    pub added: u64,
    /// Of those, documents that replaced one with the same key.
    pub replaced: u64,
    /// The bad lines skipped (file, line, reason).
    pub skipped: Vec<BadLine>,
    /// The generation committed.
    pub generation: u64,
    /// Live documents after the commit.
    pub docs: u64,
    /// The encoder that computed the vectors, if any.
    pub encoder: Option<String>,
    /// The precision it ran in ([`Encoder::precision`]: `f32`, `int8 (avx512-vnni)`, …).
    pub precision: Option<String>,
    /// The model directory found through the index's hint file, when no model was given.
    pub encoder_from_index: Option<PathBuf>,
    /// Why the key map was rebuilt when the index was opened, if it was.
    pub keymap_rebuilt: Option<String>,
    /// Wall time of reading, encoding and committing the file (not of loading the model).
    pub elapsed: Duration,
}

impl IngestReport {
    /// Documents added per second of [`IngestReport::elapsed`].
    pub fn passages_per_sec(&self) -> f64 {
        self.added as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Indexes the documents of `input` (JSONL, `.gz`, BEIR `_id` accepted) into the index at
/// `dir` (created if absent) as one commit. A failure leaves no index this call created.
pub fn ingest(dir: impl AsRef<Path>, input: impl AsRef<Path>, mut options: IngestOptions) -> Result<IngestReport> {
    let (dir, input) = (dir.as_ref(), input.as_ref());
    let existed = Index::exists(dir);
    let (model_dir, from_index) = model_dir(dir, &options)?;
    let encoder_options = EncoderOptions { int8: options.int8, ..EncoderOptions::default() };
    let encoder = model_dir.as_deref().map(|d| load_encoder_with(d, &encoder_options)).transpose()?.map(Arc::new);
    // The input is opened before the index: a missing file must not leave an empty index.
    let reader = CorpusReader::open(input).map_err(Error::from)?;
    let dir_existed = dir.exists();
    let index = match &encoder {
        Some(enc) => Index::open_or_create_for(dir, enc)?,
        None => {
            let config = IndexConfig { dim: options.dim, elem: options.elem.unwrap_or_default(), encoder: None, token_codebook: None };
            Index::open_or_create(dir, config)?
        }
    };
    let keymap_rebuilt = match (existed, index.keymap_state()) {
        (true, Some(KeyMapState::Rebuilt(why))) => Some(why.clone()),
        _ => None,
    };
    let checked = if existed { check_creation_options(&options, &index) } else { Ok(()) };
    let result = checked.and_then(|()| index_file(&index, encoder, reader, &mut options));
    let mut report = match result {
        Err(e) if !existed && index.snapshot().generation() == 0 => {
            // This call created the index and committed nothing: leave the directory as it was.
            return Err(match index.discard_empty() {
                Ok(()) => {
                    if !dir_existed {
                        let _ = std::fs::remove_dir(dir); // an empty directory left behind is harmless
                    }
                    e
                }
                Err(d) => anyhow::Error::from(e)
                    .context(format!("(the empty index this call created could not be removed: {d})"))
                    .into(),
            });
        }
        r => r?,
    };
    report.encoder_from_index = from_index;
    report.keymap_rebuilt = keymap_rebuilt;
    Ok(report)
}

/// The model directory to encode with, and whether it came from the index's hint file: the
/// one given, else the one an existing index that records an encoder names, so that documents
/// never arrive without vectors.
fn model_dir(dir: &Path, options: &IngestOptions) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
    if let Some(m) = &options.model {
        return Ok((Some(m.clone()), None));
    }
    if !Index::exists(dir) {
        return Ok((None, None));
    }
    let existing = Index::open_read_only(dir).with_context(|| format!("opening index {}", dir.display()))?;
    let Some(rec) = existing.config().encoder else { return Ok((None, None)) };
    match recorded_model_dir(dir) {
        Some(model) => Ok((Some(model.clone()), Some(model))),
        None => Err(Error::Encoder {
            message: format!(
                "index {} computes its vectors with encoder {} (fingerprint {}): pass its model directory with --model",
                dir.display(),
                rec.name,
                rec.fingerprint
            ),
        }),
    }
}

/// The creation options (`dim`, `elem`) describe a new index; on an existing one they must
/// agree with it, or the caller would believe they had taken effect.
fn check_creation_options(options: &IngestOptions, index: &Index) -> Result<()> {
    let config = index.config();
    if let Some(dim) = options.dim
        && config.dim != Some(dim)
    {
        let has = config.dim.map_or("no vectors (text-only)".to_string(), |d| format!("vectors of dimension {d}"));
        crate::error::invalid!(
            "--dim {dim} does not match index {}, which stores {has}; --dim only applies when creating an index",
            index.dir().display()
        );
    }
    if let Some(elem) = options.elem
        && elem != config.elem
    {
        crate::error::invalid!(
            "--elem {elem} does not match index {}, which stores {} vectors; --elem only applies when creating an index",
            index.dir().display(),
            config.elem
        );
    }
    Ok(())
}

/// One input file going into one writer: the documents of the current encoder chunk, the
/// chunk being encoded, and the counts so far.
///
/// Encoding is pipelined: a full chunk is tokenised on this thread and handed to an encoder
/// thread, and while it encodes this thread reads, parses and tokenises the next chunk and
/// writes the one before. The vectors are the same as encoding chunk by chunk.
struct Batch<'o, 'a> {
    writer: IndexWriter,
    input: PathBuf,
    options: &'o mut IngestOptions<'a>,
    /// Documents waiting for the encoder, with their line numbers.
    pending: Vec<(usize, Document)>,
    /// The chunk on the encoder thread.
    encoding: Option<Encoding>,
    skipped: Vec<BadLine>,
    added: u64,
    replaced: u64,
}

/// Indexes one file as one commit (or nothing, on a bad line without `skip_invalid`).
fn index_file(index: &Index, encoder: Option<Arc<Encoder>>, mut reader: CorpusReader, options: &mut IngestOptions) -> Result<IngestReport> {
    let start = Instant::now();
    let encoder_name = encoder.as_ref().map(|e| e.info().name.clone());
    let precision = encoder.as_ref().map(|e| e.precision());
    let writer = match encoder {
        Some(enc) => index.writer()?.with_encoder(enc)?,
        None => index.writer()?,
    };
    let input = reader.path().to_path_buf();
    let mut batch = Batch { writer, input, options, pending: Vec::new(), encoding: None, skipped: Vec::new(), added: 0, replaced: 0 };
    while let Some(item) = reader.next_line().map_err(Error::from)? {
        match item {
            Ok((line, doc)) => {
                let lang = doc.lang.unwrap_or_else(|| batch.options.lang.clone());
                let d = Document { key: doc.id, title: doc.title, body: doc.text, lang, vector: doc.vector, token_codes: None };
                batch.push(line, d)?;
            }
            Err(bad) => batch.invalid(bad),
        }
    }
    batch.flush()?;
    batch.finish_encoding()?;
    if let Some(first) = batch.skipped.first().filter(|_| !batch.options.skip_invalid) {
        batch.writer.rollback()?;
        return Err(Error::InvalidDocument { file: first.path.clone(), line: first.line as u64, reason: first.reason.clone() });
    }
    let info = batch.writer.commit()?;
    Ok(IngestReport {
        added: batch.added,
        replaced: batch.replaced,
        skipped: batch.skipped,
        generation: info.generation,
        docs: info.docs,
        encoder: encoder_name,
        precision,
        encoder_from_index: None,
        keymap_rebuilt: None,
        elapsed: start.elapsed(),
    })
}

impl Batch<'_, '_> {
    /// Takes one document: checked now when it brings its vector (a document the index refuses
    /// is a bad line like a malformed one), queued for the encoder otherwise.
    fn push(&mut self, line: usize, doc: Document) -> Result<()> {
        let encoding = self.writer.encoder().is_some();
        if encoding && doc.vector.is_some() {
            let name = &self.writer.encoder().expect("encoding").info().name;
            crate::error::invalid!(
                "{}:{line}: document `{}` brings its own vector, but encoder {name} computes the vectors (drop one of them)",
                self.input.display(),
                doc.key
            );
        }
        if !encoding && let Err(e) = self.writer.validate(&doc) {
            let reason = e.to_string();
            self.invalid(BadLine { path: self.input.clone(), line, kind: BadLineKind::BadField, reason });
            return Ok(());
        }
        if !self.skipped.is_empty() && !self.options.skip_invalid {
            return Ok(()); // nothing will be committed: just keep scanning for more bad lines
        }
        self.pending.push((line, doc));
        if self.pending.len() >= ENCODE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn invalid(&mut self, bad: BadLine) {
        if let Some(report) = self.options.on_invalid.as_mut() {
            report(&bad);
        }
        self.skipped.push(bad);
    }

    /// Sends the pending documents to the encoder thread (after writing the chunk it was
    /// encoding), or writes them at once when the writer has no encoder.
    fn flush(&mut self) -> Result<()> {
        let (lines, docs): (Vec<usize>, Vec<Document>) = self.pending.drain(..).unzip();
        let Some(encoder) = self.writer.encoder().cloned() else {
            return self.write(lines, docs);
        };
        if docs.is_empty() {
            return Ok(());
        }
        // Tokenised here, while the encoder thread still works on the previous chunk.
        let tokens = document_tokens(&encoder, &docs)?;
        self.finish_encoding()?;
        let codebook = self.writer.codebook().cloned();
        let vectors = std::thread::spawn(move || encode_document_tokens(&encoder, &tokens, codebook.as_deref()));
        self.encoding = Some(Encoding { lines, docs, vectors });
        Ok(())
    }

    /// Waits for the chunk on the encoder thread, if any, and writes it.
    fn finish_encoding(&mut self) -> Result<()> {
        let Some(Encoding { lines, mut docs, vectors }) = self.encoding.take() else { return Ok(()) };
        let vectors = vectors
            .join()
            .map_err(|_| Error::Encoder { message: "the encoder thread panicked".into() })?
            .context("encoding documents")
            .map_err(Error::encoder)?;
        attach_vectors(&mut docs, vectors)?;
        self.write(lines, docs)
    }

    /// Writes documents whose vectors are known.
    fn write(&mut self, lines: Vec<usize>, docs: Vec<Document>) -> Result<()> {
        for (line, doc) in lines.into_iter().zip(docs) {
            if self.writer.id_of(&doc.key)?.is_some() {
                self.replaced += 1;
            }
            self.writer.upsert_encoded(doc).with_context(|| format!("{}:{line}", self.input.display()))?;
            self.added += 1;
            self.options.progress.inc(1);
        }
        Ok(())
    }
}

/// A chunk of documents on the encoder thread.
struct Encoding {
    lines: Vec<usize>,
    docs: Vec<Document>,
    vectors: std::thread::JoinHandle<anyhow::Result<Vec<crate::engine::EncodedDocument>>>,
}
