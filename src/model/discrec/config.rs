//! DiscRec's settings, read from the `[model.discrec]` part of a training config (plain serde:
//! every field has a default, unknown keys are an error) and validated before use.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::block::{DiscRec, InputBlock};

/// DiscRec's input block settings (SPEC section 4), with the paper's values as defaults. The
/// four switches are the ablations of the paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscRecConfig {
    /// Add the item-level position embedding (position inside the item's ID) before the
    /// collaborative branch.
    pub position: bool,
    /// Use the collaborative branch; `false` leaves the semantic branch (the token embedding)
    /// alone, position embedding included.
    pub collaborative: bool,
    /// Fuse the branches with the learned softmax gate; `false` sums them (`e + c`).
    pub gate: bool,
    /// Put a block in front of the decoder too; `false` is the encoder-only ablation.
    pub decoder: bool,
    /// Heads of the item-local attention.
    pub heads: usize,
    /// Inner size of the branch's feed-forward layer.
    pub d_ff: usize,
    /// Dropout probability (feed-forward inner and output, fused output); active only on
    /// autodiff devices.
    pub dropout: f64,
    /// Use the item-local attention kernel where the device has it; `false` always runs the
    /// dense reference.
    pub kernel: bool,
}

impl Default for DiscRecConfig {
    fn default() -> Self {
        Self { position: true, collaborative: true, gate: true, decoder: true, heads: 2, d_ff: 1024, dropout: 0.1, kernel: true }
    }
}

/// A DiscRec setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("discrec config: {0}")]
pub struct DiscRecConfigError(pub String);

impl DiscRecConfig {
    /// Checks the settings against the model width `d_model`.
    pub fn validate(&self, d_model: usize) -> Result<(), DiscRecConfigError> {
        let fail = |m: String| Err(DiscRecConfigError(m));
        if self.heads == 0 || d_model % self.heads != 0 {
            return fail(format!("heads = {} must be positive and divide d_model = {d_model}", self.heads));
        }
        if self.d_ff == 0 {
            return fail("d_ff must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return fail(format!("dropout = {} must be in [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// The encoder's block and, unless [`DiscRecConfig::decoder`] is off, the decoder's, for a
    /// model of width `d_model` whose longest item ID has `max_id_len` tokens and whose
    /// collaborative tokens (FlexCode's mixed IDs) start at id `cf_start`.
    ///
    /// Panics when the config does not [`DiscRecConfig::validate`].
    pub fn init(&self, d_model: usize, max_id_len: usize, cf_start: Option<u32>, device: &Device) -> DiscRec {
        if let Err(e) = self.validate(d_model) {
            panic!("{e}");
        }
        assert!(max_id_len > 0, "items need IDs of at least one token");
        // L+2 position rows in both stacks, as the paper: the encoder uses 0 (padding), 1..=L
        // and L+1 (EOS), the decoder prefix [start, c1..cL] uses 0..=L. With a collaborative
        // codebook, L more rows for its tokens (`vocab::item_position`).
        let block = || InputBlock::new(self, d_model, max_id_len, cf_start, device);
        DiscRec { encoder: block(), decoder: self.decoder.then(block) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_paper_and_a_partial_file_parses() {
        let c: DiscRecConfig = toml::from_str("gate = false\nheads = 4").unwrap();
        assert_eq!(c, DiscRecConfig { gate: false, heads: 4, ..DiscRecConfig::default() });
        assert!(toml::from_str::<DiscRecConfig>("gates = false").is_err(), "unknown keys are refused");
        assert!(DiscRecConfig::default().validate(128).is_ok());
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = [
            (DiscRecConfig { heads: 3, ..Default::default() }, "heads"),
            (DiscRecConfig { d_ff: 0, ..Default::default() }, "d_ff"),
            (DiscRecConfig { dropout: 1.0, ..Default::default() }, "dropout"),
        ];
        for (c, word) in bad {
            let e = c.validate(128).unwrap_err().to_string();
            assert!(e.contains(word), "{e}");
        }
    }
}
