//! Decoding: the prefix trie over the catalogue's token sequences and constrained beam search
//! driving a generator through its cached decoder step.

pub mod beam;
pub mod generator;
pub mod trie;

pub use beam::{beam_search, beam_search_scored, BeamModel, BeamState, Ranked};
pub use trie::{Trie, TrieLevel};
