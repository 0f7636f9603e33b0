//! Weights of a [`BertModel`] in HF-named `model.safetensors` files: validation, loading
//! (burn-store with the PyTorch adapter) and saving back.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::store::{
    BurnToPyTorchAdapter, ChainAdapter, FloatCastAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    SafetensorsStore,
};
use burn::tensor::DType;

use super::bert::BertModel;
use super::config::BertConfig;

/// Tensors a checkpoint may hold that this encoder does not use: the I64 position-id buffer,
/// the pooler (sentence embeddings come from mean pooling) and masked-LM heads.
fn is_ignorable(name: &str) -> bool {
    name == "embeddings.position_ids" || name.starts_with("pooler.") || name.starts_with("cls.")
}

/// Strips the `bert.` prefix some HF checkpoints (e.g. `BertForMaskedLM`) put on every name.
fn canonical(name: &str) -> &str {
    name.strip_prefix("bert.").unwrap_or(name)
}

/// The HF name and shape of every tensor `config` calls for, with the config fields each
/// shape comes from (for error messages).
pub fn expected_tensors(config: &BertConfig) -> BTreeMap<String, (Vec<usize>, &'static str)> {
    let h = config.hidden_size;
    let i = config.intermediate_size;
    let mut out = BTreeMap::new();
    let mut put = |name: String, shape: Vec<usize>, why: &'static str| {
        out.insert(name, (shape, why));
    };
    put(
        "embeddings.word_embeddings.weight".into(),
        vec![config.vocab_size, h],
        "vocab_size, hidden_size",
    );
    put(
        "embeddings.position_embeddings.weight".into(),
        vec![config.max_position_embeddings, h],
        "max_position_embeddings, hidden_size",
    );
    put(
        "embeddings.token_type_embeddings.weight".into(),
        vec![config.type_vocab_size, h],
        "type_vocab_size, hidden_size",
    );
    for p in ["weight", "bias"] {
        put(format!("embeddings.LayerNorm.{p}"), vec![h], "hidden_size");
    }
    for l in 0..config.num_hidden_layers {
        let pre = format!("encoder.layer.{l}");
        for m in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
            put(format!("{pre}.{m}.weight"), vec![h, h], "hidden_size");
            put(format!("{pre}.{m}.bias"), vec![h], "hidden_size");
        }
        put(
            format!("{pre}.intermediate.dense.weight"),
            vec![i, h],
            "intermediate_size, hidden_size",
        );
        put(format!("{pre}.intermediate.dense.bias"), vec![i], "intermediate_size");
        put(
            format!("{pre}.output.dense.weight"),
            vec![h, i],
            "hidden_size, intermediate_size",
        );
        put(format!("{pre}.output.dense.bias"), vec![h], "hidden_size");
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            for p in ["weight", "bias"] {
                put(format!("{pre}.{ln}.{p}"), vec![h], "hidden_size");
            }
        }
    }
    out
}

/// Checks that `path` is a complete safetensors file holding exactly the tensors `config`
/// calls for, with matching shapes and float dtypes. Errors name the file, the tensor and the
/// config fields involved, so a truncated download or a config from another model is obvious.
pub fn check_safetensors(path: &Path, config: &BertConfig) -> Result<()> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening model weights {}", path.display()))?;
    // SAFETY: read-only map of a file we do not modify; a concurrent writer could change the
    // bytes under us, which at worst makes this check or the load fail.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("mapping model weights {}", path.display()))?;
    let tensors = safetensors::SafeTensors::deserialize(&map).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a complete safetensors file ({e}); it may be truncated or corrupt: \
             re-run scripts/setup-models.sh",
            path.display()
        )
    })?;
    let expected = expected_tensors(config);
    let mut seen = std::collections::BTreeSet::new();
    let mut unexpected = Vec::new();
    for (name, view) in tensors.iter() {
        let key = canonical(name);
        if is_ignorable(key) {
            continue;
        }
        let Some((shape, why)) = expected.get(key) else {
            unexpected.push(name.to_string());
            continue;
        };
        if view.shape() != shape.as_slice() {
            bail!(
                "{}: tensor `{name}` has shape {:?}, but config.json ({why}) implies {:?}: \
                 the config and the weights belong to different models",
                path.display(),
                view.shape(),
                shape
            );
        }
        use safetensors::Dtype::*;
        if !matches!(view.dtype(), F32 | F16 | BF16 | F64) {
            bail!(
                "{}: tensor `{name}` has dtype {:?}; a float type is required",
                path.display(),
                view.dtype()
            );
        }
        seen.insert(key.to_string());
    }
    let missing: Vec<_> = expected.keys().filter(|k| !seen.contains(*k)).collect();
    if !missing.is_empty() {
        bail!(
            "{}: {} tensor(s) that config.json calls for are missing, e.g. {:?}",
            path.display(),
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    if !unexpected.is_empty() {
        bail!(
            "{}: {} tensor(s) are not part of a BERT encoder, e.g. {:?}",
            path.display(),
            unexpected.len(),
            &unexpected[..unexpected.len().min(5)]
        );
    }
    Ok(())
}

/// Loads an HF-named safetensors file into `model`, after [`check_safetensors`].
///
/// burn-store's `PyTorchToBurnAdapter` transposes Linear weights and renames LayerNorm
/// parameters; the key remapping handles the two HF names that are not Rust identifiers.
/// The apply result is checked: every module parameter must be filled, and nothing but the
/// ignorable buffers may be left over.
pub fn load_weights(model: &mut BertModel, path: &Path) -> Result<()> {
    check_safetensors(path, &model.config)?;
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(ChainAdapter::new(
            PyTorchToBurnAdapter,
            FloatCastAdapter::to(DType::F32),
        ))
        .with_key_remapping(r"^bert\.", "")
        .with_key_remapping(r"\.attention\.self\.", ".attention.self_attn.")
        .with_key_remapping(r"\.LayerNorm\.", ".layer_norm.")
        .allow_partial(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("loading weights from {}: {e}", path.display()))?;
    if !result.errors.is_empty() {
        bail!(
            "loading weights from {}: {}",
            path.display(),
            result
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if !result.missing.is_empty() {
        bail!(
            "loading weights from {}: no tensor for module parameter(s) {:?}",
            path.display(),
            result.missing.iter().map(|(p, _)| p).collect::<Vec<_>>()
        );
    }
    let unused: Vec<_> = result
        .unused
        .iter()
        .filter(|n| !is_ignorable(n))
        .collect();
    if !unused.is_empty() {
        bail!(
            "loading weights from {}: tensor(s) {:?} matched no module parameter",
            path.display(),
            unused
        );
    }
    Ok(())
}

/// Writes `model`'s weights to `path` as HF-named fp32 safetensors (format `pt`, so
/// `transformers` reads it too), replacing an existing file atomically.
pub fn save_weights(model: &BertModel, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .with_key_remapping(r"\.attention\.self_attn\.", ".attention.self.")
        .with_key_remapping(r"\.layer_norm\.", ".LayerNorm.")
        .clear_metadata()
        .metadata("format", "pt")
        .overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("writing weights to {}: {e}", path.display()))
}
