//! The data layer: input formats, the dataset (sorted, filtered, remapped), the leave-one-out
//! split with history windows, popularity buckets, the router's per-item statistics,
//! embedding matrices, semantic-ID index files, and the embedded synthetic dataset.

pub mod dataset;
pub mod embeddings;
pub mod error;
pub mod formats;
pub mod idmap;
pub mod item_stats;
pub mod kcore;
pub mod log;
pub mod npy;
pub mod popularity;
pub mod semantic_index;
pub mod split;
pub mod stats;
pub mod synthetic;

pub use dataset::{Dataset, DatasetOptions};
pub use embeddings::Embeddings;
pub use error::{DataError, Result};
pub use formats::Format;
pub use idmap::IdMap;
pub use item_stats::{training_transitions, ItemStats};
pub use log::InteractionLog;
pub use popularity::Popularity;
pub use semantic_index::{CodeToken, Codebook, SemanticIndex};
pub use split::{Example, Part, Split};
pub use stats::DatasetStats;
pub use synthetic::{Synthetic, SyntheticConfig};
