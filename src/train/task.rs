//! What the training loop needs from a model kind: its epoch's units, its loss on a batch,
//! its validation figures, and how its checkpoints are written and read. The generators
//! (TIGER, DiscRec) and SASRec each implement [`TrainTask`]; [`super::trainer::run`] drives
//! any of them with the same optimizer, schedule, clipping, early stopping, checkpoints,
//! resumption, progress display, `metrics.jsonl` and `training.png`.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor};

use super::checkpoint::{CheckpointError, TrainState};

/// One model kind's side of training.
pub trait TrainTask {
    /// The model trained.
    type Model: Module;
    /// One unit of an epoch (a training window, a user's sequence).
    type Example: Clone;

    /// The units of one epoch, in a fixed order (the loop shuffles them per epoch).
    fn examples(&self) -> &[Self::Example];

    /// A freshly initialised model on `device` (the loop seeds the CPU backend and moves the
    /// model afterwards).
    fn init(&self, device: &Device) -> Result<Self::Model, String>;

    /// The mean loss of `batch` on `device` (autodiff) and the number of terms it is the mean
    /// of (label tokens, target positions), which weights the epoch's mean.
    ///
    /// # Shapes
    /// - output: `[1]`
    fn loss(&self, model: &Self::Model, batch: &[Self::Example], device: &Device) -> (Tensor<1>, usize);

    /// The validation loss of `model` (evaluation mode) on `device`.
    fn validation_loss(&self, model: &Self::Model, device: &Device) -> f64;

    /// Part `part` of `parts` of the validation loss (data-parallel runs, one part a rank): the
    /// sum of its terms and their weight (tokens, examples), so that the parts' sums divided
    /// by their total weight give [`TrainTask::validation_loss`]. The default computes the whole
    /// loss on part 0 and nothing on the others.
    fn validation_loss_part(&self, model: &Self::Model, device: &Device, part: usize, parts: usize) -> (f64, f64) {
        let _ = parts;
        if part == 0 { (self.validation_loss(model, device), 1.0) } else { (0.0, 0.0) }
    }

    /// Validation Recall/NDCG at 5 and 10 of `model` (evaluation mode), by name (`ndcg@10`).
    fn validation_metrics(&self, model: &Self::Model, device: &Device) -> BTreeMap<String, f64>;

    /// Part `part` of `parts` of the validation metrics: the part's means and the number of
    /// examples they average (the default: everything on part 0, weight 0 elsewhere).
    fn validation_metrics_part(&self, model: &Self::Model, device: &Device, part: usize, parts: usize) -> (BTreeMap<String, f64>, f64) {
        let _ = parts;
        let all = self.validation_metrics(model, device);
        if part == 0 { (all, 1.0) } else { (all.into_keys().map(|k| (k, 0.0)).collect(), 0.0) }
    }

    /// Writes a checkpoint folder (with the optimizer for a resumable one).
    fn save(&self, dir: &Path, state: &TrainState, model: &Self::Model, optimizer: Option<&ModuleOptimizer>) -> Result<(), CheckpointError>;

    /// Reads the model and the training state of a checkpoint folder onto `device`.
    fn load(&self, dir: &Path, device: &Device) -> Result<(Self::Model, TrainState), CheckpointError>;

    /// The title of the training curves, e.g. `tiger on synthetic`.
    fn title(&self) -> String;
}
