//! Training FlexCode: both RQ-VAEs initialised by residual k-means on their encoder outputs,
//! then AdamW over every parameter, epochs over the item set in shuffled batches with a batch of
//! sampled training transitions per step (SPEC section 5; the objectives are ours).
//!
//! A step's loss is
//! `recon_sem + quant_sem + recon_cf + quant_cf + lambda_align * align
//!  + lambda_transition * transition + lambda_balance * balance + lambda_smooth * smooth`:
//! the first four on the item batch (as in SPEC section 2, Sinkhorn at the last level when
//! configured), alignment between the batch's two latents, the transition InfoNCE on the
//! transition batch, balance and smoothness over all items (the router is tiny).
//!
//! The router's disagreement input needs both encoders over the whole catalogue, so before the
//! first epoch and after each one a pass without gradient computes it, and with it the value of
//! every item's nearest code at every level of both codebooks ([`FlexCode::catalogue`]). Within
//! an epoch the router and the transition loss read that view of the parameters at the
//! epoch's start, so the transition batch needs no encoder pass (unless
//! `transition_to_encoders`, which encodes its items live). Its memory is
//! `2 x items x levels x code_dim` floats (about 100 MB for 100k items, 4 levels of width 32).
//! tau is constant within an epoch and follows [`FlexCodeConfig::tau`] across epochs.
//!
//! With a fixed semantic index ([`super::fixed`]) there is no semantic RQ-VAE: `recon_sem` and
//! `quant_sem` are 0, the semantic latent of the alignment is the sum of the items' code vectors
//! (which the alignment trains), and the catalogue's semantic levels are those vectors.
//!
//! Everything stays on the device: the epoch's permutation and transition sample are uploaded
//! once, the loss terms are summed on the device, and one read-back per epoch fetches the log
//! line (loss means, mean CF share, codes re-seeded).

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use super::config::FlexCodeConfig;
use super::ids::{assign_flex_ids, FlexIds};
use super::losses::{balance, fixed_level_weights, info_nce, level_weights, smoothness, symmetric_info_nce};
use super::fixed::{codes_tensor, FixedCodes};
use super::model::{Catalogue, FlexCode, FlexCodeModelConfig, SemanticData, SemanticSide};
use super::report::{flex_metrics, FlexCodeMetrics};
use crate::kernels::matmul::linear;
use crate::tokenizer::config::TokenizerConfig;
use crate::tokenizer::quantizer::QuantizeOptions;
use crate::tokenizer::rqvae::{RqVae, RqVaeConfig};
use crate::tokenizer::train::{code_counts, kmeans_init, permutation, reset_dead_codes_lazily, TrainOptions};

/// The semantic side's input.
#[derive(Debug, Clone)]
pub enum SemanticInput {
    /// `[items, d_sem]` text embeddings, dense item order: a semantic RQ-VAE is trained on them.
    Embeddings(Tensor<2>),
    /// `[items][levels]` fixed semantic codes, dense item order (a ready-made index's first L
    /// levels, [`super::fixed`]): no semantic RQ-VAE, trainable code tables instead.
    Codes(Vec<Vec<u32>>),
}

/// What FlexCode trains on: plain host data and two embedding matrices (or the CF embeddings
/// and fixed semantic codes), all of the training split only (computed by the caller).
#[derive(Debug, Clone)]
pub struct FlexCodeInputs {
    /// The semantic side: text embeddings or fixed codes.
    pub x_sem: SemanticInput,
    /// `[items, d_cf]` CF embeddings, dense item order.
    pub x_cf: Tensor<2>,
    /// Per item: standardised log(1 + count), popularity percentile in [0, 1], recency in [0, 1].
    pub stats: Vec<[f32; 3]>,
    /// Training interactions per item (smoothness order, report buckets).
    pub counts: Vec<u32>,
    /// Training transitions `(item, next item)` in users' sequences.
    pub transitions: Vec<(u32, u32)>,
}

/// One line of the training log (means over the epoch's steps).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlexEpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Reconstruction MSE of the semantic RQ-VAE.
    pub sem_recon: f64,
    /// Codebook + commitment loss of the semantic RQ-VAE.
    pub sem_quant: f64,
    /// Reconstruction MSE of the CF RQ-VAE.
    pub cf_recon: f64,
    /// Codebook + commitment loss of the CF RQ-VAE.
    pub cf_quant: f64,
    /// Symmetric alignment InfoNCE (0 when `lambda_align = 0`).
    pub align: f64,
    /// Transition InfoNCE (0 when `lambda_transition = 0`).
    pub transition: f64,
    /// (mean a - rho)^2 (0 without the router).
    pub balance: f64,
    /// Mean squared step of a between count-sorted neighbours (0 without the router).
    pub smooth: f64,
    /// The weighted total that was minimised.
    pub total: f64,
    /// Mean CF share over the catalogue after the epoch.
    pub mean_cf_share: f64,
    /// tau of the level weights during the epoch.
    pub tau: f64,
    /// Semantic codes re-seeded after the epoch, per level.
    pub reset_codes_sem: Vec<usize>,
    /// CF codes re-seeded after the epoch, per level.
    pub reset_codes_cf: Vec<usize>,
    /// Seconds since training started (k-means initialisation included).
    pub elapsed_s: f64,
}

/// A trained FlexCode tokenizer, its IDs and what the report needs.
#[derive(Debug)]
pub struct FlexCodeResult {
    /// The model, on the plain device.
    pub model: FlexCode,
    /// Collision-free IDs, per item a CF share and its number of CF tokens.
    pub ids: FlexIds,
    /// Training interactions per item (as given).
    pub counts: Vec<u32>,
    /// One line per epoch.
    pub log: Vec<FlexEpochLog>,
    /// What `metrics.json` records.
    pub metrics: FlexCodeMetrics,
}

impl FlexCodeInputs {
    /// Checks row counts, ranges and values; returns the number of items or what is wrong.
    pub fn validate(&self) -> Result<usize, String> {
        let [n, d_sem] = match &self.x_sem {
            SemanticInput::Embeddings(x) => x.dims(),
            SemanticInput::Codes(c) => [c.len(), c.first().map_or(0, Vec::len)],
        };
        let [n_cf, d_cf] = self.x_cf.dims();
        if n == 0 || d_sem == 0 || d_cf == 0 {
            return Err(format!("empty embeddings: x_sem is {n} x {d_sem}, x_cf is {n_cf} x {d_cf}"));
        }
        for (what, rows) in [("x_cf", n_cf), ("stats", self.stats.len()), ("counts", self.counts.len())] {
            if rows != n {
                return Err(format!("{what} has {rows} rows, but x_sem has {n} (one row per item, dense-id order)"));
            }
        }
        if let SemanticInput::Codes(c) = &self.x_sem {
            if let Some(i) = c.iter().position(|row| row.len() != d_sem) {
                return Err(format!("fixed semantic codes: item {i} has {} levels, item 0 has {d_sem}", c[i].len()));
            }
        }
        let mut dense = vec![("x_cf", &self.x_cf)];
        if let SemanticInput::Embeddings(x) = &self.x_sem {
            dense.insert(0, ("x_sem", x));
        }
        for (what, x) in dense {
            let [r, c] = x.dims();
            let finite: i64 = x.clone().is_finite().int().sum().into_scalar();
            if finite != (r * c) as i64 {
                return Err(format!("{what} holds {} NaN or infinite values", (r * c) as i64 - finite));
            }
        }
        if let Some(i) = self.stats.iter().position(|s| s.iter().any(|v| !v.is_finite())) {
            return Err(format!("stats of item {i} are not finite: {:?}", self.stats[i]));
        }
        if let Some(&(a, b)) = self.transitions.iter().find(|&&(a, b)| a as usize >= n || b as usize >= n) {
            return Err(format!("transition {a} -> {b} names an item outside 0..{n}"));
        }
        Ok(n)
    }
}

/// Device copies of the inputs.
pub(crate) struct TrainData {
    /// `[items, d_sem]` embeddings or `[items, levels]` fixed codes.
    pub x_sem: SemanticData,
    /// `[items, d_cf]`.
    pub x_cf: Tensor<2>,
    /// `[items, 3]`.
    pub stats: Tensor<2>,
    /// `[items]` items by training count, ascending (ties: dense id).
    pub order: Tensor<1, Int>,
}

impl TrainData {
    pub(crate) fn new(inputs: &FlexCodeInputs, device: &Device) -> Self {
        let n = inputs.counts.len();
        let stats: Vec<f32> = inputs.stats.iter().flatten().copied().collect();
        let mut order: Vec<i64> = (0..n as i64).collect();
        order.sort_by_key(|&i| (inputs.counts[i as usize], i));
        Self {
            x_sem: match &inputs.x_sem {
                SemanticInput::Embeddings(x) => SemanticData::Embeddings(x.clone().without_autodiff().to_device(device)),
                SemanticInput::Codes(c) => SemanticData::Codes(codes_tensor(c, device)),
            },
            x_cf: inputs.x_cf.clone().without_autodiff().to_device(device),
            stats: Tensor::from_data(TensorData::new(stats, [n, 3]), device),
            order: Tensor::from_ints(TensorData::new(order, [n]), device),
        }
    }
}

/// The items and transitions of one step.
pub(crate) struct StepBatch {
    /// `[batch]` items of the RQ-VAE, alignment terms.
    pub items: Tensor<1, Int>,
    /// `[transition_batch]` sources and targets, when the transition loss is on.
    pub transitions: Option<(Tensor<1, Int>, Tensor<1, Int>)>,
}

/// Every loss term of a step, `[1]` each (as in [`FlexEpochLog`]; zero when switched off).
pub(crate) struct StepLosses {
    pub sem_recon: Tensor<1>,
    pub sem_quant: Tensor<1>,
    pub cf_recon: Tensor<1>,
    pub cf_quant: Tensor<1>,
    pub align: Tensor<1>,
    pub transition: Tensor<1>,
    pub balance: Tensor<1>,
    pub smooth: Tensor<1>,
    /// `[batch, levels]` codes of the item batch in the semantic codebook (the fixed ones with
    /// a fixed index).
    pub sem_codes: Tensor<2, Int>,
    /// `[batch, levels]` codes of the item batch in the CF codebook.
    pub cf_codes: Tensor<2, Int>,
}

impl StepLosses {
    /// `[1]` the weighted total.
    pub(crate) fn total(&self, f: &FlexCodeConfig) -> Tensor<1> {
        self.sem_recon.clone()
            + self.sem_quant.clone()
            + self.cf_recon.clone()
            + self.cf_quant.clone()
            + self.align.clone().mul_scalar(f.lambda_align)
            + self.transition.clone().mul_scalar(f.lambda_transition)
            + self.balance.clone().mul_scalar(f.lambda_balance)
            + self.smooth.clone().mul_scalar(f.lambda_smooth)
    }

    /// `[8]` the terms in log order, without gradient.
    fn terms(&self) -> Tensor<1> {
        let t = [&self.sem_recon, &self.sem_quant, &self.cf_recon, &self.cf_quant, &self.align, &self.transition, &self.balance, &self.smooth];
        Tensor::cat(t.into_iter().cloned().collect(), 0).detach().without_autodiff()
    }
}

/// Reconstruction and quantization losses, the latent and the codes of one RQ-VAE's batch.
fn rqvae_step(rq: &RqVae, x: Tensor<2>, opts: QuantizeOptions) -> (Tensor<2>, Tensor<1>, Tensor<1>, Tensor<2, Int>) {
    let z = rq.encoder.forward(x.clone());
    let q = rq.quantizer.forward(z.clone(), opts);
    let recon = rq.decoder.forward(q.quantized);
    (z, (recon - x).powi_scalar(2).mean(), q.loss, q.codes)
}

/// Every loss term of one step; `catalogue` is the epoch's view of all items.
pub(crate) fn step_losses(
    model: &FlexCode,
    data: &TrainData,
    catalogue: &Catalogue,
    batch: &StepBatch,
    tau: f64,
    cfg: &TokenizerConfig,
) -> StepLosses {
    let f = &cfg.flexcode;
    let levels = cfg.levels;
    let opts = QuantizeOptions { beta: cfg.beta, sinkhorn: cfg.sinkhorn.then_some((cfg.sinkhorn_epsilon, cfg.sinkhorn_iters)) };
    let xc = data.x_cf.clone().select(0, batch.items.clone());
    let (zc, cf_recon, cf_quant, cf_codes) = rqvae_step(&model.cf, xc, opts);
    let zero = || cf_recon.zeros_like();
    let (zs, sem_recon, sem_quant, sem_codes) = match (&model.sem, data.x_sem.select(batch.items.clone())) {
        (SemanticSide::RqVae(rq), SemanticData::Embeddings(xs)) => rqvae_step(rq, xs, opts),
        // Fixed codes: nothing to reconstruct or quantise; the latent is the sum of the code
        // vectors, which the alignment trains.
        (SemanticSide::Fixed(t), SemanticData::Codes(c)) => (t.latent(c.clone()), zero(), zero(), c),
        _ => unreachable!("train_flexcode builds the semantic side for its input"),
    };
    let align = if f.lambda_align > 0.0 {
        symmetric_info_nce(linear(&model.proj_sem, zs), linear(&model.proj_cf, zc), f.align_temperature)
    } else {
        zero()
    };
    let share = f.router.then(|| model.router.forward(catalogue.router_in.clone(), f.router_temperature)); // [items]
    let (bal, smooth) = match &share {
        Some(a) => (balance(a.clone(), f.target_cf_share), smoothness(a.clone(), data.order.clone())),
        None => (zero(), zero()),
    };
    let transition = match &batch.transitions {
        Some((src, dst)) if f.lambda_transition > 0.0 => {
            let [tb] = src.dims();
            let idx = Tensor::cat(vec![src.clone(), dst.clone()], 0); // [2 tb]
            // Nearest codes, as in the final IDs. By default the levels' values come from the
            // epoch's catalogue (constants: no encoder pass); with `transition_to_encoders` they
            // are computed here, straight-through, so that the gradient reaches the encoders.
            let contributions = |rq: &RqVae, x: &Tensor<2>, snapshot: &Tensor<3>| {
                if f.transition_to_encoders {
                    let z = rq.encoder.forward(x.clone().select(0, idx.clone()));
                    let plain = QuantizeOptions { beta: cfg.beta, sinkhorn: None };
                    Tensor::stack::<3>(rq.quantizer.forward(z, plain).levels, 1)
                } else {
                    snapshot.clone().select(0, idx.clone())
                }
            };
            let (w_cf, w_sem) = match &share {
                Some(a) => level_weights(a.clone().select(0, idx.clone()), levels, tau),
                None => fixed_level_weights(2 * tb, levels, f.fixed_cf_tokens, &idx.device()),
            };
            let q_sem = match (&model.sem, &data.x_sem) {
                (SemanticSide::RqVae(rq), SemanticData::Embeddings(x)) => contributions(rq, x, &catalogue.sem_levels),
                // The fixed codes' vectors: live (with gradient) or the epoch's snapshot.
                (SemanticSide::Fixed(t), SemanticData::Codes(c)) if f.transition_to_encoders => t.contributions(c.clone().select(0, idx.clone())),
                _ => catalogue.sem_levels.clone().select(0, idx.clone()),
            };
            let q_cf = contributions(&model.cf, &data.x_cf, &catalogue.cf_levels);
            let fused = model.fused(q_sem, w_sem, q_cf, w_cf); // [2 tb, shared_dim]
            let pred = linear(&model.predictor, fused.clone().slice(0..tb));
            info_nce(pred, fused.slice(tb..2 * tb), f.transition_temperature)
        }
        _ => zero(),
    };
    StepLosses { sem_recon, sem_quant, cf_recon, cf_quant, align, transition, balance: bal, smooth, sem_codes, cf_codes }
}

/// The architecture `cfg` describes for embeddings of widths `d_sem` and `d_cf` (`d_sem` = `None`:
/// fixed semantic codes, code tables instead of the semantic RQ-VAE).
pub fn model_config(cfg: &TokenizerConfig, d_sem: Option<usize>, d_cf: usize, seed: u64) -> FlexCodeModelConfig {
    let rq = |d: usize, hidden: &[usize], seed: u64| {
        RqVaeConfig::new(d)
            .with_hidden(hidden.to_vec())
            .with_code_dim(cfg.code_dim)
            .with_levels(cfg.levels)
            .with_codebook_size(cfg.codebook_size)
            .with_seed(seed)
    };
    let cf_hidden = cfg.flexcode.cf_hidden.as_deref().unwrap_or(&cfg.hidden);
    FlexCodeModelConfig::new(rq(d_sem.unwrap_or(1), &cfg.hidden, seed), rq(d_cf, cf_hidden, seed.wrapping_add(1)))
        .with_shared_dim(cfg.flexcode.shared_dim)
        .with_router_hidden(cfg.flexcode.router_hidden)
        .with_seed(seed.wrapping_add(2))
        .with_fixed_semantic(d_sem.is_none())
}

/// Trains FlexCode on `inputs` with the `[tokenizer]` settings `cfg` (its `flexcode` section;
/// seed `cfg.seed`, 0 when unset) on `device` (training runs on its autodiff form), then makes
/// the collision-free IDs. `on_epoch` sees every log line as it is made. Inputs or settings
/// that cannot be trained on are errors naming the problem.
pub fn train_flexcode(
    inputs: &FlexCodeInputs,
    cfg: &TokenizerConfig,
    device: &Device,
    mut on_epoch: impl FnMut(&FlexEpochLog),
) -> Result<FlexCodeResult, String> {
    let started = Instant::now();
    cfg.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
    let n = inputs.validate()?;
    let f = &cfg.flexcode;
    if f.router && f.lambda_transition > 0.0 && inputs.transitions.is_empty() {
        return Err("no training transitions: the router learns from them (or set tokenizer.flexcode.lambda_transition = 0)".into());
    }
    if let SemanticInput::Codes(codes) = &inputs.x_sem {
        f.check_fixed_semantic().map_err(|(k, m)| format!("{k}: {m}"))?;
        let width = codes.first().map_or(0, Vec::len);
        if width != cfg.levels {
            return Err(format!("fixed semantic codes have {width} levels, the token budget tokenizer.levels is {}", cfg.levels));
        }
        if let Some((i, c)) = codes.iter().enumerate().find_map(|(i, row)| row.iter().find(|&&c| c as usize >= cfg.codebook_size).map(|&c| (i, c))) {
            return Err(format!("fixed semantic code {c} of item {i} is beyond tokenizer.codebook_size = {}", cfg.codebook_size));
        }
    }
    let device = device.clone().without_autodiff();
    let data = TrainData::new(inputs, &device);
    let seed = cfg.seed.unwrap_or(0);
    let d_sem = match &data.x_sem {
        SemanticData::Embeddings(x) => Some(x.dims()[1]),
        SemanticData::Codes(_) => None,
    };
    let arch = model_config(cfg, d_sem, data.x_cf.dims()[1], seed);
    let model = arch.init(&device);
    let kopts = |seed| TrainOptions {
        kmeans_iters: cfg.kmeans_iters,
        balanced_kmeans: cfg.balanced_kmeans.then_some((cfg.sinkhorn_epsilon, cfg.sinkhorn_iters)),
        encode_batch: cfg.encode_batch,
        seed,
        ..TrainOptions::default()
    };
    let cf = kmeans_init(model.cf, &data.x_cf, &kopts(seed.wrapping_add(1)));
    let sem = match (model.sem, &data.x_sem) {
        (SemanticSide::RqVae(rq), SemanticData::Embeddings(x)) => SemanticSide::RqVae(kmeans_init(rq, x, &kopts(seed))),
        (SemanticSide::Fixed(_), SemanticData::Codes(_)) => {
            // At the scale of the CF codebooks (see `fixed`): rms of CF level-1 codes / sqrt(L).
            let rms: f32 = cf.quantizer.codebooks[0].val().powi_scalar(2).mean().sqrt().into_scalar();
            let std = (rms as f64 / (cfg.levels as f64).sqrt()).max(1e-3);
            SemanticSide::Fixed(FixedCodes::init(cfg.levels, cfg.codebook_size, cfg.code_dim, std, arch.sem.seed, &device))
        }
        _ => unreachable!("model_config matches the semantic input"),
    };
    let model = FlexCode { sem, cf, ..model };
    let mut catalogue = model.catalogue(&data.x_sem, &data.x_cf, &data.stats, cfg.encode_batch);
    let mut model = model.to_device(&device.clone().autodiff()).train();
    let mut optim = AdamWConfig::new().with_weight_decay(cfg.weight_decay as f32).with_epsilon(1e-8).init();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xf1e7_c0de);
    let (levels, k) = (cfg.levels, cfg.codebook_size);
    let steps = n.div_ceil(cfg.batch_size);
    let use_transitions = f.lambda_transition > 0.0 && !inputs.transitions.is_empty();
    let tb = f.transition_batch.min(inputs.transitions.len()).max(1);
    let mut log = Vec::with_capacity(cfg.epochs);
    for epoch in 1..=cfg.epochs {
        let tau = f.tau(epoch, cfg.epochs);
        let perm = Tensor::<1, Int>::from_ints(TensorData::new(permutation(n, &mut rng), [n]), &device);
        let sample = use_transitions.then(|| {
            let (src, dst): (Vec<i64>, Vec<i64>) = (0..steps * tb)
                .map(|_| inputs.transitions[rng.random_range(0..inputs.transitions.len())])
                .map(|(a, b)| (a as i64, b as i64))
                .unzip();
            let up = |v: Vec<i64>| Tensor::<1, Int>::from_ints(TensorData::new(v, [steps * tb]), &device);
            (up(src), up(dst))
        });
        let mut sums = Tensor::<1>::zeros([9], &device);
        let mut counts = (Tensor::<2>::zeros([levels, k], &device), Tensor::<2>::zeros([levels, k], &device));
        for s in 0..steps {
            let (start, end) = (s * cfg.batch_size, ((s + 1) * cfg.batch_size).min(n));
            let batch = StepBatch {
                items: perm.clone().slice(start..end),
                transitions: sample.as_ref().map(|(a, b)| (a.clone().slice(s * tb..(s + 1) * tb), b.clone().slice(s * tb..(s + 1) * tb))),
            };
            let out = step_losses(&model, &data, &catalogue, &batch, tau, cfg);
            let total = out.total(f);
            let total_plain = total.clone().detach().without_autodiff();
            sums = sums + Tensor::cat(vec![out.terms(), total_plain], 0);
            if cfg.reset_dead_codes {
                if matches!(model.sem, SemanticSide::RqVae(_)) {
                    counts.0 = counts.0 + code_counts(out.sem_codes.clone(), k);
                }
                counts.1 = counts.1 + code_counts(out.cf_codes.clone(), k);
            }
            let grads = GradientsParams::from_grads(total.backward(), &model);
            model = optim.step(cfg.lr, model, grads);
        }
        let mut moved = Tensor::<1>::zeros([2 * levels], &device);
        if cfg.reset_dead_codes && epoch < cfg.epochs {
            // Fixed codes have no dead codes to re-seed: the index's are what they are.
            let (sem, moved_sem) = match (model.sem, &data.x_sem) {
                (SemanticSide::RqVae(rq), SemanticData::Embeddings(x)) => {
                    let (rq, moved) = reset_dead_codes_lazily(rq, counts.0, x, &mut rng);
                    (SemanticSide::RqVae(rq), moved)
                }
                (sem, _) => (sem, Tensor::<1>::zeros([levels], &device)),
            };
            let (cf, moved_cf) = reset_dead_codes_lazily(model.cf, counts.1, &data.x_cf, &mut rng);
            model = FlexCode { sem, cf, ..model };
            moved = Tensor::cat(vec![moved_sem, moved_cf], 0);
        }
        let plain = model.valid();
        catalogue = plain.catalogue(&data.x_sem, &data.x_cf, &data.stats, cfg.encode_batch);
        let mean_share = if f.router {
            plain.router.forward(catalogue.router_in.clone(), f.router_temperature).mean()
        } else {
            Tensor::<1>::full([1], f.fixed_cf_tokens as f64 / levels as f64, &device)
        };
        let line: Vec<f32> = Tensor::cat(vec![sums.div_scalar(steps as f64), mean_share, moved], 0)
            .into_data()
            .try_into_vec_as()
            .map_err(|e| format!("reading the epoch's losses back: {e:?}"))?;
        let v = |i: usize| line[i] as f64;
        let codes = |r: std::ops::Range<usize>| line[r].iter().map(|&m| m as usize).collect::<Vec<_>>();
        let entry = FlexEpochLog {
            epoch,
            sem_recon: v(0),
            sem_quant: v(1),
            cf_recon: v(2),
            cf_quant: v(3),
            align: v(4),
            transition: v(5),
            balance: v(6),
            smooth: v(7),
            total: v(8),
            mean_cf_share: v(9),
            tau,
            reset_codes_sem: codes(10..10 + levels),
            reset_codes_cf: codes(10 + levels..10 + 2 * levels),
            elapsed_s: started.elapsed().as_secs_f64(),
        };
        on_epoch(&entry);
        log.push(entry);
    }
    let model = model.valid();
    let ids = assign_flex_ids(&model, &data, cfg)?;
    let fixed = matches!(model.sem, SemanticSide::Fixed(_));
    let metrics = flex_metrics(&ids, &inputs.counts, cfg, fixed, started.elapsed().as_secs_f64());
    Ok(FlexCodeResult { model, ids, counts: inputs.counts.clone(), log, metrics })
}
