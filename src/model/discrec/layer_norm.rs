//! The layer norm of DiscRec's official code: `gain * (x - mean) / (std + eps) + bias` with the
//! biased standard deviation and `eps = 1e-8` added to it (not to the variance, as
//! `torch.nn.LayerNorm` and `burn::nn::LayerNorm` do).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

/// The epsilon added to the standard deviation.
pub const EPSILON: f64 = 1e-8;

/// Layer norm over the last dimension, with gain and bias.
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// `[d_model]` gain, initialised to ones.
    pub gamma: Param<Tensor<1>>,
    /// `[d_model]` bias, initialised to zeros.
    pub beta: Param<Tensor<1>>,
}

impl LayerNorm {
    /// A layer norm over `d_model` features.
    pub fn new(d_model: usize, device: &Device) -> Self {
        Self { gamma: Param::from_tensor(Tensor::ones([d_model], device)), beta: Param::from_tensor(Tensor::zeros([d_model], device)) }
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, _, d_model] = x.dims();
        let centered = x.clone() - x.mean_dim(2);
        let std = centered.clone().powi_scalar(2).mean_dim(2).sqrt(); // [batch, seq, 1]
        let gamma = self.gamma.val().reshape([1, 1, d_model]);
        let beta = self.beta.val().reshape([1, 1, d_model]);
        centered / (std + EPSILON) * gamma + beta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    #[test]
    fn normalises_by_the_biased_std_plus_epsilon() {
        let device = Device::flex();
        let x = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 6.0], [1, 1, 4]), &device);
        // mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5.
        let s = 3.5f32.sqrt();
        let want = TensorData::new(vec![-2.0 / s, -1.0 / s, 0.0, 3.0 / s], [1, 1, 4]);
        LayerNorm::new(4, &device).forward(x).into_data().assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-6));
    }
}
