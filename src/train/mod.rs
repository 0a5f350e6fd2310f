//! Training: one loop for every model kind ([`task::TrainTask`]: the generators in
//! `generator_task`, SASRec in `sasrec_task`), with batches from the leave-one-out split, the
//! learning-rate schedule, global gradient clipping, validation and early stopping, atomic
//! checkpoints with exact resumption, progress display and the PNG of the training curves;
//! data-parallel training over several devices and processes in `distributed`.

pub mod batches;
pub mod checkpoint;
pub mod clip;
pub mod config;
pub mod distributed;
pub mod limits;
pub mod generator_task;
pub mod progress;
pub mod resume;
pub mod sasrec_task;
pub mod schedule;
pub mod task;
pub mod trainer;

pub use checkpoint::{Checkpoint, EpochLog, GeneratorSpec, TrainState};
pub use config::{OnNonFinite, TrainConfig};
pub use task::TrainTask;
pub use trainer::{train, LoopSettings, TrainError, TrainInputs, TrainOutcome};
