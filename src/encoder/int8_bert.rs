//! The BERT forward pass for int8 CPU inference, built from a loaded [`BertModel`].
//!
//! The six linear layers of each transformer layer run as [`Int8Linear`] (query, key and value
//! fused into one `hidden → 3·hidden` product); LayerNorm, GELU, softmax and the attention
//! products stay f32 ([`super::rowops`], and [`super::attention`] for `QKᵀ` and `PV`). Inputs
//! are packed without padding: the token rows of every input in a batch are stacked
//! (`[tokens, hidden]`) and attention runs per input over its own rows, so no work goes to
//! padding positions.
//! Position ids start at 0 for each input and token type ids are 0, as in
//! [`BertModel::forward`], whose results this approximates (f32 stays the reference path).
use anyhow::{Result, ensure};
use burn::tensor::{Int, Tensor, TensorData};
use rayon::prelude::*;

use super::bert::{BertDenseNorm, BertLayer, BertModel};
use super::int8::{Int8Linear, QuantizedRows};
use super::{attention, rowops, to_vec};

/// LayerNorm parameters on the host.
#[derive(Debug, Clone)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

/// One transformer layer with int8 linear layers.
#[derive(Debug, Clone)]
struct Int8Layer {
    /// `hidden → 3·hidden`: query, key, value side by side in each output row.
    qkv: Int8Linear,
    attn_out: Int8Linear,
    attn_norm: Norm,
    up: Int8Linear,
    down: Int8Linear,
    out_norm: Norm,
}

/// A BERT encoder for inference with int8 linear layers (see the module docs).
#[derive(Debug, Clone)]
pub struct Int8Bert {
    /// `[vocab, hidden]`, shared with the f32 model (a burn tensor: no copy of the table).
    word_embeddings: Tensor<2>,
    /// `[max_position, hidden]`, row-major.
    positions: Vec<f32>,
    /// Row 0 of the token-type table (every input is one segment).
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Int8Layer>,
    hidden: usize,
    heads: usize,
}

/// Last-layer token states of a batch of inputs, packed: input `i` owns rows
/// `offsets[i]..offsets[i + 1]` of `states` (`hidden` values per row).
#[derive(Debug, Clone)]
pub struct PackedStates {
    /// `[tokens, hidden]`, row-major.
    pub states: Vec<f32>,
    /// Row offset of each input, and the total at the end.
    pub offsets: Vec<usize>,
    /// Row width.
    pub hidden: usize,
}

impl PackedStates {
    /// The token rows of input `i` (`len × hidden` values).
    pub fn input(&self, i: usize) -> &[f32] {
        &self.states[self.offsets[i] * self.hidden..self.offsets[i + 1] * self.hidden]
    }

    /// Mean of each input's token rows, scaled to unit L2 norm (what [`super::mean_pool`] and
    /// [`super::l2_normalize`] compute on the f32 path).
    pub fn pooled(&self) -> Vec<Vec<f32>> {
        (0..self.offsets.len() - 1)
            .map(|i| {
                let rows = self.input(i);
                let mut mean = vec![0f32; self.hidden];
                for row in rows.chunks_exact(self.hidden) {
                    for (m, &v) in mean.iter_mut().zip(row) {
                        *m += v;
                    }
                }
                let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                mean.iter_mut().for_each(|v| *v /= norm);
                mean
            })
            .collect()
    }
}

fn int8_linear(linears: &[&burn::nn::Linear]) -> Result<Int8Linear> {
    // Several layers reading the same input are concatenated along the outputs.
    let d_in = linears[0].weight.val().dims()[0];
    let mut parts = Vec::new();
    let mut biases = Vec::new();
    for l in linears {
        let [i, o] = l.weight.val().dims();
        ensure!(i == d_in, "int8: fused linear layers take {d_in} and {i} inputs");
        parts.push((to_vec(l.weight.val())?, o));
        match &l.bias {
            Some(b) => biases.extend(to_vec(b.val())?),
            None => biases.extend(std::iter::repeat_n(0.0, o)),
        }
    }
    let d_out: usize = parts.iter().map(|p| p.1).sum();
    let mut weight = Vec::with_capacity(d_in * d_out);
    for i in 0..d_in {
        for (w, o) in &parts {
            weight.extend_from_slice(&w[i * o..(i + 1) * o]);
        }
    }
    Ok(Int8Linear::new(&weight, Some(&biases), d_in, d_out))
}

fn norm(ln: &burn::nn::LayerNorm, eps: f64) -> Result<Norm> {
    let gamma = to_vec(ln.gamma.val())?;
    let beta = match &ln.beta {
        Some(b) => to_vec(b.val())?,
        None => vec![0.0; gamma.len()],
    };
    Ok(Norm { gamma, beta, eps: eps as f32 })
}

impl Int8Layer {
    fn new(layer: &BertLayer, eps: f64) -> Result<Self> {
        let a = &layer.attention.self_attn;
        let dense_norm = |d: &BertDenseNorm| -> Result<(Int8Linear, Norm)> { Ok((int8_linear(&[&d.dense])?, norm(&d.layer_norm, eps)?)) };
        let (attn_out, attn_norm) = dense_norm(&layer.attention.output)?;
        let (down, out_norm) = dense_norm(&layer.output)?;
        Ok(Self {
            qkv: int8_linear(&[&a.query, &a.key, &a.value])?,
            attn_out,
            attn_norm,
            up: int8_linear(&[&layer.intermediate.dense])?,
            down,
            out_norm,
        })
    }
}

impl Int8Bert {
    /// Quantises the linear layers of `model` (per output channel) and copies the rest of its
    /// small parameters to the host. Takes about a second for multilingual-e5-small.
    pub fn new(model: &BertModel) -> Result<Self> {
        let c = &model.config;
        let e = &model.embeddings;
        let token_types = to_vec(e.token_type_embeddings.weight.val())?;
        Ok(Self {
            word_embeddings: e.word_embeddings.weight.val(),
            positions: to_vec(e.position_embeddings.weight.val())?,
            token_type: token_types[..c.hidden_size].to_vec(),
            embedding_norm: norm(&e.layer_norm, c.layer_norm_eps)?,
            layers: model.encoder.layer.iter().map(|l| Int8Layer::new(l, c.layer_norm_eps)).collect::<Result<_>>()?,
            hidden: c.hidden_size,
            heads: c.num_attention_heads,
        })
    }

    /// Last-layer token states of `inputs` (token ids, special tokens included; each at most
    /// the model's `max_position_embeddings` long).
    pub fn forward(&self, inputs: &[&[u32]]) -> Result<PackedStates> {
        let h = self.hidden;
        let max_len = self.positions.len() / h;
        let mut offsets = vec![0usize];
        for ids in inputs {
            ensure!(ids.len() <= max_len, "int8 encoder: an input has {} tokens, the model takes at most {max_len}", ids.len());
            offsets.push(offsets.last().unwrap() + ids.len());
        }
        let tokens = *offsets.last().unwrap();
        let mut x = self.embed(inputs, tokens)?;
        let mut buffers = Buffers::default();
        buffers.input.quantize_into(&x, tokens, h);
        for (i, layer) in self.layers.iter().enumerate() {
            let last = i + 1 == self.layers.len();
            self.layer(layer, &mut x, &offsets, &mut buffers, !last);
        }
        Ok(PackedStates { states: x, offsets, hidden: h })
    }

    /// Word + position + token-type embeddings, then LayerNorm: `[tokens, hidden]`.
    fn embed(&self, inputs: &[&[u32]], tokens: usize) -> Result<Vec<f32>> {
        let h = self.hidden;
        let ids: Vec<i64> = inputs.iter().flat_map(|ids| ids.iter().map(|&t| t as i64)).collect();
        let device = self.word_embeddings.device();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [tokens]), &device);
        let mut x = to_vec(self.word_embeddings.clone().select(0, ids))?;
        let mut row = 0;
        for input in inputs {
            for p in 0..input.len() {
                let dst = &mut x[row * h..(row + 1) * h];
                for ((d, &pos), &tt) in dst.iter_mut().zip(&self.positions[p * h..(p + 1) * h]).zip(&self.token_type) {
                    *d += pos + tt;
                }
                row += 1;
            }
        }
        let n = &self.embedding_norm;
        rowops::layer_norm(&mut x, h, &n.gamma, &n.beta, n.eps);
        Ok(x)
    }

    /// One transformer layer on the packed rows `x` (updated in place), whose quantised copy
    /// is `buffers.input`; when `quantize_output`, the result is quantised into `buffers.input`
    /// for the next layer.
    fn layer(&self, layer: &Int8Layer, x: &mut [f32], offsets: &[usize], buffers: &mut Buffers, quantize_output: bool) {
        let h = self.hidden;
        let tokens = x.len() / h;
        let b = buffers;
        layer.qkv.forward_into(&b.input, &mut b.wide);
        self.attention(&b.wide, offsets, &mut b.narrow);
        b.mid.quantize_into(&b.narrow, tokens, h);
        layer.attn_out.forward_into(&b.mid, &mut b.narrow);
        residual_norm_quantized(x, &b.narrow, h, &layer.attn_norm, &mut b.mid);
        layer.up.forward_into(&b.mid, &mut b.wide);
        let up = layer.up.d_out();
        b.mid.quantize_after_into(&mut b.wide, tokens, up, |_, row| rowops::gelu(row));
        layer.down.forward_into(&b.mid, &mut b.narrow);
        if quantize_output {
            residual_norm_quantized(x, &b.narrow, h, &layer.out_norm, &mut b.input);
        } else {
            residual_norm(x, &b.narrow, h, &layer.out_norm);
        }
    }

    /// Scaled dot-product attention of every input over its own rows, every head:
    /// `qkv` is `[tokens, 3·hidden]`; writes the context `[tokens, hidden]` into `ctx`.
    fn attention(&self, qkv: &[f32], offsets: &[usize], ctx: &mut Vec<f32>) {
        let h = self.hidden;
        let dh = h / self.heads;
        let tokens = qkv.len() / (3 * h);
        // Every value is written below (every row of every input, every head's columns).
        ctx.resize(tokens * h, 0.0);
        let dst = CtxPtr(ctx.as_mut_ptr());
        let scale = 1.0 / (dh as f32).sqrt();
        let jobs: Vec<(usize, usize)> = (0..offsets.len() - 1).flat_map(|i| (0..self.heads).map(move |head| (i, head))).collect();
        jobs.into_par_iter().for_each(|(i, head)| {
            let (start, len) = (offsets[i], offsets[i + 1] - offsets[i]);
            if len == 0 {
                return;
            }
            let dst = &dst;
            let base = start * 3 * h + head * dh;
            let attention_head = attention::Head {
                q: qkv[base..].as_ptr(),
                k: qkv[base + h..].as_ptr(),
                v: qkv[base + 2 * h..].as_ptr(),
                stride: 3 * h,
                len,
                dh,
                // SAFETY: row `start` of ctx, this head's columns.
                ctx: unsafe { dst.0.add(start * h + head * dh) },
                ctx_stride: h,
            };
            // SAFETY: the head's rows stay inside qkv and this input's rows of ctx; the jobs
            // write disjoint (rows of input i) × (columns of head) blocks of ctx.
            unsafe { attention::attend(&attention_head, scale) };
        });
    }
}

/// The activations of one forward pass, reused by every layer: buffers allocated afresh for
/// each layer cost the kernel's clearing of new pages every time (≈ 6 % of the int8 encoder's
/// time at batch 32 × 128).
#[derive(Default)]
struct Buffers {
    /// The layer's input, quantised.
    input: QuantizedRows,
    /// `[tokens, 3·hidden]` (query, key, value) and `[tokens, intermediate]` (the up projection).
    wide: Vec<f32>,
    /// `[tokens, hidden]`: the attention context, then each product back to the hidden width.
    narrow: Vec<f32>,
    /// The quantised input of the attention output, up and down products in turn.
    mid: QuantizedRows,
}

/// [`residual_norm`], and the result quantised into `q` for the next product in the same pass.
fn residual_norm_quantized(x: &mut [f32], delta: &[f32], width: usize, n: &Norm, q: &mut QuantizedRows) {
    let rows = x.len() / width;
    q.quantize_after_into(x, rows, width, |r, row| {
        rowops::residual_layer_norm(row, &delta[r * width..(r + 1) * width], width, &n.gamma, &n.beta, n.eps)
    });
}

/// `x = LayerNorm(x + delta)` on `width`-wide rows, bands of rows in parallel.
fn residual_norm(x: &mut [f32], delta: &[f32], width: usize, n: &Norm) {
    const BAND_ROWS: usize = 64;
    x.par_chunks_mut(BAND_ROWS * width)
        .zip(delta.par_chunks(BAND_ROWS * width))
        .for_each(|(x, delta)| rowops::residual_layer_norm(x, delta, width, &n.gamma, &n.beta, n.eps));
}

struct CtxPtr(*mut f32);
// SAFETY: attention jobs write disjoint blocks through it (see `Int8Bert::attention`).
unsafe impl Sync for CtxPtr {}
unsafe impl Send for CtxPtr {}
