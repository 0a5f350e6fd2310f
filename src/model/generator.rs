//! The generator a run trains: the T5 backbone (TIGER) with, for DiscRec, its input blocks in
//! front of the encoder and the decoder. Training, evaluation and beam search see only this
//! type, so every model kind shares the rest of the pipeline.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::config::{GeneratorKind, ModelConfig};
use super::t5::T5ForConditionalGeneration;
use super::vocab::{DecoderBatch, EncoderBatch};
use crate::decode::{BeamModel, BeamState};

/// A sequence-to-sequence recommender over semantic-ID tokens.
#[derive(Module, Debug)]
pub struct Generator {
    /// The T5 encoder-decoder with its tied embedding and LM head.
    pub t5: T5ForConditionalGeneration,
}

impl Generator {
    /// A randomly initialised generator of kind `cfg.kind` over `vocab_size` tokens.
    pub fn new(cfg: &ModelConfig, vocab_size: usize, device: &Device) -> Result<Self, String> {
        let t5 = cfg.t5(vocab_size);
        t5.validate()?;
        match cfg.kind {
            GeneratorKind::Tiger => Ok(Generator { t5: t5.init(device) }),
            GeneratorKind::Discrec => Err("model.kind = \"discrec\": the DiscRec input block is not built yet".into()),
        }
    }

    /// Logits of every decoder position (teacher forcing).
    ///
    /// # Shapes
    /// - enc: `[batch, seq_src]` tensors
    /// - dec: `[batch, seq_tgt]` tensors
    /// - output: `[batch, seq_tgt, vocab_size]`
    pub fn logits(&self, enc: &EncoderBatch, dec: &DecoderBatch) -> Tensor<3> {
        self.t5.forward(enc.input_ids.clone(), enc.attention_mask.clone(), dec.decoder_input_ids.clone())
    }

    /// Mean cross-entropy over the non-padding labels of `dec`.
    ///
    /// # Shapes
    /// - output: `[1]`
    pub fn loss(&self, enc: &EncoderBatch, dec: &DecoderBatch) -> Tensor<1> {
        T5ForConditionalGeneration::loss(self.logits(enc, dec), dec.labels.clone())
    }
}

impl BeamModel for Generator {
    fn start<'a>(&'a self, input: &EncoderBatch) -> Box<dyn BeamState + 'a> {
        self.t5.start(input)
    }
}
