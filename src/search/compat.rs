//! Which encoders an index accepts: the document encoder must be the one that wrote its
//! vectors; a query encoder must write into the same embedding space with the same dimension.

use anyhow::{Result, bail};

use crate::encoder::{Encoder, EncoderInfo};
use crate::engine::{EncoderRecord, IndexConfig, VectorElem};

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
/// with int8 companions (fast first pass, exact rescoring), and the encoder record.
pub fn index_config_for(encoder: &Encoder) -> IndexConfig {
    IndexConfig {
        dim: Some(encoder.dim()),
        elem: VectorElem::F32I8,
        encoder: Some(encoder_record(encoder.info())),
    }
}

/// Errors unless `encoder` may encode documents into an index with `config`: the index must
/// have vectors, and must have been created for this very encoder (same weights), so that one
/// index never mixes vectors of two models.
pub fn check_document_encoder(config: &IndexConfig, encoder: &EncoderInfo) -> Result<()> {
    let Some(dim) = config.dim else {
        bail!(
            "the index is text-only: it has no vectors for encoder {} to fill (create a new index with a model)",
            encoder.name
        )
    };
    let Some(rec) = &config.encoder else {
        bail!(
            "the index holds {dim}-dimensional vectors from an unrecorded source: refusing to add vectors of encoder {} to it (create a new index with the model)",
            encoder.name
        )
    };
    if rec.fingerprint != encoder.fingerprint
        || rec.dim != encoder.dim
        || rec.embedding_space != encoder.embedding_space
    {
        bail!(
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

/// Errors unless `encoder`'s query vectors can be scored against the index's document vectors:
/// same dimension and, when the index records its encoder, the same embedding space (a student
/// distilled into the document encoder's space qualifies).
pub fn check_query_encoder(config: &IndexConfig, encoder: &EncoderInfo) -> Result<()> {
    let Some(dim) = config.dim else {
        bail!(
            "the index is text-only: query encoder {} has no vectors to search (use bm25 mode)",
            encoder.name
        )
    };
    if let Some(rec) = &config.encoder {
        if rec.dim != encoder.dim {
            bail!(
                "query encoder {} makes {}-dimensional vectors but the index holds {}-dimensional vectors of encoder {}",
                encoder.name,
                encoder.dim,
                rec.dim,
                rec.name
            );
        }
        if rec.embedding_space != encoder.embedding_space {
            bail!(
                "query encoder {} writes into embedding space {} but the index's vectors come from encoder {} in space {}: their scores would be meaningless",
                encoder.name,
                encoder.embedding_space,
                rec.name,
                rec.embedding_space
            );
        }
    } else if dim != encoder.dim {
        bail!(
            "query encoder {} makes {}-dimensional vectors but the index holds {dim}-dimensional ones",
            encoder.name,
            encoder.dim
        );
    }
    Ok(())
}
