//! Residual k-means (RQ-KMeans): k-means on the embeddings, then on what is left after
//! subtracting each item's centroid, level after level. No neural encoder, no gradient steps:
//! a much faster tokenizer than the RQ-VAE.
//!
//! Reference: the `rkmeans_train_flat` stage of GRID (snap-research/GRID); the same residual
//! k-means initialises the RQ-VAE codebooks (SPEC section 2).

use burn::tensor::Tensor;

use super::kmeans::{kmeans, KMeansConfig};
use super::quantizer::ResidualQuantizer;

/// How residual k-means runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidualKMeansConfig {
    /// Number of levels.
    pub levels: usize,
    /// k-means settings of every level (its seed is offset by the level).
    pub kmeans: KMeansConfig,
}

/// Fits `levels` codebooks on the rows of `x`: level `l` clusters the residuals left by levels
/// `0..l`.
///
/// # Shapes
/// - x: `[n, d]`
/// - output: `levels` codebooks of `[k, d]`
pub fn residual_kmeans(x: Tensor<2>, cfg: &ResidualKMeansConfig) -> Vec<Tensor<2>> {
    let mut residual = x.detach();
    let mut codebooks = Vec::with_capacity(cfg.levels);
    for l in 0..cfg.levels {
        let level_cfg = KMeansConfig { seed: cfg.kmeans.seed.wrapping_add(l as u64), ..cfg.kmeans.clone() };
        let km = kmeans(residual.clone(), &level_cfg);
        residual = residual - km.centroids.clone().select(0, km.assignment);
        codebooks.push(km.centroids);
    }
    codebooks
}

/// The RQ-KMeans tokenizer: a residual quantizer working directly in the embedding space.
#[derive(Debug, Clone)]
pub struct RqKMeans {
    /// The fitted codebooks, `[k, embedding dim]` each.
    pub quantizer: ResidualQuantizer,
}

impl RqKMeans {
    /// Fits the tokenizer on the item embeddings.
    ///
    /// # Shapes
    /// - x: `[items, d]`
    pub fn fit(x: Tensor<2>, cfg: &ResidualKMeansConfig) -> Self {
        Self { quantizer: ResidualQuantizer::from_codebooks(residual_kmeans(x, cfg)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn each_level_shrinks_the_residual_and_codes_are_deterministic() {
        let device = Device::flex();
        let mut rng = StdRng::seed_from_u64(5);
        let data: Vec<f32> = (0..300 * 8).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x = Tensor::<2>::from_data(TensorData::new(data, [300, 8]), &device);
        let cfg = ResidualKMeansConfig { levels: 3, kmeans: KMeansConfig { k: 8, iters: 10, balanced: None, seed: 1 } };
        let tok = RqKMeans::fit(x.clone(), &cfg);
        assert_eq!((tok.quantizer.levels(), tok.quantizer.codebook_size(), tok.quantizer.dim()), (3, 8, 8));
        let mut errors = vec![x.clone().powi_scalar(2).sum().into_scalar::<f32>()];
        for l in 1..=3 {
            let books = tok.quantizer.codebooks[..l].iter().map(|c| c.val()).collect();
            let e = ResidualQuantizer::from_codebooks(books).encode(x.clone());
            errors.push((x.clone() - e.quantized).powi_scalar(2).sum().into_scalar::<f32>());
        }
        assert!(errors.windows(2).all(|w| w[1] < w[0]), "{errors:?}");
        let again = RqKMeans::fit(x.clone(), &cfg);
        assert_eq!(tok.quantizer.encode(x.clone()).codes.into_data(), again.quantizer.encode(x).codes.into_data());
    }
}
