//! Tokenisation (tokenizer.json via `tokenizers`), per-batch padding and length batching.
use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use burn::tensor::{Device, Int, Tensor, TensorData};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// One tokenised input.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    /// Token ids, special tokens and instruction prefix included.
    pub ids: Vec<u32>,
    /// `true` for tokens of the text itself; `false` for special tokens (`[CLS]`, `</s>`, …)
    /// and for the tokens of the instruction prefix. Distillation masks on it.
    pub content: Vec<bool>,
    /// Byte span of each token in the text itself (the prefix not counted); `(0, 0)` for a
    /// token that is not content. Lets token-level results be read back as words (the OT-plan
    /// translation table merges subword pieces into analyzer words with it).
    pub spans: Vec<(usize, usize)>,
}

/// A `tokenizer.json` set up for this encoder: no padding (batches are padded to their own
/// longest row), truncation at `max_length` tokens special tokens included.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_length: usize,
    pad_id: u32,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("max_length", &self.max_length)
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`, turning its padding off and its truncation to `max_length`.
    pub fn load(path: &Path, max_length: usize) -> Result<Self> {
        ensure!(
            path.is_file(),
            "tokenizer file {} is missing",
            path.display()
        );
        let mut inner = read_tokenizer(path).map_err(|e| anyhow!("reading tokenizer {}: {e}", path.display()))?;
        // The padding id only fills masked positions, so any valid id works; prefer the
        // tokenizer's own.
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| inner.token_to_id("[PAD]"))
            .or_else(|| inner.token_to_id("<pad>"))
            .unwrap_or(0);
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| anyhow!("tokenizer {}: max_length {max_length}: {e}", path.display()))?;
        Ok(Self {
            inner,
            max_length,
            pad_id,
        })
    }

    /// The token budget per input.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The id used for padding.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Tokenises `prefix + text` for every text (in parallel), with special tokens.
    pub fn encode<S: AsRef<str>>(&self, texts: &[S], prefix: &str) -> Result<Vec<Tokenized>> {
        let inputs: Vec<String> = texts
            .iter()
            .map(|t| format!("{prefix}{}", t.as_ref()))
            .collect();
        let encodings = self
            .inner
            .encode_batch(inputs, true)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        let plen = prefix.len();
        Ok(encodings
            .into_iter()
            .map(|enc| {
                let content: Vec<bool> = enc
                    .get_special_tokens_mask()
                    .iter()
                    .zip(enc.get_offsets())
                    // A token belongs to the prefix when it ends inside it (byte offsets);
                    // "▁Good" after "query: " starts on the space but ends past the prefix.
                    .map(|(&special, &(_, end))| special == 0 && end > plen)
                    .collect();
                let spans = content
                    .iter()
                    .zip(enc.get_offsets())
                    .map(|(&c, &(start, end))| if c { (start.saturating_sub(plen), end - plen) } else { (0, 0) })
                    .collect();
                Tokenized {
                    ids: enc.get_ids().to_vec(),
                    content,
                    spans,
                }
            })
            .collect())
    }
}

/// A padded batch ready for [`super::BertModel::forward`].
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// `[batch, seq]` token ids (padding = the tokenizer's pad id).
    pub input_ids: Tensor<2, Int>,
    /// `[batch, seq]` zeros (single-segment inputs).
    pub token_type_ids: Tensor<2, Int>,
    /// `[batch, seq]`, 1 for tokens, 0 for padding.
    pub attention_mask: Tensor<2, Int>,
    /// `[batch, seq]`, 1 for content tokens ([`Tokenized::content`]), 0 for special tokens,
    /// prefix tokens and padding: the token mask for distillation.
    pub content_mask: Tensor<2, Int>,
    /// Unpadded length of each row.
    pub lengths: Vec<usize>,
}

impl TokenBatch {
    /// Pads `items` to their longest length and uploads them to `device`.
    pub fn new(items: &[&Tokenized], pad_id: u32, device: &Device) -> Self {
        let seq = items.iter().map(|t| t.ids.len()).max().unwrap_or(0).max(1);
        let batch = items.len();
        let mut ids = vec![pad_id as i64; batch * seq];
        let mut mask = vec![0i64; batch * seq];
        let mut content = vec![0i64; batch * seq];
        for (r, item) in items.iter().enumerate() {
            for (c, (&id, &is_content)) in item.ids.iter().zip(&item.content).enumerate() {
                ids[r * seq + c] = id as i64;
                mask[r * seq + c] = 1;
                content[r * seq + c] = is_content as i64;
            }
        }
        Self {
            input_ids: Tensor::from_data(TensorData::new(ids, [batch, seq]), device),
            token_type_ids: Tensor::zeros([batch, seq], device),
            attention_mask: Tensor::from_data(TensorData::new(mask, [batch, seq]), device),
            content_mask: Tensor::from_data(TensorData::new(content, [batch, seq]), device),
            lengths: items.iter().map(|t| t.ids.len()).collect(),
        }
    }
}

/// Groups input positions into batches of similar length: sorted by token count (longest
/// first, so a memory problem shows up at once), chunked by `batch_size`. Padding then costs
/// little; callers put results back at the original positions.
pub fn length_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    order
        .chunks(batch_size.max(1))
        .map(|c| c.to_vec())
        .collect()
}

/// Reads a tokenizer file only to check it exists and parses (used by the model importer).
pub fn check_tokenizer_file(path: &Path) -> Result<Tokenizer> {
    read_tokenizer(path).map_err(|e| anyhow!("{e}")).with_context(|| format!("reading tokenizer {}", path.display()))
}

/// `Tokenizer::from_file`, with a panic turned into an error: tokenizers 0.23 panics
/// (`expect("Helper")` in its decoder deserializer) on some malformed `decoder` sections, and
/// a damaged `tokenizer.json` must not crash the host application (found by
/// `fuzz_model_tokenizer_json`).
fn read_tokenizer(path: &Path) -> std::result::Result<Tokenizer, String> {
    match std::panic::catch_unwind(|| Tokenizer::from_file(path)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(format!("the file is malformed (the tokenizers library panicked: {what})"))
        }
    }
}
