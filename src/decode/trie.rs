//! Prefix trie over the token sequences of all catalogue items, laid out for masking on the
//! device during constrained beam search.
//!
//! Reference: TIGER (Rajput et al., arXiv 2305.05065) decodes under a prefix trie of the valid
//! semantic IDs (GRID's `_check_valid_prefix`, Hugging Face's `prefix_allowed_tokens_fn`). Here
//! the trie is a table per depth instead of a callback: node `n` at depth `d` (a distinct prefix
//! of `d` tokens) has up to `width_d` children, stored in padded `[nodes_d, width_d]` tables of
//! child tokens, child node ids (at depth `d + 1`), an additive score bias (0, or `-inf` for
//! padding slots) and a "keep" factor. Beam search gathers a beam's child candidates with one
//! `select` per table, so no `[rows, vocab]` mask is built and nothing goes back to the host
//! between steps.
//!
//! IDs may differ in length (FlexCode). With EOS, each sequence is the ID then EOS; without it,
//! no ID may be a proper prefix of another. A sequence shorter than the deepest one is padded
//! with "frozen" steps: one child, token PAD, keep 0 (the step adds 0 to the score), so that
//! every beam runs the same number of steps and ends on a node naming exactly one item.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::model::vocab::{ItemTokens, VocabError, EOS, PAD};

/// One depth's padded child tables on the host, row-major `[nodes, width]`.
#[derive(Debug, Clone, PartialEq)]
struct HostLevel {
    nodes: usize,
    width: usize,
    tokens: Vec<i64>,
    next: Vec<i64>,
    bias: Vec<f32>,
    keep: Vec<f32>,
}

/// One depth's child tables on the device.
#[derive(Debug, Clone)]
pub struct TrieLevel {
    /// Children per node (padded).
    pub width: usize,
    /// `[nodes, width]` child token ids (PAD in padding and frozen slots).
    pub tokens: Tensor<2, Int>,
    /// `[nodes, width]` child node ids at the next depth (0 in padding slots).
    pub next: Tensor<2, Int>,
    /// `[nodes, width]` 0 for real children, `-inf` for padding slots.
    pub bias: Tensor<2>,
    /// `[nodes, width]` 1 where the child's log-probability counts, 0 for frozen steps.
    pub keep: Tensor<2>,
}

/// The prefix trie of a catalogue.
#[derive(Debug, Clone)]
pub struct Trie {
    eos: bool,
    /// The host tables, kept for the tests' walks only.
    #[cfg(test)]
    host: Vec<HostLevel>,
    levels: Vec<TrieLevel>,
    final_items: Vec<u32>,
    max_token: u32,
}

/// A node under construction: the items sharing its prefix (one item for a finished node).
struct Node {
    items: Vec<u32>,
    finished: bool,
}

impl Trie {
    /// The trie over every item of `items`, its tables uploaded to `device`. With `eos`, every
    /// sequence ends in EOS (its probability counts in the score, and IDs may be prefixes of
    /// one another); without it, decoding stops after the ID's last code as in TIGER, and an ID
    /// that is a proper prefix of another is an error.
    pub fn new(items: &ItemTokens, eos: bool, device: &Device) -> Result<Self, VocabError> {
        let seq = |i: u32| -> Vec<u32> {
            let mut s = items.tokens(i).to_vec();
            if eos {
                s.push(EOS);
            }
            s
        };
        let seqs: Vec<Vec<u32>> = (0..items.num_items() as u32).map(seq).collect();
        let depth = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let max_token = seqs.iter().flatten().copied().max().unwrap_or(0);
        let mut nodes = vec![Node { items: (0..seqs.len() as u32).collect(), finished: false }];
        let mut host = Vec::with_capacity(depth);
        for d in 0..depth {
            // (token, items) children of every node, tokens ascending; None = frozen.
            let mut children: Vec<Vec<(Option<u32>, Vec<u32>)>> = Vec::with_capacity(nodes.len());
            for node in &nodes {
                if node.finished {
                    children.push(vec![(None, node.items.clone())]);
                    continue;
                }
                let mut by_token: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
                let mut ended = None;
                for &i in &node.items {
                    match seqs[i as usize].get(d) {
                        Some(&t) => by_token.entry(t).or_default().push(i),
                        None => ended = Some(i),
                    }
                }
                if let Some(short) = ended {
                    // Only a node that is not marked finished can get here, so another item
                    // continues the ended one.
                    let long = by_token.values().flatten().next().copied().unwrap_or(short);
                    return Err(VocabError::Prefix { short, long });
                }
                children.push(by_token.into_iter().map(|(t, v)| (Some(t), v)).collect());
            }
            let width = children.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let n = nodes.len();
            let mut level = HostLevel {
                nodes: n,
                width,
                tokens: vec![PAD as i64; n * width],
                next: vec![0; n * width],
                bias: vec![f32::NEG_INFINITY; n * width],
                keep: vec![1.0; n * width],
            };
            let mut next_nodes = Vec::new();
            for (p, kids) in children.into_iter().enumerate() {
                for (j, (token, kid_items)) in kids.into_iter().enumerate() {
                    let at = p * width + j;
                    level.next[at] = next_nodes.len() as i64;
                    level.bias[at] = 0.0;
                    match token {
                        Some(t) => {
                            level.tokens[at] = t as i64;
                            let finished = kid_items.len() == 1 && seqs[kid_items[0] as usize].len() == d + 1;
                            next_nodes.push(Node { items: kid_items, finished });
                        }
                        None => {
                            level.keep[at] = 0.0;
                            next_nodes.push(Node { items: kid_items, finished: true });
                        }
                    }
                }
            }
            host.push(level);
            nodes = next_nodes;
        }
        let final_items = nodes.iter().map(|n| n.items[0]).collect();
        let levels = host.iter().map(|h| h.to_device(device)).collect();
        Ok(Self {
            eos,
            #[cfg(test)]
            host,
            levels,
            final_items,
            max_token,
        })
    }

    /// Number of decoding steps (the longest sequence, EOS included when used).
    pub fn depth(&self) -> usize {
        self.levels.len()
    }

    /// Whether sequences end in EOS.
    pub fn eos(&self) -> bool {
        self.eos
    }

    /// The device tables of depth `d`.
    pub fn level(&self, d: usize) -> &TrieLevel {
        &self.levels[d]
    }

    /// Number of prefix nodes at depth `d` (the tests' view of the tables).
    #[cfg(test)]
    fn nodes_at(&self, d: usize) -> usize {
        self.host[d].nodes
    }

    /// The item named by node `node` at the last depth.
    pub fn final_item(&self, node: usize) -> u32 {
        self.final_items[node]
    }

    /// Number of items (= nodes at the last depth).
    pub fn num_items(&self) -> usize {
        self.final_items.len()
    }

    /// The largest token id in the trie (the model's vocabulary must be larger).
    pub fn max_token(&self) -> u32 {
        self.max_token
    }

    /// The tokens allowed after `prefix` (host-side walk; frozen steps are not part of a
    /// prefix), or `None` when `prefix` is not a prefix of any sequence. An empty answer means
    /// the prefix is complete. Beam search reads the device tables; this is the tests' view.
    #[cfg(test)]
    fn allowed(&self, prefix: &[u32]) -> Option<Vec<u32>> {
        let mut node = 0usize;
        for (d, &t) in prefix.iter().enumerate() {
            let h = self.host.get(d)?;
            let row = node * h.width..(node + 1) * h.width;
            let j = row.clone().find(|&a| h.bias[a] == 0.0 && h.keep[a] == 1.0 && h.tokens[a] == t as i64)?;
            node = h.next[j] as usize;
        }
        let Some(h) = self.host.get(prefix.len()) else { return Some(vec![]) };
        let row = node * h.width..(node + 1) * h.width;
        Some(row.filter(|&a| h.bias[a] == 0.0 && h.keep[a] == 1.0).map(|a| h.tokens[a] as u32).collect())
    }
}

impl HostLevel {
    fn to_device(&self, device: &Device) -> TrieLevel {
        let shape = [self.nodes, self.width];
        let ints = |v: &Vec<i64>| Tensor::<2, Int>::from_ints(TensorData::new(v.clone(), shape), device);
        let floats = |v: &Vec<f32>| Tensor::<2>::from_data(TensorData::new(v.clone(), shape), device);
        TrieLevel {
            width: self.width,
            tokens: ints(&self.tokens),
            next: ints(&self.next),
            bias: floats(&self.bias),
            keep: floats(&self.keep),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CodeToken, SemanticIndex};

    pub(crate) fn items(ids: &[&[(u8, u32)]]) -> ItemTokens {
        let ids = ids.iter().map(|id| id.iter().map(|&(level, code)| CodeToken::sem(level, code)).collect()).collect();
        ItemTokens::from_index(&SemanticIndex { ids }).unwrap()
    }

    #[test]
    fn every_item_is_a_path_and_nothing_else_is() {
        let it = items(&[&[(0, 0), (1, 0)], &[(0, 0), (1, 2)], &[(0, 1), (1, 1)], &[(0, 2), (1, 0)]]);
        let trie = Trie::new(&it, false, &Device::flex()).unwrap();
        assert_eq!(trie.depth(), 2);
        assert_eq!((trie.nodes_at(0), trie.nodes_at(1)), (1, 3));
        assert_eq!(trie.level(0).width, 3);
        assert_eq!(trie.level(1).width, 2);
        let t = |i: u32| it.tokens(i).to_vec();
        assert_eq!(trie.allowed(&[]).unwrap(), vec![t(0)[0], t(2)[0], t(3)[0]]);
        assert_eq!(trie.allowed(&t(0)[..1]).unwrap(), vec![t(0)[1], t(1)[1]]);
        for i in 0..4 {
            assert_eq!(trie.allowed(&t(i)).unwrap(), Vec::<u32>::new());
        }
        assert_eq!(trie.allowed(&[t(2)[0], t(0)[1]]), None);
        // The last depth names the items in trie order.
        let mut finals: Vec<u32> = (0..trie.num_items()).map(|n| trie.final_item(n)).collect();
        finals.sort();
        assert_eq!(finals, vec![0, 1, 2, 3]);
    }

    #[test]
    fn variable_length_ids_need_eos_when_one_is_a_prefix() {
        let it = items(&[&[(0, 0)], &[(0, 0), (1, 1)], &[(0, 1), (1, 0), (2, 0)]]);
        let err = Trie::new(&it, false, &Device::flex()).unwrap_err();
        assert_eq!(err, VocabError::Prefix { short: 0, long: 1 });
        let trie = Trie::new(&it, true, &Device::flex()).unwrap();
        assert_eq!(trie.depth(), 4);
        let (a, b) = (it.tokens(0)[0], it.tokens(1)[1]);
        assert_eq!(trie.allowed(&[a]).unwrap(), vec![EOS, b]);
        assert_eq!(trie.allowed(&[a, EOS]).unwrap(), Vec::<u32>::new());
        assert_eq!(trie.num_items(), 3);
        // Prefix-free IDs of different lengths work without EOS: frozen steps pad them.
        let it = items(&[&[(0, 0)], &[(0, 1), (1, 1)]]);
        let trie = Trie::new(&it, false, &Device::flex()).unwrap();
        assert_eq!(trie.depth(), 2);
        assert_eq!(trie.allowed(&[it.tokens(0)[0]]).unwrap(), Vec::<u32>::new());
    }
}
