//! DiscRec: the dual-branch input block in front of T5's encoder and decoder.
//!
//! Reference: Liu et al., "DiscRec: Disentangled Semantic-Collaborative Modeling for Generative
//! Recommendation" (arXiv 2506.15576) and its official code; SPEC section 4 gives every tensor.
//! Each stack gets its own [`block::InputBlock`]: the token embedding `e` is the semantic branch;
//! the collaborative branch adds the item-level position embedding, normalises
//! ([`layer_norm`]), runs item-local attention and a feed-forward ([`branch`]); a softmax gate
//! per token fuses the two. The T5 layers behind it are unchanged.
//!
//! # Which item is "the last one"
//! The official code right-pads histories, so for short histories the EOS <-> last item link
//! points at padding. sidrec left-pads encoder rows (`ItemTokens::encoder_input`), so the tokens
//! right before EOS always belong to the true last history item, and
//! `EncoderBatch::item_slot` names them (slot 2; EOS is slot 1, padding 0). The attention blocks
//! are taken from `item_slot`, not from fixed blocks of L tokens, so IDs of different lengths
//! work; padding tokens take part in nothing (their attention output is zero, the residual
//! gives back `x1`) and the T5 encoder masks them afterwards.
//!
//! # Ablations ([`DiscRecConfig`])
//! `position = false` drops the position embedding; `collaborative = false` makes the block
//! the identity (`e`, TIGER's input); `gate = false` sums `e + c`; `decoder = false` keeps the
//! decoder's plain token embedding.

pub mod block;
pub mod branch;
pub mod config;
pub mod layer_norm;
pub mod weights;

pub use block::{DecoderInputCache, DiscRec, DiscRecOutput, InputBlock};
pub use config::{DiscRecConfig, DiscRecConfigError};

#[cfg(test)]
mod tests;
