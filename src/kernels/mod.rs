//! Custom compute kernels, each with a pure-Burn reference path that every backend without the
//! kernel falls back to, and a test comparing the two on random inputs.
//!
//! - [`quantize`]: nearest codebook entry (argmin of squared L2) for a batch of vectors, without
//!   materialising the `[n, codebook_size]` distance matrix.

pub mod quantize;
