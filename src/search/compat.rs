//! Which query encoders an index accepts: a query encoder must write into the same embedding
//! space with the same dimension as the document encoder (whose own check is the engine's,
//! [`crate::engine::check_document_encoder`]).

use crate::Result;
use crate::encoder::EncoderInfo;
use crate::engine::IndexConfig;
use crate::error::incompatible;

/// Errors unless `encoder`'s query vectors can be scored against the index's document vectors:
/// same dimension and, when the index records its encoder, the same embedding space (a student
/// distilled into the document encoder's space qualifies).
pub fn check_query_encoder(config: &IndexConfig, encoder: &EncoderInfo) -> Result<()> {
    let Some(dim) = config.dim else {
        incompatible!(
            "the index is text-only: query encoder {} has no vectors to search (use bm25 mode)",
            encoder.name
        )
    };
    if let Some(rec) = &config.encoder {
        if rec.dim != encoder.dim {
            incompatible!(
                "query encoder {} makes {}-dimensional vectors but the index holds {}-dimensional vectors of encoder {}",
                encoder.name,
                encoder.dim,
                rec.dim,
                rec.name
            );
        }
        if rec.embedding_space != encoder.embedding_space {
            incompatible!(
                "query encoder {} writes into embedding space {} but the index's vectors come from encoder {} in space {}: their scores would be meaningless",
                encoder.name,
                encoder.embedding_space,
                rec.name,
                rec.embedding_space
            );
        }
    } else if dim != encoder.dim {
        incompatible!(
            "query encoder {} makes {}-dimensional vectors but the index holds {dim}-dimensional ones",
            encoder.name,
            encoder.dim
        );
    }
    Ok(())
}
