//! A trained tokenizer of either kind, and encoding a whole catalogue in batches.

use burn::tensor::{Int, Tensor};

use super::config::TokenizerKind;
use super::quantizer::{Encoding, ResidualQuantizer};
use super::rq_kmeans::RqKMeans;
use super::rqvae::RqVae;

/// A trained tokenizer.
#[derive(Debug)]
pub enum Tokenizer {
    /// RQ-VAE: codes of the encoder's latent.
    RqVae(RqVae),
    /// Residual k-means: codes of the embedding itself.
    RqKMeans(RqKMeans),
}

impl Tokenizer {
    /// Which kind it is.
    pub fn kind(&self) -> TokenizerKind {
        match self {
            Tokenizer::RqVae(_) => TokenizerKind::Rqvae,
            Tokenizer::RqKMeans(_) => TokenizerKind::Rqkmeans,
        }
    }

    /// The residual quantizer (codebooks).
    pub fn quantizer(&self) -> &ResidualQuantizer {
        match self {
            Tokenizer::RqVae(m) => &m.quantizer,
            Tokenizer::RqKMeans(m) => &m.quantizer,
        }
    }

    /// Width of the embeddings it reads.
    pub fn input_dim(&self) -> usize {
        match self {
            Tokenizer::RqVae(m) => m.encoder.layers[0].weight.val().dims()[0],
            Tokenizer::RqKMeans(m) => m.quantizer.dim(),
        }
    }

    /// Nearest codes of every item, `batch` items at a time.
    ///
    /// # Shapes
    /// - x: `[items, input_dim]`
    /// - output: codes `[items, levels]`, quantized and last residual `[items, dim]`
    pub fn encode(&self, x: Tensor<2>, batch: usize) -> Encoding {
        match self {
            Tokenizer::RqVae(m) => encode_in_batches(x, batch, |b| m.encode(b)),
            Tokenizer::RqKMeans(m) => encode_in_batches(x, batch, |b| m.quantizer.encode(b)),
        }
    }

    /// Mean squared error between every item's embedding and its reconstruction from its codes
    /// (the decoder's output for the RQ-VAE, the sum of the codes for RQ-KMeans).
    pub fn reconstruction_mse(&self, x: Tensor<2>, batch: usize) -> f64 {
        let [n, d] = x.dims();
        let recon = match self {
            Tokenizer::RqVae(m) => map_rows(x.clone(), batch, |b| m.decoder.forward(m.encode(b).quantized)),
            Tokenizer::RqKMeans(m) => encode_in_batches(x.clone(), batch, |b| m.quantizer.encode(b)).quantized,
        };
        let sse: f32 = (recon - x).powi_scalar(2).sum().into_scalar();
        sse as f64 / (n * d) as f64
    }
}

/// Applies `f` to `batch` rows at a time and concatenates the results.
///
/// # Shapes
/// - x: `[n, d]`
/// - output: `[n, d_out]`
pub fn map_rows(x: Tensor<2>, batch: usize, f: impl Fn(Tensor<2>) -> Tensor<2>) -> Tensor<2> {
    let [n, _] = x.dims();
    assert!(batch > 0, "batch size must be positive");
    if n <= batch {
        return f(x);
    }
    let parts = (0..n).step_by(batch).map(|s| f(x.clone().slice(s..(s + batch).min(n)))).collect();
    Tensor::cat(parts, 0)
}

/// Encodes `batch` rows at a time and concatenates the encodings.
pub fn encode_in_batches(x: Tensor<2>, batch: usize, f: impl Fn(Tensor<2>) -> Encoding) -> Encoding {
    let [n, _] = x.dims();
    assert!(batch > 0, "batch size must be positive");
    if n <= batch {
        return f(x);
    }
    let parts: Vec<Encoding> = (0..n).step_by(batch).map(|s| f(x.clone().slice(s..(s + batch).min(n)))).collect();
    Encoding {
        codes: Tensor::cat(parts.iter().map(|e| e.codes.clone()).collect(), 0),
        quantized: Tensor::cat(parts.iter().map(|e| e.quantized.clone()).collect(), 0),
        last_residual: Tensor::cat(parts.into_iter().map(|e| e.last_residual).collect(), 0),
    }
}

/// Reads a `[n, levels]` code tensor back to the host, one row per item.
pub fn codes_to_host(codes: Tensor<2, Int>) -> Vec<Vec<u32>> {
    let [_, levels] = codes.dims();
    let flat: Vec<i64> = codes.into_data().try_into_vec_as().expect("integer codes");
    flat.chunks(levels.max(1)).map(|row| row.iter().map(|&c| c as u32).collect()).collect()
}
