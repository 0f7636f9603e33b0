//! Indexing with an encoder: documents are buffered, encoded in batches by the index's
//! document encoder (`passage: ` prefix for e5), and handed to the engine's writer with their
//! vectors.

use std::collections::HashSet;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;

use super::compat::{check_document_encoder, index_config_for};
use crate::encoder::Encoder;
use crate::engine::{CommitInfo, Document, Index, IndexWriter};

/// Documents encoded per call into the encoder (the encoder batches by length inside it).
pub const DEFAULT_ENCODE_CHUNK: usize = 256;

/// The text a document encoder sees: title and body, like the BEIR evaluations of e5/SBERT.
pub fn passage_text(title: &str, body: &str) -> String {
    match (title.trim(), body.trim()) {
        ("", b) => b.to_string(),
        (t, "") => t.to_string(),
        (t, b) => format!("{t} {b}"),
    }
}

/// Opens the index at `dir` for indexing with `encoder`: creates it (f32 vectors with int8
/// companions, the encoder recorded) when absent; an existing index must have been built with
/// this encoder.
pub fn open_or_create_for(dir: impl AsRef<std::path::Path>, encoder: &Encoder) -> Result<Index> {
    let index = Index::open_or_create(dir.as_ref(), index_config_for(encoder))?;
    check_document_encoder(&index.config(), encoder.info())
        .with_context(|| format!("indexing into {}", dir.as_ref().display()))?;
    Ok(index)
}

/// An [`IndexWriter`] that computes each document's vector with the index's document encoder.
///
/// `upsert` buffers documents; every `chunk` documents (and at `delete`, `flush` and `commit`)
/// the buffer is encoded and written, so operations keep their order.
pub struct EncodingWriter<'a> {
    writer: IndexWriter,
    encoder: &'a Encoder,
    buffer: Vec<Document>,
    buffered_keys: HashSet<String>,
    chunk: usize,
    progress: ProgressBar,
    encoded: u64,
}

impl<'a> EncodingWriter<'a> {
    /// A writer on `index` (which must have been created for `encoder`, see
    /// [`open_or_create_for`]).
    pub fn new(index: &Index, encoder: &'a Encoder) -> Result<EncodingWriter<'a>> {
        check_document_encoder(&index.config(), encoder.info())
            .with_context(|| format!("indexing into {}", index.dir().display()))?;
        Ok(EncodingWriter {
            writer: index.writer()?,
            encoder,
            buffer: Vec::new(),
            buffered_keys: HashSet::new(),
            chunk: DEFAULT_ENCODE_CHUNK,
            progress: ProgressBar::hidden(),
            encoded: 0,
        })
    }

    /// Documents per encoder call.
    pub fn with_chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    /// A progress bar advanced once per encoded document.
    pub fn with_progress(mut self, bar: ProgressBar) -> Self {
        self.progress = bar;
        self
    }

    /// Adds `doc`, replacing any document with its key. `doc.vector` must be `None`: the encoder
    /// computes it.
    pub fn upsert(&mut self, doc: Document) -> Result<()> {
        if doc.key.is_empty() {
            bail!("document key is empty");
        }
        if doc.vector.is_some() {
            bail!(
                "document `{}` brings its own vector, but this index computes vectors with encoder {}",
                doc.key,
                self.encoder.info().name
            );
        }
        self.buffered_keys.insert(doc.key.clone());
        self.buffer.push(doc);
        if self.buffer.len() >= self.chunk {
            self.flush()?;
        }
        Ok(())
    }

    /// Whether `key` exists in the pending state (committed, written or buffered).
    pub fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.buffered_keys.contains(key) || self.writer.id_of(key)?.is_some())
    }

    /// Deletes the document with this key (after writing what is buffered); returns whether one
    /// existed.
    pub fn delete(&mut self, key: &str) -> Result<bool> {
        self.flush()?;
        self.writer.delete(key)
    }

    /// Encodes the buffered documents and hands them to the writer (not yet committed).
    pub fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = self
            .buffer
            .iter()
            .map(|d| passage_text(&d.title, &d.body))
            .collect();
        let vectors = self
            .encoder
            .encode_passages(&texts)
            .context("encoding documents")?;
        if vectors.len() != texts.len() {
            bail!(
                "the encoder returned {} vectors for {} documents",
                vectors.len(),
                texts.len()
            );
        }
        let n = texts.len() as u64;
        for (mut doc, v) in self.buffer.drain(..).zip(vectors) {
            doc.vector = Some(v);
            let key = doc.key.clone();
            self.writer
                .upsert(doc)
                .with_context(|| format!("writing document `{key}`"))?;
        }
        self.buffered_keys.clear();
        self.encoded += n;
        self.progress.inc(n);
        Ok(())
    }

    /// Documents encoded so far.
    pub fn encoded(&self) -> u64 {
        self.encoded
    }

    /// Encodes what is buffered and commits everything.
    pub fn commit(&mut self) -> Result<CommitInfo> {
        self.flush()?;
        self.writer.commit()
    }

    /// Drops every uncommitted change, buffered ones included.
    pub fn rollback(&mut self) -> Result<()> {
        self.buffer.clear();
        self.buffered_keys.clear();
        self.writer.rollback()
    }

    /// The underlying writer (for operations that need no encoder).
    pub fn writer(&mut self) -> &mut IndexWriter {
        &mut self.writer
    }
}

/// Indexes `docs` into `index` with `encoder` as one commit.
pub fn index_documents(
    index: &Index,
    encoder: &Encoder,
    docs: impl IntoIterator<Item = Document>,
    progress: ProgressBar,
) -> Result<CommitInfo> {
    let mut w = EncodingWriter::new(index, encoder)?.with_progress(progress);
    for d in docs {
        w.upsert(d)?;
    }
    w.commit()
}
