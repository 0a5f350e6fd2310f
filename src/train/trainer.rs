//! The training loop of the generator (SPEC section 3): shuffled mini-batches of the
//! leave-one-out training windows, cross-entropy on `[c1..cL, EOS]`, AdamW with linear warm-up
//! and cosine decay, global gradient-norm clipping, the validation loss every epoch, early
//! stopping with patience, atomic checkpoints (last and best), and exact resumption.
//!
//! Reference: the official TIGER / DiscRec training (Hugging Face `Seq2SeqTrainer` with
//! `lr_scheduler_type = cosine`, `warmup_ratio`, `max_grad_norm = 1.0`).
//!
//! Resuming gives the same run as never stopping: checkpoints are taken at epoch ends, an
//! epoch's batch order depends only on (seed, epoch), the dropout generators (the device's, and
//! on the CPU backend this thread's) are re-seeded from (seed, epoch) at the start of every
//! epoch, and the optimizer's moments
//! and the schedule's step are restored.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

use super::batches::{epoch_order, Batcher};
use super::checkpoint::{self, CheckpointError, EpochLog, GeneratorSpec, Snapshot, TrainState};
use super::clip::clip_global_norm;
use super::config::TrainConfig;
use super::progress::EpochProgress;
use super::resume::{self, RunSettings};
use super::schedule::{lr_at, warmup_steps};
use crate::data::{Dataset, IdMap, Part, Popularity, SemanticIndex, Split};
use crate::eval::EvalConfig;
use crate::model::{dropout, Generator, ItemTokens};
use crate::seed;

/// A training failure.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The loss became NaN or infinite.
    #[error("the training loss became {loss} at epoch {epoch}, step {step}; lower train.lr or set train.grad_clip")]
    NonFinite {
        /// The value.
        loss: f64,
        /// 1-based epoch.
        epoch: usize,
        /// Step.
        step: usize,
    },
    /// Nothing to train on.
    #[error("the dataset has no training examples (every user has fewer than 4 items)")]
    NoTrainingData,
    /// The model cannot be built.
    #[error("{0}")]
    Model(String),
    /// A resumed run changed settings that it may not change ([`super::resume`]).
    #[error("{dir}: {msg}")]
    Settings {
        /// The checkpoint.
        dir: PathBuf,
        /// Which settings, and what to do.
        msg: String,
    },
    /// A run artifact could not be written.
    #[error("{path}: {msg}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What happened.
        msg: String,
    },
}

/// Everything a training run reads.
pub struct TrainInputs<'a> {
    /// Sequences.
    pub ds: &'a Dataset,
    /// Leave-one-out split.
    pub split: &'a Split,
    /// Semantic IDs (dense item order).
    pub index: &'a SemanticIndex,
    /// Items' token sequences (from `index`).
    pub items: &'a ItemTokens,
    /// Dense -> raw item ids.
    pub item_ids: &'a IdMap,
    /// Model kind and sizes.
    pub spec: GeneratorSpec,
    /// `[train]`.
    pub cfg: &'a TrainConfig,
    /// `[eval]`: the per-epoch validation metrics (`train.eval_every`) use it.
    pub eval: &'a EvalConfig,
    /// Training popularity (head/tail buckets of the validation metrics).
    pub pop: &'a Popularity,
    /// Seed of the run.
    pub seed: u64,
    /// Where to train (without autodiff; the loop adds it).
    pub device: Device,
    /// Whether to pad every batch to one shape (wgpu).
    pub fixed_shapes: bool,
    /// The run folder (checkpoints/, metrics.jsonl, training.png).
    pub dir: PathBuf,
}

/// What happened, for the caller's report.
pub struct TrainOutcome {
    /// The final state (log included).
    pub state: TrainState,
    /// The folder of the best checkpoint.
    pub best: PathBuf,
    /// Whether the run continued from an earlier checkpoint, and from which epoch.
    pub resumed_from: Option<usize>,
}

/// Whether to go on after an epoch (the caller's hook; tests stop early with it).
pub type Continue = bool;

fn write_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Write { path: path.to_path_buf(), msg: e.to_string() }
}

/// Steps per epoch: the training batches, possibly capped by `train.max_batches_per_epoch`.
pub fn batches_per_epoch(examples: usize, cfg: &TrainConfig) -> usize {
    let full = examples.div_ceil(cfg.batch_size);
    if cfg.max_batches_per_epoch > 0 { full.min(cfg.max_batches_per_epoch) } else { full }
}

fn optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    AdamWConfig::new().with_weight_decay(cfg.weight_decay as f32).with_epsilon(cfg.epsilon as f32).init()
}

/// The checkpoint folders of a run.
pub fn checkpoint_dirs(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("checkpoints").join("last"), dir.join("checkpoints").join("best"))
}

/// Mean validation cross-entropy per label token, with the model in evaluation mode.
pub fn validation_loss(model: &Generator, batcher: &Batcher, examples: &[crate::data::Example], batch_size: usize, device: &Device) -> f64 {
    let mut sum = Tensor::<1>::zeros([1], device);
    let mut tokens = 0usize;
    for chunk in examples.chunks(batch_size.max(1)) {
        let b = batcher.batch(chunk);
        let loss = model.loss(&b.enc.to_device(device), &b.dec.to_device(device));
        sum = sum + loss.mul_scalar(b.label_tokens as f64);
        tokens += b.label_tokens;
    }
    sum.into_scalar::<f32>() as f64 / tokens.max(1) as f64
}

/// Trains (or resumes) the generator; `on_epoch` sees every epoch's log line and may stop the
/// run by returning `false` (the checkpoint of that epoch is written first).
pub fn train(inp: &TrainInputs, mut on_epoch: impl FnMut(&EpochLog) -> Continue) -> Result<TrainOutcome, TrainError> {
    let cfg = inp.cfg;
    if inp.split.train.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let (last_dir, best_dir) = checkpoint_dirs(&inp.dir);
    let base = inp.device.clone();
    let ad = base.clone().autodiff();
    let nb = batches_per_epoch(inp.split.train.len(), cfg);
    let total = nb * cfg.epochs;
    let warmup = warmup_steps(total, cfg.warmup_fraction);
    let (model, mut optim, mut state, resumed_from) = match checkpoint::existing(&last_dir) {
        Some(dir) => {
            let ck = checkpoint::load(&dir, &base)?;
            let optim = checkpoint::load_optimizer(&ck.dir, optimizer(cfg))?;
            let from = ck.state.epoch;
            (ck.model, optim, ck.state, Some(from))
        }
        None => {
            // Initialised on the CPU backend from the run's seed, then moved: a run's initial
            // weights depend only on its seed, not on the device (each backend has its own
            // random generator).
            let model = seed::try_init_seeded(inp.seed, |host| inp.spec.init(host)).map_err(TrainError::Model)?.to_device(&base);
            (model, optimizer(cfg), TrainState { total_steps: total, ..Default::default() }, None)
        }
    };
    let settings = RunSettings { train: cfg.clone(), seed: inp.seed };
    if resumed_from.is_some() {
        match &state.settings {
            Some(saved) => {
                let accepted = resume::check(saved, &settings).map_err(|msg| TrainError::Settings { dir: last_dir.clone(), msg })?;
                for c in accepted {
                    eprintln!("note: resuming with {c} (kept in the checkpoint's state.json)");
                    state.changes.push((state.epoch, c));
                }
            }
            None => eprintln!("note: the checkpoint does not record its settings (an older sidrec wrote it); resuming with the current ones"),
        }
    }
    state.settings = Some(settings);
    state.total_steps = total;
    let mut model = model.to_device(&ad).train();
    let pad_to = if inp.fixed_shapes { inp.items.full_encoder_length(inp.split.max_len) } else { 0 };
    let batcher = Batcher { ds: inp.ds, split: inp.split, items: inp.items, pad_to };
    let valid = inp.split.part(Part::Valid);
    let done = |s: &TrainState| s.epoch >= cfg.epochs || s.stopped_early;
    while !done(&state) {
        let epoch = state.epoch + 1;
        let started = Instant::now();
        let epoch_seed = inp.seed ^ (epoch as u64).wrapping_mul(0xa076_1d64_78bd_642f);
        seed::seed_device(&base, epoch_seed); // Burn's dropout masks on wgpu
        dropout::reseed(epoch_seed); // the CPU backend's masks, drawn on this thread
        let order = epoch_order(&inp.split.train, inp.seed, epoch);
        let mut bar = EpochProgress::new(epoch, cfg.epochs, nb);
        let mut sum = Tensor::<1>::zeros([1], &base);
        let (mut tokens, mut seen) = (0usize, 0usize);
        let mut lr = cfg.lr;
        for (b, chunk) in order.chunks(cfg.batch_size).take(nb).enumerate() {
            let hb = batcher.batch(chunk);
            let loss = model.loss(&hb.enc.to_device(&ad), &hb.dec.to_device(&ad));
            sum = sum + loss.clone().detach().without_autodiff().mul_scalar(hb.label_tokens as f64);
            tokens += hb.label_tokens;
            seen += chunk.len();
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            if cfg.grad_clip > 0.0 {
                clip_global_norm(&model, &mut grads, cfg.grad_clip);
            }
            lr = lr_at(state.step, total, warmup, cfg.lr);
            model = optim.step(lr, model, grads);
            state.step += 1;
            if (b + 1) % cfg.log_every == 0 || b + 1 == nb {
                let running = sum.clone().into_scalar::<f32>() as f64 / tokens.max(1) as f64;
                bar.update(b + 1, running, lr, seen as f64 / started.elapsed().as_secs_f64());
            }
        }
        let train_time = started.elapsed().as_secs_f64();
        let train_loss = sum.into_scalar::<f32>() as f64 / tokens.max(1) as f64;
        if !train_loss.is_finite() {
            return Err(TrainError::NonFinite { loss: train_loss, epoch, step: state.step });
        }
        let eval_model = model.valid();
        let valid_loss = validation_loss(&eval_model, &batcher, valid, cfg.batch_size, &base);
        let valid_metrics = (cfg.eval_every > 0 && epoch % cfg.eval_every == 0)
            .then(|| super::progress::valid_metrics(&eval_model, inp, pad_to));
        let line = EpochLog {
            epoch,
            step: state.step,
            train_loss,
            valid_loss,
            lr,
            train_examples_per_s: seen as f64 / train_time,
            seconds: started.elapsed().as_secs_f64(),
            valid_metrics,
        };
        bar.finish(&line);
        state.epoch = epoch;
        let improved = state.best_valid_loss.is_none_or(|b| valid_loss < b);
        if improved {
            state.best_valid_loss = Some(valid_loss);
            state.best_epoch = epoch;
            state.epochs_without_improvement = 0;
        } else {
            state.epochs_without_improvement += 1;
        }
        if cfg.patience > 0 && state.epochs_without_improvement >= cfg.patience {
            state.stopped_early = true;
        }
        state.log.push(line.clone());
        if improved {
            checkpoint::save(&best_dir, &snapshot(inp, &state, &eval_model, None))?;
        }
        checkpoint::save(&last_dir, &snapshot(inp, &state, &eval_model, Some(&optim)))?;
        write_log(&inp.dir, &state.log)?;
        let title = format!("{} on {}", inp.spec.model.kind, inp.spec.dataset);
        let png = inp.dir.join("training.png");
        super::plot::plot(&state.log, &title, &png).map_err(|e| write_err(&png, e))?;
        if !on_epoch(&line) {
            break;
        }
    }
    Ok(TrainOutcome { state, best: best_dir, resumed_from })
}

fn snapshot<'a>(
    inp: &'a TrainInputs,
    state: &'a TrainState,
    model: &'a Generator,
    optimizer: Option<&'a ModuleOptimizer>,
) -> Snapshot<'a> {
    Snapshot { spec: &inp.spec, state, model, optimizer, items: inp.item_ids, index: inp.index }
}

/// Rewrites `metrics.jsonl` (one JSON object per epoch) atomically.
fn write_log(dir: &Path, log: &[EpochLog]) -> Result<(), TrainError> {
    let path = dir.join("metrics.jsonl");
    crate::artifact::write_jsonl(&path, log).map_err(|e| write_err(&path, e.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_per_epoch_respect_the_cap() {
        let cfg = TrainConfig { batch_size: 10, ..Default::default() };
        assert_eq!(batches_per_epoch(95, &cfg), 10);
        let capped = TrainConfig { max_batches_per_epoch: 3, ..cfg };
        assert_eq!(batches_per_epoch(95, &capped), 3);
    }
}
