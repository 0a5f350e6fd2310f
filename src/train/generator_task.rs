//! The generators' side of training (TIGER, DiscRec): the leave-one-out training windows as
//! the epoch's units, cross-entropy on `[c1..cL, EOS]` per label token, the validation
//! cross-entropy, validation Recall/NDCG by beam search, and checkpoints with the items'
//! semantic IDs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor};

use super::batches::Batcher;
use super::checkpoint::{self, CheckpointError, GeneratorSpec, Snapshot, TrainState};
use super::config::TrainConfig;
use super::task::TrainTask;
use super::trainer::{run, Continue, LoopSettings, TrainError, TrainOutcome};
use crate::data::{Dataset, Example, IdMap, Part, Popularity, SemanticIndex, Split};
use crate::eval::EvalConfig;
use crate::model::{Generator, ItemTokens};

/// Everything a generator's training run reads.
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

impl TrainInputs<'_> {
    /// Pad encoder rows to this many tokens (0 = to the longest row of each batch).
    pub fn pad_to(&self) -> usize {
        if self.fixed_shapes { self.items.full_encoder_length(self.split.max_len) } else { 0 }
    }

    fn batcher(&self) -> Batcher<'_> {
        Batcher { ds: self.ds, split: self.split, items: self.items, pad_to: self.pad_to() }
    }
}

/// Trains (or resumes) the generator; `on_epoch` sees every epoch's log line and may stop the
/// run by returning `false` (the checkpoint of that epoch is written first).
pub fn train(inp: &TrainInputs, on_epoch: impl FnMut(&super::EpochLog) -> Continue) -> Result<TrainOutcome, TrainError> {
    let settings = LoopSettings { cfg: inp.cfg, seed: inp.seed, device: inp.device.clone(), dir: inp.dir.clone() };
    run(inp, &settings, on_epoch)
}

/// [`train`] spread over several replicas and/or ranks (see [`super::distributed`]).
pub fn train_parallel(
    inp: &TrainInputs,
    par: super::distributed::ParallelRef,
    on_epoch: impl FnMut(&super::EpochLog) -> Continue,
) -> Result<TrainOutcome, TrainError> {
    let settings = LoopSettings { cfg: inp.cfg, seed: inp.seed, device: inp.device.clone(), dir: inp.dir.clone() };
    super::trainer::run_parallel(inp, &settings, par, on_epoch)
}

/// Mean validation cross-entropy per label token, with the model in evaluation mode.
pub fn validation_loss(model: &Generator, batcher: &Batcher, examples: &[Example], batch_size: usize, device: &Device) -> f64 {
    let (sum, tokens) = validation_loss_sum(model, batcher, examples, batch_size, device);
    sum / tokens.max(1) as f64
}

/// The sum of the validation cross-entropy over the label tokens of `examples`, and their
/// number.
pub fn validation_loss_sum(model: &Generator, batcher: &Batcher, examples: &[Example], batch_size: usize, device: &Device) -> (f64, usize) {
    let mut sum = Tensor::<1>::zeros([1], device);
    let mut tokens = 0usize;
    for chunk in examples.chunks(batch_size.max(1)) {
        let b = batcher.batch(chunk);
        let loss = model.loss(&model.encoder_batch(&b.enc, device), &b.dec.to_device(device));
        sum = sum + loss.mul_scalar(b.label_tokens as f64);
        tokens += b.label_tokens;
    }
    (sum.into_scalar::<f32>() as f64, tokens)
}

impl TrainTask for TrainInputs<'_> {
    type Model = Generator;
    type Example = Example;

    fn examples(&self) -> &[Example] {
        &self.split.train
    }

    fn init(&self, device: &Device) -> Result<Generator, String> {
        self.spec.init(device)
    }

    fn loss(&self, model: &Generator, batch: &[Example], device: &Device) -> (Tensor<1>, usize) {
        let hb = self.batcher().batch(batch);
        (model.loss(&model.encoder_batch(&hb.enc, device), &hb.dec.to_device(device)), hb.label_tokens)
    }

    fn validation_loss(&self, model: &Generator, device: &Device) -> f64 {
        validation_loss(model, &self.batcher(), self.split.part(Part::Valid), self.cfg.batch_size, device)
    }

    fn validation_loss_part(&self, model: &Generator, device: &Device, part: usize, parts: usize) -> (f64, f64) {
        let valid = self.split.part(Part::Valid);
        let mine = &valid[super::distributed::shard(valid.len(), parts, part)];
        let (sum, tokens) = validation_loss_sum(model, &self.batcher(), mine, self.cfg.batch_size, device);
        (sum, tokens as f64)
    }

    fn validation_metrics(&self, model: &Generator, _device: &Device) -> BTreeMap<String, f64> {
        super::progress::valid_metrics(model, self, self.pad_to())
    }

    fn validation_metrics_part(&self, model: &Generator, _device: &Device, part: usize, parts: usize) -> (BTreeMap<String, f64>, f64) {
        let valid = self.split.part(Part::Valid);
        let range = super::distributed::shard(valid.len(), parts, part);
        let weight = range.len() as f64;
        let split = Split { train: Vec::new(), valid: valid[range].to_vec(), test: Vec::new(), max_len: self.split.max_len };
        (super::progress::valid_metrics_on(model, self, &split, self.pad_to()), weight)
    }

    fn save(&self, dir: &Path, state: &TrainState, model: &Generator, optimizer: Option<&ModuleOptimizer>) -> Result<(), CheckpointError> {
        let snap = Snapshot { spec: &self.spec, state, model, optimizer, items: self.item_ids, index: Some(self.index) };
        checkpoint::save(dir, &snap)
    }

    fn load(&self, dir: &Path, device: &Device) -> Result<(Generator, TrainState), CheckpointError> {
        let ck = checkpoint::load(dir, device)?;
        Ok((ck.model, ck.state))
    }

    fn title(&self) -> String {
        format!("{} on {}", self.spec.model.kind, self.spec.dataset)
    }
}
