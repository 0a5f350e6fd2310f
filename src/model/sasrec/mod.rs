//! SASRec, the self-attentive sequential recommender (Kang and McAuley 2018): the
//! collaborative baseline beside the generators and the source of FlexCode's CF item
//! embeddings. Settings, the causal attention, the block, the model, and its host-side
//! batches.

pub mod attention;
pub mod batch;
pub mod block;
pub mod config;
pub mod model;

#[cfg(test)]
mod tests;

pub use batch::{SequenceBatch, SequenceInput, TrainingInput, TrainingTargets};
pub use config::{SasRecConfig, SasRecConfigError, SasRecLoss};
pub use model::SasRec;
