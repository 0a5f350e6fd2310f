//! A T5 encoder or decoder stack over input EMBEDDINGS: the token lookup happens outside, so
//! that DiscRec (and later FlexCode) can plug their own input block in front of the same layers.
//!
//! Reference: Hugging Face `modeling_t5.py` (`T5Stack`): dropout on the input, the blocks with
//! the first block's relative position bias shared by all, a final RMS norm, dropout.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, RmsNorm, RmsNormConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::attention::Kv;
use super::block::{Block, EncoderContext};
use super::config::T5Config;
use crate::model::dropout::dropout;

pub use crate::kernels::MASK_BIAS;

/// `T5Stack`.
#[derive(Module, Debug)]
pub struct Stack {
    /// The layers (checkpoint key `block`).
    pub block: Vec<Block>,
    /// Norm after the last layer.
    pub final_layer_norm: RmsNorm,
    dropout: Dropout,
    is_decoder: bool,
}

/// The decoder's state between steps, owned by the caller: the self-attention keys and values
/// of every past position, and the cross-attention keys and values of the encoder output
/// (computed once). Rows may be `group` beams per encoder row (see
/// [`super::attention::CrossAttention::forward`]).
#[derive(Debug, Clone)]
pub struct DecoderCache {
    /// Per layer: `[rows, n_heads, step, d_kv]`; `None` before the first step.
    pub self_kv: Vec<Option<Kv>>,
    /// Per layer: `[batch, n_heads, seq_src, d_kv]`.
    pub cross_kv: Vec<Kv>,
    /// `[batch, 1, 1, seq_src]` additive padding mask of the encoder output.
    pub encoder_bias: Tensor<4>,
    /// Number of positions decoded so far.
    pub step: usize,
}

impl DecoderCache {
    /// Keeps rows `rows` of the self-attention cache, in that order: new row `i` continues
    /// old row `rows[i]` (beam reordering). The encoder part is shared by the rows of one
    /// encoder row and never moves.
    ///
    /// # Shapes
    /// - rows: `[new_rows]`, every index below the current row count
    pub fn reorder(&mut self, rows: Tensor<1, Int>) {
        for kv in self.self_kv.iter_mut() {
            *kv = kv.take().map(|kv| kv.select(rows.clone()));
        }
    }
}

/// `[batch, seq]` 1/0 mask -> `[batch, 1, 1, seq]` additive bias (0 or [`MASK_BIAS`]).
pub fn mask_bias(attention_mask: Tensor<2>) -> Tensor<4> {
    let [batch, seq] = attention_mask.dims();
    attention_mask.sub_scalar(1.0).mul_scalar(-MASK_BIAS).reshape([batch, 1, 1, seq])
}

/// `[1, 1, seq_q, seq_k]` additive causal mask for queries at `query_start..query_start + seq_q`.
fn causal_bias(query_start: usize, seq_q: usize, seq_k: usize, device: &Device) -> Tensor<4> {
    let bias: Vec<f32> = (0..seq_q)
        .flat_map(|q| (0..seq_k).map(move |k| if k > query_start + q { MASK_BIAS } else { 0.0 }))
        .collect();
    Tensor::<1>::from_data(TensorData::new(bias, [seq_q * seq_k]), device).reshape([1, 1, seq_q, seq_k])
}

impl Stack {
    /// An encoder (`is_decoder = false`) or decoder stack of `c`'s sizes.
    pub fn new(c: &T5Config, is_decoder: bool, device: &Device) -> Self {
        let n = if is_decoder { c.num_decoder_layers } else { c.num_layers };
        Stack {
            block: (0..n).map(|i| Block::new(c, is_decoder, i == 0, device)).collect(),
            final_layer_norm: RmsNormConfig::new(c.d_model).with_epsilon(c.layer_norm_epsilon).init(device),
            dropout: DropoutConfig::new(c.dropout_rate).init(),
            is_decoder,
        }
    }

    fn position_bias(&self, query_start: usize, seq_q: usize, seq_k: usize, device: &Device) -> Tensor<4> {
        match self.block.first() {
            Some(b) => b.self_attention.attention.position_bias(query_start, seq_q, seq_k, device),
            None => Tensor::zeros([1, 1, seq_q, seq_k], device),
        }
    }

    /// The encoder over input embeddings.
    ///
    /// # Shapes
    /// - embeds: `[batch, seq_src, d_model]`
    /// - attention_mask: `[batch, seq_src]`, 1.0 for real tokens, 0.0 for padding
    /// - output: `[batch, seq_src, d_model]`
    pub fn encode(&self, embeds: Tensor<3>, attention_mask: Tensor<2>) -> Tensor<3> {
        assert!(!self.is_decoder, "encode needs an encoder stack");
        let [batch, seq, _] = embeds.dims();
        let device = embeds.device();
        let n_heads = self.block.first().map_or(1, |b| b.self_attention.attention.n_heads());
        let bias = self.position_bias(0, seq, seq, &device).expand([batch, n_heads, seq, seq])
            + mask_bias(attention_mask).expand([batch, n_heads, seq, seq]);
        let mut x = dropout(&self.dropout, embeds);
        for b in &self.block {
            x = b.forward(x, bias.clone(), None);
        }
        dropout(&self.dropout, self.final_layer_norm.forward(x))
    }

    /// Cross-attention keys and values of every decoder layer for `encoder_hidden`.
    ///
    /// # Shapes
    /// - encoder_hidden: `[batch, seq_src, d_model]`
    /// - output: per layer `[batch, n_heads, seq_src, d_kv]`
    pub fn cross_kv(&self, encoder_hidden: Tensor<3>) -> Vec<Kv> {
        self.block
            .iter()
            .map(|b| b.cross_attention.as_ref().expect("cross_kv needs a decoder stack").encoder_kv(encoder_hidden.clone()))
            .collect()
    }

    /// The decoder over whole (teacher-forced) input embeddings, causal.
    ///
    /// # Shapes
    /// - embeds: `[batch, seq_tgt, d_model]`
    /// - cross_kv: per layer `[batch, n_heads, seq_src, d_kv]` ([`Stack::cross_kv`])
    /// - encoder_bias: `[batch, 1, 1, seq_src]` ([`mask_bias`] of the encoder mask)
    /// - output: `[batch, seq_tgt, d_model]`
    pub fn decode(&self, embeds: Tensor<3>, cross_kv: &[Kv], encoder_bias: &Tensor<4>) -> Tensor<3> {
        assert!(self.is_decoder, "decode needs a decoder stack");
        assert_eq!(cross_kv.len(), self.block.len(), "one cross-attention cache per layer");
        let [_, seq, _] = embeds.dims();
        let device = embeds.device();
        let bias = self.position_bias(0, seq, seq, &device) + causal_bias(0, seq, seq, &device);
        let mut x = dropout(&self.dropout, embeds);
        for (b, kv) in self.block.iter().zip(cross_kv) {
            x = b.forward(x, bias.clone(), Some(EncoderContext { kv, bias: encoder_bias }));
        }
        dropout(&self.dropout, self.final_layer_norm.forward(x))
    }

    /// A fresh decoder cache for the encoder output `encoder_hidden` with mask `attention_mask`.
    ///
    /// # Shapes
    /// - encoder_hidden: `[batch, seq_src, d_model]`
    /// - attention_mask: `[batch, seq_src]`
    pub fn new_cache(&self, encoder_hidden: Tensor<3>, attention_mask: Tensor<2>) -> DecoderCache {
        DecoderCache {
            self_kv: vec![None; self.block.len()],
            cross_kv: self.cross_kv(encoder_hidden),
            encoder_bias: mask_bias(attention_mask),
            step: 0,
        }
    }

    /// The decoder over the next `seq_new` positions (usually 1), given the past in `cache`;
    /// equal to the matching rows of [`Stack::decode`] over the whole sequence.
    ///
    /// # Shapes
    /// - embeds: `[rows, seq_new, d_model]`, `rows` a multiple of the encoder batch
    /// - output: `[rows, seq_new, d_model]`
    pub fn decode_cached(&self, embeds: Tensor<3>, cache: &mut DecoderCache) -> Tensor<3> {
        assert!(self.is_decoder, "decode_cached needs a decoder stack");
        let [_, seq_new, _] = embeds.dims();
        let device = embeds.device();
        let (start, seq_k) = (cache.step, cache.step + seq_new);
        let mut bias = self.position_bias(start, seq_new, seq_k, &device);
        if seq_new > 1 {
            bias = bias + causal_bias(start, seq_new, seq_k, &device);
        }
        let mut x = dropout(&self.dropout, embeds);
        for ((b, kv), past) in self.block.iter().zip(&cache.cross_kv).zip(cache.self_kv.iter_mut()) {
            let encoder = EncoderContext { kv, bias: &cache.encoder_bias };
            x = b.forward_cached(x, bias.clone(), past, Some(encoder));
        }
        cache.step += seq_new;
        dropout(&self.dropout, self.final_layer_norm.forward(x))
    }
}
