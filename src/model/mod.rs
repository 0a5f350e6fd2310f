//! The models: the token vocabulary shared by the generators, the T5 backbone (TIGER), and
//! [`Generator`], the generator a run trains (DiscRec and FlexCode plug their input blocks in
//! front of the T5 stacks); and SASRec, the collaborative baseline over item ids.

pub mod config;
pub mod discrec;
pub mod dropout;
pub mod generator;
pub mod sasrec;
pub mod t5;
pub mod vocab;

pub use config::{GeneratorKind, ModelConfig};
pub use generator::Generator;
pub use sasrec::{SasRec, SasRecConfig, SasRecLoss};
pub use t5::{T5Config, T5ForConditionalGeneration};
pub use vocab::{DecoderBatch, DecoderInput, EncoderBatch, EncoderInput, ItemTokens, TokenVocab, VocabError, EOS, PAD};
