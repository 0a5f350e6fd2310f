//! The RQ-VAE tokenizer: an MLP encoder to a small latent, a residual quantizer, and a mirrored
//! MLP decoder back to the embedding.
//!
//! Reference: Rajput et al., "Recommender Systems with Generative Retrieval" (TIGER, NeurIPS
//! 2023); sizes, initialisation and loss as in the official DiscRec / LC-Rec code
//! (`models/rqvae.py`, `models/layers.py`; SPEC section 2): in -> 2048 -> 1024 -> 512 -> 256 ->
//! 128 -> 64 -> 32 with ReLU between layers, Xavier-normal weights, zero biases, loss
//! `MSE(recon, x) + mean_l(||q - sg(r)||^2 + beta ||r - sg(q)||^2)`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::quantizer::{Encoding, QuantizeOptions, ResidualQuantizer};

/// The RQ-VAE architecture.
#[derive(Config, Debug)]
pub struct RqVaeConfig {
    /// Width of the item embeddings.
    pub input_dim: usize,
    /// Hidden widths of the encoder, input side first; the decoder mirrors them.
    #[config(default = "vec![2048, 1024, 512, 256, 128, 64]")]
    pub hidden: Vec<usize>,
    /// Width of the latent and of every code.
    #[config(default = 32)]
    pub code_dim: usize,
    /// Residual levels.
    #[config(default = 4)]
    pub levels: usize,
    /// Codes per level.
    #[config(default = 256)]
    pub codebook_size: usize,
    /// Seed of the Xavier-normal initialisation (drawn on the host, so every device gets the
    /// same weights).
    #[config(default = 0)]
    pub seed: u64,
}

/// A stack of linear layers with ReLU between them (none after the last).
#[derive(Module, Debug)]
pub struct Mlp {
    /// The layers, input side first.
    pub layers: Vec<Linear>,
}

/// The RQ-VAE: encoder, residual quantizer, decoder.
#[derive(Module, Debug)]
pub struct RqVae {
    /// Embedding -> latent.
    pub encoder: Mlp,
    /// Latent -> embedding.
    pub decoder: Mlp,
    /// The residual codebooks over the latent.
    pub quantizer: ResidualQuantizer,
}

/// What a training forward returns.
#[derive(Debug, Clone)]
pub struct RqVaeOutput {
    /// `[batch, input_dim]` decoded quantized latent.
    pub recon: Tensor<2>,
    /// `[batch, levels]` codes.
    pub codes: Tensor<2, Int>,
    /// `[1]` mean squared reconstruction error.
    pub recon_loss: Tensor<1>,
    /// `[1]` codebook + commitment loss, averaged over levels.
    pub quant_loss: Tensor<1>,
}

impl RqVaeOutput {
    /// `[1]` the training loss: reconstruction + quantization.
    pub fn loss(&self) -> Tensor<1> {
        self.recon_loss.clone() + self.quant_loss.clone()
    }
}

/// A standard normal sample (Box-Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A linear layer with Xavier-normal weights (std `sqrt(2 / (fan_in + fan_out))`) and zero bias.
fn xavier_linear(d_in: usize, d_out: usize, rng: &mut StdRng, device: &Device) -> Linear {
    let std = (2.0 / (d_in + d_out) as f64).sqrt();
    let w: Vec<f32> = (0..d_in * d_out).map(|_| (normal(rng) * std) as f32).collect();
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::zeros([d_out], device))),
    }
}

impl Mlp {
    /// Layers of the given widths (`widths[0]` in, the last out), Xavier-normal.
    fn xavier(widths: &[usize], rng: &mut StdRng, device: &Device) -> Self {
        Self { layers: widths.windows(2).map(|w| xavier_linear(w[0], w[1], rng, device)).collect() }
    }

    /// # Shapes
    /// - x: `[batch, d_in]`
    /// - output: `[batch, d_out]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len().saturating_sub(1);
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let h = crate::kernels::matmul::linear(layer, h);
            if i < last { relu(h) } else { h }
        })
    }
}

impl RqVaeConfig {
    /// Widths of the encoder, input to latent.
    pub fn encoder_widths(&self) -> Vec<usize> {
        let mut w = vec![self.input_dim];
        w.extend(&self.hidden);
        w.push(self.code_dim);
        w
    }

    /// A freshly initialised RQ-VAE. The codebooks start as standard normal draws; training
    /// replaces them with k-means centroids of the encoder outputs.
    pub fn init(&self, device: &Device) -> RqVae {
        assert!(self.input_dim > 0 && self.code_dim > 0 && self.levels > 0 && self.codebook_size > 0);
        let mut rng = StdRng::seed_from_u64(self.seed);
        let enc = self.encoder_widths();
        let dec: Vec<usize> = enc.iter().rev().copied().collect();
        let encoder = Mlp::xavier(&enc, &mut rng, device);
        let decoder = Mlp::xavier(&dec, &mut rng, device);
        let codebooks = (0..self.levels)
            .map(|_| {
                let v: Vec<f32> = (0..self.codebook_size * self.code_dim).map(|_| normal(&mut rng) as f32).collect();
                Tensor::from_data(TensorData::new(v, [self.codebook_size, self.code_dim]), device)
            })
            .collect();
        RqVae { encoder, decoder, quantizer: ResidualQuantizer::from_codebooks(codebooks) }
    }
}

impl RqVae {
    /// Training forward.
    ///
    /// # Shapes
    /// - x: `[batch, input_dim]`
    /// - output: recon `[batch, input_dim]`, codes `[batch, levels]`, losses `[1]`
    pub fn forward(&self, x: Tensor<2>, opts: QuantizeOptions) -> RqVaeOutput {
        let z = self.encoder.forward(x.clone());
        let q = self.quantizer.forward(z, opts);
        let recon = self.decoder.forward(q.quantized);
        let recon_loss = (recon.clone() - x).powi_scalar(2).mean();
        RqVaeOutput { recon, codes: q.codes, recon_loss, quant_loss: q.loss }
    }

    /// Nearest codes of the encoded items, no gradient.
    ///
    /// # Shapes
    /// - x: `[n, input_dim]`
    /// - output: codes `[n, levels]`, quantized and last residual `[n, code_dim]`
    pub fn encode(&self, x: Tensor<2>) -> Encoding {
        self.quantizer.encode(self.encoder.forward(x.detach()).detach())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::train::{train_rqvae, TrainOptions};
    use burn::tensor::Device;

    fn tiny() -> RqVaeConfig {
        RqVaeConfig::new(12).with_hidden(vec![16, 8]).with_code_dim(4).with_levels(3).with_codebook_size(8)
    }

    #[test]
    fn shapes_and_seeded_init() {
        let device = Device::flex();
        let cfg = tiny();
        assert_eq!(cfg.encoder_widths(), vec![12, 16, 8, 4]);
        let m = cfg.init(&device);
        assert_eq!(m.encoder.layers.len(), 3);
        assert_eq!(m.decoder.layers[0].weight.val().dims(), [4, 8]);
        let x = Tensor::<2>::ones([5, 12], &device);
        let out = m.forward(x.clone(), QuantizeOptions { beta: 0.25, sinkhorn: Some((0.003, 5)) });
        assert_eq!(out.recon.dims(), [5, 12]);
        assert_eq!(out.codes.dims(), [5, 3]);
        let again = cfg.init(&device);
        assert_eq!(m.encoder.layers[1].weight.val().into_data(), again.encoder.layers[1].weight.val().into_data());
        let other = tiny().with_seed(1).init(&device);
        assert_ne!(m.encoder.layers[1].weight.val().into_data(), other.encoder.layers[1].weight.val().into_data());
    }

    #[test]
    fn training_lowers_the_loss_and_codes_round_trip() {
        let device = Device::flex();
        let x: Vec<f32> = (0..64 * 12).map(|i| ((i * 7919) % 23) as f32 / 23.0 - 0.5).collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [64, 12]), &device);
        let opts = TrainOptions { epochs: 30, batch_size: 16, ..TrainOptions::default() };
        let trained = train_rqvae(x.clone(), &tiny(), &opts, |_| {});
        let first = trained.log.first().unwrap().loss;
        let last = trained.log.last().unwrap().loss;
        assert!(last < first, "loss {first} -> {last}");
        // Encoding twice gives the same codes; they index valid codes.
        let a = trained.model.encode(x.clone()).codes.into_data();
        assert_eq!(a, trained.model.encode(x).codes.into_data());
        let codes: Vec<i64> = a.try_into_vec_as().unwrap();
        assert!(codes.iter().all(|&c| (0..8).contains(&c)));
    }
}
