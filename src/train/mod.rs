//! Training the generator: batches from the leave-one-out split, the learning-rate schedule,
//! global gradient clipping, the loop with validation and early stopping, atomic checkpoints
//! with exact resumption, progress display and the PNG of the training curves.

pub mod batches;
pub mod checkpoint;
pub mod clip;
pub mod config;
pub mod plot;
pub mod progress;
pub mod resume;
pub mod schedule;
pub mod trainer;

pub use checkpoint::{Checkpoint, EpochLog, GeneratorSpec, TrainState};
pub use config::TrainConfig;
pub use trainer::{train, TrainError, TrainInputs, TrainOutcome};
