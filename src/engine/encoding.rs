//! The document encoder of an index, part of its write path: the record an index keeps of the
//! encoder that computed its vectors, the check that an encoder may write into an index, the
//! text a document encoder sees, and the hint file naming the encoder's model directory.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::meta::{EncoderRecord, IndexConfig, VectorElem};
use super::{Document, Index};
use crate::Result;
use crate::encoder::codebook::{Codebook, unit_content_rows};
use crate::encoder::{Encoder, EncoderInfo, EncoderOptions, Role, Tokenized, default_device};
use crate::error::{Error, incompatible};

/// File in the index directory naming the model directory of its document encoder. It is a
/// hint only (the index's own record, with the weights fingerprint, is what is checked), so a
/// stale or missing file costs nothing but naming the model again.
pub const ENCODER_SOURCE_FILE: &str = "encoder-source.json";

/// Contents of [`ENCODER_SOURCE_FILE`].
#[derive(Serialize, Deserialize)]
struct EncoderSource {
    /// Absolute path of the model directory.
    model_dir: PathBuf,
    /// Weights fingerprint of the encoder loaded from it when the index was written.
    fingerprint: String,
}

/// The record an index keeps of the encoder that produced its vectors.
pub fn encoder_record(info: &EncoderInfo) -> EncoderRecord {
    EncoderRecord {
        name: info.name.clone(),
        dim: info.dim,
        fingerprint: info.fingerprint.clone(),
        embedding_space: info.embedding_space.clone(),
    }
}

/// The configuration of a new index whose vectors `encoder` computes: its dimension, f32 rows
/// with int8 companions (fast first pass, exact rescoring), and the encoder record. (An index
/// made by [`Index::open_or_create_for`] also stores token codes when the encoder's model
/// directory has a token codebook.)
pub fn index_config_for(encoder: &Encoder) -> IndexConfig {
    IndexConfig {
        dim: Some(encoder.dim()),
        elem: VectorElem::F32I8,
        encoder: Some(encoder_record(encoder.info())),
        token_codebook: None,
    }
}

/// Errors unless `encoder` may encode documents into an index with `config`: the index must
/// have vectors, and must have been created for this very encoder (same weights), so that one
/// index never mixes vectors of two models.
pub fn check_document_encoder(config: &IndexConfig, encoder: &EncoderInfo) -> Result<()> {
    let Some(dim) = config.dim else {
        incompatible!(
            "the index is text-only: it has no vectors for encoder {} to fill (create a new index with a model)",
            encoder.name
        )
    };
    let Some(rec) = &config.encoder else {
        incompatible!(
            "the index holds {dim}-dimensional vectors from an unrecorded source: refusing to add vectors of encoder {} to it (create a new index with the model)",
            encoder.name
        )
    };
    if rec.fingerprint != encoder.fingerprint
        || rec.dim != encoder.dim
        || rec.embedding_space != encoder.embedding_space
    {
        incompatible!(
            "the index was built with encoder {} (fingerprint {}, {} dimensions, space {}); refusing to mix in vectors of encoder {} (fingerprint {}, {} dimensions, space {})",
            rec.name,
            rec.fingerprint,
            rec.dim,
            rec.embedding_space,
            encoder.name,
            encoder.fingerprint,
            encoder.dim,
            encoder.embedding_space
        );
    }
    Ok(())
}

/// The text a document encoder sees: title and body, like the BEIR evaluations of e5/SBERT.
pub fn passage_text(title: &str, body: &str) -> String {
    match (title.trim(), body.trim()) {
        ("", b) => b.to_string(),
        (t, "") => t.to_string(),
        (t, b) => format!("{t} {b}"),
    }
}

/// Loads an encoder model directory on the default device for indexing and search
/// ([`EncoderOptions::for_search`]: int8 where the CPU has a fast int8 kernel), naming it on
/// failure. [`load_encoder_with`] chooses.
pub fn load_encoder(dir: &Path) -> Result<Encoder> {
    load_encoder_with(dir, &EncoderOptions::for_search())
}

/// [`load_encoder`] with `options` (e.g. [`EncoderOptions::int8`]).
pub fn load_encoder_with(dir: &Path, options: &EncoderOptions) -> Result<Encoder> {
    Encoder::load_with(dir, &default_device(), options)
        .with_context(|| format!("loading model {}", dir.display()))
        .map_err(Error::encoder)
}

/// The model directory recorded beside the index at `dir` by the last commit that encoded
/// documents, if any and still present.
pub fn recorded_model_dir(dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dir.join(ENCODER_SOURCE_FILE)).ok()?;
    let src: EncoderSource = serde_json::from_str(&text).ok()?;
    src.model_dir.is_dir().then_some(src.model_dir)
}

/// Records `encoder`'s model directory beside the index at `dir` ([`ENCODER_SOURCE_FILE`]).
pub(crate) fn record_model_dir(dir: &Path, encoder: &Encoder) -> anyhow::Result<()> {
    let model_dir = std::fs::canonicalize(encoder.dir()).unwrap_or_else(|_| encoder.dir().to_path_buf());
    let src = EncoderSource { model_dir, fingerprint: encoder.info().fingerprint.clone() };
    let path = dir.join(ENCODER_SOURCE_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&src)? + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Computes the vectors of `docs` with `encoder`, in one call (the encoder batches by length
/// inside it), and their token codes when the index has a token `codebook`. Every document must
/// come without a vector: the encoder computes them all.
pub(crate) fn encode_documents(encoder: &Encoder, docs: &mut [Document], codebook: Option<&Codebook>) -> Result<()> {
    let tokens = document_tokens(encoder, docs)?;
    let encoded = encode_document_tokens(encoder, &tokens, codebook).context("encoding documents").map_err(Error::encoder)?;
    attach_vectors(docs, encoded)
}

/// What the document encoder gives one document: its vector and, for an index with a token
/// codebook, the codes of its content tokens' states.
pub(crate) type EncodedDocument = (Vec<f32>, Option<Vec<u8>>);

/// Encodes documents tokenised by [`document_tokens`]: their vectors, and their token codes
/// when `codebook` is given (from the same forward pass).
pub(crate) fn encode_document_tokens(encoder: &Encoder, tokens: &[Tokenized], codebook: Option<&Codebook>) -> anyhow::Result<Vec<EncodedDocument>> {
    let Some(book) = codebook else {
        return Ok(encoder.encode_tokens(tokens)?.into_iter().map(|v| (v, None)).collect());
    };
    let dim = encoder.dim();
    let encoded = encoder.encode_tokens_with_states(tokens)?;
    Ok(encoded
        .into_iter()
        .zip(tokens)
        .map(|((vector, states), t)| (vector, Some(book.encode(&unit_content_rows(&states, &t.content, dim)))))
        .collect())
}

/// The tokens `encoder` reads for `docs` (passage prefix, title and body): the first half of
/// [`encode_documents`], so that a pipeline can tokenise the next documents while these are
/// encoded. Every document must come without a vector.
pub(crate) fn document_tokens(encoder: &Encoder, docs: &[Document]) -> Result<Vec<Tokenized>> {
    if let Some(d) = docs.iter().find(|d| d.vector.is_some()) {
        crate::error::invalid!(
            "document `{}` brings its own vector, but this index computes vectors with encoder {}",
            d.key,
            encoder.info().name
        );
    }
    let texts: Vec<String> = docs.iter().map(|d| passage_text(&d.title, &d.body)).collect();
    Ok(encoder.tokenize(&texts, Role::Passage).context("tokenizing documents").map_err(Error::encoder)?)
}

/// Gives each document its vector and token codes (the second half of [`encode_documents`]).
pub(crate) fn attach_vectors(docs: &mut [Document], encoded: Vec<EncodedDocument>) -> Result<()> {
    if encoded.len() != docs.len() {
        return Err(Error::Encoder {
            message: format!("the encoder returned {} vectors for {} documents", encoded.len(), docs.len()),
        });
    }
    for (doc, (vector, codes)) in docs.iter_mut().zip(encoded) {
        doc.vector = Some(vector);
        doc.token_codes = codes;
    }
    Ok(())
}

impl Index {
    /// Opens the index at `dir` for indexing with `encoder`: creates it (f32 vectors with int8
    /// companions, the encoder recorded, and token codes stored when the encoder's model
    /// directory has a token codebook) when absent; an existing index must have been built
    /// with this encoder.
    pub fn open_or_create_for(dir: impl AsRef<Path>, encoder: &Encoder) -> Result<Index> {
        let index = match encoder.codebook() {
            Some(book) if !Index::exists(dir.as_ref()) => Index::create_with_codebook(dir.as_ref(), index_config_for(encoder), book)?,
            _ => Index::open_or_create(dir.as_ref(), index_config_for(encoder))?,
        };
        check_document_encoder(&index.config(), encoder.info())
            .with_context(|| format!("indexing into {}", dir.as_ref().display()))?;
        Ok(index)
    }
}
