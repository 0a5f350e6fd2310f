//! The `[eval]` section of a run config: how `eval`, `recommend` and the per-epoch validation
//! metrics of `train` rank and measure. One definition, so that all three do the same work.

use serde::{Deserialize, Serialize};

/// The `[eval]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Cut-offs K of Recall@K and NDCG@K.
    pub ks: Vec<usize>,
    /// Users per evaluation batch.
    pub batch_size: usize,
    /// Beams of the constrained beam search (SPEC: 20); at least the largest K.
    pub beam_size: usize,
    /// Beam search ranks by `sum of log-probabilities / len^length_penalty` (`len`: tokens,
    /// EOS included). 0 (the default, as TIGER) is the plain sum, which favours short IDs when
    /// IDs differ in length; 1 is the mean log-probability per token.
    pub length_penalty: f32,
    /// SASRec only: remove each user's history items from the ranking (and from
    /// recommendations). Off by default: like the generators and the baselines, every item
    /// stays in the ranking (SPEC section 1).
    pub exclude_seen: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self { ks: vec![5, 10], batch_size: 256, beam_size: 20, length_penalty: 0.0, exclude_seen: false }
    }
}

impl EvalConfig {
    /// The largest cut-off.
    pub fn max_k(&self) -> usize {
        self.ks.iter().copied().max().unwrap_or(0)
    }

    /// Checks ranges; returns the key and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.ks.is_empty() || self.ks.contains(&0) {
            return Err(("eval.ks", format!("must be a non-empty list of positive cut-offs, got {:?}", self.ks)));
        }
        if self.beam_size < self.max_k() {
            return Err(("eval.beam_size", format!("must be at least the largest cut-off {}, got {}", self.max_k(), self.beam_size)));
        }
        if self.batch_size == 0 {
            return Err(("eval.batch_size", "must be at least 1".into()));
        }
        if !(self.length_penalty >= 0.0 && self.length_penalty.is_finite()) {
            return Err(("eval.length_penalty", format!("must be 0 or positive, got {}", self.length_penalty)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_key() {
        assert!(EvalConfig::default().validate().is_ok());
        let bad = [
            (EvalConfig { ks: vec![], ..Default::default() }, "eval.ks"),
            (EvalConfig { ks: vec![5, 0], ..Default::default() }, "eval.ks"),
            (EvalConfig { beam_size: 5, ..Default::default() }, "eval.beam_size"),
            (EvalConfig { batch_size: 0, ..Default::default() }, "eval.batch_size"),
            (EvalConfig { length_penalty: -1.0, ..Default::default() }, "eval.length_penalty"),
            (EvalConfig { length_penalty: f32::NAN, ..Default::default() }, "eval.length_penalty"),
        ];
        for (c, key) in bad {
            assert_eq!(c.validate().unwrap_err().0, key, "{c:?}");
        }
    }
}
