//! DiscRec's collaborative branch (arXiv 2506.15576; SPEC section 4, steps 2 and 3), on
//! `x1 = LN(e + v)` computed by the caller:
//! `a = Attention(x1) + x1` (two heads, Q/K/V `Linear` with bias, no output projection, scores
//! scaled by `1/sqrt(d_kv)`), `x2 = LN(a)`, `c = x2 + Dropout(W2 Dropout(ReLU(W1 x2 + b1)) + b2)`.
//!
//! The attention is item-local in the encoder (`crate::kernels::item_attention`) and plain
//! causal in the decoder, whose prefix belongs to one item.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Bool, Device, Int, Tensor};

use super::layer_norm::LayerNorm;
use crate::kernels::item_attention::{item_local_attention, item_local_attention_reference};
use crate::kernels::matmul::{linear, matmul};
use crate::model::dropout::dropout;

/// The keys and values of a decoded prefix in the decoder's branch, for one step at a time
/// ([`CollaborativeBranch::step_causal`]).
#[derive(Debug, Clone)]
pub struct PrefixKv {
    /// `[rows, n_heads, t, d_kv]`.
    k: Tensor<4>,
    /// `[rows, n_heads, t, d_kv]`.
    v: Tensor<4>,
}

impl PrefixKv {
    /// Keeps rows `rows`, in that order (beam reordering).
    pub fn select(self, rows: Tensor<1, Int>) -> Self {
        PrefixKv { k: self.k.select(0, rows.clone()), v: self.v.select(0, rows) }
    }
}

/// The collaborative branch after the first layer norm.
#[derive(Module, Debug)]
pub struct CollaborativeBranch {
    /// Query projection, `d_model -> d_model`, with bias.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// The norm after the attention.
    pub norm: LayerNorm,
    /// Feed-forward in, `d_model -> d_ff`.
    pub ff_in: Linear,
    /// Feed-forward out, `d_ff -> d_model`.
    pub ff_out: Linear,
    dropout: Dropout,
    n_heads: usize,
    /// Use the kernel where the device has it.
    kernel: bool,
}

impl CollaborativeBranch {
    /// A branch of width `d_model` with `n_heads` heads and feed-forward size `d_ff`.
    pub fn new(d_model: usize, n_heads: usize, d_ff: usize, dropout: f64, kernel: bool, device: &Device) -> Self {
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        Self {
            query: linear(d_model, d_model),
            key: linear(d_model, d_model),
            value: linear(d_model, d_model),
            norm: LayerNorm::new(d_model, device),
            ff_in: linear(d_model, d_ff),
            ff_out: linear(d_ff, d_model),
            dropout: DropoutConfig::new(dropout).init(),
            n_heads,
            kernel,
        }
    }

    /// Q, K, V of `x1`, split into heads.
    ///
    /// # Shapes
    /// - x1: `[batch, seq, d_model]`
    /// - output: `[batch, seq, n_heads, d_kv]` each
    fn qkv(&self, x1: &Tensor<3>) -> [Tensor<4>; 3] {
        let [batch, seq, d_model] = x1.dims();
        let shape = [batch, seq, self.n_heads, d_model / self.n_heads];
        [&self.query, &self.key, &self.value].map(|l| linear(l, x1.clone()).reshape(shape))
    }

    /// Norm, feed-forward and residuals after the attention output `attn`.
    fn finish(&self, x1: Tensor<3>, attn: Tensor<4>) -> Tensor<3> {
        let x2 = self.norm.forward(attn.flatten::<3>(2, 3) + x1);
        let inner = dropout(&self.dropout, relu(linear(&self.ff_in, x2.clone())));
        x2.clone() + dropout(&self.dropout, linear(&self.ff_out, inner))
    }

    /// The encoder's branch: item-local attention over `slot` (see
    /// [`crate::kernels::item_attention`]); `window` is the longest ID in tokens. Padding
    /// queries get `x1` back from the attention step.
    ///
    /// # Shapes
    /// - x1: `[batch, seq_src, d_model]`
    /// - slot: `[batch, seq_src]`
    /// - output: `[batch, seq_src, d_model]`
    pub fn forward_items(&self, x1: Tensor<3>, slot: Tensor<2, Int>, window: usize) -> Tensor<3> {
        let [q, k, v] = self.qkv(&x1);
        let attn = if self.kernel {
            item_local_attention(q, k, v, slot, window)
        } else {
            item_local_attention_reference(q, k, v, slot, window)
        };
        self.finish(x1, attn)
    }

    /// One step of [`Self::forward_causal`]: the newest token's `x1` attends to itself and to
    /// the prefix before it, whose keys and values `cache` holds (and gets the new ones). The
    /// output equals the last row of `forward_causal` over the whole prefix.
    ///
    /// # Shapes
    /// - x1: `[rows, 1, d_model]`
    /// - output: `[rows, 1, d_model]`
    pub fn step_causal(&self, x1: Tensor<3>, cache: &mut Option<PrefixKv>) -> Tensor<3> {
        let d_kv = x1.dims()[2] / self.n_heads;
        let [q, k, v] = self.qkv(&x1).map(|t| t.swap_dims(1, 2)); // [rows, n_heads, 1, d_kv]
        let (k, v) = match cache.take() {
            Some(c) => (Tensor::cat(vec![c.k, k], 2), Tensor::cat(vec![c.v, v], 2)),
            None => (k, v),
        };
        let scores = matmul(q, k.clone().swap_dims(2, 3)).div_scalar((d_kv as f64).sqrt()); // [rows, n_heads, 1, t]
        let attn = matmul(softmax(scores, 3), v.clone()).swap_dims(1, 2); // [rows, 1, n_heads, d_kv]
        *cache = Some(PrefixKv { k, v });
        self.finish(x1, attn)
    }

    /// The decoder's branch: causal attention over the prefix.
    ///
    /// # Shapes
    /// - x1: `[batch, seq_tgt, d_model]`
    /// - output: `[batch, seq_tgt, d_model]`
    pub fn forward_causal(&self, x1: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_model] = x1.dims();
        let d_kv = d_model / self.n_heads;
        let [q, k, v] = self.qkv(&x1).map(|t| t.swap_dims(1, 2)); // [batch, n_heads, seq, d_kv]
        let scores = matmul(q, k.swap_dims(2, 3)).div_scalar((d_kv as f64).sqrt()); // [batch, n_heads, seq, seq]
        let future = Tensor::<2, Bool>::tril_mask([seq, seq], 0, &x1.device()).unsqueeze::<4>();
        let scores = scores.mask_fill(future.expand([batch, self.n_heads, seq, seq]), crate::kernels::MASK_BIAS);
        let attn = matmul(softmax(scores, 3), v).swap_dims(1, 2); // [batch, seq, n_heads, d_kv]
        self.finish(x1, attn)
    }
}
