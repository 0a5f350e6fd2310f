//! Custom compute kernels, each with a pure-Burn reference path that every backend without the
//! kernel falls back to, and a test comparing the two on random inputs.
//!
//! - [`quantize`]: nearest codebook entry (argmin of squared L2) for a batch of vectors, without
//!   materialising the `[n, codebook_size]` distance matrix.
//! - [`item_attention`]: DiscRec's item-local attention (each token attends to the tokens of its
//!   own item, plus the EOS <-> last item link), forward and backward, in `O(seq x window)`
//!   without the `[seq, seq]` score matrix.
//! - [`matmul`]: a register-tiled batched matmul, forward and backward, run on software wgpu
//!   adapters (lavapipe) where Burn's workgroup-memory matmul kernels are slow.

pub mod capabilities;
pub mod item_attention;
pub mod matmul;
pub mod quantize;

pub use capabilities::{Capabilities, DeviceClass};

/// Additive bias of masked attention scores, shared by T5's masks, DiscRec's causal branch and
/// the item-local attention reference (Hugging Face uses the f32 minimum; any value whose `exp`
/// underflows to 0 gives the same result).
pub const MASK_BIAS: f32 = -1e9;
