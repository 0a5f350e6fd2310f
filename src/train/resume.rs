//! What a resumed run may change.
//!
//! A checkpoint records the settings it was trained with ([`RunSettings`]: all of `[train]` and
//! the seed). Resuming with the same settings continues the run exactly: the final weights equal
//! those of a run never stopped, bit for bit on the same device. Some settings may change on
//! resume, each change printed and kept in the checkpoint's history:
//! - `train.epochs`, to train longer (or stop sooner). The learning-rate schedule is planned
//!   over all epochs, so the resumed run re-plans it from the step it reached: from there on the
//!   learning rate differs from both the original plan and from a run started with the new
//!   number of epochs.
//! - `train.patience`, `train.eval_every` and `train.log_every`, which change when the run stops
//!   or what it reports, not what an epoch computes; and `train.on_nonfinite`, so that a run
//!   stopped by a NaN can go on skipping such steps.
//!
//! Any other change (learning rate, batch size, warm-up, weight decay, clipping, batch shapes,
//! shortened epochs, seed) would silently mix two different runs, so it is refused: the error
//! names each changed key and says to set it back or to start over with `--restart`.

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;

/// The settings a checkpoint was trained with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// `[train]`.
    pub train: TrainConfig,
    /// The run's seed (`run.seed`).
    pub seed: u64,
}

/// A setting that a resumed run changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingChange {
    /// The key, as in the config file (`train.epochs`).
    pub key: String,
    /// The value the checkpoint was trained with.
    pub from: String,
    /// The value of the resumed run.
    pub to: String,
}

impl std::fmt::Display for SettingChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.key, self.from, self.to)
    }
}

/// Keys whose change a resumed run accepts (see the module docs).
const MAY_CHANGE: [&str; 5] = ["train.epochs", "train.patience", "train.eval_every", "train.log_every", "train.on_nonfinite"];

/// Every setting that differs between `saved` and `now`, by key.
pub fn changes(saved: &RunSettings, now: &RunSettings) -> Vec<SettingChange> {
    let flat = |s: &RunSettings| {
        let mut v: Vec<(String, String)> = match serde_json::to_value(&s.train) {
            Ok(serde_json::Value::Object(m)) => m.into_iter().map(|(k, v)| (format!("train.{k}"), v.to_string())).collect(),
            _ => Vec::new(),
        };
        v.push(("run.seed".into(), s.seed.to_string()));
        v
    };
    flat(saved)
        .into_iter()
        .zip(flat(now))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((key, from), (_, to))| SettingChange { key, from, to })
        .collect()
}

/// The changes from `saved` to `now` that a resumed run accepts, or the message refusing the
/// others.
pub fn check(saved: &RunSettings, now: &RunSettings) -> Result<Vec<SettingChange>, String> {
    let all = changes(saved, now);
    let refused: Vec<String> = all.iter().filter(|c| !MAY_CHANGE.contains(&c.key.as_str())).map(ToString::to_string).collect();
    if refused.is_empty() {
        return Ok(all);
    }
    Err(format!(
        "the checkpoint was trained with other settings ({}); a resumed run may change only {}. Set them back, or start over with --restart",
        refused.join(", "),
        MAY_CHANGE.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(f: impl FnOnce(&mut RunSettings)) -> RunSettings {
        let mut s = RunSettings { train: TrainConfig::default(), seed: 42 };
        f(&mut s);
        s
    }

    #[test]
    fn same_settings_resume_silently() {
        assert_eq!(check(&settings(|_| ()), &settings(|_| ())), Ok(vec![]));
    }

    #[test]
    fn more_epochs_and_reporting_changes_are_accepted_and_named() {
        let now = settings(|s| {
            s.train.epochs = 300;
            s.train.patience = 5;
        });
        let got = check(&settings(|_| ()), &now).unwrap();
        let shown: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["train.epochs 200 -> 300", "train.patience 20 -> 5"]);
    }

    #[test]
    fn other_changes_are_refused_with_every_key() {
        let now = settings(|s| {
            s.train.lr = 1e-3;
            s.train.epochs = 10;
            s.train.fixed_shapes = Some(true);
            s.seed = 7;
        });
        let err = check(&settings(|_| ()), &now).unwrap_err();
        for part in ["train.lr 0.0005 -> 0.001", "train.fixed_shapes null -> true", "run.seed 42 -> 7", "--restart"] {
            assert!(err.contains(part), "{part}: {err}");
        }
        assert!(!err.contains("train.epochs 200"), "an accepted change is not among the refused: {err}");
    }
}
