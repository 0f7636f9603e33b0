//! The commit record (tantivy commit payload) and the index configuration it carries.
//!
//! The payload is the single source of truth for what a commit contains: its generation, the
//! vector segment files and tombstone file that belong to it, the next internal id and the index
//! configuration. tantivy writes it atomically with its own commit (inside `meta.json`), and
//! keeps it across its background merges, so whatever commit tantivy opens, its payload names
//! exactly the vector files of that commit.

use anyhow::Context;

use crate::Result;
use crate::error::{damaged, invalid};

use serde::{Deserialize, Serialize};

/// Version of the commit payload and index directory layout written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// Element type of stored vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorElem {
    /// 32-bit floats (exact).
    #[default]
    F32,
    /// 8-bit integers with a per-row scale (4× smaller, approximate scores).
    I8,
    /// Both: every segment is written as f32 and as an int8 companion (`*.i8.ovs`), so that
    /// dense search scans the small int8 copy and rescores its best rows exactly on f32.
    #[serde(rename = "f32+i8")]
    F32I8,
}

impl VectorElem {
    /// Element type of the primary segment files (the ones the commit payload names).
    pub(crate) fn storage(self) -> optical_storage::ElemType {
        match self {
            VectorElem::F32 | VectorElem::F32I8 => optical_storage::ElemType::F32,
            VectorElem::I8 => optical_storage::ElemType::I8,
        }
    }

    /// Whether each segment has an int8 companion file.
    pub fn has_int8_companion(self) -> bool {
        self == VectorElem::F32I8
    }
}

impl std::fmt::Display for VectorElem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VectorElem::F32 => "f32",
            VectorElem::I8 => "i8",
            VectorElem::F32I8 => "f32+i8",
        })
    }
}

impl std::str::FromStr for VectorElem {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "f32" => Ok(VectorElem::F32),
            "i8" => Ok(VectorElem::I8),
            "f32+i8" => Ok(VectorElem::F32I8),
            other => invalid!("unknown vector element type `{other}` (expected f32, i8 or f32+i8)"),
        }
    }
}

/// Which encoder produced an index's vectors. An index refuses query vectors from an encoder
/// with a different dimension or embedding space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderRecord {
    /// Model name, e.g. `multilingual-e5-small`.
    pub name: String,
    /// Output dimension.
    pub dim: usize,
    /// Fingerprint of the weights (hash), to tell two checkpoints of one model apart.
    pub fingerprint: String,
    /// Name of the embedding space; a student distilled into a teacher's space shares it.
    pub embedding_space: String,
}

/// Configuration fixed when an index is created.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexConfig {
    /// Vector dimension; `None` makes a text-only index (no vectors at all).
    pub dim: Option<usize>,
    /// Element type of stored vectors.
    pub elem: VectorElem,
    /// The encoder that produced the vectors, when known.
    pub encoder: Option<EncoderRecord>,
    /// Fingerprint ([`crate::encoder::codebook::Codebook::fingerprint`]) of the token codebook
    /// the index keeps beside its text (`token-codebook.safetensors`) and stores its passages'
    /// token states with, for the late-interaction rerank; `None`: no token codes are stored.
    /// (`default`: payloads written before it read as `None`. Always written, even as `null`:
    /// the key map stores this struct in bincode, which cannot skip a field.)
    #[serde(default)]
    pub token_codebook: Option<String>,
}

impl IndexConfig {
    /// A text-only index.
    pub fn text_only() -> IndexConfig {
        IndexConfig::default()
    }

    /// An index with `dim`-dimensional f32 vectors.
    pub fn with_vectors(dim: usize) -> IndexConfig {
        IndexConfig { dim: Some(dim), ..IndexConfig::default() }
    }

    /// Checks the configuration is self-consistent.
    pub fn validate(&self) -> crate::Result<()> {
        if self.dim == Some(0) {
            invalid!("vector dimension must be at least 1");
        }
        if self.token_codebook.is_some() && self.encoder.is_none() {
            invalid!("a token codebook is set but no document encoder is recorded: token codes are the encoder's token states");
        }
        if let Some(enc) = &self.encoder {
            match self.dim {
                None => invalid!("encoder `{}` is set but the index has no vectors (dim is none)", enc.name),
                Some(d) if d != enc.dim => {
                    invalid!("encoder `{}` has dimension {} but the index dimension is {d}", enc.name, enc.dim)
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The commit payload stored by tantivy with each commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitMeta {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// Commit generation: 0 for the empty commit made at creation, +1 per commit.
    pub generation: u64,
    /// The next internal id to hand out (ids are never reused).
    pub next_id: u64,
    /// Live vector segment files, relative to the `vectors/` directory, oldest first.
    pub segments: Vec<String>,
    /// The tombstone file (deleted ids still present in live segments), if any.
    pub tombstones: Option<String>,
    /// The index configuration.
    pub config: IndexConfig,
}

impl CommitMeta {
    /// Serializes to the JSON stored as tantivy's commit payload.
    pub fn to_payload(&self) -> String {
        serde_json::to_string(self).expect("CommitMeta serializes")
    }

    /// Parses a payload; errors when it is missing, malformed or from a newer format.
    pub fn from_payload(payload: Option<&str>) -> Result<CommitMeta> {
        let Some(payload) = payload else {
            damaged!("the tantivy index has no Optical commit payload (not an Optical index, or its creation never completed)")
        };
        let meta: CommitMeta = serde_json::from_str(payload).context("parsing the Optical commit payload in meta.json")?;
        if meta.format > FORMAT_VERSION {
            invalid!("index format version {} is newer than this build understands ({FORMAT_VERSION})", meta.format);
        }
        for name in meta.segments.iter().chain(meta.tombstones.iter()) {
            // File names come from disk: never let one escape the vectors directory.
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                damaged!("commit payload names an invalid vector file `{name}`");
            }
        }
        Ok(meta)
    }
}
