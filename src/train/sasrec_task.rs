//! SASRec's side of training: one pass over the users per epoch, every position of a user's
//! training sequence (all but the last two items) a target of the items before it, the
//! configured loss (full-catalogue cross-entropy, or BCE against sampled negatives), the
//! validation targets' full-catalogue cross-entropy as the validation loss, validation
//! Recall/NDCG by full ranking, and checkpoints without semantic IDs.
//!
//! Validation and test targets are never inputs or targets of training: each user's last two
//! items are cut before batching.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::checkpoint::{self, CheckpointError, GeneratorSpec, Parts, Snapshot, TrainState};
use super::config::TrainConfig;
use super::task::TrainTask;
use crate::data::{Dataset, IdMap, Part, Popularity, Split};
use crate::eval::scoring::{evaluate_scores, SasRecScorer};
use crate::model::dropout::draw_seed;
use crate::model::sasrec::{SasRec, SasRecConfig, SasRecLoss, SequenceInput, TrainingInput};

/// Everything a SASRec training run reads.
pub struct SasRecInputs<'a> {
    /// Sequences.
    pub ds: &'a Dataset,
    /// Leave-one-out split, its history window set to SASRec's `max_len`.
    pub split: &'a Split,
    /// Dense -> raw item ids.
    pub item_ids: &'a IdMap,
    /// Model kind (`sasrec`) and sizes.
    pub spec: GeneratorSpec,
    /// `[train]`.
    pub cfg: &'a TrainConfig,
    /// Whether to pad every batch to `max_len` columns (wgpu).
    pub fixed_shapes: bool,
    users: Vec<u32>,
    pop: Popularity,
}

impl<'a> SasRecInputs<'a> {
    /// The inputs of a run; the epoch's units are the users with at least two training items.
    pub fn new(ds: &'a Dataset, split: &'a Split, item_ids: &'a IdMap, spec: GeneratorSpec, cfg: &'a TrainConfig, fixed_shapes: bool) -> Self {
        let users = Split::train_items(ds).enumerate().filter(|(_, s)| s.len() >= 2).map(|(u, _)| u as u32).collect();
        // Only the overall validation metrics are read; the head share does not matter.
        let pop = Popularity::from_training(ds, 0.2);
        SasRecInputs { ds, split, item_ids, spec, cfg, fixed_shapes, users, pop }
    }

    fn config(&self) -> &SasRecConfig {
        &self.spec.model.sasrec
    }

    fn pad_to(&self) -> usize {
        if self.fixed_shapes { self.config().max_len } else { 0 }
    }

    fn scorer<'m>(&self, model: &'m SasRec, device: &Device) -> SasRecScorer<'m> {
        SasRecScorer { model, device: device.clone(), pad_to: self.pad_to(), name: "sasrec".into(), exclude_seen: false }
    }
}

impl TrainTask for SasRecInputs<'_> {
    type Model = SasRec;
    type Example = u32;

    fn examples(&self) -> &[u32] {
        &self.users
    }

    fn init(&self, device: &Device) -> Result<SasRec, String> {
        self.config().validate().map_err(|e| e.to_string())?;
        Ok(self.config().init(self.item_ids.len(), device))
    }

    fn loss(&self, model: &SasRec, batch: &[u32], device: &Device) -> (Tensor<1>, usize) {
        let c = self.config();
        let seqs: Vec<&[u32]> = batch.iter().map(|&u| train_sequence(self.ds, u)).collect();
        let negatives = if c.loss == SasRecLoss::Bce { c.negatives } else { 0 };
        // Negatives come from this thread's generator, which the loop re-seeds every epoch, so
        // a resumed run draws the same ones.
        let mut rng = StdRng::seed_from_u64(if negatives > 0 { draw_seed() } else { 0 });
        let t = TrainingInput::new(&seqs, c.max_len, self.pad_to(), self.item_ids.len(), negatives, &mut rng);
        let x = t.input.to_device(device);
        let loss = match c.loss {
            SasRecLoss::Ce => model.ce_loss(&x, &t.targets),
            SasRecLoss::Bce => model.bce_loss(&x, &t.targets),
        };
        (loss, t.num_targets())
    }

    fn validation_loss(&self, model: &SasRec, device: &Device) -> f64 {
        let valid = self.split.part(Part::Valid);
        self.validation_loss_sum(model, device, valid) / valid.len().max(1) as f64
    }

    fn validation_loss_part(&self, model: &SasRec, device: &Device, part: usize, parts: usize) -> (f64, f64) {
        let valid = self.split.part(Part::Valid);
        let mine = &valid[super::distributed::shard(valid.len(), parts, part)];
        (self.validation_loss_sum(model, device, mine), mine.len() as f64)
    }

    fn validation_metrics(&self, model: &SasRec, device: &Device) -> BTreeMap<String, f64> {
        let scorer = self.scorer(model, device);
        let r = evaluate_scores(&scorer, self.ds, self.split, Part::Valid, &self.pop, &[5, 10], self.cfg.batch_size);
        r.metrics.all.values
    }

    fn validation_metrics_part(&self, model: &SasRec, device: &Device, part: usize, parts: usize) -> (BTreeMap<String, f64>, f64) {
        let valid = self.split.part(Part::Valid);
        let range = super::distributed::shard(valid.len(), parts, part);
        let weight = range.len() as f64;
        let split = Split { train: Vec::new(), valid: valid[range].to_vec(), test: Vec::new(), max_len: self.split.max_len };
        let scorer = self.scorer(model, device);
        let r = evaluate_scores(&scorer, self.ds, &split, Part::Valid, &self.pop, &[5, 10], self.cfg.batch_size);
        (r.metrics.all.values, weight)
    }

    fn save(&self, dir: &Path, state: &TrainState, model: &SasRec, optimizer: Option<&ModuleOptimizer>) -> Result<(), CheckpointError> {
        let snap = Snapshot { spec: &self.spec, state, model, optimizer, items: self.item_ids, index: None };
        checkpoint::save(dir, &snap)
    }

    fn load(&self, dir: &Path, device: &Device) -> Result<(SasRec, TrainState), CheckpointError> {
        let ck = load(dir, device)?;
        Ok((ck.model, ck.parts.state))
    }

    fn title(&self) -> String {
        format!("sasrec ({}) on {}", self.config().loss, self.spec.dataset)
    }
}

impl SasRecInputs<'_> {
    /// The sum of the validation targets' cross-entropy over `examples`.
    fn validation_loss_sum(&self, model: &SasRec, device: &Device, examples: &[crate::data::Example]) -> f64 {
        let mut sum = Tensor::<1>::zeros([1], device);
        for chunk in examples.chunks(self.cfg.batch_size.max(1)) {
            let histories: Vec<&[u32]> = chunk.iter().map(|&e| self.split.history(self.ds, e)).collect();
            let targets: Vec<i64> = chunk.iter().map(|&e| self.split.target(self.ds, e) as i64).collect();
            let x = SequenceInput::new(&histories, self.config().max_len, self.pad_to()).to_device(device);
            let t = Tensor::<2, Int>::from_ints(TensorData::new(targets, [chunk.len(), 1]), device);
            sum = sum - log_softmax(model.scores(&x), 1).gather(1, t).sum();
        }
        sum.into_scalar::<f32>() as f64
    }
}

/// The part of user `u`'s sequence that training sees: all but the last two items.
pub fn train_sequence(ds: &Dataset, u: u32) -> &[u32] {
    let s = &ds.sequences[u as usize];
    &s[..s.len().saturating_sub(2)]
}

/// A loaded SASRec checkpoint.
pub struct SasRecCheckpoint {
    /// Spec, state and item ids.
    pub parts: Parts,
    /// The model, on the requested device.
    pub model: SasRec,
}

/// Loads the SASRec checkpoint in `dir` onto `device`; a generator's checkpoint is a
/// [`CheckpointError::WrongKind`].
pub fn load(dir: &Path, device: &Device) -> Result<SasRecCheckpoint, CheckpointError> {
    let parts = checkpoint::read_parts(dir)?;
    if parts.spec.model.kind.is_generator() {
        return Err(CheckpointError::WrongKind { path: parts.dir, found: parts.spec.model.kind, needed: "a sasrec checkpoint".into() });
    }
    let bad = |m: String| CheckpointError::File { path: parts.dir.join("generator.json"), msg: m };
    parts.spec.model.sasrec.validate().map_err(|e| bad(e.to_string()))?;
    if parts.items.is_empty() {
        return Err(bad("the checkpoint's catalogue (items.json) is empty".into()));
    }
    let model = crate::seed::init_unseeded(|| parts.spec.model.sasrec.init(parts.items.len(), device));
    let model = checkpoint::load_weights(&parts.dir, model)?;
    Ok(SasRecCheckpoint { parts, model })
}

/// Where a run folder's exported item embeddings go: `item_embeddings.npy` and
/// `item_embeddings.safetensors`.
pub fn embedding_paths(run: &Path) -> (PathBuf, PathBuf) {
    (run.join("item_embeddings.npy"), run.join("item_embeddings.safetensors"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SemanticIndex;
    use crate::model::{GeneratorKind, ModelConfig};

    fn spec(kind: GeneratorKind) -> GeneratorSpec {
        let mut model = ModelConfig { kind, d_model: 16, d_kv: 8, d_ff: 16, num_layers: 1, num_decoder_layers: 1, num_heads: 2, ..Default::default() };
        model.sasrec = SasRecConfig { hidden: 8, blocks: 1, max_len: 4, ..Default::default() };
        let level_sizes = if kind.is_generator() { vec![4, 4] } else { Vec::new() };
        let max_id_len = kind.is_generator().then_some(2);
        GeneratorSpec { model, level_sizes, cf_level_sizes: Vec::new(), max_id_len, max_len: 4, dataset: "t".into() }
    }

    #[test]
    fn each_loader_refuses_the_other_kind_by_name() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let items = IdMap::from_raw((0..6).map(|i| i.to_string()).collect());
        let state = TrainState::default();
        let s = spec(GeneratorKind::Sasrec);
        let sas = crate::seed::init_seeded(60, |host| s.model.sasrec.init(6, host));
        let sas_dir = dir.path().join("sasrec");
        checkpoint::save(&sas_dir, &Snapshot { spec: &s, state: &state, model: &sas, optimizer: None, items: &items, index: None }).unwrap();
        let back = load(&sas_dir, &device).unwrap();
        assert_eq!(back.model.num_items(), 6);
        back.model.item_table().into_data().assert_eq(&sas.item_table().into_data(), true);
        let e = checkpoint::load(&sas_dir, &device).err().expect("a sasrec checkpoint is not a generator").to_string();
        assert!(e.contains("a sasrec checkpoint") && e.contains("generator (tiger or discrec) is needed"), "{e}");

        let g = spec(GeneratorKind::Tiger);
        let gen = g.init(&device).unwrap();
        let index = SemanticIndex::from_codes(&(0..6u32).map(|i| vec![i % 4, i / 4]).collect::<Vec<_>>());
        let gen_dir = dir.path().join("tiger");
        checkpoint::save(&gen_dir, &Snapshot { spec: &g, state: &state, model: &gen, optimizer: None, items: &items, index: Some(&index) }).unwrap();
        assert!(checkpoint::load(&gen_dir, &device).is_ok());
        let e = load(&gen_dir, &device).err().expect("a generator is not sasrec").to_string();
        assert!(e.contains("a tiger checkpoint") && e.contains("sasrec checkpoint is needed"), "{e}");
    }
}
