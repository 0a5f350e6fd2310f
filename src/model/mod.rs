//! The generators: the token vocabulary shared by all of them, the T5 backbone (TIGER), and
//! [`Generator`], the model a run trains. DiscRec and FlexCode plug their input blocks in
//! front of the T5 stacks.

pub mod config;
pub mod discrec;
pub mod dropout;
pub mod generator;
pub mod t5;
pub mod vocab;

pub use config::{GeneratorKind, ModelConfig};
pub use generator::Generator;
pub use t5::{T5Config, T5ForConditionalGeneration};
pub use vocab::{DecoderBatch, DecoderInput, EncoderBatch, EncoderInput, ItemTokens, TokenVocab, VocabError, EOS, PAD};
