//! The training loop shared by every model kind (SPEC section 3 for the generators): shuffled
//! mini-batches of the task's examples, AdamW with linear warm-up and cosine decay, global
//! gradient-norm clipping, validation every epoch, early stopping with patience, atomic
//! checkpoints (last and best), and exact resumption. What differs between kinds (batches,
//! loss, validation, checkpoint contents) comes from their [`TrainTask`].
//!
//! Reference: the official TIGER / DiscRec training (Hugging Face `Seq2SeqTrainer` with
//! `lr_scheduler_type = cosine`, `warmup_ratio`, `max_grad_norm = 1.0`).
//!
//! Resuming gives the same run as never stopping: checkpoints are taken at epoch ends, an
//! epoch's batch order depends only on (seed, epoch), the random generators (the device's for
//! Burn's dropout on wgpu, and this thread's for the CPU backend's dropout masks and SASRec's
//! sampled negatives) are re-seeded from (seed, epoch) at the start of every epoch, and the
//! optimizer's moments and the schedule's step are restored.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

use super::batches::epoch_order;
use super::checkpoint::{self, CheckpointError, EpochLog, TrainState};
use super::clip::clip_global_norm;
use super::config::{EarlyStopping, TrainConfig};
use super::progress::EpochProgress;
use super::resume::{self, RunSettings};
use super::schedule::{lr_at, warmup_steps};
use super::task::TrainTask;
use crate::model::dropout;
use crate::seed;

pub use super::generator_task::{train, validation_loss, TrainInputs};

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

/// How the loop runs, whatever the model.
#[derive(Debug, Clone)]
pub struct LoopSettings<'a> {
    /// `[train]`.
    pub cfg: &'a TrainConfig,
    /// Seed of the run.
    pub seed: u64,
    /// Where to train (without autodiff; the loop adds it).
    pub device: Device,
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

/// The early-stopping criterion of an epoch, lower is better: the validation loss, or minus
/// the chosen validation metric.
fn criterion(rule: &EarlyStopping, line: &EpochLog) -> f64 {
    match rule {
        EarlyStopping::Loss => line.valid_loss,
        EarlyStopping::Metric(name) => {
            -line.valid_metrics.as_ref().and_then(|m| m.get(name)).copied().unwrap_or(f64::NEG_INFINITY)
        }
    }
}

/// The newest checkpoint of `last_dir` that loads and verifies, with its optimizer. A newer one
/// that fails (a corrupt or truncated file) is skipped with a warning naming the file, never
/// silently; when none loads, the first error. `None` without any checkpoint.
fn resume_point<T: TrainTask>(
    task: &T,
    last_dir: &Path,
    base: &Device,
    cfg: &TrainConfig,
) -> Result<Option<(T::Model, ModuleOptimizer, TrainState)>, TrainError> {
    let mut first_error = None;
    for dir in checkpoint::candidates(last_dir) {
        let loaded = task.load(&dir, base).and_then(|(m, s)| Ok((m, checkpoint::load_optimizer(&dir, optimizer(cfg))?, s)));
        match loaded {
            Ok(point) => {
                if let Some(e) = &first_error {
                    eprintln!("warning: {e}; resuming from the previous checkpoint {} (epoch {})", dir.display(), point.2.epoch);
                }
                return Ok(Some(point));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(None),
    }
}

/// Trains (or resumes) `task`'s model; `on_epoch` sees every epoch's log line and may stop the
/// run by returning `false` (the checkpoint of that epoch is written first).
pub fn run<T: TrainTask>(task: &T, s: &LoopSettings, mut on_epoch: impl FnMut(&EpochLog) -> Continue) -> Result<TrainOutcome, TrainError> {
    let cfg = s.cfg;
    let examples = task.examples();
    if examples.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let rule = cfg.early_stopping().map_err(|(_, m)| TrainError::Model(m))?;
    let (last_dir, best_dir) = checkpoint_dirs(&s.dir);
    let base = s.device.clone();
    let ad = base.clone().autodiff();
    let nb = batches_per_epoch(examples.len(), cfg);
    let total = nb * cfg.epochs;
    let warmup = warmup_steps(total, cfg.warmup_fraction);
    let (model, mut optim, mut state, resumed_from) = match resume_point(task, &last_dir, &base, cfg)? {
        Some((model, optim, state)) => {
            let from = state.epoch;
            (model, optim, state, Some(from))
        }
        None => {
            // Initialised on the CPU backend from the run's seed, then moved: a run's initial
            // weights depend only on its seed, not on the device (each backend has its own
            // random generator).
            let model = seed::try_init_seeded(s.seed, |host| task.init(host)).map_err(TrainError::Model)?.to_device(&base);
            (model, optimizer(cfg), TrainState { total_steps: total, ..Default::default() }, None)
        }
    };
    let settings = RunSettings { train: cfg.clone(), seed: s.seed };
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
    let done = |st: &TrainState| st.epoch >= cfg.epochs || st.stopped_early;
    while !done(&state) {
        let epoch = state.epoch + 1;
        let started = Instant::now();
        let epoch_seed = s.seed ^ (epoch as u64).wrapping_mul(0xa076_1d64_78bd_642f);
        seed::seed_device(&base, epoch_seed); // Burn's dropout masks on wgpu
        dropout::reseed(epoch_seed); // this thread's: CPU dropout masks, sampled negatives
        let order = epoch_order(examples, s.seed, epoch);
        let mut bar = EpochProgress::new(epoch, cfg.epochs, nb);
        let mut sum = Tensor::<1>::zeros([1], &base);
        let (mut terms, mut seen) = (0usize, 0usize);
        let mut lr = cfg.lr;
        for (b, chunk) in order.chunks(cfg.batch_size).take(nb).enumerate() {
            let (loss, n) = task.loss(&model, chunk, &ad);
            sum = sum + loss.clone().detach().without_autodiff().mul_scalar(n as f64);
            terms += n;
            seen += chunk.len();
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            if cfg.grad_clip > 0.0 {
                clip_global_norm(&model, &mut grads, cfg.grad_clip);
            }
            lr = lr_at(state.step, total, warmup, cfg.lr);
            model = optim.step(lr, model, grads);
            state.step += 1;
            if (b + 1) % cfg.log_every == 0 || b + 1 == nb {
                let running = sum.clone().into_scalar::<f32>() as f64 / terms.max(1) as f64;
                bar.update(b + 1, running, lr, seen as f64 / started.elapsed().as_secs_f64());
            }
        }
        let train_time = started.elapsed().as_secs_f64();
        let train_loss = sum.into_scalar::<f32>() as f64 / terms.max(1) as f64;
        if !train_loss.is_finite() {
            return Err(TrainError::NonFinite { loss: train_loss, epoch, step: state.step });
        }
        let eval_model = model.valid();
        let valid_loss = task.validation_loss(&eval_model, &base);
        let metrics_due = cfg.eval_every > 0 && epoch % cfg.eval_every == 0;
        let valid_metrics = (metrics_due || rule != EarlyStopping::Loss).then(|| task.validation_metrics(&eval_model, &base));
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
        let score = criterion(&rule, &line);
        let improved = state.best_criterion.is_none_or(|b| score < b);
        if improved {
            state.best_criterion = Some(score);
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
            task.save(&best_dir, &state, &eval_model, None)?;
        }
        task.save(&last_dir, &state, &eval_model, Some(&optim))?;
        write_log(&s.dir, &state.log)?;
        let png = s.dir.join("training.png");
        let curves: Vec<crate::plot::EpochPoint> = state
            .log
            .iter()
            .map(|l| crate::plot::EpochPoint { epoch: l.epoch, train_loss: l.train_loss, valid_loss: l.valid_loss, lr: l.lr })
            .collect();
        crate::plot::plot(&curves, &task.title(), &png).map_err(|e| write_err(&png, e))?;
        if !on_epoch(&line) {
            break;
        }
    }
    Ok(TrainOutcome { state, best: best_dir, resumed_from })
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

    #[test]
    fn the_criterion_is_the_loss_or_minus_the_metric() {
        let mut line = EpochLog {
            epoch: 1,
            step: 1,
            train_loss: 2.0,
            valid_loss: 1.5,
            lr: 1e-3,
            train_examples_per_s: 1.0,
            seconds: 1.0,
            valid_metrics: Some([("ndcg@10".to_string(), 0.25)].into_iter().collect()),
        };
        assert_eq!(criterion(&EarlyStopping::Loss, &line), 1.5);
        assert_eq!(criterion(&EarlyStopping::Metric("ndcg@10".into()), &line), -0.25);
        line.valid_metrics = None;
        assert_eq!(criterion(&EarlyStopping::Metric("ndcg@10".into()), &line), f64::INFINITY);
    }
}
