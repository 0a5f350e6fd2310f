//! T5's feed-forward layer: `x + dropout(wo(dropout(relu(wi(norm(x))))))`.
//!
//! Reference: Hugging Face `modeling_t5.py` (`T5DenseActDense` with `feed_forward_proj="relu"`,
//! `T5LayerFF`). Field names follow the checkpoint keys (`DenseReluDense.wi`, `layer_norm`).

use burn::module::Module;
use crate::kernels::matmul::linear;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::config::T5Config;
use crate::model::dropout::dropout;

/// `T5LayerFF` with the ReLU `DenseReluDense` block.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `d_model -> d_ff`, no bias.
    pub wi: Linear,
    /// `d_ff -> d_model`, no bias.
    pub wo: Linear,
    /// Pre-norm.
    pub layer_norm: RmsNorm,
    dropout: Dropout,
}

impl FeedForward {
    /// A layer of `c`'s sizes, initialised as Hugging Face's `_init_weights`.
    pub fn new(c: &T5Config, device: &Device) -> Self {
        let normal = |std: f64| Initializer::Normal { mean: 0.0, std };
        FeedForward {
            wi: LinearConfig::new(c.d_model, c.d_ff)
                .with_bias(false)
                .with_initializer(normal((c.d_model as f64).powf(-0.5)))
                .init(device),
            wo: LinearConfig::new(c.d_ff, c.d_model)
                .with_bias(false)
                .with_initializer(normal((c.d_ff as f64).powf(-0.5)))
                .init(device),
            layer_norm: RmsNormConfig::new(c.d_model).with_epsilon(c.layer_norm_epsilon).init(device),
            dropout: DropoutConfig::new(c.dropout_rate).init(),
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = relu(linear(&self.wi, self.layer_norm.forward(x.clone())));
        let h = linear(&self.wo, dropout(&self.dropout, h));
        x + dropout(&self.dropout, h)
    }
}
