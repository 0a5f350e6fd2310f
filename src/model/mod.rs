//! The generators: the token vocabulary shared by all of them and the T5 backbone (TIGER).
//! DiscRec and FlexCode plug their input blocks in front of the T5 stacks.

pub mod discrec;
pub mod t5;
pub mod vocab;

pub use t5::{T5Config, T5ForConditionalGeneration};
pub use vocab::{DecoderBatch, DecoderInput, EncoderBatch, EncoderInput, ItemTokens, TokenVocab, VocabError, EOS, PAD};
