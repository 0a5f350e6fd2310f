//! The T5 encoder-decoder of TIGER's generator (SPEC section 3), in Burn.
//!
//! Reference: Raffel et al., "Exploring the Limits of Transfer Learning with a Unified
//! Text-to-Text Transformer" (arXiv 1910.10683); Hugging Face `modeling_t5.py`, whose logits it
//! matches (`tests/fixtures/t5_reference.py`) and whose checkpoint names it reads and writes.

pub mod attention;
pub mod block;
pub mod config;
pub mod feed_forward;
pub mod model;
pub mod stack;
pub mod weights;

pub use attention::{relative_position_bucket, Attention, CrossAttention, Kv, SelfAttention};
pub use block::{Block, EncoderContext};
pub use config::T5Config;
pub use feed_forward::FeedForward;
pub use model::T5ForConditionalGeneration;
pub use stack::{mask_bias, DecoderCache, Stack};
pub use weights::{load_pretrained, load_safetensors, save_pretrained, save_safetensors};
