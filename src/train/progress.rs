//! What a training run shows while it works: a progress bar per epoch with the running loss,
//! the learning rate and the throughput, a summary line per epoch (printed also when stderr is
//! not a terminal), and the optional validation Recall/NDCG by beam search.

use std::collections::BTreeMap;

use indicatif::{ProgressBar, ProgressStyle};

use super::checkpoint::EpochLog;
use super::generator_task::TrainInputs;
use crate::data::Part;
use crate::decode::Trie;
use crate::eval::{evaluate, GenerativeRanker};
use crate::model::Generator;

/// The bar of one epoch.
pub struct EpochProgress {
    bar: ProgressBar,
    visible: bool,
}

impl EpochProgress {
    /// A bar over `batches` steps of epoch `epoch` of `epochs`.
    pub fn new(epoch: usize, epochs: usize, batches: usize) -> Self {
        let bar = ProgressBar::new(batches as u64).with_style(
            ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg} eta {eta}").expect("valid template"),
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        EpochProgress { bar, visible: true }
    }

    /// Shows nothing, not even the summary line (the ranks of a data-parallel run but rank 0).
    pub fn hidden() -> Self {
        EpochProgress { bar: ProgressBar::hidden(), visible: false }
    }

    /// After `done` batches: the running loss, the current learning rate and examples/s.
    pub fn update(&mut self, done: usize, loss: f64, lr: f64, per_s: f64) {
        self.bar.set_position(done as u64);
        self.bar.set_message(format!("loss {loss:.4} lr {lr:.2e} {per_s:.0} ex/s"));
    }

    /// Clears the bar and prints the epoch's summary line.
    pub fn finish(self, l: &EpochLog) {
        self.bar.finish_and_clear();
        if !self.visible {
            return;
        }
        let mut line = format!(
            "epoch {:>3}: train loss {:.4}  valid loss {:.4}  lr {:.2e}  {:.0} ex/s  {:.1}s",
            l.epoch, l.train_loss, l.valid_loss, l.lr, l.train_examples_per_s, l.seconds
        );
        if let Some(m) = &l.valid_metrics {
            for (k, v) in m {
                line.push_str(&format!("  {k} {v:.4}"));
            }
        }
        eprintln!("{line}");
    }
}

/// Validation Recall@K and NDCG@K of `model` (every item of the catalogue, the `[eval]`
/// settings), through the same evaluation as `sidrec eval`.
pub fn valid_metrics(model: &Generator, inp: &TrainInputs, pad_to: usize) -> BTreeMap<String, f64> {
    valid_metrics_on(model, inp, inp.split, pad_to)
}

/// [`valid_metrics`] on the validation examples of `split` (a part of the run's, for a
/// data-parallel rank).
pub fn valid_metrics_on(model: &Generator, inp: &TrainInputs, split: &crate::data::Split, pad_to: usize) -> BTreeMap<String, f64> {
    let trie = Trie::new(inp.items, true, &inp.device).expect("the training IDs form a valid trie");
    let mut ranker = GenerativeRanker {
        model,
        items: inp.items,
        trie: &trie,
        device: inp.device.clone(),
        beam: inp.eval.beam_size,
        length_penalty: inp.eval.length_penalty,
        pad_to,
        name: String::new(),
    };
    evaluate(&mut ranker, inp.ds, split, Part::Valid, inp.pop, &inp.eval.ks, inp.eval.batch_size).metrics.all.values
}
