//! BERT-family encoder on burn: config, safetensors weights, tokenizer, pooling.
//!
//! A model directory holds `config.json` (HF BERT), `model.safetensors` (HF names),
//! `tokenizer.json` and optionally `optical.json` ([`OpticalMeta`]: instruction prefixes,
//! max length, embedding space). `scripts/setup-models.sh` prepares all-MiniLM-L6-v2 and
//! multilingual-e5-small (q4) this way. [`Encoder`] turns texts into L2-normalised mean-pooled
//! vectors or last-layer token states; [`BertModel`] is the trainable burn module underneath.
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

mod attention;
mod bert;
pub mod codebook;
mod config;
mod device;
pub mod int8;
mod int8_bert;
pub mod q4;
mod rowops;
pub mod delta;
pub mod students;
mod tokenize;
mod weights;

pub use bert::{BertModel, l2_normalize, mean_pool};
pub use config::{BertConfig, DEFAULT_MAX_LENGTH, OpticalMeta};
pub use device::{cuda_device_count, cuda_driver_present, default_device, select_device};
pub use int8_bert::{Int8Bert, PackedStates};
pub use tokenize::{TextTokenizer, TokenBatch, Tokenized, length_batches};
pub use weights::{check_safetensors, expected_tensors, load_weights, save_weights};

/// File names inside a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// Weights file name.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Tokenizer file name.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Optical's metadata file name.
pub const META_FILE: &str = "optical.json";

/// Which side of retrieval a text is on: it selects the instruction prefix. Distillation configs
/// name it too (`side = "query"`, `teacher_side = "document"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A search query (`query: ` for e5).
    #[default]
    Query,
    /// A document or passage (`passage: ` for e5). Written `document` in configs, the name they
    /// have always used (a run's resume hash is taken over that text); `passage` is read too.
    #[serde(rename = "document", alias = "passage")]
    Passage,
}

/// Which encoder produced a set of vectors. An index stores it and refuses a query encoder
/// whose vectors would not be comparable ([`EncoderInfo::check_compatible`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderInfo {
    /// Model name (from `optical.json`, or the directory name).
    pub name: String,
    /// Vector dimension (hidden size).
    pub dim: usize,
    /// First 16 hex digits of the SHA-256 of `model.safetensors`.
    pub fingerprint: String,
    /// The vector space the model writes into: its own fingerprint unless `optical.json`
    /// declares another (a distilled student declares its teacher's).
    pub embedding_space: String,
    /// Prefix put before queries.
    pub query_prefix: String,
    /// Prefix put before passages.
    pub passage_prefix: String,
    /// Token budget per input, special tokens included.
    pub max_length: usize,
}

impl EncoderInfo {
    /// The prefix for `role`.
    pub fn prefix(&self, role: Role) -> &str {
        match role {
            Role::Query => &self.query_prefix,
            Role::Passage => &self.passage_prefix,
        }
    }

    /// Errors (naming both encoders) unless vectors from `other` can be scored against
    /// vectors from `self`: same dimension and same embedding space.
    pub fn check_compatible(&self, other: &EncoderInfo) -> Result<()> {
        ensure!(
            self.dim == other.dim,
            "encoder {} makes {}-dimensional vectors but encoder {} makes {}-dimensional ones",
            self.name,
            self.dim,
            other.name,
            other.dim
        );
        ensure!(
            self.embedding_space == other.embedding_space,
            "encoder {} writes into embedding space {} but encoder {} into {}: their vectors \
             are not comparable",
            self.name,
            self.embedding_space,
            other.name,
            other.embedding_space
        );
        Ok(())
    }
}

/// The embedding space a model directory writes into, without loading its weights: the one its
/// `optical.json` declares, else its weights fingerprint.
pub fn load_meta_space(dir: &Path) -> Result<String> {
    let meta = OpticalMeta::load(&dir.join(META_FILE))?;
    if meta.embedding_space.is_empty() { weights_fingerprint(&dir.join(WEIGHTS_FILE)) } else { Ok(meta.embedding_space) }
}

/// Checks, where it can be checked, that a model directory's claim to write into another
/// model's embedding space (`embedding_space` in `optical.json` different from the weights'
/// own fingerprint) was made for these weights: `optical.json`'s recorded
/// `weights_fingerprint`, and an assembled student's `student.json`, must name the weights
/// that are there. A claim copied from another model directory, or left behind when the
/// weights were replaced, would otherwise let vectors of unrelated spaces be compared. A claim
/// with no record (a hand-written or older file) cannot be checked and is accepted.
/// The token codebook in model directory `dir`, if it has one; it must have been fitted on
/// these very weights (`fingerprint`): codes of another model's token states mean nothing.
fn load_codebook(dir: &Path, fingerprint: &str) -> Result<Option<std::sync::Arc<codebook::Codebook>>> {
    let path = dir.join(codebook::CODEBOOK_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let book = codebook::Codebook::load(&path)?;
    ensure!(
        book.encoder_fingerprint() == fingerprint,
        "token codebook {} was fitted on the token states of weights {}, but {} holds weights {fingerprint} (fit it again: optical model fit-codebook)",
        path.display(),
        book.encoder_fingerprint(),
        dir.join(WEIGHTS_FILE).display()
    );
    ensure!(book.dim() == load_config(dir)?.hidden_size, "token codebook {} has rows of {} values, the model's states have {}", path.display(), book.dim(), load_config(dir)?.hidden_size);
    Ok(Some(std::sync::Arc::new(book)))
}

fn check_space_claim(dir: &Path, meta: &OpticalMeta, fingerprint: &str) -> Result<()> {
    if meta.embedding_space.is_empty() || meta.embedding_space == fingerprint {
        return Ok(());
    }
    let meta_path = dir.join(META_FILE);
    let weights = dir.join(WEIGHTS_FILE);
    if !meta.weights_fingerprint.is_empty() && meta.weights_fingerprint != fingerprint {
        bail!(
            "{} claims embedding space {}, but it was written for weights with fingerprint {} and {} has fingerprint {fingerprint}: \
             the claim is about other weights (write the file for these weights with `optical model write-meta`, giving \
             --embedding-space only if they were trained into that space)",
            meta_path.display(),
            meta.embedding_space,
            meta.weights_fingerprint,
            weights.display()
        );
    }
    let student = dir.join(delta::ASSEMBLED_MANIFEST_FILE);
    if student.is_file() {
        let manifest = delta::StudentManifest::load(&student)?;
        if manifest.fingerprint != fingerprint {
            bail!(
                "{} was assembled as weights with fingerprint {}, but {} has fingerprint {fingerprint}: the directory's \
                 claim of embedding space {} does not hold for these weights (re-run scripts/setup-models.sh)",
                student.display(),
                manifest.fingerprint,
                weights.display(),
                meta.embedding_space
            );
        }
        if manifest.meta.embedding_space != meta.embedding_space {
            bail!(
                "{} claims embedding space {}, but {} records {} for this student",
                meta_path.display(),
                meta.embedding_space,
                student.display(),
                manifest.meta.embedding_space
            );
        }
    }
    Ok(())
}

/// SHA-256 of a file, first 16 hex digits: the fingerprint of a weights file.
pub fn weights_fingerprint(path: &Path) -> Result<String> {
    Ok(delta::sha256_file(path)?[..16].to_string())
}

/// Overrides for what `optical.json` says.
#[derive(Debug, Clone, Default)]
pub struct EncoderOptions {
    /// Replaces the query prefix.
    pub query_prefix: Option<String>,
    /// Replaces the passage prefix.
    pub passage_prefix: Option<String>,
    /// Replaces the maximum length (capped by the model's position table).
    pub max_length: Option<usize>,
    /// Inputs per forward pass (default 32).
    pub batch_size: Option<usize>,
    /// Run the linear layers in int8 ([`Int8Bert`]) for [`Encoder::encode`] and
    /// [`Encoder::token_states`]: faster on the CPU, vectors close to but not equal to the f32
    /// ones (the f32 network stays loaded: [`Encoder::model`] and training use it). Off in
    /// [`EncoderOptions::default`] (the reference path); on in [`EncoderOptions::for_search`]
    /// where the CPU has a fast int8 kernel.
    pub int8: bool,
}

impl EncoderOptions {
    /// The options indexing and search use by default: int8 where the CPU runs it on AVX-512
    /// VNNI or AMX ([`int8::fast_kernel_available`]), f32 elsewhere. int8 encoded 6.6–12.9× as many
    /// passages/s as f32 in the session-12 bench (README) and changed nDCG@10 by −0.001 on the AfriQA dev mean and on SciFact's
    /// train split (README, "Int8 inference").
    pub fn for_search() -> Self {
        EncoderOptions { int8: int8::fast_kernel_available(), ..EncoderOptions::default() }
    }
}

/// Token states of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenStates {
    /// Token ids (special tokens and prefix included).
    pub ids: Vec<u32>,
    /// See [`Tokenized::content`].
    pub content: Vec<bool>,
    /// See [`Tokenized::spans`].
    pub spans: Vec<(usize, usize)>,
    /// One `hidden`-wide row per token, row-major (`ids.len() × dim`).
    pub states: Vec<f32>,
    /// Row width.
    pub dim: usize,
}

impl TokenStates {
    /// The state of token `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.states[i * self.dim..(i + 1) * self.dim]
    }
}

/// Tokens per int8 forward pass: enough rows for the matrix kernels to run at full speed, few
/// enough that the activations (≈ 20 KB per token for a 384-wide model) stay out of the
/// allocator's huge-object path, which returns them to the OS and faults them in again.
const INT8_BATCH_TOKENS: usize = 1024;

/// A loaded model directory: network, tokenizer and description, on one device.
#[derive(Debug)]
pub struct Encoder {
    model: BertModel,
    tokenizer: TextTokenizer,
    info: EncoderInfo,
    device: Device,
    dir: PathBuf,
    batch_size: usize,
    /// The int8 inference network, when [`EncoderOptions::int8`] asked for it.
    int8: Option<Int8Bert>,
    /// The token codebook of the model directory ([`codebook::CODEBOOK_FILE`]), if it has one.
    codebook: Option<std::sync::Arc<codebook::Codebook>>,
}

/// Reads the config of a model directory, with an error naming the directory if it is not one.
pub fn load_config(dir: &Path) -> Result<BertConfig> {
    ensure!(
        dir.is_dir(),
        "model directory {} does not exist",
        dir.display()
    );
    let path = dir.join(CONFIG_FILE);
    ensure!(
        path.is_file(),
        "{} is missing: {} is not a model directory (run scripts/setup-models.sh)",
        path.display(),
        dir.display()
    );
    BertConfig::load(&path)
}

/// Writes `optical.json` into the model directory `dir`, recording the fingerprint of its
/// weights; an empty `meta.embedding_space` becomes that fingerprint (a model's own space).
/// Errors when `meta.max_length` exceeds the model's position embeddings.
pub fn write_meta(dir: &Path, mut meta: OpticalMeta) -> Result<()> {
    let config = load_config(dir)?;
    ensure!(
        meta.max_length <= config.max_position_embeddings,
        "max_length {} exceeds the model's max_position_embeddings {}",
        meta.max_length,
        config.max_position_embeddings
    );
    meta.weights_fingerprint = weights_fingerprint(&dir.join(WEIGHTS_FILE))?;
    if meta.embedding_space.is_empty() {
        meta.embedding_space = meta.weights_fingerprint.clone();
    }
    meta.save(&dir.join(META_FILE))
}

/// Loads the network of a model directory (`config.json` + `model.safetensors`) onto `device`
/// — an autodiff device works too, for training.
pub fn load_model(dir: &Path, device: &Device) -> Result<BertModel> {
    let config = load_config(dir)?;
    let weights = dir.join(WEIGHTS_FILE);
    ensure!(weights.is_file(), "{} is missing", weights.display());
    let mut model = BertModel::init_empty(&config, device);
    load_weights(&mut model, &weights)?;
    Ok(model)
}

impl BertModel {
    /// Writes `config.json` and `model.safetensors` (HF names, fp32) into `dir`, creating it.
    /// [`load_model`] and [`Encoder::load`] read them back; copy `tokenizer.json` and write an
    /// [`OpticalMeta`] beside them to make a complete model directory
    /// ([`Encoder::save_model_dir`] does all of it).
    pub fn save_model_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        save_weights(self, &dir.join(WEIGHTS_FILE))?;
        self.config.save(&dir.join(CONFIG_FILE))
    }
}

impl Encoder {
    /// Loads a model directory onto `device` with the settings of its `optical.json`.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        Self::load_with(dir, device, &EncoderOptions::default())
    }

    /// Loads a model directory, overriding `optical.json` with `options`.
    pub fn load_with(
        dir: impl AsRef<Path>,
        device: &Device,
        options: &EncoderOptions,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let config = load_config(dir)?;
        let meta = OpticalMeta::load(&dir.join(META_FILE))?;
        let max_length = options.max_length.unwrap_or(meta.max_length);
        ensure!(
            (2..=config.max_position_embeddings).contains(&max_length),
            "max_length {max_length} for {} must be between 2 and the model's \
             max_position_embeddings ({})",
            dir.display(),
            config.max_position_embeddings
        );
        let tokenizer = TextTokenizer::load(&dir.join(TOKENIZER_FILE), max_length)?;
        if tokenizer.vocab_size() > config.vocab_size {
            bail!(
                "{} has {} tokens but {} says vocab_size {}: tokenizer and model do not belong \
                 together",
                dir.join(TOKENIZER_FILE).display(),
                tokenizer.vocab_size(),
                dir.join(CONFIG_FILE).display(),
                config.vocab_size
            );
        }
        let weights = dir.join(WEIGHTS_FILE);
        ensure!(weights.is_file(), "{} is missing", weights.display());
        // Hash the weights on another core while they load: both read the same file, and the
        // fingerprint of a 470 MB model otherwise adds about a second to every load.
        let (model, fingerprint) = std::thread::scope(|s| {
            let hasher = s.spawn(|| weights_fingerprint(&weights));
            let mut model = BertModel::init_empty(&config, device);
            let loaded = load_weights(&mut model, &weights);
            let fingerprint = hasher
                .join()
                .map_err(|_| anyhow::anyhow!("fingerprinting {} panicked", weights.display()))?;
            loaded?;
            anyhow::Ok((model, fingerprint?))
        })?;
        check_space_claim(dir, &meta, &fingerprint)?;
        let int8 = if options.int8 { Some(Int8Bert::new(&model)?) } else { None };
        let codebook = load_codebook(dir, &fingerprint)?;
        let name = if meta.name.is_empty() {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "encoder".into())
        } else {
            meta.name.clone()
        };
        let info = EncoderInfo {
            name,
            dim: config.hidden_size,
            embedding_space: if meta.embedding_space.is_empty() {
                fingerprint.clone()
            } else {
                meta.embedding_space.clone()
            },
            fingerprint,
            query_prefix: options.query_prefix.clone().unwrap_or(meta.query_prefix),
            passage_prefix: options
                .passage_prefix
                .clone()
                .unwrap_or(meta.passage_prefix),
            max_length,
        };
        Ok(Self {
            model,
            tokenizer,
            info,
            device: device.clone(),
            dir: dir.to_path_buf(),
            batch_size: options.batch_size.unwrap_or(32).max(1),
            int8,
            codebook,
        })
    }

    /// What produced this encoder's vectors.
    pub fn info(&self) -> &EncoderInfo {
        &self.info
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.info.dim
    }

    /// The model directory's token codebook ([`codebook::CODEBOOK_FILE`]), if it has one.
    pub fn codebook(&self) -> Option<&std::sync::Arc<codebook::Codebook>> {
        self.codebook.as_ref()
    }

    /// Whether [`Encoder::encode`] and [`Encoder::token_states`] run the int8 network.
    pub fn is_int8(&self) -> bool {
        self.int8.is_some()
    }

    /// The precision [`Encoder::encode`] runs in, for reports: `"f32"`, or `"int8"` with the
    /// kernel this CPU uses (`"int8 (amx-int8)"`).
    pub fn precision(&self) -> String {
        if self.is_int8() { format!("int8 ({})", int8::kernel_name()) } else { "f32".into() }
    }

    /// The (f32) network.
    pub fn model(&self) -> &BertModel {
        &self.model
    }

    /// The tokenizer (truncating at `info().max_length`, no padding).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The device the network lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The directory the encoder was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the network out (e.g. to train it: `model.fork(&device.autodiff())`).
    pub fn into_model(self) -> BertModel {
        self.model
    }

    /// Tokenises texts with the prefix of `role`.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S], role: Role) -> Result<Vec<Tokenized>> {
        self.tokenizer.encode(texts, self.info.prefix(role))
    }

    /// Pads tokenised inputs into one batch on this encoder's device.
    pub fn batch(&self, items: &[&Tokenized]) -> TokenBatch {
        TokenBatch::new(items, self.tokenizer.pad_id(), &self.device)
    }

    /// L2-normalised mean-pooled embeddings of queries, one per text, in input order.
    pub fn encode_queries<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        self.encode(texts, Role::Query)
    }

    /// L2-normalised mean-pooled embeddings of passages, one per text, in input order.
    pub fn encode_passages<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        self.encode(texts, Role::Passage)
    }

    /// L2-normalised mean-pooled embeddings with the prefix of `role`, in input order.
    /// Inputs are batched by length (see [`length_batches`]).
    pub fn encode<S: AsRef<str>>(&self, texts: &[S], role: Role) -> Result<Vec<Vec<f32>>> {
        self.encode_tokens(&self.tokenize(texts, role)?)
    }

    /// L2-normalised mean-pooled embeddings of inputs tokenised by [`Encoder::tokenize`], in
    /// input order: lets a caller tokenise the next inputs while these are encoded.
    pub fn encode_tokens(&self, tokens: &[Tokenized]) -> Result<Vec<Vec<f32>>> {
        if let Some(int8) = &self.int8 {
            return self.run_int8(int8, tokens, |packed| Ok(packed.pooled()));
        }
        self.run_batches(tokens, |batch| {
            let states = self.model.forward(
                batch.input_ids,
                batch.token_type_ids,
                batch.attention_mask.clone(),
            );
            let pooled = l2_normalize(mean_pool(states, batch.attention_mask));
            let rows = split_rows(pooled, self.info.dim)?;
            Ok(rows)
        })
    }

    /// [`Encoder::encode_tokens`] and the last-layer token states of each input from the same
    /// forward pass: `(pooled vector, states)`, the states `len × dim` row-major, in input order.
    pub fn encode_tokens_with_states(&self, tokens: &[Tokenized]) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        let dim = self.info.dim;
        if let Some(int8) = &self.int8 {
            return self.run_int8(int8, tokens, |packed| {
                Ok(packed.pooled().into_iter().enumerate().map(|(i, v)| (v, packed.input(i).to_vec())).collect())
            });
        }
        self.run_batches(tokens, |batch| {
            let lengths = batch.lengths.clone();
            let states = self.model.forward(batch.input_ids, batch.token_type_ids, batch.attention_mask.clone());
            let [_, seq, _] = states.dims();
            let pooled = split_rows(l2_normalize(mean_pool(states.clone(), batch.attention_mask)), dim)?;
            let flat = to_vec(states)?;
            Ok(pooled.into_iter().zip(&lengths).enumerate().map(|(r, (v, &len))| (v, flat[r * seq * dim..(r * seq + len) * dim].to_vec())).collect())
        })
    }

    /// Last-layer token states of every input (prefix of `role` included), in input order.
    pub fn token_states<S: AsRef<str>>(&self, texts: &[S], role: Role) -> Result<Vec<TokenStates>> {
        let tokens = self.tokenize(texts, role)?;
        let dim = self.info.dim;
        let states = if let Some(int8) = &self.int8 {
            self.run_int8(int8, &tokens, |packed| Ok((0..packed.offsets.len() - 1).map(|i| packed.input(i).to_vec()).collect()))?
        } else {
            self.run_batches(&tokens, |batch| {
            let lengths = batch.lengths.clone();
            let states =
                self.model
                    .forward(batch.input_ids, batch.token_type_ids, batch.attention_mask);
            let [_, seq, _] = states.dims();
            let flat = to_vec(states)?;
            Ok(lengths
                .iter()
                .enumerate()
                .map(|(r, &len)| flat[r * seq * dim..(r * seq + len) * dim].to_vec())
                .collect())
            })?
        };
        Ok(tokens
            .into_iter()
            .zip(states)
            .map(|(t, states)| TokenStates {
                ids: t.ids,
                content: t.content,
                spans: t.spans,
                states,
                dim,
            })
            .collect())
    }

    /// Runs `f` on length-sorted batches of `tokens` and returns its per-row outputs in the
    /// order of `tokens`.
    fn run_batches<T>(
        &self,
        tokens: &[Tokenized],
        f: impl Fn(TokenBatch) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
        let mut out: Vec<Option<T>> = (0..tokens.len()).map(|_| None).collect();
        for group in length_batches(&lengths, self.batch_size) {
            let items: Vec<&Tokenized> = group.iter().map(|&i| &tokens[i]).collect();
            let rows = f(self.batch(&items))?;
            ensure!(
                rows.len() == group.len(),
                "batch returned {} rows for {} inputs",
                rows.len(),
                group.len()
            );
            for (i, row) in group.into_iter().zip(rows) {
                out[i] = Some(row);
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every input is in one batch"))
            .collect())
    }

    /// Runs the int8 network on batches of `tokens` and returns `f`'s per-input outputs in
    /// the order of `tokens`. Its batches are packed without padding, so they need no sorting
    /// by length: consecutive inputs go together, up to [`INT8_BATCH_TOKENS`] tokens (or
    /// `batch_size` inputs) at a time. Results do not depend on how inputs are grouped.
    fn run_int8<T>(
        &self,
        int8: &Int8Bert,
        tokens: &[Tokenized],
        f: impl Fn(PackedStates) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(tokens.len());
        let mut start = 0;
        while start < tokens.len() {
            let (mut end, mut budget) = (start, 0);
            while end < tokens.len() && end - start < self.batch_size && (end == start || budget + tokens[end].ids.len() <= INT8_BATCH_TOKENS) {
                budget += tokens[end].ids.len();
                end += 1;
            }
            let ids: Vec<&[u32]> = tokens[start..end].iter().map(|t| t.ids.as_slice()).collect();
            out.extend(f(int8.forward(&ids)?)?);
            start = end;
        }
        Ok(out)
    }

    /// Encodes a large stream of texts: reads `chunk` texts at a time (sorted by length inside
    /// the chunk), and yields each chunk's vectors in input order. A progress bar on stderr
    /// (hidden when stderr is not a terminal) counts texts against `total` when known.
    pub fn encode_stream<I, S>(
        &self,
        texts: I,
        role: Role,
        total: Option<u64>,
    ) -> EncodeStream<'_, I::IntoIter>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let progress = if std::io::stderr().is_terminal() {
            let bar = match total {
                Some(n) => indicatif::ProgressBar::new(n),
                None => indicatif::ProgressBar::no_length(),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "encoding {bar:40} {pos}/{len} texts [{elapsed_precise}<{eta_precise}] {per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        EncodeStream {
            encoder: self,
            texts: texts.into_iter(),
            role,
            chunk: self.batch_size * 16,
            progress,
        }
    }

    /// Writes a complete model directory: the network (`config.json`, `model.safetensors`),
    /// this encoder's `tokenizer.json`, and `meta` as `optical.json`. Used to save a trained
    /// student (with its teacher's `embedding_space` in `meta`).
    pub fn save_model_dir(
        model: &BertModel,
        tokenizer_json: &Path,
        meta: &OpticalMeta,
        dir: &Path,
    ) -> Result<()> {
        model.save_model_dir(dir)?;
        let dest = dir.join(TOKENIZER_FILE);
        if tokenizer_json != dest {
            std::fs::copy(tokenizer_json, &dest).with_context(|| {
                format!("copying {} to {}", tokenizer_json.display(), dest.display())
            })?;
        }
        // Record which weights the file describes, so that its embedding-space claim can be
        // checked when the directory is loaded (see `check_space_claim`).
        let mut meta = meta.clone();
        meta.weights_fingerprint = weights_fingerprint(&dir.join(WEIGHTS_FILE))?;
        meta.save(&dir.join(META_FILE))
    }
}

/// Iterator returned by [`Encoder::encode_stream`]: one `Vec` of vectors per chunk of input.
pub struct EncodeStream<'a, I> {
    encoder: &'a Encoder,
    texts: I,
    role: Role,
    chunk: usize,
    progress: indicatif::ProgressBar,
}

impl<I, S> Iterator for EncodeStream<'_, I>
where
    I: Iterator<Item = S>,
    S: AsRef<str>,
{
    type Item = Result<Vec<Vec<f32>>>;

    fn next(&mut self) -> Option<Self::Item> {
        let chunk: Vec<S> = self.texts.by_ref().take(self.chunk).collect();
        if chunk.is_empty() {
            self.progress.finish_and_clear();
            return None;
        }
        let result = self.encoder.encode(&chunk, self.role);
        self.progress.inc(chunk.len() as u64);
        Some(result)
    }
}

impl<I> EncodeStream<'_, I> {
    /// Texts per yielded chunk (default 16 batches).
    pub fn with_chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }
}

/// A tensor's values read back to the host as f32.
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("reading tensor back from the device: {e:?}"))
}

fn split_rows(t: Tensor<2>, dim: usize) -> Result<Vec<Vec<f32>>> {
    Ok(to_vec(t)?.chunks(dim).map(|c| c.to_vec()).collect())
}
