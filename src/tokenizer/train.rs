//! Training the RQ-VAE: k-means initialisation of every level on the residuals of the encoder
//! outputs, then AdamW over shuffled mini-batches of the item set.
//!
//! Reference: `trainer.py` / `rqvae.py` of LC-Rec and DiscRec (SPEC section 2). Differences:
//! the k-means initialisation runs on the whole item set instead of the first batch, and the
//! AdamW epsilon is PyTorch's 1e-8 (Burn's default is 1e-5).
//!
//! Everything stays on the device. Nothing is read back per step (the epoch's permutation
//! is uploaded once and sliced); the losses are summed on the device and read once
//! per epoch, and the full-catalogue evaluation reads the codes every `eval_every` epochs.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use super::encode::{codes_to_host, encode_in_batches, map_rows};
use super::kmeans::KMeansConfig;
use super::metrics::{collision_rate, level_usage, LevelUsage};
use super::quantizer::{QuantizeOptions, ResidualQuantizer};
use super::rq_kmeans::{residual_kmeans, ResidualKMeansConfig};
use super::rqvae::{RqVae, RqVaeConfig};

/// How the RQ-VAE trains.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Passes over the item set.
    pub epochs: usize,
    /// Items per step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Commitment weight.
    pub beta: f64,
    /// Lloyd iterations of the codebook initialisation.
    pub kmeans_iters: usize,
    /// Balanced k-means initialisation: Sinkhorn (epsilon, iterations).
    pub balanced_kmeans: Option<(f64, usize)>,
    /// Sinkhorn (epsilon, iterations) at the last level during training.
    pub sinkhorn: Option<(f64, usize)>,
    /// After every epoch, codes no training item chose are moved onto the residuals of random
    /// items (ours, not in the reference: without it most first-level codes die in the first
    /// steps, when the latent moves away from the k-means initialisation).
    pub reset_dead_codes: bool,
    /// Full-catalogue evaluation every this many epochs (0: only after the last).
    pub eval_every: usize,
    /// Items per batch when encoding the whole catalogue.
    pub encode_batch: usize,
    /// Seed of the shuffling and the k-means seeding (the weights use the architecture's seed).
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 1024,
            lr: 1e-3,
            weight_decay: 1e-4,
            beta: 0.25,
            kmeans_iters: 10,
            balanced_kmeans: None,
            sinkhorn: Some((0.003, 50)),
            reset_dead_codes: true,
            eval_every: 10,
            encode_batch: 4096,
            seed: 0,
        }
    }
}

/// Codebook use and collisions of the whole catalogue at some epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalMetrics {
    /// Per level: used codes and perplexity.
    pub levels: Vec<LevelUsage>,
    /// `1 - distinct IDs / items` of the raw codes (before collision handling).
    pub collision_rate: f64,
}

/// One line of the training log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochMetrics {
    /// 1-based epoch; 0 is the k-means initialisation before any step.
    pub epoch: usize,
    /// Mean training loss over the epoch's items.
    pub loss: f64,
    /// Mean reconstruction MSE.
    pub recon_loss: f64,
    /// Mean codebook + commitment loss.
    pub quant_loss: f64,
    /// Codes re-seeded after this epoch because no item chose them, per level.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reset_codes: Vec<usize>,
    /// Seconds since training started (initialisation included).
    pub elapsed_s: f64,
    /// Full-catalogue evaluation, on evaluation epochs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalMetrics>,
}

/// A trained RQ-VAE (on the plain device, no autodiff) and its log.
#[derive(Debug)]
pub struct Trained {
    /// The model.
    pub model: RqVae,
    /// One entry per epoch.
    pub log: Vec<EpochMetrics>,
}

/// Codebook use and collisions of the catalogue `x` under `model`.
pub fn evaluate(model: &RqVae, x: &Tensor<2>, encode_batch: usize) -> EvalMetrics {
    let enc = encode_in_batches(x.clone(), encode_batch, |b| model.encode(b));
    let codes = codes_to_host(enc.codes);
    EvalMetrics { levels: level_usage(&codes, model.quantizer.codebook_size()), collision_rate: collision_rate(&codes) }
}

/// Replaces the codebooks of `model` by residual k-means centroids of its encoder outputs.
pub fn kmeans_init(model: RqVae, x: &Tensor<2>, opts: &TrainOptions) -> RqVae {
    let z = map_rows(x.clone(), opts.encode_batch, |b| model.encoder.forward(b).detach());
    let cfg = ResidualKMeansConfig {
        levels: model.quantizer.levels(),
        kmeans: KMeansConfig {
            k: model.quantizer.codebook_size(),
            iters: opts.kmeans_iters,
            balanced: opts.balanced_kmeans,
            seed: opts.seed,
        },
    };
    RqVae { quantizer: ResidualQuantizer::from_codebooks(residual_kmeans(z, &cfg)), ..model }
}

/// Mean reconstruction and quantization losses of the whole catalogue (nearest codes).
fn catalogue_losses(model: &RqVae, x: &Tensor<2>, batch: usize, beta: f64) -> (f64, f64) {
    let [n, _] = x.dims();
    let opts = QuantizeOptions { beta, sinkhorn: None };
    let mut sums = Tensor::<1>::zeros([2], &x.device());
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let out = model.forward(x.clone().slice(start..end), opts);
        sums = sums + Tensor::cat(vec![out.recon_loss, out.quant_loss], 0).mul_scalar((end - start) as f64);
    }
    let sums: Vec<f32> = sums.into_data().try_into_vec_as().expect("f32 losses");
    (sums[0] as f64 / n as f64, sums[1] as f64 / n as f64)
}

/// How often each code was chosen in a batch, per level.
///
/// # Shapes
/// - codes: `[batch, levels]`
/// - output: `[levels, codebook_size]`
pub(crate) fn code_counts(codes: Tensor<2, Int>, k: usize) -> Tensor<2> {
    let [batch, levels] = codes.dims();
    let per_level = (0..levels)
        .map(|l| codes.clone().slice([0..batch, l..l + 1]).reshape([batch]).one_hot::<2>(k).float().sum_dim(0))
        .collect();
    Tensor::cat(per_level, 0)
}

/// Moves the codes with zero count onto the level inputs of random items, on the device;
/// returns the model and `[levels]` the number of codes moved (nothing is read back).
pub(crate) fn reset_dead_codes_lazily(model: RqVae, counts: Tensor<2>, x: &Tensor<2>, rng: &mut StdRng) -> (RqVae, Tensor<1>) {
    let [levels, k] = counts.dims();
    let [n, _] = x.dims();
    let dead = counts.equal_elem(0.0); // [levels, k]
    let moved = dead.clone().float().sum_dim(1).reshape([levels]);
    let sample: Vec<i64> = (0..k).map(|_| rng.random_range(0..n) as i64).collect();
    let sample = Tensor::<1, Int>::from_ints(TensorData::new(sample, [k]), &x.device());
    let plain = model.valid();
    let inputs = plain.quantizer.level_inputs(plain.encoder.forward(x.clone().select(0, sample)));
    let dead = (0..levels).map(|l| dead.clone().slice([l..l + 1, 0..k]).reshape([k])).collect();
    let quantizer = model.quantizer.reset_codes(dead, inputs);
    (RqVae { quantizer, ..model }, moved)
}

/// [`reset_dead_codes_lazily`] after reading the counts back, skipped (and no random draw
/// taken) when every code was used; returns the number of codes moved per level.
fn reset_dead_codes(model: RqVae, counts: Tensor<2>, x: &Tensor<2>, rng: &mut StdRng) -> (RqVae, Vec<usize>) {
    let [levels, _] = counts.dims();
    let moved: Vec<i64> = counts.clone().equal_elem(0.0).int().sum_dim(1).into_data().try_into_vec_as().expect("counts");
    if moved.iter().all(|&m| m == 0) {
        return (model, vec![0; levels]);
    }
    let (model, _) = reset_dead_codes_lazily(model, counts, x, rng);
    (model, moved.into_iter().map(|m| m as usize).collect())
}

/// A seeded permutation of `0..n` (Fisher-Yates).
pub(crate) fn permutation(n: usize, rng: &mut StdRng) -> Vec<i64> {
    let mut p: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        p.swap(i, rng.random_range(0..=i));
    }
    p
}

/// Trains an RQ-VAE of architecture `arch` on the item embeddings `x` (on any plain device;
/// training runs on its autodiff form). `on_epoch` sees every log line as it is made.
///
/// # Shapes
/// - x: `[items, input_dim]`
pub fn train_rqvae(x: Tensor<2>, arch: &RqVaeConfig, opts: &TrainOptions, mut on_epoch: impl FnMut(&EpochMetrics)) -> Trained {
    let [n, d] = x.dims();
    assert_eq!(d, arch.input_dim, "embeddings have {d} columns, the RQ-VAE expects {}", arch.input_dim);
    assert!(n > 0 && opts.batch_size > 0, "nothing to train on");
    let started = Instant::now();
    let device = x.device().without_autodiff();
    let x = x.without_autodiff();
    let model = kmeans_init(arch.init(&device), &x, opts);
    let mut model = model.to_device(&device.clone().autodiff()).train();
    let mut optim = AdamWConfig::new()
        .with_weight_decay(opts.weight_decay as f32)
        .with_epsilon(1e-8)
        .init();
    let quantize = QuantizeOptions { beta: opts.beta, sinkhorn: opts.sinkhorn };
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x5eed_5eed);
    let mut log = Vec::with_capacity(opts.epochs + 1);
    let initial = model.valid();
    let (recon, quant) = catalogue_losses(&initial, &x, opts.encode_batch, opts.beta);
    let line = EpochMetrics {
        epoch: 0,
        loss: recon + quant,
        recon_loss: recon,
        quant_loss: quant,
        reset_codes: Vec::new(),
        elapsed_s: started.elapsed().as_secs_f64(),
        eval: Some(evaluate(&initial, &x, opts.encode_batch)),
    };
    on_epoch(&line);
    log.push(line);
    let (levels, k) = (arch.levels, arch.codebook_size);
    for epoch in 1..=opts.epochs {
        let perm = Tensor::<1, Int>::from_ints(TensorData::new(permutation(n, &mut rng), [n]), &device);
        let mut sums = Tensor::<1>::zeros([2], &device);
        let mut counts = Tensor::<2>::zeros([levels, k], &device);
        for start in (0..n).step_by(opts.batch_size) {
            let end = (start + opts.batch_size).min(n);
            let xb = x.clone().select(0, perm.clone().slice(start..end));
            let out = model.forward(xb, quantize);
            let stats = Tensor::cat(vec![out.recon_loss.clone(), out.quant_loss.clone()], 0);
            sums = sums + stats.detach().without_autodiff().mul_scalar((end - start) as f64);
            if opts.reset_dead_codes {
                counts = counts + code_counts(out.codes.clone(), k);
            }
            let grads = GradientsParams::from_grads(out.loss().backward(), &model);
            model = optim.step(opts.lr, model, grads);
        }
        let mut reset_codes = Vec::new();
        if opts.reset_dead_codes && epoch < opts.epochs {
            let (m, moved) = reset_dead_codes(model, counts, &x, &mut rng);
            model = m;
            reset_codes = moved;
        }
        let sums: Vec<f32> = sums.into_data().try_into_vec_as().expect("f32 losses");
        let (recon, quant) = (sums[0] as f64 / n as f64, sums[1] as f64 / n as f64);
        let is_eval = epoch == opts.epochs || (opts.eval_every > 0 && epoch % opts.eval_every == 0);
        let eval = is_eval.then(|| evaluate(&model.valid(), &x, opts.encode_batch));
        let line = EpochMetrics {
            epoch,
            loss: recon + quant,
            recon_loss: recon,
            quant_loss: quant,
            reset_codes,
            elapsed_s: started.elapsed().as_secs_f64(),
            eval,
        };
        on_epoch(&line);
        log.push(line);
    }
    Trained { model: model.valid(), log }
}
