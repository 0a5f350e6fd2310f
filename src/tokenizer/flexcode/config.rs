//! The `[tokenizer.flexcode]` section: FlexCode's router, objectives and their switches.
//!
//! Every formula is ours (SPEC section 5: the paper's code is not public). Defaults: the
//! SPEC's where it gives one (alignment temperature 0.1 and weight 0.1, router MLP 4 -> 16 -> 1,
//! tau annealed from 1 to 0.1, target CF share 0.5), ours elsewhere (marked "ours").
//! The RQ-VAE keys (levels = the token budget L, codebook size, code width, encoder widths,
//! epochs, batch, AdamW, beta, k-means, Sinkhorn, collision rounds, seed) are the
//! `[tokenizer]` ones and apply to both codebooks.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How tau (the softness of the level weights) goes from `tau_start` to `tau_end` over the
/// epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TauSchedule {
    /// `tau_start * (tau_end / tau_start)^t`, t from 0 (first epoch) to 1 (last): the same
    /// factor every epoch.
    Geometric,
    /// `tau_start + (tau_end - tau_start) * t`.
    Linear,
}

/// FlexCode's own keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlexCodeConfig {
    /// Collaborative (CF) item embeddings: a `.npy` or `.safetensors` matrix with one row per
    /// item in dense-id order, or a SASRec run folder (its `item_embeddings.npy`). Left out,
    /// `sidrec tokenize` trains SASRec on the training split first (`[model.sasrec]`, with the
    /// `sasrec_*` keys below) and uses its item table.
    pub cf_embeddings: Option<PathBuf>,
    /// Tensor name inside a `.safetensors` CF file holding several tensors.
    pub cf_embeddings_key: Option<String>,
    /// The semantic side from a fixed, ready-made index instead of a semantic RQ-VAE over text
    /// embeddings (ours; for data without item text, e.g. Amazon Beauty with LETTER's index): an
    /// LC-Rec/LETTER index file (`{"<item>": ["<a_183>", "<b_70>", ...]}`, every catalogue item
    /// present, lowercase tokens only, codes below `tokenizer.codebook_size`). Item i's semantic
    /// code at level l is the index's l-th token; an item with k CF tokens uses its first L - k.
    /// The index must have at least L = `tokenizer.levels` levels. No text embeddings are read
    /// (`tokenizer.embeddings` is ignored). A trainable vector per (level, code) stands for the
    /// semantic RQ-VAE's codes: level l contributes `E_l[c_il]`, the semantic latent is their sum
    /// (see `tokenizer::flexcode::fixed`). What each loss then does:
    /// - semantic reconstruction and quantisation: none (0 in the log); the CF RQ-VAE's as usual;
    /// - alignment: trains the code vectors towards the CF latents of the items holding them
    ///   (and the CF encoder towards them), so it must be on (`lambda_align > 0`) unless
    ///   `transition_to_encoders` lets the transition loss train them;
    /// - transition, balance, smoothness: as usual; the router reads the disagreement between
    ///   the CF latent and the item's pooled code vectors;
    /// - collisions: semantic codes are never re-assigned (they are the index's); colliding IDs
    ///   whose last token is semantic get the disambiguation token, CF-only ones Sinkhorn first.
    /// `metrics.json`'s semantic code use is the index's.
    pub semantic_index: Option<PathBuf>,
    /// Epochs of the SASRec run that makes the CF embeddings when none are given (early
    /// stopping on the validation loss, patience `sasrec_patience`).
    pub sasrec_epochs: usize,
    /// Its AdamW learning rate.
    pub sasrec_lr: f64,
    /// Its early-stopping patience.
    pub sasrec_patience: usize,
    /// Judge the CF embeddings out of sample (ours): the SASRec trained here for them learns
    /// without each user's last two training items, and the transition objective sees only the
    /// held-out transitions (each user's last training transition). In sample, SASRec's
    /// embeddings fit every training transition, rare items included, so the router cannot
    /// tell where they fail to generalise. With `cf_embeddings` given, they should come from
    /// such a run (`flexcode-study` passes its own). Validation and test targets stay unseen
    /// either way.
    pub router_holdout: bool,
    /// Learned per-item split. `false`: every item gets `fixed_cf_tokens` CF tokens (0 = a
    /// semantic-only ID, `levels` = a CF-only one).
    pub router: bool,
    /// CF tokens per item when `router = false`; at most `levels`.
    pub fixed_cf_tokens: usize,
    /// Hidden width of the router MLP (4 -> hidden -> 1, ReLU).
    pub router_hidden: usize,
    /// T in a = sigmoid(s / T).
    pub router_temperature: f64,
    /// Softness of the level weights in the first epoch.
    pub tau_start: f64,
    /// Softness of the level weights in the last epoch.
    pub tau_end: f64,
    /// `geometric` (default, ours) or `linear` annealing of tau, once per epoch.
    pub tau_schedule: TauSchedule,
    /// Width of the shared space of the two projections (ours: the code width of the SPEC).
    pub shared_dim: usize,
    /// Temperature of the alignment InfoNCE.
    pub align_temperature: f64,
    /// Weight of the alignment InfoNCE (0 = no alignment).
    pub lambda_align: f64,
    /// Temperature of the transition InfoNCE (ours: 0.1).
    pub transition_temperature: f64,
    /// Weight of the transition InfoNCE, the loss that trains the router (0 = none).
    pub lambda_transition: f64,
    /// Training transitions (i -> next item) per step, sampled with replacement (ours: 1024).
    pub transition_batch: usize,
    /// Let the transition loss train the encoders and codebooks too (through the
    /// straight-through estimator). Off by default (ours): it trains the router, the two
    /// projections and the predictor, and the codes stay those of the two RQ-VAEs.
    pub transition_to_encoders: bool,
    /// rho in the load balance (mean_i a_i - rho)^2.
    pub target_cf_share: f64,
    /// Weight of the load balance (0 = none; ours: 1).
    pub lambda_balance: f64,
    /// Weight of the smoothness over items sorted by training count (0 = none; ours: 1).
    pub lambda_smooth: f64,
    /// Hidden widths of the CF encoder; the `[tokenizer] hidden` ones when left out (CF
    /// embeddings are often narrow, 64 for SASRec, where a smaller MLP such as [128, 64] fits).
    pub cf_hidden: Option<Vec<usize>>,
}

impl Default for FlexCodeConfig {
    fn default() -> Self {
        Self {
            cf_embeddings: None,
            cf_embeddings_key: None,
            semantic_index: None,
            sasrec_epochs: 30,
            sasrec_lr: 1e-3,
            sasrec_patience: 5,
            router_holdout: false,
            router: true,
            fixed_cf_tokens: 2,
            router_hidden: 16,
            router_temperature: 1.0,
            tau_start: 1.0,
            tau_end: 0.1,
            tau_schedule: TauSchedule::Geometric,
            shared_dim: 32,
            align_temperature: 0.1,
            lambda_align: 0.1,
            transition_temperature: 0.1,
            lambda_transition: 1.0,
            transition_batch: 1024,
            transition_to_encoders: false,
            target_cf_share: 0.5,
            lambda_balance: 1.0,
            lambda_smooth: 1.0,
            cf_hidden: None,
        }
    }
}

impl FlexCodeConfig {
    /// Checks ranges the types cannot express, for a token budget of `levels`; returns the key
    /// and the problem.
    pub fn validate(&self, levels: usize) -> Result<(), (&'static str, String)> {
        for (k, v) in [
            ("tokenizer.flexcode.router_hidden", self.router_hidden),
            ("tokenizer.flexcode.shared_dim", self.shared_dim),
            ("tokenizer.flexcode.transition_batch", self.transition_batch),
            ("tokenizer.flexcode.sasrec_epochs", self.sasrec_epochs),
        ] {
            if v == 0 {
                return Err((k, "must be at least 1".into()));
            }
        }
        for (k, v) in [
            ("tokenizer.flexcode.router_temperature", self.router_temperature),
            ("tokenizer.flexcode.tau_start", self.tau_start),
            ("tokenizer.flexcode.tau_end", self.tau_end),
            ("tokenizer.flexcode.align_temperature", self.align_temperature),
            ("tokenizer.flexcode.transition_temperature", self.transition_temperature),
            ("tokenizer.flexcode.sasrec_lr", self.sasrec_lr),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err((k, format!("must be a positive number, got {v}")));
            }
        }
        for (k, v) in [
            ("tokenizer.flexcode.lambda_align", self.lambda_align),
            ("tokenizer.flexcode.lambda_transition", self.lambda_transition),
            ("tokenizer.flexcode.lambda_balance", self.lambda_balance),
            ("tokenizer.flexcode.lambda_smooth", self.lambda_smooth),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err((k, format!("must be a non-negative number, got {v}")));
            }
        }
        if !(0.0..=1.0).contains(&self.target_cf_share) {
            return Err(("tokenizer.flexcode.target_cf_share", format!("must lie in [0, 1], got {}", self.target_cf_share)));
        }
        if !self.router && self.fixed_cf_tokens > levels {
            return Err((
                "tokenizer.flexcode.fixed_cf_tokens",
                format!("at most tokenizer.levels = {levels} CF tokens fit an ID, got {}", self.fixed_cf_tokens),
            ));
        }
        if self.semantic_index.is_some() {
            self.check_fixed_semantic()?;
        }
        if self.cf_hidden.as_ref().is_some_and(|h| h.contains(&0)) {
            return Err(("tokenizer.flexcode.cf_hidden", format!("hidden widths must be positive, got {:?}", self.cf_hidden)));
        }
        Ok(())
    }

    /// With fixed semantic codes, something must train their vectors: the alignment, or the
    /// transition loss with `transition_to_encoders`.
    pub fn check_fixed_semantic(&self) -> Result<(), (&'static str, String)> {
        if self.lambda_align == 0.0 && !(self.transition_to_encoders && self.lambda_transition > 0.0) {
            return Err((
                "tokenizer.flexcode.lambda_align",
                "with tokenizer.flexcode.semantic_index the semantic code vectors learn from the alignment only (or from the \
                 transition loss with transition_to_encoders = true); with lambda_align = 0 they would stay random"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Tau in `epoch` (1-based) of `epochs`.
    pub fn tau(&self, epoch: usize, epochs: usize) -> f64 {
        let t = if epochs <= 1 { 0.0 } else { (epoch.clamp(1, epochs) - 1) as f64 / (epochs - 1) as f64 };
        match self.tau_schedule {
            TauSchedule::Geometric => self.tau_start * (self.tau_end / self.tau_start).powf(t),
            TauSchedule::Linear => self.tau_start + (self.tau_end - self.tau_start) * t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{TokenizerConfig, TokenizerKind};

    #[test]
    fn parses_from_toml_with_defaults_and_rejects_unknown_keys() {
        let t: TokenizerConfig = toml::from_str(
            "kind = \"flexcode\"\nlevels = 3\n[flexcode]\nrouter = false\nfixed_cf_tokens = 3\ntau_schedule = \"linear\"\n",
        )
        .unwrap();
        assert_eq!(t.kind, TokenizerKind::Flexcode);
        assert_eq!(t.kind.to_string(), "flexcode");
        assert!(!t.flexcode.router);
        assert_eq!(t.flexcode.tau_schedule, TauSchedule::Linear);
        assert_eq!(t.flexcode.lambda_align, 0.1);
        assert!(t.validate().is_ok());
        let err = toml::from_str::<TokenizerConfig>("[flexcode]\nlambda_algn = 1.0\n").unwrap_err().to_string();
        assert!(err.contains("lambda_algn"), "{err}");
        // The defaults validate; bad ranges name their key.
        assert!(TokenizerConfig::default().validate().is_ok());
        let with = |f: FlexCodeConfig| TokenizerConfig { levels: 3, flexcode: f, ..TokenizerConfig::default() }.validate();
        let d = FlexCodeConfig::default();
        let cases = [
            (FlexCodeConfig { router: false, fixed_cf_tokens: 4, ..d.clone() }, "tokenizer.flexcode.fixed_cf_tokens"),
            (FlexCodeConfig { align_temperature: 0.0, ..d.clone() }, "tokenizer.flexcode.align_temperature"),
            (FlexCodeConfig { tau_end: f64::NAN, ..d.clone() }, "tokenizer.flexcode.tau_end"),
            (FlexCodeConfig { lambda_smooth: -1.0, ..d.clone() }, "tokenizer.flexcode.lambda_smooth"),
            (FlexCodeConfig { target_cf_share: 1.5, ..d.clone() }, "tokenizer.flexcode.target_cf_share"),
            (FlexCodeConfig { transition_batch: 0, ..d.clone() }, "tokenizer.flexcode.transition_batch"),
            (FlexCodeConfig { cf_hidden: Some(vec![0]), ..d.clone() }, "tokenizer.flexcode.cf_hidden"),
        ];
        for (c, key) in cases {
            assert_eq!(with(c).unwrap_err().0, key);
        }
        // A fixed split of the whole budget, or none of it, is fine.
        assert!(with(FlexCodeConfig { router: false, fixed_cf_tokens: 3, ..d.clone() }).is_ok());
        assert!(with(FlexCodeConfig { router: false, fixed_cf_tokens: 0, ..d }).is_ok());
    }

    #[test]
    fn tau_anneals_from_start_to_end() {
        let c = FlexCodeConfig::default();
        assert!((c.tau(1, 11) - 1.0).abs() < 1e-12);
        assert!((c.tau(11, 11) - 0.1).abs() < 1e-12);
        assert!((c.tau(6, 11) - 0.1f64.sqrt()).abs() < 1e-12, "geometric: the midpoint is the geometric mean");
        let lin = FlexCodeConfig { tau_schedule: TauSchedule::Linear, ..c.clone() };
        assert!((lin.tau(6, 11) - 0.55).abs() < 1e-12);
        assert_eq!(c.tau(1, 1), 1.0);
    }
}
