//! SASRec's settings, read from the `[model.sasrec]` part of a run config (plain serde: every
//! field has a default, unknown keys are an error) and validated before use.
//!
//! Defaults follow the common Amazon Beauty setup of SASRec (Kang and McAuley 2018, and the
//! re-implementations the generative-recommendation papers compare with): 2 blocks, hidden 64,
//! 2 heads, histories of up to 50 items. The loss default is ours: full-softmax cross-entropy
//! over the catalogue, the stronger modern variant; `loss = "bce"` is the paper's.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::model::SasRec;

/// How SASRec is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SasRecLoss {
    /// Cross-entropy of the target over the whole catalogue (softmax over every item's score).
    Ce,
    /// The paper's binary cross-entropy: the target against `negatives` sampled items.
    Bce,
}

impl std::fmt::Display for SasRecLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SasRecLoss::Ce => "ce",
            SasRecLoss::Bce => "bce",
        })
    }
}

/// The `[model.sasrec]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SasRecConfig {
    /// Width of the item and position embeddings and of every block.
    pub hidden: usize,
    /// Self-attention blocks.
    pub blocks: usize,
    /// Attention heads per block (must divide `hidden`).
    pub heads: usize,
    /// Longest history read, in items (the position table has this many rows).
    pub max_len: usize,
    /// Inner width of the point-wise feed-forward layer; 0 = `hidden` (the paper's choice).
    pub d_ff: usize,
    /// Dropout probability on the embeddings, the attention weights and the residual
    /// branches (training only).
    pub dropout: f64,
    /// `ce` (default) or `bce`.
    pub loss: SasRecLoss,
    /// Negatives sampled per target position for `loss = "bce"` (the paper uses 1).
    pub negatives: usize,
}

impl Default for SasRecConfig {
    fn default() -> Self {
        Self { hidden: 64, blocks: 2, heads: 2, max_len: 50, d_ff: 0, dropout: 0.5, loss: SasRecLoss::Ce, negatives: 1 }
    }
}

/// A SASRec setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sasrec config: {0}")]
pub struct SasRecConfigError(pub String);

impl SasRecConfig {
    /// Inner width of the feed-forward layer.
    pub fn ff_width(&self) -> usize {
        if self.d_ff == 0 { self.hidden } else { self.d_ff }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), SasRecConfigError> {
        let fail = |m: String| Err(SasRecConfigError(m));
        if self.hidden == 0 || self.heads == 0 || self.hidden % self.heads != 0 {
            return fail(format!("heads = {} must be positive and divide hidden = {}", self.heads, self.hidden));
        }
        if self.blocks == 0 {
            return fail("blocks must be at least 1".into());
        }
        if self.max_len == 0 {
            return fail("max_len must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return fail(format!("dropout = {} must be in [0, 1)", self.dropout));
        }
        if self.loss == SasRecLoss::Bce && self.negatives == 0 {
            return fail("negatives must be at least 1 with loss = \"bce\"".into());
        }
        Ok(())
    }

    /// A randomly initialised model over a catalogue of `num_items` items.
    ///
    /// Panics when the config does not [`SasRecConfig::validate`] or the catalogue is empty.
    pub fn init(&self, num_items: usize, device: &Device) -> SasRec {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        assert!(num_items > 0, "SASRec needs at least one item");
        SasRec::new(self, num_items, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        assert!(SasRecConfig::default().validate().is_ok());
        assert_eq!(SasRecConfig::default().ff_width(), 64);
        let e = SasRecConfig { heads: 3, ..Default::default() }.validate().unwrap_err().to_string();
        assert!(e.contains("heads = 3") && e.contains("hidden = 64"), "{e}");
        let e = SasRecConfig { loss: SasRecLoss::Bce, negatives: 0, ..Default::default() }.validate().unwrap_err();
        assert!(e.to_string().contains("negatives"), "{e}");
        assert!(SasRecConfig { dropout: 1.0, ..Default::default() }.validate().is_err());
    }
}
