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
//!
//! [`run_parallel`] is the same loop over several replicas and processes
//! ([`super::distributed`]); with one replica in one process it is [`run`], step for step.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor};

use super::batches::epoch_order;
use super::checkpoint::{self, CheckpointError, EpochLog, TrainState};
use super::clip::{clip_global_norm, global_norm};
use super::config::{EarlyStopping, OnNonFinite, TrainConfig};
use super::distributed::{self, Collective, CollectiveError, ParallelRef};
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
    /// The loss or the gradients became NaN or infinite.
    #[error(
        "{what} at epoch {epoch}, step {step}; {last_good}. {hint}"
    )]
    NonFinite {
        /// What became non-finite, with its value.
        what: String,
        /// 1-based epoch.
        epoch: usize,
        /// Optimizer steps taken so far.
        step: usize,
        /// The last good checkpoint (or that there is none yet), in words.
        last_good: String,
        /// What to change.
        hint: &'static str,
    },
    /// The device failed to run a step (an allocation it refused, a lost device).
    #[error("the device failed at epoch {epoch}, step {step}: {message}; the checkpoints are intact (lower train.batch_size if it ran out of memory)")]
    Device {
        /// 1-based epoch.
        epoch: usize,
        /// Optimizer steps taken so far.
        step: usize,
        /// The device's error.
        message: String,
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
    /// A data-parallel run failed: a collective operation, or ranks that disagree.
    #[error("data-parallel training: {0}")]
    Parallel(String),
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

/// The last complete checkpoint of the run, in words, for a run that must stop.
fn last_good(last_dir: &Path, state: &TrainState) -> String {
    if state.epoch == 0 || checkpoint::candidates(last_dir).is_empty() {
        "no checkpoint was written yet".into()
    } else {
        format!("the last good checkpoint is {} (epoch {}), which a new `train` resumes from", last_dir.display(), state.epoch)
    }
}

/// The error that ends a diverging run: `what` became non-finite at `epoch`.
fn diverged(what: String, epoch: usize, state: &TrainState, last_dir: &Path, cfg: &TrainConfig) -> TrainError {
    TrainError::NonFinite { what, epoch, step: state.step, last_good: last_good(last_dir, state), hint: hint(cfg) }
}

/// What to change when a run diverges.
fn hint(cfg: &TrainConfig) -> &'static str {
    match cfg.on_nonfinite {
        OnNonFinite::Stop => "Lower train.lr, set train.grad_clip, or set train.on_nonfinite = \"skip\" to skip such steps",
        OnNonFinite::Skip => "Lower train.lr or set train.grad_clip",
    }
}

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
pub fn run<T: TrainTask>(task: &T, s: &LoopSettings, on_epoch: impl FnMut(&EpochLog) -> Continue) -> Result<TrainOutcome, TrainError> {
    run_parallel(task, s, ParallelRef::default(), on_epoch)
}

fn collective_err(e: CollectiveError) -> TrainError {
    TrainError::Parallel(e.0)
}

/// The model, optimizer and state of rank 0, sent to every other rank at the start of a
/// multi-rank run, so that all start from the same weights and moments (a resumed run reads
/// its checkpoint on rank 0 only: the other machines need no copy of the run folder).
fn share_start<T: TrainTask>(
    task: &T,
    group: &dyn Collective,
    base: &Device,
    cfg: &TrainConfig,
    start: Option<(T::Model, ModuleOptimizer, TrainState, Option<usize>)>,
) -> Result<(T::Model, ModuleOptimizer, TrainState, Option<usize>), TrainError> {
    let mut bytes = match &start {
        Some((model, optim, state, resumed)) => {
            let record = model.clone().into_record().into_bytes().map_err(|e| TrainError::Parallel(e.to_string()))?.to_vec();
            let optim = match resumed {
                Some(_) => optim.to_record().into_bytes().map_err(|e| TrainError::Parallel(e.to_string()))?.to_vec(),
                None => Vec::new(),
            };
            let meta = serde_json::to_vec(&(state, resumed)).map_err(|e| TrainError::Parallel(e.to_string()))?;
            distributed::pack(&[&record, &optim, &meta])
        }
        None => Vec::new(),
    };
    // Rank 0 may take a while to read and verify its checkpoint.
    group.broadcast_bytes(&mut bytes, Some(std::time::Duration::from_secs(3600))).map_err(collective_err)?;
    if let Some(start) = start {
        return Ok(start);
    }
    let bad = |m: String| TrainError::Parallel(format!("{}: the start state from rank 0 cannot be read: {m}", group.describe()));
    let parts = distributed::unpack(&bytes).map_err(collective_err)?;
    let [record, optim_bytes, meta] = <[Vec<u8>; 3]>::try_from(parts).map_err(|_| bad("not three parts".into()))?;
    let (state, resumed): (TrainState, Option<usize>) = serde_json::from_slice(&meta).map_err(|e| bad(e.to_string()))?;
    let model = seed::try_init_unseeded(|| task.init(base)).map_err(TrainError::Model)?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(record)).map_err(|e| bad(e.to_string()))?;
    let model = model.try_load_record(record).map_err(|e| bad(format!("{e} (do the ranks train the same model?)")))?;
    let mut optim = optimizer(cfg);
    if !optim_bytes.is_empty() {
        let record = burn::optim::OptimizerRecord::from_bytes(Bytes::from_bytes_vec(optim_bytes)).map_err(|e| bad(e.to_string()))?;
        optim = optim.load_record(record);
    }
    Ok((model, optim, state, resumed))
}

/// [`run`] spread over several replicas (`par.devices`) and/or ranks (`par.group`); see
/// [`super::distributed`] for the sharding, the token-weighted reduction and the seeds. With a
/// group, rank 0 alone reads and writes the run folder (checkpoints, `metrics.jsonl`,
/// `training.png`) and shows progress; `on_epoch` must answer the same on every rank.
pub fn run_parallel<T: TrainTask>(
    task: &T,
    s: &LoopSettings,
    par: ParallelRef,
    mut on_epoch: impl FnMut(&EpochLog) -> Continue,
) -> Result<TrainOutcome, TrainError> {
    let cfg = s.cfg;
    let examples = task.examples();
    if examples.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    let rule = cfg.early_stopping().map_err(|(_, m)| TrainError::Model(m))?;
    let (last_dir, best_dir) = checkpoint_dirs(&s.dir);
    let base = s.device.clone();
    let ad = base.clone().autodiff();
    let (rank, world) = par.rank_world();
    let leader = rank == 0;
    let single = par.is_single();
    let replica_devices: Vec<Device> = if par.devices.is_empty() { vec![base.clone()] } else { par.devices.to_vec() };
    if replica_devices[0] != base {
        return Err(TrainError::Model("the first replica device must be the loop's device".into()));
    }
    let replicas = replica_devices.len();
    if cfg.batch_size < replicas * world {
        return Err(TrainError::Model(format!(
            "train.batch_size ({}) is the global batch and must be at least the number of replicas ({} = {world} ranks x {replicas})",
            cfg.batch_size,
            replicas * world
        )));
    }
    let replica_ad: Vec<Device> = replica_devices.iter().map(|d| d.clone().autodiff()).collect();
    let nb = batches_per_epoch(examples.len(), cfg);
    let total = nb * cfg.epochs;
    let warmup = warmup_steps(total, cfg.warmup_fraction);
    let settings = RunSettings { train: cfg.clone(), seed: s.seed };
    let start = if leader {
        let (model, optim, mut state, resumed_from) = match resume_point(task, &last_dir, &base, cfg)? {
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
        Some((model, optim, state, resumed_from))
    } else {
        None
    };
    let (model, mut optim, mut state, resumed_from) = match par.group {
        Some(group) => share_start(task, group, &base, cfg, start)?,
        None => start.expect("the leader's start"),
    };
    let mut model = model.to_device(&ad).train();
    let mut others: Vec<T::Model> = replica_ad[1..].iter().map(|d| model.clone().fork(d)).collect();
    let mut timing = ExchangeTiming::default();
    let done = |st: &TrainState| st.epoch >= cfg.epochs || st.stopped_early;
    let skip_bad = cfg.on_nonfinite == OnNonFinite::Skip;
    while !done(&state) {
        let epoch = state.epoch + 1;
        let started = Instant::now();
        let epoch_seed = s.seed ^ (epoch as u64).wrapping_mul(0xa076_1d64_78bd_642f);
        let first_stream = (rank * replicas) as u64;
        for (i, d) in replica_devices.iter().enumerate() {
            seed::seed_device(d, distributed::stream_seed(epoch_seed, first_stream + i as u64)); // Burn's dropout masks on wgpu
        }
        // This thread's generator: CPU dropout masks and sampled negatives of every replica of
        // this process (drawn in replica order).
        dropout::reseed(distributed::stream_seed(epoch_seed, first_stream));
        let order = epoch_order(examples, s.seed, epoch);
        let mut bar = if leader { EpochProgress::new(epoch, cfg.epochs, nb) } else { EpochProgress::hidden() };
        let mut sum = Tensor::<1>::zeros([1], &base);
        let mut host_sum = 0f64;
        let (mut terms, mut seen) = (0usize, 0usize);
        let mut lr = cfg.lr;
        let mut skipped = 0usize;
        timing.start_epoch();
        for (b, chunk) in order.chunks(cfg.batch_size).take(nb).enumerate() {
            seen += chunk.len();
            let mut grads = if single {
                let (loss, n) = task.loss(&model, chunk, &ad);
                if skip_bad && !loss.clone().detach().without_autodiff().into_scalar::<f32>().is_finite() {
                    skipped += 1;
                    continue;
                }
                sum = sum + loss.clone().detach().without_autodiff().mul_scalar(n as f64);
                terms += n;
                GradientsParams::from_grads(loss.backward(), &model)
            } else {
                let local = &chunk[distributed::shard(chunk.len(), world, rank)];
                let mut acc = GradientsAccumulator::new();
                let mut local_terms = 0usize;
                let mut local_sum: Option<Tensor<1>> = None;
                for (i, dev) in replica_ad.iter().enumerate() {
                    let part = &local[distributed::shard(local.len(), replicas, i)];
                    if part.is_empty() {
                        continue;
                    }
                    let m = if i == 0 { &model } else { &others[i - 1] };
                    let (loss, n) = task.loss(m, part, dev);
                    // The sum of the part's terms: token-weighted once divided by the total.
                    let weighted = loss.mul_scalar(n as f64);
                    let value = weighted.clone().detach().without_autodiff().to_device(&base);
                    local_sum = Some(match local_sum {
                        Some(s) => s + value,
                        None => value,
                    });
                    local_terms += n;
                    let g = GradientsParams::from_grads(weighted.backward(), m);
                    let g = if i == 0 { g } else { g.to_device(&base, m) };
                    acc.accumulate(&model, g);
                }
                let grads = acc.grads();
                match par.group {
                    None => {
                        if let Some(v) = local_sum {
                            if skip_bad && !v.clone().into_scalar::<f32>().is_finite() {
                                skipped += 1;
                                continue;
                            }
                            sum = sum + v;
                        }
                        terms += local_terms;
                        let mut grads = grads;
                        distributed::scale_grads(&model, &mut grads, 1.0 / local_terms.max(1) as f64);
                        grads
                    }
                    Some(group) => {
                        let t0 = Instant::now();
                        let loss_sum = local_sum.map_or(0.0, |v| v.into_scalar::<f32>());
                        let mut buf = distributed::flatten_grads(&model, &grads, &base, &[loss_sum, local_terms as f32]);
                        let t1 = Instant::now();
                        // The barrier takes the wait for the slowest rank out of the exchange's time.
                        group.barrier().map_err(collective_err)?;
                        let t_met = Instant::now();
                        group.all_reduce_sum_f32(&mut buf).map_err(collective_err)?;
                        let t2 = Instant::now();
                        let n_all = buf[buf.len() - 1] as f64;
                        // Every rank sees the same reduced buffer, so every rank skips alike.
                        if skip_bad && !buf.iter().all(|v| v.is_finite()) {
                            skipped += 1;
                            continue;
                        }
                        let (grads, extra) = distributed::spread_grads(&model, &buf, &base, 1.0 / n_all.max(1.0));
                        host_sum += extra[0] as f64;
                        terms += n_all as usize;
                        timing.add(t1 - t0 + t2.elapsed(), t_met - t1, t2 - t_met, buf.len() * 4);
                        grads
                    }
                }
            };
            if skip_bad && par.group.is_none() && !global_norm(&model, &grads).is_none_or(|n| n.into_scalar::<f32>().is_finite()) {
                skipped += 1;
                continue;
            }
            if cfg.grad_clip > 0.0 {
                clip_global_norm(&model, &mut grads, cfg.grad_clip);
            }
            lr = lr_at(state.step, total, warmup, cfg.lr);
            model = optim.step(lr, model, grads);
            if !single {
                for (o, d) in others.iter_mut().zip(&replica_ad[1..]) {
                    *o = model.clone().fork(d);
                }
            }
            state.step += 1;
            if (b + 1) % cfg.log_every == 0 || b + 1 == nb {
                // The first read from the device in a step: where a failed allocation or a lost
                // device shows.
                let device_sum = |t: Tensor<1>| t.try_into_scalar::<f32>().map_err(|e| TrainError::Device { epoch, step: state.step, message: e.to_string() });
                let running = if par.group.is_some() { host_sum } else { device_sum(sum.clone())? as f64 } / terms.max(1) as f64;
                if !running.is_finite() {
                    return Err(diverged(format!("the training loss became {running}"), epoch, &state, &last_dir, cfg));
                }
                bar.update(b + 1, running, lr, seen as f64 / started.elapsed().as_secs_f64());
            }
        }
        let train_time = started.elapsed().as_secs_f64();
        let train_loss = if par.group.is_some() { host_sum } else { sum.into_scalar::<f32>() as f64 } / terms.max(1) as f64;
        if skipped > 0 && leader {
            eprintln!(
                "warning: epoch {epoch}: skipped {skipped} of {nb} steps whose loss or gradient was NaN or infinite (train.on_nonfinite = \"skip\")"
            );
        }
        if skipped >= nb {
            return Err(diverged(format!("all {nb} steps of the epoch were skipped (NaN or infinite loss or gradient)"), epoch, &state, &last_dir, cfg));
        }
        if !train_loss.is_finite() {
            return Err(diverged(format!("the training loss became {train_loss}"), epoch, &state, &last_dir, cfg));
        }
        let eval_model = model.valid();
        let metrics_due = cfg.eval_every > 0 && epoch % cfg.eval_every == 0;
        let want_metrics = metrics_due || rule != EarlyStopping::Loss;
        let (valid_loss, valid_metrics) = match par.group {
            None => (task.validation_loss(&eval_model, &base), want_metrics.then(|| task.validation_metrics(&eval_model, &base))),
            Some(group) => {
                let (s, w) = task.validation_loss_part(&eval_model, &base, rank, world);
                let mut v = [s, w];
                group.all_reduce_sum_f64(&mut v).map_err(collective_err)?;
                let metrics = if want_metrics {
                    let (m, w) = task.validation_metrics_part(&eval_model, &base, rank, world);
                    Some(distributed::reduce_metrics(group, &m, w).map_err(collective_err)?)
                } else {
                    None
                };
                check_same_weights(group, &eval_model, epoch)?;
                (v[0] / v[1], metrics)
            }
        };
        if !valid_loss.is_finite() {
            return Err(diverged(format!("the validation loss became {valid_loss}"), epoch, &state, &last_dir, cfg));
        }
        let line = EpochLog {
            epoch,
            step: state.step,
            train_loss,
            valid_loss,
            skipped_steps: skipped,
            lr,
            train_examples_per_s: seen as f64 / train_time,
            seconds: started.elapsed().as_secs_f64(),
            valid_metrics,
        };
        bar.finish(&line);
        if leader && !single {
            eprintln!("{}", timing.summary(world, replicas, nb, train_time));
        }
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
        if leader {
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
        }
        if !on_epoch(&line) {
            break;
        }
    }
    Ok(TrainOutcome { state, best: best_dir, resumed_from })
}

/// Stops a multi-rank run whose replicas no longer hold the same weights (they take the same
/// steps from the same reduced gradients, so they should, bit for bit, on the same hardware).
fn check_same_weights<M: Module>(group: &dyn Collective, model: &M, epoch: usize) -> Result<(), TrainError> {
    let mine = distributed::weights_checksum(model);
    let mut theirs = mine.to_le_bytes().to_vec();
    group.broadcast_bytes(&mut theirs, None).map_err(collective_err)?;
    let leader = u32::from_le_bytes(theirs.as_slice().try_into().map_err(|_| TrainError::Parallel("a malformed checksum".into()))?);
    let mut differ = [f64::from(u8::from(mine != leader))];
    group.all_reduce_sum_f64(&mut differ).map_err(collective_err)?;
    if differ[0] > 0.0 {
        return Err(TrainError::Parallel(format!(
            "after epoch {epoch}, the weights of {} rank(s) differ from rank 0's (this is {}): the ranks' arithmetic \
             differs (mixed hardware or drivers?)",
            differ[0],
            group.describe()
        )));
    }
    Ok(())
}

/// Where the time of a data-parallel epoch went (rank 0's view).
#[derive(Default)]
struct ExchangeTiming {
    copy: std::time::Duration,
    wait: std::time::Duration,
    reduce: std::time::Duration,
    steps: usize,
    bytes: usize,
}

impl ExchangeTiming {
    fn start_epoch(&mut self) {
        *self = ExchangeTiming::default();
    }

    fn add(&mut self, copy: std::time::Duration, wait: std::time::Duration, reduce: std::time::Duration, bytes: usize) {
        self.copy += copy;
        self.wait += wait;
        self.reduce += reduce;
        self.steps += 1;
        self.bytes = bytes;
    }

    fn summary(&self, ranks: usize, replicas: usize, steps: usize, train_secs: f64) -> String {
        let per_step = train_secs / steps.max(1) as f64 * 1e3;
        let mut s = format!("data parallel: {ranks} rank(s) x {replicas} replica(s), {per_step:.1} ms per step");
        if self.steps > 0 {
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3 / self.steps as f64;
            let (copy, wait, reduce) = (ms(self.copy), ms(self.wait), ms(self.reduce));
            s.push_str(&format!(
                "; gradient exchange {:.1} ms per step ({:.1}%: device<->host copies {copy:.2} ms, all-reduce of {:.2} MB \
                 {reduce:.2} ms); waiting for the slowest rank {wait:.1} ms ({:.1}%)",
                copy + reduce,
                100.0 * (copy + reduce) / per_step.max(1e-9),
                self.bytes as f64 / 1e6,
                100.0 * wait / per_step.max(1e-9)
            ));
        }
        s
    }
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
    fn a_stopped_run_names_its_last_good_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let last = dir.path().join("checkpoints/last");
        let state = TrainState { epoch: 4, ..Default::default() };
        assert_eq!(last_good(&last, &state), "no checkpoint was written yet");
        std::fs::create_dir_all(&last).unwrap();
        std::fs::write(last.join("generator.json"), "{}").unwrap();
        let text = last_good(&last, &state);
        assert!(text.contains("checkpoints/last (epoch 4)") && text.contains("which a new `train` resumes from"), "{text}");
        let e = TrainError::NonFinite {
            what: "the training loss became NaN".into(),
            epoch: 5,
            step: 40,
            last_good: text,
            hint: hint(&TrainConfig::default()),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("the training loss became NaN at epoch 5, step 40; the last good checkpoint is"), "{msg}");
        assert!(msg.ends_with("train.on_nonfinite = \"skip\" to skip such steps"), "{msg}");
    }

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
            skipped_steps: 0,
            valid_metrics: Some([("ndcg@10".to_string(), 0.25)].into_iter().collect()),
        };
        assert_eq!(criterion(&EarlyStopping::Loss, &line), 1.5);
        assert_eq!(criterion(&EarlyStopping::Metric("ndcg@10".into()), &line), -0.25);
        line.valid_metrics = None;
        assert_eq!(criterion(&EarlyStopping::Metric("ndcg@10".into()), &line), f64::INFINITY);
    }
}
