//! The BERT network as a burn [`Module`]: embeddings, post-LayerNorm transformer layers,
//! mean pooling and L2 normalisation.
//!
//! Field names follow the HF checkpoint layout so weights map by name; the two places where
//! Rust names differ (`attention.self` and `LayerNorm`) are remapped in [`super::weights`].
//! The same module runs for inference (flex/ndarray/cuda device) and for training (the same
//! device with `.autodiff()`): nothing here is backend- or autodiff-specific.
use burn::module::Module;
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor};

use super::config::BertConfig;

/// Word + position + token-type embeddings followed by LayerNorm.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// `[vocab, hidden]`.
    pub word_embeddings: Embedding,
    /// `[max_position, hidden]`; position ids start at 0.
    pub position_embeddings: Embedding,
    /// `[type_vocab, hidden]`.
    pub token_type_embeddings: Embedding,
    /// HF `LayerNorm`.
    pub layer_norm: LayerNorm,
}

/// Query/key/value projections of one layer (HF `attention.self`).
#[derive(Module, Debug)]
pub struct BertSelfAttention {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Number of heads.
    pub n_heads: usize,
}

/// A dense projection followed by residual add and LayerNorm (HF `attention.output` / `output`).
#[derive(Module, Debug)]
pub struct BertDenseNorm {
    /// The projection.
    pub dense: Linear,
    /// HF `LayerNorm`.
    pub layer_norm: LayerNorm,
}

/// Self-attention with its output block.
#[derive(Module, Debug)]
pub struct BertAttention {
    /// HF `attention.self`.
    pub self_attn: BertSelfAttention,
    /// HF `attention.output`.
    pub output: BertDenseNorm,
}

/// The first half of the feed-forward block (HF `intermediate`).
#[derive(Module, Debug)]
pub struct BertIntermediate {
    /// hidden → intermediate.
    pub dense: Linear,
}

/// One transformer layer: attention, then GELU feed-forward, each with post-LayerNorm.
#[derive(Module, Debug)]
pub struct BertLayer {
    /// Self-attention block.
    pub attention: BertAttention,
    /// Feed-forward up-projection.
    pub intermediate: BertIntermediate,
    /// Feed-forward down-projection + LayerNorm.
    pub output: BertDenseNorm,
}

/// The layer stack (HF `encoder`).
#[derive(Module, Debug)]
pub struct BertLayers {
    /// HF `encoder.layer.{i}`.
    pub layer: Vec<BertLayer>,
}

/// A BERT encoder without pooler: input ids → last-layer token states.
#[derive(Module, Debug)]
pub struct BertModel {
    /// Embedding block.
    pub embeddings: BertEmbeddings,
    /// Transformer layers.
    pub encoder: BertLayers,
    /// The architecture this module was built from (written back by `save_model_dir`).
    #[module(skip)]
    pub config: BertConfig,
}

fn linear(d_in: usize, d_out: usize, init: &Option<Initializer>, device: &Device) -> Linear {
    let mut c = LinearConfig::new(d_in, d_out);
    if let Some(init) = init {
        c = c.with_initializer(init.clone());
    }
    c.init(device)
}

fn embedding(n: usize, d: usize, init: &Option<Initializer>, device: &Device) -> Embedding {
    let mut c = EmbeddingConfig::new(n, d);
    match init {
        Some(init) => c = c.with_initializer(init.clone()),
        // BERT's own initialisation (N(0, 0.02)) rather than burn's N(0, 1).
        None => {
            c = c.with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            })
        }
    }
    c.init(device)
}

impl BertModel {
    /// A freshly initialised model (BERT-style random weights) on `device`.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self::build(config, None, device)
    }

    /// A model whose weights are all zero: the cheap skeleton that loading fills in.
    pub fn init_empty(config: &BertConfig, device: &Device) -> Self {
        Self::build(config, Some(Initializer::Zeros), device)
    }

    fn build(config: &BertConfig, init: Option<Initializer>, device: &Device) -> Self {
        let h = config.hidden_size;
        let ln = || {
            LayerNormConfig::new(h)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        };
        let embeddings = BertEmbeddings {
            word_embeddings: embedding(config.vocab_size, h, &init, device),
            position_embeddings: embedding(config.max_position_embeddings, h, &init, device),
            token_type_embeddings: embedding(config.type_vocab_size, h, &init, device),
            layer_norm: ln(),
        };
        let layer = (0..config.num_hidden_layers)
            .map(|_| BertLayer {
                attention: BertAttention {
                    self_attn: BertSelfAttention {
                        query: linear(h, h, &init, device),
                        key: linear(h, h, &init, device),
                        value: linear(h, h, &init, device),
                        n_heads: config.num_attention_heads,
                    },
                    output: BertDenseNorm {
                        dense: linear(h, h, &init, device),
                        layer_norm: ln(),
                    },
                },
                intermediate: BertIntermediate {
                    dense: linear(h, config.intermediate_size, &init, device),
                },
                output: BertDenseNorm {
                    dense: linear(config.intermediate_size, h, &init, device),
                    layer_norm: ln(),
                },
            })
            .collect();
        Self {
            embeddings,
            encoder: BertLayers { layer },
            config: config.clone(),
        }
    }

    /// Last-layer token states `[batch, seq, hidden]`.
    ///
    /// `input_ids` and `token_type_ids` are `[batch, seq]`; `attention_mask` is `[batch, seq]`
    /// with 1 for real tokens and 0 for padding (the HF convention). Padding keys are excluded
    /// from attention; states at padded positions are computed but meaningless.
    /// `seq` must not exceed `max_position_embeddings` (the [`super::Encoder`] truncates).
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
    ) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let emb = &self.embeddings;
        // Positions 0..seq are the same for every row: slice the table instead of a lookup.
        let positions = emb
            .position_embeddings
            .weight
            .val()
            .narrow(0, 0, seq)
            .unsqueeze::<3>();
        let x = emb.word_embeddings.forward(input_ids)
            + positions
            + emb.token_type_embeddings.forward(token_type_ids);
        let mut x = emb.layer_norm.forward(x);

        let heads = self.config.num_attention_heads;
        // true = masked out (a padding key); one mask shared by all heads and queries.
        let pad: Tensor<4, Bool> = attention_mask
            .equal_elem(0)
            .reshape([batch, 1, 1, seq])
            .expand([batch, heads, seq, seq]);
        for layer in &self.encoder.layer {
            x = layer.forward(x, pad.clone());
        }
        x
    }
}

impl BertLayer {
    fn forward(&self, x: Tensor<3>, pad: Tensor<4, Bool>) -> Tensor<3> {
        let attn = self.attention.self_attn.forward(x.clone(), pad);
        let x = self
            .attention
            .output
            .layer_norm
            .forward(linear_rows(&self.attention.output.dense, attn) + x);
        let mid = gelu(linear_rows(&self.intermediate.dense, x.clone()));
        self.output
            .layer_norm
            .forward(linear_rows(&self.output.dense, mid) + x)
    }
}

impl BertSelfAttention {
    fn forward(&self, x: Tensor<3>, pad: Tensor<4, Bool>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let head_dim = hidden / self.n_heads;
        let split = |t: Tensor<3>| {
            t.reshape([batch, seq, self.n_heads, head_dim])
                .swap_dims(1, 2)
        };
        let q = split(linear_rows(&self.query, x.clone()));
        let k = split(linear_rows(&self.key, x.clone()));
        let v = split(linear_rows(&self.value, x));
        // Fused scaled-dot-product attention (scale 1/sqrt(head_dim)); autodiff devices get
        // burn's differentiable fallback of the same op.
        let ctx = attention(q, k, v, Some(pad), None, AttentionModuleOptions::default());
        ctx.swap_dims(1, 2).reshape([batch, seq, hidden])
    }
}

/// `layer` applied to every token row of `x` (`[batch, seq, d_in]` → `[batch, seq, d_out]`) as
/// one `[batch·seq, d_in] × [d_in, d_out]` product. burn's `Linear` on a 3-D input keeps the
/// batch dimension when `seq` is a multiple of 32 (a policy tuned for GPU tiles): on the CPU
/// that is one small product per input, each packing the whole weight matrix again, and in
/// training a weight gradient per input summed afterwards. The flattened form is one product
/// forward and one per gradient (a distillation step 1.05 → 0.61 s, docs/distillation.md).
fn linear_rows(layer: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [batch, seq, d_in] = x.dims();
    let y = layer.forward(x.reshape([batch * seq, d_in]));
    let d_out = y.dims()[1];
    y.reshape([batch, seq, d_out])
}

/// Mean of the token states over the real tokens: `[batch, seq, hidden]` → `[batch, hidden]`.
pub fn mean_pool(states: Tensor<3>, attention_mask: Tensor<2, Int>) -> Tensor<2> {
    let mask = attention_mask.float().unsqueeze_dim::<3>(2); // [batch, seq, 1]
    let summed = (states * mask.clone()).sum_dim(1); // [batch, 1, hidden]
    let counts = mask.sum_dim(1).clamp_min(1e-9); // [batch, 1, 1]
    (summed / counts).squeeze_dim::<2>(1)
}

/// Scales each row to unit L2 norm (rows of zeros stay zero).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
