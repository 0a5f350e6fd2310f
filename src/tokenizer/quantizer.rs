//! The residual quantizer shared by both tokenizers: `levels` codebooks; level `l` picks the
//! code nearest to the current residual and subtracts it.
//!
//! Reference: Zeghidour et al., "SoundStream" (residual VQ); TIGER (Rajput et al., NeurIPS
//! 2023) for semantic IDs; the losses and the straight-through estimator follow
//! `VectorQuantizer` / `ResidualVectorQuantizer` of the LC-Rec / DiscRec code (SPEC section 2).

use burn::module::{Module, Param};
use burn::tensor::{Bool, Int, Tensor};

use super::sinkhorn::{sinkhorn_assign, sq_distances};
use crate::kernels::quantize::nearest_code;

/// `levels` codebooks of `codebook_size` codes of width `dim`.
#[derive(Module, Debug)]
pub struct ResidualQuantizer {
    /// `codebooks[l]`: `[codebook_size, dim]`.
    pub codebooks: Vec<Param<Tensor<2>>>,
}

/// How a training forward assigns codes and weighs the losses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantizeOptions {
    /// Commitment weight of `||r - sg(q)||^2`.
    pub beta: f64,
    /// Sinkhorn (epsilon, iterations) at the last level; `None` = nearest code everywhere.
    pub sinkhorn: Option<(f64, usize)>,
}

/// What a training forward returns.
#[derive(Debug, Clone)]
pub struct QuantizerOutput {
    /// `[batch, dim]` sum of the chosen codes, with the straight-through gradient to the input.
    pub quantized: Tensor<2>,
    /// `[batch, levels]` chosen codes.
    pub codes: Tensor<2, Int>,
    /// `[1]` mean over levels of `||q - sg(r)||^2 + beta * ||r - sg(q)||^2`.
    pub loss: Tensor<1>,
    /// `levels` tensors of `[batch, dim]`: each level's straight-through contribution (the
    /// chosen code's value; `quantized` is their sum). FlexCode weighs them per item.
    pub levels: Vec<Tensor<2>>,
}

/// What encoding (nearest code at every level, no gradient) returns.
#[derive(Debug, Clone)]
pub struct Encoding {
    /// `[n, levels]` codes.
    pub codes: Tensor<2, Int>,
    /// `[n, dim]` sum of the chosen codes.
    pub quantized: Tensor<2>,
    /// `[n, dim]` residual entering the last level (what collision resolution re-assigns).
    pub last_residual: Tensor<2>,
}

impl ResidualQuantizer {
    /// Wraps trained or initialised codebooks (all of the same shape).
    pub fn from_codebooks(codebooks: Vec<Tensor<2>>) -> Self {
        assert!(!codebooks.is_empty(), "a residual quantizer needs at least one level");
        let shape = codebooks[0].dims();
        assert!(codebooks.iter().all(|c| c.dims() == shape), "every codebook must have the same shape");
        Self { codebooks: codebooks.into_iter().map(Param::from_tensor).collect() }
    }

    /// Number of levels.
    pub fn levels(&self) -> usize {
        self.codebooks.len()
    }

    /// Codes per level.
    pub fn codebook_size(&self) -> usize {
        self.codebooks[0].val().dims()[0]
    }

    /// Width of every code.
    pub fn dim(&self) -> usize {
        self.codebooks[0].val().dims()[1]
    }

    /// Training forward: assigns codes level by level (Sinkhorn at the last level when asked),
    /// and returns the straight-through quantization and the codebook/commitment loss.
    ///
    /// # Shapes
    /// - z: `[batch, dim]`
    /// - output: quantized `[batch, dim]`, codes `[batch, levels]`, loss `[1]`
    pub fn forward(&self, z: Tensor<2>, opts: QuantizeOptions) -> QuantizerOutput {
        let [batch, dim] = z.dims();
        assert_eq!(dim, self.dim(), "latent width {dim} differs from the code width {}", self.dim());
        let levels = self.levels();
        let mut residual = z.clone();
        let mut quantized = z.zeros_like();
        let mut loss = Tensor::<1>::zeros([1], &z.device());
        let mut codes = Vec::with_capacity(levels);
        let mut contributions = Vec::with_capacity(levels);
        for (l, codebook) in self.codebooks.iter().enumerate() {
            let codebook = codebook.val();
            let index = match opts.sinkhorn {
                Some((eps, iters)) if l + 1 == levels => {
                    sinkhorn_assign(sq_distances(residual.clone(), codebook.clone()), eps, iters)
                }
                _ => nearest_code(residual.clone(), codebook.clone()).index,
            };
            let q = codebook.select(0, index.clone()); // [batch, dim], gradient to the codebook
            let codebook_loss = (q.clone() - residual.clone().detach()).powi_scalar(2).mean();
            let commitment = (residual.clone() - q.clone().detach()).powi_scalar(2).mean();
            loss = loss + codebook_loss + commitment.mul_scalar(opts.beta);
            // Straight-through: the value of q, the gradient of the residual.
            let q_st = residual.clone() + (q - residual.clone()).detach();
            quantized = quantized + q_st.clone();
            contributions.push(q_st.clone());
            residual = residual - q_st;
            codes.push(index.reshape([batch, 1]));
        }
        QuantizerOutput { quantized, codes: Tensor::cat(codes, 1), loss: loss.div_scalar(levels as f64), levels: contributions }
    }

    /// Nearest code at every level, without gradient.
    ///
    /// # Shapes
    /// - z: `[n, dim]`
    /// - output: codes `[n, levels]`, quantized and last residual `[n, dim]`
    pub fn encode(&self, z: Tensor<2>) -> Encoding {
        let [n, dim] = z.dims();
        assert_eq!(dim, self.dim(), "latent width {dim} differs from the code width {}", self.dim());
        let mut residual = z.detach();
        let mut quantized = residual.zeros_like();
        let mut codes = Vec::with_capacity(self.levels());
        let mut last_residual = residual.clone();
        for codebook in &self.codebooks {
            let codebook = codebook.val().detach();
            last_residual = residual.clone();
            let index = nearest_code(residual.clone(), codebook.clone()).index;
            let q = codebook.select(0, index.clone());
            quantized = quantized + q.clone();
            residual = residual - q;
            codes.push(index.reshape([n, 1]));
        }
        Encoding { codes: Tensor::cat(codes, 1), quantized, last_residual }
    }
}

impl ResidualQuantizer {
    /// The residual entering every level (nearest codes at the levels before), no gradient.
    ///
    /// # Shapes
    /// - z: `[n, dim]`
    /// - output: `levels` tensors of `[n, dim]`
    pub fn level_inputs(&self, z: Tensor<2>) -> Vec<Tensor<2>> {
        let mut residual = z.detach();
        let mut inputs = Vec::with_capacity(self.levels());
        for codebook in &self.codebooks {
            let codebook = codebook.val().detach();
            inputs.push(residual.clone());
            let index = nearest_code(residual.clone(), codebook.clone()).index;
            residual = residual - codebook.select(0, index);
        }
        inputs
    }

    /// Replaces the codes marked in `dead[l]` (`[codebook_size]`, true = replace) with the rows
    /// of `replacement[l]` (`[codebook_size, dim]`), keeping every parameter's identity so that
    /// the optimizer state carries on.
    pub fn reset_codes(self, dead: Vec<Tensor<1, Bool>>, replacement: Vec<Tensor<2>>) -> Self {
        assert_eq!(dead.len(), self.levels(), "one mask per level");
        assert_eq!(replacement.len(), self.levels(), "one replacement per level");
        let (k, dim) = (self.codebook_size(), self.dim());
        let codebooks = self
            .codebooks
            .into_iter()
            .zip(dead.into_iter().zip(replacement))
            .map(|(param, (dead, new))| {
                param.map(|c| {
                    let mask = dead.reshape([k, 1]).expand([k, dim]);
                    let new = if c.is_autodiff() { new.autodiff() } else { new };
                    c.mask_where(mask, new).detach().require_grad()
                })
            })
            .collect();
        Self { codebooks }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn quantizer(device: &Device) -> ResidualQuantizer {
        let c0 = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0, 4.0, 0.0, 0.0, 4.0], [3, 2]), device);
        let c1 = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0, 1.0, 0.0, 0.0, 1.0], [3, 2]), device);
        ResidualQuantizer::from_codebooks(vec![c0, c1])
    }

    #[test]
    fn encode_picks_residual_codes() {
        let device = Device::flex();
        let q = quantizer(&device);
        let z = Tensor::<2>::from_data(TensorData::new(vec![4.1f32, 0.9, 0.2, 3.8, -0.1, 0.1], [3, 2]), &device);
        let e = q.encode(z);
        let codes: Vec<i64> = e.codes.into_data().try_into_vec_as().unwrap();
        assert_eq!(codes, vec![1, 2, 2, 0, 0, 0]);
        let quantized: Vec<f32> = e.quantized.into_data().try_into_vec_as().unwrap();
        assert_eq!(quantized, vec![4.0, 1.0, 0.0, 4.0, 0.0, 0.0]);
        let last: Vec<f32> = e.last_residual.into_data().try_into_vec_as().unwrap();
        let expected = [0.1f32, 0.9, 0.2, -0.2, -0.1, 0.1];
        assert!(last.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-5), "{last:?}");
    }

    #[test]
    fn forward_gives_straight_through_values_and_codebook_gradients() {
        let device = Device::flex().autodiff();
        let q = quantizer(&device);
        let z = Tensor::<2>::from_data(TensorData::new(vec![4.1f32, 0.9, 0.2, 3.8], [2, 2]), &device).require_grad();
        let out = q.forward(z.clone(), QuantizeOptions { beta: 0.25, sinkhorn: None });
        let codes: Vec<i64> = out.codes.clone().into_data().try_into_vec_as().unwrap();
        assert_eq!(codes, vec![1, 2, 2, 0]);
        let values: Vec<f32> = out.quantized.clone().inner().into_data().try_into_vec_as().unwrap();
        assert_eq!(values, vec![4.0, 1.0, 0.0, 4.0]);
        // Level 0 residual error: (0.1, 0.9), (0.2, -0.2); level 1: (0.1, -0.1), (0.2, -0.2).
        // Each level's MSE is averaged over 4 values, then the two levels are averaged.
        let l0 = (0.01 + 0.81 + 0.04 + 0.04) / 4.0;
        let l1 = (0.01 + 0.01 + 0.04 + 0.04) / 4.0;
        let expected = 1.25 * (l0 + l1) / 2.0;
        let loss: f32 = out.loss.clone().inner().into_scalar();
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
        let grads = (out.loss + out.quantized.sum()).backward();
        assert!(q.codebooks[0].val().grad(&grads).is_some());
        // d(sum quantized)/dz = 1 through the straight-through estimator (plus the commitment
        // term of level 0).
        let gz: Vec<f32> = z.grad(&grads).unwrap().into_data().try_into_vec_as().unwrap();
        assert!(gz.iter().all(|g| (g - 1.0).abs() < 0.2), "{gz:?}");
    }
}
