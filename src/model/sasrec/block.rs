//! One SASRec block: causal self-attention and the point-wise feed-forward layer, each with
//! a layer norm in front and dropout on its residual branch.
//!
//! Reference: Kang and McAuley 2018, section III-C ("Stacking self-attention blocks": layer
//! normalisation, dropout and residual connections around both sub-layers). The placement is
//! the standard pre-norm Transformer block (*ours*): the authors' code normalises only the
//! attention's query input and then adds the attention output to that normalised query.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::attention::{linear, CausalAttention};
use super::config::SasRecConfig;
use crate::kernels::matmul as mm;
use crate::model::dropout::dropout;

/// Epsilon of every layer norm (the authors' code uses 1e-8).
pub const LN_EPS: f64 = 1e-8;

/// The point-wise feed-forward layer: `W2 dropout(relu(W1 x + b1)) + b2`, the same weights
/// at every position (the paper's two 1x1 convolutions).
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `hidden -> d_ff`.
    pub w1: Linear,
    /// `d_ff -> hidden`.
    pub w2: Linear,
    dropout: Dropout,
}

impl FeedForward {
    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        mm::linear(&self.w2, dropout(&self.dropout, relu(mm::linear(&self.w1, x))))
    }
}

/// `x + dropout(attention(norm(x)))`, then `x + dropout(ffn(norm(x)))`.
#[derive(Module, Debug)]
pub struct Block {
    /// Norm in front of the attention.
    pub attention_norm: LayerNorm,
    /// Causal self-attention.
    pub attention: CausalAttention,
    /// Norm in front of the feed-forward layer.
    pub ffn_norm: LayerNorm,
    /// Point-wise feed-forward layer.
    pub ffn: FeedForward,
    dropout: Dropout,
}

impl Block {
    /// A block of `c`'s sizes.
    pub fn new(c: &SasRecConfig, device: &Device) -> Self {
        Block {
            attention_norm: LayerNormConfig::new(c.hidden).with_epsilon(LN_EPS).init(device),
            attention: CausalAttention::new(c.hidden, c.heads, c.dropout, device),
            ffn_norm: LayerNormConfig::new(c.hidden).with_epsilon(LN_EPS).init(device),
            ffn: FeedForward {
                w1: linear(c.hidden, c.ff_width(), device),
                w2: linear(c.ff_width(), c.hidden, device),
                dropout: DropoutConfig::new(c.dropout).init(),
            },
            dropout: DropoutConfig::new(c.dropout).init(),
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - bias: `[batch, 1, seq, seq]` (see [`CausalAttention::forward`])
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let a = self.attention.forward(self.attention_norm.forward(x.clone()), bias);
        let x = x + dropout(&self.dropout, a);
        let f = self.ffn.forward(self.ffn_norm.forward(x.clone()));
        x + dropout(&self.dropout, f)
    }
}
