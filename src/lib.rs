//! sidrec: generative recommendation with semantic IDs on any GPU.
//!
//! The crate follows the pipeline, one module a stage:
//! - [`data`]: interaction logs and item text -> chronological sequences, k-core filtering,
//!   leave-one-out splits, history windows, popularity statistics, embedding matrices, and the
//!   embedded synthetic dataset;
//! - [`embed`]: the built-in sentence encoder (all-MiniLM-L6-v2 on the Burn device);
//! - [`eval`]: Recall@K / NDCG@K over the full catalogue, head/tail breakdown, baselines;
//! - [`model`]: the generator's token vocabulary and the T5 encoder-decoder (TIGER);
//! - [`decode`]: the prefix trie over the catalogue and constrained beam search;
//! - [`tokenizer`]: semantic IDs (RQ-VAE, residual k-means, collision handling, index files);
//! - [`train`]: the generator's training loop, checkpoints and resumption;
//! - [`kernels`]: custom WGSL compute kernels, each beside its pure-Burn reference;
//! - [`cli`]: the `sidrec` command line, its TOML run configuration and the run-time choice of
//!   the Burn device (wgpu, software wgpu, CPU);
//! - [`artifact`]: atomic writes of everything a run leaves behind;
//! - [`plot`]: the PNG charts runs leave behind (training curves, FlexCode's CF shares);
//! - [`seed`]: reproducible randomness (seeded initialisation, host-drawn tensors).

pub mod artifact;
pub mod cli;
pub mod data;
pub mod decode;
pub mod embed;
pub mod eval;
pub mod kernels;
pub mod model;
pub mod plot;
pub mod seed;
pub mod tokenizer;
pub mod train;
