//! Semantic IDs: item embeddings -> collision-free code sequences (SPEC section 2).
//!
//! - [`rqvae`]: the TIGER-style RQ-VAE (MLP encoder/decoder around a residual quantizer) and
//!   [`train`] its training loop (k-means initialisation, AdamW, Sinkhorn at the last level);
//! - [`rq_kmeans`]: residual k-means, a much faster tokenizer without a neural encoder;
//! - [`quantizer`]: the residual quantizer both share; [`kmeans`] and [`sinkhorn`] its
//!   building blocks, all on the device (nearest codes through
//!   [`crate::kernels::quantize::nearest_code`]);
//! - [`collisions`]: group-restricted Sinkhorn re-assignment, then a disambiguation level;
//! - [`io`]: saving and loading a trained tokenizer (safetensors);
//! - [`metrics`]: codebook use, perplexity, collision rates;
//! - [`flexcode`]: FlexCode, a semantic and a collaborative codebook split per item by a router;
//! - [`config`]: the `[tokenizer]` run-config section.

pub mod collisions;
pub mod config;
pub mod encode;
pub mod flexcode;
pub mod io;
pub mod kmeans;
pub mod metrics;
pub mod quantizer;
pub mod rq_kmeans;
pub mod rqvae;
pub mod sinkhorn;
pub mod train;

pub use collisions::{assign_ids, fix_imported, CollisionOptions, CollisionReport};
pub use config::{TokenizerConfig, TokenizerKind};
pub use encode::Tokenizer;
pub use flexcode::{train_flexcode, FlexCodeConfig, FlexCodeInputs, FlexCodeResult, FlexEpochLog};
pub use io::{load, save, TokenizerArch, TokenizerIoError};
pub use kmeans::{kmeans, KMeans, KMeansConfig};
pub use metrics::{level_usage, LevelUsage, TokenizerMetrics};
pub use quantizer::{Encoding, QuantizeOptions, ResidualQuantizer};
pub use rq_kmeans::{residual_kmeans, ResidualKMeansConfig, RqKMeans};
pub use rqvae::{RqVae, RqVaeConfig, RqVaeOutput};
pub use train::{train_rqvae, EpochMetrics, TrainOptions, Trained};
