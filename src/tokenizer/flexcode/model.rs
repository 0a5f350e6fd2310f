//! The FlexCode tokenizer's modules: a semantic and a collaborative RQ-VAE (SPEC section 2 each),
//! a linear projection of each latent into a shared space, the transition predictor, and the
//! router MLP that sets every item's CF share (SPEC section 5; the design is ours). With a fixed
//! semantic index the semantic RQ-VAE is replaced by trainable code tables
//! ([`super::fixed`]).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::fixed::FixedCodes;
use super::losses::{l2_normalize, weighted_levels};
use crate::kernels::matmul::linear;
use crate::tokenizer::encode::{encode_in_batches, map_rows};
use crate::tokenizer::rqvae::{RqVae, RqVaeConfig};

/// Router inputs per item: the three training-split statistics (standardised log(1 + count),
/// popularity percentile, recency) and the CF-text disagreement.
pub const ROUTER_INPUTS: usize = 4;

/// The FlexCode architecture.
#[derive(Config, Debug)]
pub struct FlexCodeModelConfig {
    /// The semantic RQ-VAE (over the text embeddings). With `fixed_semantic` only its levels,
    /// codebook size, code width and seed are read (for the code tables).
    pub sem: RqVaeConfig,
    /// The collaborative RQ-VAE (over the CF embeddings); same levels as `sem`.
    pub cf: RqVaeConfig,
    /// Width of the shared space of the projections.
    #[config(default = 32)]
    pub shared_dim: usize,
    /// Hidden width of the router MLP.
    #[config(default = 16)]
    pub router_hidden: usize,
    /// Seed of the projections, the predictor and the router (drawn on the host); the RQ-VAEs
    /// use their own configs' seeds.
    #[config(default = 0)]
    pub seed: u64,
    /// The semantic codes come from a fixed index: code tables instead of a semantic RQ-VAE
    /// ([`super::fixed`]).
    #[config(default = false)]
    pub fixed_semantic: bool,
}

/// FlexCode's semantic side: an RQ-VAE over the text embeddings, or trainable tables over a
/// fixed index's codes.
#[derive(Module, Debug)]
pub enum SemanticSide {
    /// RQ-VAE over the text embeddings (SPEC section 5).
    RqVae(RqVae),
    /// Tables over fixed codes (`tokenizer.flexcode.semantic_index`).
    Fixed(FixedCodes),
}

impl SemanticSide {
    /// Levels of the semantic codebook.
    pub fn levels(&self) -> usize {
        match self {
            SemanticSide::RqVae(rq) => rq.quantizer.levels(),
            SemanticSide::Fixed(t) => t.levels(),
        }
    }

    /// Width of the semantic latent.
    pub fn code_dim(&self) -> usize {
        match self {
            SemanticSide::RqVae(rq) => rq.quantizer.dim(),
            SemanticSide::Fixed(t) => t.code_dim(),
        }
    }

    /// The RQ-VAE, when the semantic side is one.
    pub fn rqvae(&self) -> Option<&RqVae> {
        match self {
            SemanticSide::RqVae(rq) => Some(rq),
            SemanticSide::Fixed(_) => None,
        }
    }
}

/// The semantic side's input: text embeddings, or the fixed codes.
#[derive(Debug, Clone)]
pub enum SemanticData {
    /// `[items, d_sem]` text embeddings.
    Embeddings(Tensor<2>),
    /// `[items, levels]` fixed codes.
    Codes(Tensor<2, burn::tensor::Int>),
}

impl SemanticData {
    /// Number of items.
    pub fn items(&self) -> usize {
        match self {
            SemanticData::Embeddings(x) => x.dims()[0],
            SemanticData::Codes(c) => c.dims()[0],
        }
    }

    /// The device it is on.
    pub fn device(&self) -> Device {
        match self {
            SemanticData::Embeddings(x) => x.device(),
            SemanticData::Codes(c) => c.device(),
        }
    }

    /// The rows `idx`.
    pub fn select(&self, idx: Tensor<1, burn::tensor::Int>) -> SemanticData {
        match self {
            SemanticData::Embeddings(x) => SemanticData::Embeddings(x.clone().select(0, idx)),
            SemanticData::Codes(c) => SemanticData::Codes(c.clone().select(0, idx)),
        }
    }
}

/// The router: `s = W2 relu(W1 x + b1) + b2`, `a = sigmoid(s / T)`.
#[derive(Module, Debug)]
pub struct Router {
    /// `ROUTER_INPUTS -> router_hidden`.
    pub hidden: Linear,
    /// `router_hidden -> 1`, zero at initialisation (every item starts at a = 0.5).
    pub output: Linear,
}

impl Router {
    /// CF shares in (0, 1).
    ///
    /// # Shapes
    /// - x: `[items, ROUTER_INPUTS]`
    /// - output: `[items]`
    pub fn forward(&self, x: Tensor<2>, temperature: f64) -> Tensor<1> {
        let [items, width] = x.dims();
        assert_eq!(width, ROUTER_INPUTS, "the router reads {ROUTER_INPUTS} inputs per item");
        let s = linear(&self.output, relu(linear(&self.hidden, x)));
        sigmoid(s.div_scalar(temperature)).reshape([items])
    }
}

/// The FlexCode tokenizer.
#[derive(Module, Debug)]
pub struct FlexCode {
    /// RQ-VAE over the text embeddings, or the tables over a fixed index's codes.
    pub sem: SemanticSide,
    /// RQ-VAE over the CF embeddings.
    pub cf: RqVae,
    /// Semantic latent -> shared space (no bias: it commutes with the level weighting).
    pub proj_sem: Linear,
    /// CF latent -> shared space (no bias).
    pub proj_cf: Linear,
    /// Transition predictor P in the shared space (no bias).
    pub predictor: Linear,
    /// Per-item CF share.
    pub router: Router,
}

/// A linear layer with Xavier-normal weights and no bias (`zero`: all-zero weights).
fn linear_layer(d_in: usize, d_out: usize, zero: bool, bias: bool, rng: &mut StdRng, device: &Device) -> Linear {
    let std = (2.0 / (d_in + d_out) as f64).sqrt();
    let w: Vec<f32> =
        (0..d_in * d_out).map(|_| if zero { 0.0 } else { (crate::seed::standard_normal(rng) * std) as f32 }).collect();
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: bias.then(|| Param::from_tensor(Tensor::zeros([d_out], device))),
    }
}

impl FlexCodeModelConfig {
    /// A freshly initialised FlexCode (codebooks are replaced by k-means in training).
    pub fn init(&self, device: &Device) -> FlexCode {
        assert_eq!(self.sem.levels, self.cf.levels, "both codebooks have the token budget's levels");
        assert!(self.shared_dim > 0 && self.router_hidden > 0, "shared and router widths must be positive");
        let mut rng = StdRng::seed_from_u64(self.seed);
        let shared = self.shared_dim;
        let sem = if self.fixed_semantic {
            // The scale is set from the CF codebooks after their k-means initialisation.
            SemanticSide::Fixed(FixedCodes::init(self.sem.levels, self.sem.codebook_size, self.sem.code_dim, 1.0, self.sem.seed, device))
        } else {
            SemanticSide::RqVae(self.sem.init(device))
        };
        FlexCode {
            sem,
            cf: self.cf.init(device),
            proj_sem: linear_layer(self.sem.code_dim, shared, false, false, &mut rng, device),
            proj_cf: linear_layer(self.cf.code_dim, shared, false, false, &mut rng, device),
            predictor: linear_layer(shared, shared, false, false, &mut rng, device),
            router: Router {
                hidden: linear_layer(ROUTER_INPUTS, self.router_hidden, false, true, &mut rng, device),
                output: linear_layer(self.router_hidden, 1, true, true, &mut rng, device),
            },
        }
    }
}

impl FlexCode {
    /// Token budget (levels of each codebook).
    pub fn levels(&self) -> usize {
        self.sem.levels()
    }

    /// `1 - cos(proj_cf(z_cf), proj_sem(z_sem))` per item, without gradient.
    ///
    /// # Shapes
    /// - z_sem: `[items, sem code_dim]`, z_cf: `[items, cf code_dim]`
    /// - output: `[items]`
    pub fn disagreement(&self, z_sem: Tensor<2>, z_cf: Tensor<2>) -> Tensor<1> {
        let [items, _] = z_sem.dims();
        let s = l2_normalize(linear(&self.proj_sem, z_sem.detach()));
        let c = l2_normalize(linear(&self.proj_cf, z_cf.detach()));
        (s * c).sum_dim(1).reshape([items]).neg().add_scalar(1.0).detach()
    }

    /// What training reads of the whole catalogue, computed `batch` items at a time without
    /// gradient: the router's input (the statistics beside the encoders' disagreement) and the
    /// value of every level's nearest code in both codebooks.
    ///
    /// # Shapes
    /// - x_sem: `[items, d_sem]` or `[items, levels]` codes, x_cf: `[items, d_cf]`, stats: `[items, 3]`
    pub fn catalogue(&self, x_sem: &SemanticData, x_cf: &Tensor<2>, stats: &Tensor<2>, batch: usize) -> Catalogue {
        let z_cf = map_rows(x_cf.clone(), batch, |b| self.cf.encoder.forward(b).detach());
        let levels = |rq: &RqVae, z: &Tensor<2>| {
            let codes = encode_in_batches(z.clone(), batch, |b| rq.quantizer.encode(b)).codes; // [items, levels]
            let [items, _] = codes.dims();
            let per_level = rq
                .quantizer
                .codebooks
                .iter()
                .enumerate()
                .map(|(l, c)| c.val().detach().select(0, codes.clone().slice([0..items, l..l + 1]).reshape([items])))
                .collect();
            Tensor::stack::<3>(per_level, 1)
        };
        let (z_sem, sem_levels) = self.semantic_levels(x_sem, batch, &levels);
        Catalogue {
            sem_levels,
            cf_levels: levels(&self.cf, &z_cf),
            router_in: router_input(stats.clone(), self.disagreement(z_sem, z_cf)),
        }
    }

    /// The semantic latents and every level's contribution, without gradient.
    fn semantic_levels(
        &self,
        x_sem: &SemanticData,
        batch: usize,
        rq_levels: impl Fn(&RqVae, &Tensor<2>) -> Tensor<3>,
    ) -> (Tensor<2>, Tensor<3>) {
        match (&self.sem, x_sem) {
            (SemanticSide::RqVae(rq), SemanticData::Embeddings(x)) => {
                let z = map_rows(x.clone(), batch, |b| rq.encoder.forward(b).detach());
                let q = rq_levels(rq, &z);
                (z, q)
            }
            (SemanticSide::Fixed(t), SemanticData::Codes(c)) => {
                let q = t.contributions(c.clone()).detach();
                let [items, levels, d] = q.dims();
                (q.clone().sum_dim(1).reshape([items, d]), q.reshape([items, levels, d]))
            }
            _ => panic!("the semantic input does not match the semantic side (embeddings for an RQ-VAE, codes for a fixed index)"),
        }
    }

    /// The fused latent `f = proj_cf(sum_l wcf_l qcf_l) + proj_sem(sum_l wsem_l qsem_l)`, which
    /// (the projections being linear) is the weighted sum of the projected level contributions.
    ///
    /// # Shapes
    /// - q_sem, q_cf: `[batch, levels, code_dim]` the levels' contributions
    /// - w_sem, w_cf: `[batch, levels]`
    /// - output: `[batch, shared_dim]`
    pub fn fused(&self, q_sem: Tensor<3>, w_sem: Tensor<2>, q_cf: Tensor<3>, w_cf: Tensor<2>) -> Tensor<2> {
        linear(&self.proj_sem, weighted_levels(q_sem, w_sem)) + linear(&self.proj_cf, weighted_levels(q_cf, w_cf))
    }
}

/// The catalogue as an epoch of training reads it (see [`FlexCode::catalogue`]).
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// `[items, ROUTER_INPUTS]` the router's input.
    pub router_in: Tensor<2>,
    /// `[items, levels, code_dim]` the value of each level's nearest semantic code.
    pub sem_levels: Tensor<3>,
    /// `[items, levels, code_dim]` the value of each level's nearest CF code.
    pub cf_levels: Tensor<3>,
}

/// The router's input: the statistics and the disagreement side by side.
///
/// # Shapes
/// - stats: `[items, 3]`, disagreement: `[items]`
/// - output: `[items, ROUTER_INPUTS]`
pub fn router_input(stats: Tensor<2>, disagreement: Tensor<1>) -> Tensor<2> {
    let [items] = disagreement.dims();
    Tensor::cat(vec![stats, disagreement.reshape([items, 1])], 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> FlexCodeModelConfig {
        let rq = |d| RqVaeConfig::new(d).with_hidden(vec![8]).with_code_dim(4).with_levels(2).with_codebook_size(4);
        FlexCodeModelConfig::new(rq(6), rq(5).with_seed(1)).with_shared_dim(3).with_router_hidden(5)
    }

    #[test]
    fn shapes_and_initial_share() {
        let d = Device::flex();
        let m = tiny().init(&d);
        assert_eq!(m.levels(), 2);
        let x = Tensor::<2>::ones([7, ROUTER_INPUTS], &d);
        let a: Vec<f32> = m.router.forward(x, 1.0).into_data().try_into_vec_as().unwrap();
        assert_eq!(a, vec![0.5; 7], "a zero output layer starts every item at a = 0.5");
        let zs = crate::seed::normal([7, 4], 1, &d);
        let dis: Vec<f32> = m.disagreement(zs.clone(), zs.clone()).into_data().try_into_vec_as().unwrap();
        assert!(dis.iter().all(|v| (0.0..=2.0).contains(v)));
        let q: Tensor<3> = Tensor::stack(vec![zs.clone(), zs.clone()], 1);
        let w = Tensor::<2>::ones([7, 2], &d);
        assert_eq!(m.fused(q.clone(), w.clone(), q, w).dims(), [7, 3]);
        let x = |dim, seed| crate::seed::normal([7, dim], seed, &d);
        let cat = m.catalogue(&SemanticData::Embeddings(x(6, 2)), &x(5, 3), &Tensor::zeros([7, 3], &d), 3);
        assert_eq!((cat.router_in.dims(), cat.sem_levels.dims(), cat.cf_levels.dims()), ([7, 4], [7, 2, 4], [7, 2, 4]));
        let input = router_input(Tensor::zeros([7, 3], &d), Tensor::ones([7], &d));
        assert_eq!(input.dims(), [7, ROUTER_INPUTS]);
        let again = tiny().init(&d);
        assert_eq!(m.proj_cf.weight.val().into_data(), again.proj_cf.weight.val().into_data());
    }
}
