//! FlexCode (SPEC section 5; paper arXiv 2511.20673, whose code is not public: every formula
//! here is ours): a semantic and a collaborative (CF) RQ-VAE trained jointly, and a router that
//! gives every item a share of its L-token ID in each codebook (more CF tokens for items whose
//! CF embedding predicts what follows them, more semantic tokens for the others).
//!
//! - [`config`]: the `[tokenizer.flexcode]` section and its switches;
//! - [`model`]: the two RQ-VAEs, projections, transition predictor and router;
//! - [`fixed`]: the semantic side from a fixed, ready-made index (code tables, no semantic
//!   RQ-VAE; `tokenizer.flexcode.semantic_index`);
//! - [`losses`]: InfoNCE, the soft level weights, balance and smoothness;
//! - [`train`]: the training loop and the public entry [`train_flexcode`];
//! - [`ids`]: mixed IDs (CF levels first, then semantic ones) made collision-free;
//! - [`io`]: the whole tokenizer saved and read back (both RQ-VAEs, projections, router);
//! - [`report`]: metrics, per-popularity split, log, CSV and plot.

pub mod config;
pub mod fixed;
pub mod ids;
pub mod io;
pub mod losses;
pub mod model;
pub mod report;
pub mod train;

#[cfg(test)]
mod fixed_tests;
#[cfg(test)]
mod tests;

pub use config::{FlexCodeConfig, TauSchedule};
pub use ids::FlexIds;
pub use io::{load_flexcode, save_flexcode};
pub use fixed::{read_semantic_codes, semantic_codes, FixedCodes};
pub use model::{FlexCode, FlexCodeModelConfig, Router, SemanticSide};
pub use report::{write_report, FlexCodeMetrics, SplitStats};
pub use train::{train_flexcode, FlexCodeInputs, FlexCodeResult, FlexEpochLog, SemanticInput};
