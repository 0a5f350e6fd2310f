//! One T5 layer: self-attention, cross-attention (decoder only) and the feed-forward block,
//! each a pre-norm residual sub-layer.
//!
//! Reference: Hugging Face `modeling_t5.py` (`T5Block`): the encoder's `layer.0` is
//! self-attention and `layer.1` the feed-forward block; the decoder's `layer.1` is
//! cross-attention and `layer.2` the feed-forward block.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::attention::{CrossAttention, Kv, SelfAttention};
use super::config::T5Config;
use super::feed_forward::FeedForward;

/// What a decoder block attends to besides itself.
#[derive(Debug, Clone, Copy)]
pub struct EncoderContext<'a> {
    /// This block's keys and values of the encoder output, `[batch, n_heads, seq_src, d_kv]`.
    pub kv: &'a Kv,
    /// `[batch, 1, 1, seq_src]` additive padding mask of the encoder output.
    pub bias: &'a Tensor<4>,
}

/// `T5Block`.
#[derive(Module, Debug)]
pub struct Block {
    /// `layer.0`.
    pub self_attention: SelfAttention,
    /// `layer.1` of a decoder block; `None` in the encoder.
    pub cross_attention: Option<CrossAttention>,
    /// The last layer (`layer.1` in the encoder, `layer.2` in the decoder).
    pub feed_forward: FeedForward,
}

impl Block {
    /// A block of `c`'s sizes. Only the first block of a stack holds the relative bias table.
    pub fn new(c: &T5Config, is_decoder: bool, has_relative_bias: bool, device: &Device) -> Self {
        Block {
            self_attention: SelfAttention::new(c, has_relative_bias, !is_decoder, device),
            cross_attention: is_decoder.then(|| CrossAttention::new(c, device)),
            feed_forward: FeedForward::new(c, device),
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]` (a decoder's `batch` may be `group` rows per encoder row,
    ///   see [`CrossAttention::forward`])
    /// - self_bias: broadcastable to `[batch, n_heads, seq, seq]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>, self_bias: Tensor<4>, encoder: Option<EncoderContext<'_>>) -> Tensor<3> {
        let x = self.self_attention.forward(x, self_bias);
        self.feed_forward.forward(self.cross(x, encoder))
    }

    /// [`Block::forward`] for new positions only, with the past self-attention keys and values
    /// in `cache` (extended here).
    ///
    /// # Shapes
    /// - x: `[batch, seq_new, d_model]`
    /// - self_bias: broadcastable to `[batch, n_heads, seq_new, seq_past + seq_new]`
    /// - output: `[batch, seq_new, d_model]`
    pub fn forward_cached(
        &self,
        x: Tensor<3>,
        self_bias: Tensor<4>,
        cache: &mut Option<Kv>,
        encoder: Option<EncoderContext<'_>>,
    ) -> Tensor<3> {
        let x = self.self_attention.forward_cached(x, self_bias, cache);
        self.feed_forward.forward(self.cross(x, encoder))
    }

    fn cross(&self, x: Tensor<3>, encoder: Option<EncoderContext<'_>>) -> Tensor<3> {
        match (&self.cross_attention, encoder) {
            (Some(c), Some(e)) => c.forward(x, e.kv, e.bias.clone()),
            (None, None) => x,
            (Some(_), None) => panic!("a decoder block needs the encoder output"),
            (None, Some(_)) => panic!("an encoder block has no cross-attention"),
        }
    }
}
