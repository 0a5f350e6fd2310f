//! The `[train]` section of a run config. Defaults follow SPEC section 3 (the official TIGER /
//! DiscRec training): AdamW lr 5e-4, weight decay 0.01, batch 256, linear warm-up over 1% of
//! the planned steps then cosine decay, up to 200 epochs, early stopping on the validation
//! cross-entropy with patience 20, gradient norm clipped at 1.0 (Hugging Face Trainer's
//! `max_grad_norm`).

use serde::{Deserialize, Serialize};

/// The `[train]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Most epochs to run (the cosine schedule is planned over all of them).
    pub epochs: usize,
    /// Training examples per batch.
    pub batch_size: usize,
    /// Peak learning rate of AdamW.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// AdamW epsilon (PyTorch's default; Burn's is 1e-5).
    pub epsilon: f64,
    /// Fraction of the planned steps spent warming the learning rate up linearly from 0.
    pub warmup_fraction: f64,
    /// Clip the global L2 norm of the gradient to this value; 0 disables clipping.
    pub grad_clip: f64,
    /// Stop after this many epochs without a better validation loss; 0 disables early stopping.
    pub patience: usize,
    /// Stop each epoch after this many batches; 0 = the whole training set. For shortened runs
    /// (the schedule is planned with the shortened epochs).
    pub max_batches_per_epoch: usize,
    /// Compute validation Recall/NDCG with beam search every this many epochs (0 = never; the
    /// validation loss is computed every epoch regardless).
    pub eval_every: usize,
    /// Update the progress bar's loss every this many steps (each update reads the device).
    pub log_every: usize,
    /// Pad every encoder batch to the longest possible history (`max_len` items + EOS), so wgpu
    /// compiles its kernels for one shape only. `auto`: on for wgpu devices, off on cpu.
    pub fixed_shapes: Option<bool>,
    /// What early stopping and the best checkpoint follow: `loss` (the validation loss, lower
    /// is better) or a validation metric, higher is better: `recall@5`, `recall@10`, `ndcg@5`
    /// or `ndcg@10` (computed every epoch then; for the generators that is a beam search).
    pub early_stopping: String,
    /// What a step whose loss or gradient is NaN or infinite does: `stop` (the default) ends
    /// the run at once with an error naming the epoch, the step and the last good checkpoint;
    /// `skip` leaves the weights as they were, counts the step (`skipped_steps` in
    /// `metrics.jsonl`) and goes on, which reads the loss and the gradient norm back every
    /// step. Either way a non-finite validation loss, or an epoch whose every step was skipped,
    /// ends the run.
    pub on_nonfinite: OnNonFinite,
}

/// See [`TrainConfig::on_nonfinite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnNonFinite {
    /// End the run with an error.
    #[default]
    Stop,
    /// Skip the step and go on.
    Skip,
}

/// What early stopping follows (see [`TrainConfig::early_stopping`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarlyStopping {
    /// The validation loss.
    Loss,
    /// A validation metric by name, e.g. `ndcg@10`.
    Metric(String),
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 256,
            lr: 5e-4,
            weight_decay: 0.01,
            epsilon: 1e-8,
            warmup_fraction: 0.01,
            grad_clip: 1.0,
            patience: 20,
            max_batches_per_epoch: 0,
            eval_every: 0,
            log_every: 20,
            fixed_shapes: None,
            early_stopping: "loss".into(),
            on_nonfinite: OnNonFinite::Stop,
        }
    }
}

impl TrainConfig {
    /// The parsed `early_stopping`; the key and the problem when it names nothing known.
    pub fn early_stopping(&self) -> Result<EarlyStopping, (&'static str, String)> {
        match self.early_stopping.as_str() {
            "loss" => Ok(EarlyStopping::Loss),
            m @ ("recall@5" | "recall@10" | "ndcg@5" | "ndcg@10") => Ok(EarlyStopping::Metric(m.to_string())),
            other => Err((
                "train.early_stopping",
                format!("must be loss, recall@5, recall@10, ndcg@5 or ndcg@10, got {other:?}"),
            )),
        }
    }

    /// Checks ranges; returns the key and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.epochs == 0 {
            return Err(("train.epochs", "must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(("train.batch_size", "must be at least 1".into()));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(("train.lr", format!("must be a positive number, got {}", self.lr)));
        }
        if !(0.0..1.0).contains(&self.warmup_fraction) {
            return Err(("train.warmup_fraction", format!("must lie in [0, 1), got {}", self.warmup_fraction)));
        }
        if !(self.grad_clip >= 0.0 && self.grad_clip.is_finite()) {
            return Err(("train.grad_clip", format!("must be 0 (off) or positive, got {}", self.grad_clip)));
        }
        if !(self.weight_decay >= 0.0) {
            return Err(("train.weight_decay", format!("must be >= 0, got {}", self.weight_decay)));
        }
        if !(self.epsilon > 0.0) {
            return Err(("train.epsilon", format!("must be positive, got {}", self.epsilon)));
        }
        if self.log_every == 0 {
            return Err(("train.log_every", "must be at least 1".into()));
        }
        self.early_stopping().map(|_| ())
    }
}
