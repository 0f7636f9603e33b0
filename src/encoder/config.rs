//! The two JSON files of a model directory: HF `config.json` (architecture) and Optical's own
//! `optical.json` (instruction prefixes, maximum length, embedding space).
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

/// The architecture fields of a HF BERT `config.json` that this encoder uses.
///
/// Unknown fields are kept in `extra` so that a config read and written back loses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Rows of the position-embedding table (the longest input the model accepts).
    pub max_position_embeddings: usize,
    /// Rows of the token-type (segment) embedding table.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// Epsilon of every LayerNorm.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Feed-forward activation; only the exact (erf) `gelu` is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// HF model type (`bert`); recorded, not interpreted.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Any other field of the file, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_model_type() -> String {
    "bert".into()
}

impl BertConfig {
    /// A config with the usual BERT defaults for the fields not given (used by tests and the
    /// q4 importer).
    pub fn new(
        vocab_size: usize,
        hidden_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        intermediate_size: usize,
        max_position_embeddings: usize,
    ) -> Self {
        Self {
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            max_position_embeddings,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
            model_type: "bert".into(),
            extra: Default::default(),
        }
    }

    /// Reads and validates `config.json`; errors name the file and the field at fault.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading model config {}", path.display()))?;
        let config: BertConfig = serde_json::from_str(&text)
            .with_context(|| format!("parsing model config {}", path.display()))?;
        config
            .validate()
            .with_context(|| format!("invalid model config {}", path.display()))?;
        Ok(config)
    }

    /// Writes `config.json` (pretty JSON, with `architectures` and `model_type` set so that
    /// `transformers` can read it as a `BertModel`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut out = self.clone();
        out.extra
            .entry("architectures")
            .or_insert_with(|| serde_json::json!(["BertModel"]));
        out.extra
            .entry("position_embedding_type")
            .or_insert_with(|| serde_json::json!("absolute"));
        let text = serde_json::to_string_pretty(&out)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing model config {}", path.display()))
    }

    /// Checks the values the encoder relies on.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            ensure!(v > 0, "field `{name}` must be positive, got {v}");
        }
        ensure!(
            self.hidden_size.is_multiple_of(self.num_attention_heads),
            "field `hidden_size` ({}) is not a multiple of `num_attention_heads` ({})",
            self.hidden_size,
            self.num_attention_heads
        );
        if self.hidden_act != "gelu" {
            bail!(
                "field `hidden_act` is {:?}; only \"gelu\" (exact, erf-based) is supported",
                self.hidden_act
            );
        }
        if let Some(kind) = self.extra.get("position_embedding_type")
            && kind != "absolute"
        {
            bail!("field `position_embedding_type` is {kind}; only \"absolute\" is supported");
        }
        ensure!(
            self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite(),
            "field `layer_norm_eps` must be a positive number, got {}",
            self.layer_norm_eps
        );
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// Optical's description of a model directory (`optical.json`).
///
/// Every field is optional in the file; [`OpticalMeta::load`] fills the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpticalMeta {
    /// Human-readable model name (defaults to the directory name).
    #[serde(default)]
    pub name: String,
    /// Text put before every query (e5: `"query: "`).
    #[serde(default)]
    pub query_prefix: String,
    /// Text put before every passage (e5: `"passage: "`).
    #[serde(default)]
    pub passage_prefix: String,
    /// Token budget per input, special tokens included (inputs are truncated to it).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Which vector space the model writes into. Two encoders with the same space may be mixed
    /// (a distilled student declares its teacher's space). Empty means "the model's own weight
    /// fingerprint".
    #[serde(default)]
    pub embedding_space: String,
    /// Fingerprint of the `model.safetensors` this file was written for (Optical's writers
    /// record it). A claim of another model's `embedding_space` holds only for those weights:
    /// loading other weights with this file is refused. Empty in files written by hand or by
    /// older builds, whose claims cannot be checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub weights_fingerprint: String,
}

/// The maximum length used when neither `optical.json` nor the caller says otherwise.
pub const DEFAULT_MAX_LENGTH: usize = 128;

fn default_max_length() -> usize {
    DEFAULT_MAX_LENGTH
}

impl Default for OpticalMeta {
    fn default() -> Self {
        Self {
            name: String::new(),
            query_prefix: String::new(),
            passage_prefix: String::new(),
            max_length: DEFAULT_MAX_LENGTH,
            embedding_space: String::new(),
            weights_fingerprint: String::new(),
        }
    }
}

impl OpticalMeta {
    /// Reads `optical.json` if present; an absent file gives the defaults (no prefixes,
    /// max length 128, own embedding space).
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let meta: OpticalMeta = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?;
                ensure!(
                    meta.max_length >= 2,
                    "{}: field `max_length` must be at least 2, got {}",
                    path.display(),
                    meta.max_length
                );
                Ok(meta)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes `optical.json` (pretty JSON).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}
