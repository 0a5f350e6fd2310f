//! The generator's token vocabulary and the encoder/decoder batches built from it.
//!
//! Layout (SPEC section 2, after TIGER's official code): token 0 is padding and the decoder
//! start, token 1 is EOS, then every level of the semantic codebook gets a contiguous range,
//! then every level of the collaborative codebook (FlexCode's, SPEC section 5; absent for
//! plain semantic IDs): code `c` of semantic level `l` is `2 + (size_0 + .. + size_{l-1}) + c`.
//! With 4 levels of 256 codes this is `2 + 256 l + c` and a vocabulary of 1026.
//!
//! Nothing here assumes a fixed number of levels or a fixed ID length: levels may differ in
//! size, an item's ID may mix the two codebooks (each with its own levels, in order) and IDs
//! may differ in length. [`ItemTokens`] is the one place that knows the geometry.
//!
//! # Padding
//! Encoder inputs are LEFT-padded: a row is `[PAD.., item_1 tokens.., item_n tokens.., EOS]`, so
//! the EOS is always the last column and the last history item sits right before it. T5's
//! relative position bias only sees key - query offsets and padded keys are masked, so the
//! encoder output at real tokens is the same as with right padding. DiscRec needs "the last
//! item" of every history (its tokens attend to EOS); left padding puts it at a fixed place,
//! and [`EncoderBatch::item_slot`] names it explicitly for IDs of any length. Decoder inputs and
//! labels are right-padded (the decoder is causal, and pad labels are ignored by the loss).

use std::collections::HashMap;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::{CodeToken, Codebook, SemanticIndex};

/// Padding token, also the decoder start token.
pub const PAD: u32 = 0;
/// The decoder start token (the same id as [`PAD`], as in T5).
pub const DECODER_START: u32 = 0;
/// End of sequence: closes every encoder input and every label sequence.
pub const EOS: u32 = 1;
/// Number of special tokens before the first code token.
pub const NUM_SPECIAL: u32 = 2;

/// A semantic index that does not fit the vocabulary (or has no usable IDs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VocabError {
    /// A token's level or code is outside the vocabulary.
    #[error("item {item}: token {token} is outside the vocabulary ({detail})")]
    OutOfRange {
        /// Dense item id.
        item: u32,
        /// The offending token.
        token: CodeToken,
        /// Which bound it breaks.
        detail: String,
    },
    /// Two items share the same ID, so a decoded sequence could not name one item.
    #[error("items {first} and {second} have the same semantic ID {id}; resolve collisions first")]
    Collision {
        /// The first item.
        first: u32,
        /// The second item.
        second: u32,
        /// Their ID, as tokens.
        id: String,
    },
    /// An item has an empty ID, or the index has no items.
    #[error("{0}")]
    Empty(String),
    /// One item's ID is a proper prefix of another's, which a trie without EOS cannot tell
    /// apart.
    #[error("the ID of item {short} is a prefix of the ID of item {long}; build the trie with EOS")]
    Prefix {
        /// The item with the shorter ID.
        short: u32,
        /// The item whose ID extends it.
        long: u32,
    },
}

/// The token layout: one contiguous range of ids per (codebook, level): first every level of
/// the semantic codebook, then every level of the collaborative one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenVocab {
    level_sizes: Vec<usize>,
    cf_level_sizes: Vec<usize>,
    offsets: Vec<u32>,
    cf_offsets: Vec<u32>,
}

impl TokenVocab {
    /// A vocabulary with `level_sizes[l]` codes at level `l` of the semantic codebook (and no
    /// collaborative codebook).
    pub fn new(level_sizes: Vec<usize>) -> Self {
        Self::with_collaborative(level_sizes, Vec::new())
    }

    /// A vocabulary with `level_sizes[l]` semantic and `cf_level_sizes[l]` collaborative codes
    /// at level `l`.
    pub fn with_collaborative(level_sizes: Vec<usize>, cf_level_sizes: Vec<usize>) -> Self {
        let mut next = NUM_SPECIAL;
        let mut offsets_of = |sizes: &[usize]| {
            sizes
                .iter()
                .map(|&s| {
                    let o = next;
                    next += s as u32;
                    o
                })
                .collect::<Vec<u32>>()
        };
        let offsets = offsets_of(&level_sizes);
        let cf_offsets = offsets_of(&cf_level_sizes);
        Self { level_sizes, cf_level_sizes, offsets, cf_offsets }
    }

    /// The smallest vocabulary holding every token of `index`: level `l` of a codebook gets
    /// `1 + the largest code used there` codes. Pass the codebook sizes to
    /// [`TokenVocab::with_collaborative`] instead to keep unused codes (4 x 256 -> 1026 as in
    /// the paper).
    pub fn from_index(index: &SemanticIndex) -> Self {
        let mut sizes: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        for t in index.ids.iter().flatten() {
            let (sizes, l) = (&mut sizes[t.codebook as usize], t.level as usize);
            if sizes.len() <= l {
                sizes.resize(l + 1, 0);
            }
            sizes[l] = sizes[l].max(t.code as usize + 1);
        }
        let [sem, cf] = sizes;
        Self::with_collaborative(sem, cf)
    }

    /// Total number of token ids (special tokens included): the model's `vocab_size`.
    pub fn size(&self) -> usize {
        NUM_SPECIAL as usize + self.level_sizes.iter().sum::<usize>() + self.cf_level_sizes.iter().sum::<usize>()
    }

    /// Number of levels of the semantic codebook.
    pub fn levels(&self) -> usize {
        self.level_sizes.len()
    }

    /// Codes per level of the semantic codebook.
    pub fn level_sizes(&self) -> &[usize] {
        &self.level_sizes
    }

    /// Codes per level of the collaborative codebook (empty without one).
    pub fn cf_level_sizes(&self) -> &[usize] {
        &self.cf_level_sizes
    }

    /// Codes per level of `codebook`.
    pub fn sizes(&self, codebook: Codebook) -> &[usize] {
        match codebook {
            Codebook::Semantic => &self.level_sizes,
            Codebook::Collaborative => &self.cf_level_sizes,
        }
    }

    fn offsets(&self, codebook: Codebook) -> &[u32] {
        match codebook {
            Codebook::Semantic => &self.offsets,
            Codebook::Collaborative => &self.cf_offsets,
        }
    }

    /// The token ids of level `level` of the semantic codebook.
    pub fn level_range(&self, level: usize) -> std::ops::Range<u32> {
        self.range(Codebook::Semantic, level)
    }

    /// The token ids of level `level` of `codebook`.
    pub fn range(&self, codebook: Codebook, level: usize) -> std::ops::Range<u32> {
        let start = self.offsets(codebook)[level];
        start..start + self.sizes(codebook)[level] as u32
    }

    /// The first token id of the collaborative codebook: every id from here on is a
    /// collaborative token. `None` without a collaborative codebook.
    pub fn cf_start(&self) -> Option<u32> {
        self.cf_offsets.first().copied()
    }

    /// The token id of `t`, or `None` when its level or code is outside the vocabulary.
    pub fn token(&self, t: CodeToken) -> Option<u32> {
        let l = t.level as usize;
        let sizes = self.sizes(t.codebook);
        (l < sizes.len() && (t.code as usize) < sizes[l]).then(|| self.offsets(t.codebook)[l] + t.code)
    }

    /// The code behind token id `token`; `None` for special tokens and ids past the end.
    pub fn code(&self, token: u32) -> Option<CodeToken> {
        Codebook::ALL.into_iter().rev().find_map(|codebook| {
            let offsets = self.offsets(codebook);
            let level = offsets.iter().rposition(|&o| o <= token)?;
            let code = token - offsets[level];
            ((code as usize) < self.sizes(codebook)[level]).then_some(CodeToken { codebook, level: level as u8, code })
        })
    }

    /// Why `t` is outside the vocabulary, in words.
    fn out_of_range(&self, t: CodeToken) -> String {
        let sizes = self.sizes(t.codebook);
        match sizes.get(t.level as usize) {
            Some(s) => format!("level {} of the {} codebook has {s} codes", t.level, t.codebook),
            None => format!("the vocabulary has {} levels of the {} codebook", sizes.len(), t.codebook),
        }
    }
}

/// DiscRec's item-level position of token `p` (1-based) of an ID when that token is of
/// `codebook`, for IDs of at most `max_len` tokens. Semantic tokens take rows `1..=max_len`
/// (the paper's table), EOS `max_len + 1`, collaborative tokens `max_len + 2..=2 max_len + 1`;
/// row 0 is padding and the decoder start. So position `p` means the semantic codebook for one
/// item and the collaborative one for another, as FlexCode's mixed IDs need, and an index
/// without collaborative tokens uses exactly the paper's `max_len + 2` rows.
pub fn item_position(codebook: Codebook, p: usize, max_len: usize) -> i64 {
    match codebook {
        Codebook::Semantic => p as i64,
        Codebook::Collaborative => (max_len + 1 + p) as i64,
    }
}

/// Rows of DiscRec's position table for IDs of at most `max_len` tokens, with or without a
/// collaborative codebook (see [`item_position`]).
pub fn position_rows(max_len: usize, collaborative: bool) -> usize {
    if collaborative {
        2 * max_len + 2
    } else {
        max_len + 2
    }
}

/// Every catalogue item's token sequence, and the way back: the run's ID geometry. Built once
/// from the index and the declared vocabulary, it answers for every item and token slot the
/// codebook, level and vocabulary range ([`ItemTokens::slot`]), each item's length and the
/// longest ID; the encoder rows, DiscRec's positions, the item-attention window, the padding
/// and the trie all read it from here. A checkpoint stores what rebuilds it (the index and
/// `generator.json`'s level sizes and longest ID).
#[derive(Debug, Clone)]
pub struct ItemTokens {
    vocab: TokenVocab,
    seqs: Vec<Vec<u32>>,
    lookup: HashMap<Vec<u32>, u32>,
    max_len: usize,
}

impl ItemTokens {
    /// Maps every item of `index` into `vocab`. Fails on tokens outside the vocabulary, empty
    /// IDs and collisions (two items with the same ID).
    pub fn new(vocab: TokenVocab, index: &SemanticIndex) -> Result<Self, VocabError> {
        if index.ids.is_empty() {
            return Err(VocabError::Empty("the semantic index has no items".into()));
        }
        let mut seqs = Vec::with_capacity(index.ids.len());
        let mut lookup = HashMap::with_capacity(index.ids.len());
        for (item, id) in index.ids.iter().enumerate() {
            let item = item as u32;
            if id.is_empty() {
                return Err(VocabError::Empty(format!("item {item} has an empty semantic ID")));
            }
            let seq = id
                .iter()
                .map(|&t| {
                    vocab.token(t).ok_or_else(|| VocabError::OutOfRange { item, token: t, detail: vocab.out_of_range(t) })
                })
                .collect::<Result<Vec<u32>, _>>()?;
            if let Some(&first) = lookup.get(&seq) {
                let id = id.iter().map(|t| t.to_string()).collect::<String>();
                return Err(VocabError::Collision { first, second: item, id });
            }
            lookup.insert(seq.clone(), item);
            seqs.push(seq);
        }
        let max_len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Self { vocab, seqs, lookup, max_len })
    }

    /// [`ItemTokens::new`] with the smallest vocabulary holding the index
    /// ([`TokenVocab::from_index`]).
    pub fn from_index(index: &SemanticIndex) -> Result<Self, VocabError> {
        Self::new(TokenVocab::from_index(index), index)
    }

    /// The token layout.
    pub fn vocab(&self) -> &TokenVocab {
        &self.vocab
    }

    /// Number of catalogue items.
    pub fn num_items(&self) -> usize {
        self.seqs.len()
    }

    /// The longest ID, in tokens (EOS not counted).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Whether some item's ID uses the collaborative codebook.
    pub fn has_collaborative(&self) -> bool {
        self.vocab.cf_start().is_some_and(|cf| self.seqs.iter().flatten().any(|&t| t >= cf))
    }

    /// Codebook, level and code of token slot `p` (0-based) of item `item`'s ID.
    pub fn slot(&self, item: u32, p: usize) -> CodeToken {
        self.vocab.code(self.seqs[item as usize][p]).expect("item tokens are codes of the vocabulary")
    }

    /// Item `item`'s token ids (EOS not included).
    pub fn tokens(&self, item: u32) -> &[u32] {
        &self.seqs[item as usize]
    }

    /// All items' token ids, in item order.
    pub fn sequences(&self) -> &[Vec<u32>] {
        &self.seqs
    }

    /// The item whose ID is exactly `tokens` (a trailing EOS is allowed).
    pub fn item(&self, tokens: &[u32]) -> Option<u32> {
        let tokens = tokens.strip_suffix(&[EOS]).unwrap_or(tokens);
        self.lookup.get(tokens).copied()
    }

    /// The longest encoder row a history of at most `window` items can give: `window` IDs of
    /// the longest length, then EOS. Padding every batch to it gives wgpu one shape to compile.
    pub fn full_encoder_length(&self, window: usize) -> usize {
        window * self.max_len + 1
    }

    /// [`ItemTokens::encoder_input`] left-padded to at least `seq` columns (0: to the longest
    /// row). Training, evaluation and `recommend` all build their encoder rows with it.
    pub fn encoder_input_padded(&self, histories: &[&[u32]], seq: usize) -> EncoderInput {
        self.encoder_input(histories).left_padded(seq)
    }

    /// Encoder rows for `histories` (item ids, oldest first): each history's IDs flattened,
    /// then EOS, left-padded to the longest row. Truncate histories to the window first.
    pub fn encoder_input(&self, histories: &[&[u32]]) -> EncoderInput {
        let lens: Vec<usize> =
            histories.iter().map(|h| h.iter().map(|&i| self.seqs[i as usize].len()).sum::<usize>() + 1).collect();
        let seq = lens.iter().copied().max().unwrap_or(1);
        let batch = histories.len();
        let eos_pos = self.max_len as i64 + 1;
        let cf_start = self.vocab.cf_start().unwrap_or(u32::MAX);
        let mut input = EncoderInput {
            batch,
            seq,
            input_ids: vec![PAD as i64; batch * seq],
            attention_mask: vec![0.0; batch * seq],
            item_pos: vec![0; batch * seq],
            item_slot: vec![0; batch * seq],
            lengths: lens.clone(),
        };
        for (r, (h, &len)) in histories.iter().zip(&lens).enumerate() {
            let row = r * seq;
            let mut j = row + seq - len;
            for (k, &item) in h.iter().enumerate() {
                let slot = (h.len() - k) as i64 + 1;
                for (p, &tok) in self.seqs[item as usize].iter().enumerate() {
                    input.input_ids[j] = tok as i64;
                    let codebook = if tok >= cf_start { Codebook::Collaborative } else { Codebook::Semantic };
                    input.item_pos[j] = item_position(codebook, p + 1, self.max_len);
                    input.item_slot[j] = slot;
                    j += 1;
                }
            }
            input.input_ids[j] = EOS as i64;
            input.item_pos[j] = eos_pos;
            input.item_slot[j] = 1;
            input.attention_mask[row + seq - len..row + seq].fill(1.0);
        }
        input
    }

    /// Decoder inputs `[0, c1..cL]` and labels `[c1..cL, EOS]` for the `targets` items,
    /// right-padded with [`PAD`] to the longest.
    pub fn decoder_input(&self, targets: &[u32]) -> DecoderInput {
        let seq = targets.iter().map(|&t| self.seqs[t as usize].len() + 1).max().unwrap_or(1);
        let batch = targets.len();
        let mut input = DecoderInput {
            batch,
            seq,
            decoder_input_ids: vec![PAD as i64; batch * seq],
            labels: vec![PAD as i64; batch * seq],
        };
        for (r, &t) in targets.iter().enumerate() {
            let s = &self.seqs[t as usize];
            input.decoder_input_ids[r * seq] = DECODER_START as i64;
            for (p, &tok) in s.iter().enumerate() {
                input.decoder_input_ids[r * seq + p + 1] = tok as i64;
                input.labels[r * seq + p] = tok as i64;
            }
            input.labels[r * seq + s.len()] = EOS as i64;
        }
        input
    }
}

/// Encoder rows on the host (see [`ItemTokens::encoder_input`]); [`EncoderInput::to_device`]
/// uploads them. Row-major `[batch, seq_src]` everywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderInput {
    /// Rows.
    pub batch: usize,
    /// Columns (the longest row).
    pub seq: usize,
    /// Token ids, left-padded with [`PAD`].
    pub input_ids: Vec<i64>,
    /// 1.0 for real tokens, 0.0 for padding.
    pub attention_mask: Vec<f32>,
    /// See [`EncoderBatch::item_pos`].
    pub item_pos: Vec<i64>,
    /// See [`EncoderBatch::item_slot`].
    pub item_slot: Vec<i64>,
    /// Real tokens per row (EOS included).
    pub lengths: Vec<usize>,
}

/// Encoder inputs on the device.
#[derive(Debug, Clone)]
pub struct EncoderBatch {
    /// `[batch, seq_src]` token ids, left-padded with [`PAD`].
    pub input_ids: Tensor<2, Int>,
    /// `[batch, seq_src]` 1.0 for real tokens, 0.0 for padding.
    pub attention_mask: Tensor<2>,
    /// `[batch, seq_src]` DiscRec's item-level position of each token ([`item_position`]): its
    /// 1-based position inside its item's ID (shifted past EOS for collaborative tokens); EOS
    /// gets `max_len + 1` (5 for 4-token IDs, as the paper), padding 0. `None` when the model
    /// does not read it (TIGER).
    pub item_pos: Option<Tensor<2, Int>>,
    /// `[batch, seq_src]` which history item a token belongs to, counted from the end: 0 =
    /// padding, 1 = EOS, 2 = the last history item, 3 = the one before, ... `None` when the
    /// model does not read it (TIGER).
    pub item_slot: Option<Tensor<2, Int>>,
    /// Real tokens per row (EOS included), on the host.
    pub lengths: Vec<usize>,
}

impl EncoderInput {
    /// Widens the left-padded rows to at least `seq` columns (more padding on the left).
    pub fn left_padded(self, seq: usize) -> EncoderInput {
        let input = self;
        if seq <= input.seq {
            return input;
        }
        let extra = seq - input.seq;
        let widen = |v: &[i64], fill: i64| -> Vec<i64> {
            v.chunks(input.seq.max(1)).flat_map(|row| std::iter::repeat_n(fill, extra).chain(row.iter().copied())).collect()
        };
        let mask = input
            .attention_mask
            .chunks(input.seq.max(1))
            .flat_map(|row| std::iter::repeat_n(0.0, extra).chain(row.iter().copied()))
            .collect();
        EncoderInput {
            batch: input.batch,
            seq,
            input_ids: widen(&input.input_ids, PAD as i64),
            attention_mask: mask,
            item_pos: widen(&input.item_pos, 0),
            item_slot: widen(&input.item_slot, 0),
            lengths: input.lengths,
        }
    }

    /// Uploads the rows to `device`, with the item positions and slots.
    pub fn to_device(&self, device: &Device) -> EncoderBatch {
        self.upload(device, true)
    }

    /// Uploads the rows to `device`; the item positions and slots only when `item_features`
    /// (DiscRec reads them, TIGER does not: see `Generator::encoder_batch`).
    pub fn upload(&self, device: &Device, item_features: bool) -> EncoderBatch {
        let shape = [self.batch, self.seq];
        let ints = |v: &Vec<i64>| Tensor::<2, Int>::from_ints(TensorData::new(v.clone(), shape), device);
        EncoderBatch {
            input_ids: ints(&self.input_ids),
            attention_mask: Tensor::from_data(TensorData::new(self.attention_mask.clone(), shape), device),
            item_pos: item_features.then(|| ints(&self.item_pos)),
            item_slot: item_features.then(|| ints(&self.item_slot)),
            lengths: self.lengths.clone(),
        }
    }
}

/// Decoder inputs and labels on the host, row-major `[batch, seq_tgt]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderInput {
    /// Rows.
    pub batch: usize,
    /// Columns (longest ID + 1).
    pub seq: usize,
    /// `[0, c1..cL]`, right-padded with [`PAD`].
    pub decoder_input_ids: Vec<i64>,
    /// `[c1..cL, EOS]`, right-padded with [`PAD`] (ignored by the loss).
    pub labels: Vec<i64>,
}

/// Decoder inputs and labels on the device.
#[derive(Debug, Clone)]
pub struct DecoderBatch {
    /// `[batch, seq_tgt]` decoder input ids.
    pub decoder_input_ids: Tensor<2, Int>,
    /// `[batch, seq_tgt]` labels, [`PAD`] where ignored.
    pub labels: Tensor<2, Int>,
}

impl DecoderInput {
    /// Uploads the rows to `device`.
    pub fn to_device(&self, device: &Device) -> DecoderBatch {
        let shape = [self.batch, self.seq];
        let ints = |v: &Vec<i64>| Tensor::<2, Int>::from_ints(TensorData::new(v.clone(), shape), device);
        DecoderBatch { decoder_input_ids: ints(&self.decoder_input_ids), labels: ints(&self.labels) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(level: u8, code: u32) -> CodeToken {
        CodeToken::sem(level, code)
    }

    fn index(ids: &[&[(u8, u32)]]) -> SemanticIndex {
        SemanticIndex { ids: ids.iter().map(|id| id.iter().map(|&(l, c)| tok(l, c)).collect()).collect() }
    }

    #[test]
    fn layout_matches_the_paper_for_4_x_256() {
        let v = TokenVocab::new(vec![256; 4]);
        assert_eq!(v.size(), 1026);
        for (l, c) in [(0u8, 0u32), (1, 17), (3, 255)] {
            let t = v.token(tok(l, c)).unwrap();
            assert_eq!(t, 2 + 256 * l as u32 + c);
            assert_eq!(v.code(t), Some(tok(l, c)));
        }
        assert_eq!(v.token(tok(4, 0)), None);
        assert_eq!(v.token(tok(0, 256)), None);
        assert_eq!(v.code(PAD), None);
        assert_eq!(v.code(EOS), None);
        assert_eq!(v.code(1026), None);
        assert_eq!(v.level_range(2), 514..770);
    }

    #[test]
    fn uneven_levels_and_mixed_variable_length_ids() {
        // Levels of 3, 5 and 2 codes; item 2 mixes levels out of order, item 3 is shorter.
        let idx = index(&[&[(0, 2), (1, 4)], &[(0, 0), (1, 1), (2, 1)], &[(2, 0), (0, 1), (1, 0)], &[(1, 3)]]);
        let items = ItemTokens::from_index(&idx).unwrap();
        let v = items.vocab();
        assert_eq!(v.level_sizes(), &[3, 5, 2]);
        assert_eq!(v.size(), 2 + 10);
        assert_eq!(items.tokens(0), &[4, 5 + 4]);
        assert_eq!(items.tokens(2), &[10, 3, 5]);
        assert_eq!(items.max_len(), 3);
        for i in 0..4 {
            assert_eq!(items.item(items.tokens(i)), Some(i));
            let mut with_eos = items.tokens(i).to_vec();
            with_eos.push(EOS);
            assert_eq!(items.item(&with_eos), Some(i));
        }
        assert_eq!(items.item(&[4]), None);
    }

    #[test]
    fn bad_indexes_are_errors() {
        let idx = index(&[&[(0, 1), (1, 2)], &[(0, 1), (1, 2)]]);
        let err = ItemTokens::from_index(&idx).unwrap_err();
        assert_eq!(err, VocabError::Collision { first: 0, second: 1, id: "<a_1><b_2>".into() });
        let idx = index(&[&[(0, 1), (1, 9)]]);
        let err = ItemTokens::new(TokenVocab::new(vec![4, 4]), &idx).unwrap_err().to_string();
        assert!(err.contains("item 0: token <b_9> is outside the vocabulary (level 1 of the semantic codebook has 4 codes)"), "{err}");
        let err = ItemTokens::new(TokenVocab::new(vec![4]), &idx).unwrap_err().to_string();
        assert!(err.contains("the vocabulary has 1 levels of the semantic codebook"), "{err}");
        let cf = SemanticIndex { ids: vec![vec![CodeToken::cf(0, 1)]] };
        let err = ItemTokens::new(TokenVocab::new(vec![4]), &cf).unwrap_err().to_string();
        assert!(err.contains("token <A_1> is outside the vocabulary (the vocabulary has 0 levels of the collaborative codebook)"), "{err}");
        assert!(ItemTokens::from_index(&index(&[&[]])).is_err());
        assert!(ItemTokens::from_index(&SemanticIndex { ids: vec![] }).is_err());
    }

    #[test]
    fn two_codebooks_get_their_own_ranges_and_positions() {
        // Semantic levels of 4 and 3 codes, collaborative levels of 5 and 2.
        let v = TokenVocab::with_collaborative(vec![4, 3], vec![5, 2]);
        assert_eq!(v.size(), 2 + 7 + 7);
        assert_eq!(v.range(Codebook::Semantic, 1), 6..9);
        assert_eq!(v.range(Codebook::Collaborative, 0), 9..14);
        assert_eq!(v.cf_start(), Some(9));
        for t in [CodeToken::sem(0, 3), CodeToken::sem(1, 0), CodeToken::cf(0, 0), CodeToken::cf(1, 1)] {
            assert_eq!(v.code(v.token(t).unwrap()), Some(t));
        }
        assert_eq!(v.token(CodeToken::cf(2, 0)), None);
        assert_eq!(v.code(16), None);
        assert_eq!(TokenVocab::new(vec![4]).cf_start(), None);

        // Item 0: two CF tokens then one semantic; item 1: semantic, CF; item 2: semantic only.
        let idx = SemanticIndex {
            ids: vec![
                vec![CodeToken::cf(0, 4), CodeToken::cf(1, 1), CodeToken::sem(0, 2)],
                vec![CodeToken::sem(0, 1), CodeToken::cf(0, 0)],
                vec![CodeToken::sem(0, 0), CodeToken::sem(1, 2)],
            ],
        };
        let items = ItemTokens::new(v.clone(), &idx).unwrap();
        assert!(items.has_collaborative());
        assert_eq!(items.slot(0, 1), CodeToken::cf(1, 1));
        assert_eq!(items.slot(1, 0), CodeToken::sem(0, 1));
        assert_eq!(TokenVocab::from_index(&idx), TokenVocab::with_collaborative(vec![3, 3], vec![5, 2]));
        let e = items.encoder_input(&[&[0, 1, 2]]);
        // max_len 3: semantic positions 1..=3, EOS 4, collaborative 5..=7.
        assert_eq!(e.item_pos, vec![5, 6, 3, 1, 6, 1, 2, 4]);
        assert_eq!(e.item_slot, vec![4, 4, 4, 3, 3, 2, 2, 1]);
        assert_eq!(position_rows(3, true), 8);
        assert_eq!(position_rows(3, false), 5);
        assert!(!ItemTokens::new(v, &SemanticIndex { ids: vec![vec![CodeToken::sem(0, 1)]] }).unwrap().has_collaborative());
    }

    #[test]
    fn left_padding_keeps_rows_right_aligned() {
        let index = SemanticIndex::from_codes(&[vec![0, 1], vec![1, 0], vec![2, 2]]);
        let items = ItemTokens::from_index(&index).unwrap();
        let short = items.encoder_input(&[&[0], &[1, 2]]);
        let wide = short.clone().left_padded(9);
        assert_eq!(wide.seq, 9);
        for r in 0..2 {
            assert_eq!(&wide.input_ids[r * 9 + 4..r * 9 + 9], &short.input_ids[r * 5..r * 5 + 5]);
            assert!(wide.input_ids[r * 9..r * 9 + 4].iter().all(|&t| t == PAD as i64));
            assert_eq!(&wide.attention_mask[r * 9 + 4..r * 9 + 9], &short.attention_mask[r * 5..r * 5 + 5]);
            assert_eq!(&wide.item_slot[r * 9 + 4..r * 9 + 9], &short.item_slot[r * 5..r * 5 + 5]);
        }
        assert_eq!(short.clone().left_padded(3), short);
    }

    #[test]
    fn encoder_rows_are_left_padded_with_item_positions_and_slots() {
        let idx = index(&[&[(0, 0), (1, 0)], &[(0, 1), (1, 1)], &[(0, 2)]]);
        let items = ItemTokens::from_index(&idx).unwrap();
        let (t0, t1, t2) = (items.tokens(0).to_vec(), items.tokens(1).to_vec(), items.tokens(2).to_vec());
        let e = items.encoder_input(&[&[0, 1], &[2], &[]]);
        assert_eq!((e.batch, e.seq), (3, 5));
        assert_eq!(e.lengths, vec![5, 2, 1]);
        let ids = |r: usize| e.input_ids[r * 5..(r + 1) * 5].to_vec();
        assert_eq!(ids(0), vec![t0[0] as i64, t0[1] as i64, t1[0] as i64, t1[1] as i64, 1]);
        assert_eq!(ids(1), vec![0, 0, 0, t2[0] as i64, 1]);
        assert_eq!(ids(2), vec![0, 0, 0, 0, 1]);
        assert_eq!(&e.attention_mask[5..10], &[0.0, 0.0, 0.0, 1.0, 1.0]);
        assert_eq!(&e.item_pos[0..5], &[1, 2, 1, 2, 3]);
        assert_eq!(&e.item_slot[0..5], &[3, 3, 2, 2, 1]);
        assert_eq!(&e.item_pos[5..10], &[0, 0, 0, 1, 3]);
        assert_eq!(&e.item_slot[5..10], &[0, 0, 0, 2, 1]);
    }

    #[test]
    fn decoder_rows_shift_the_labels_behind_the_start_token() {
        let idx = index(&[&[(0, 0), (1, 0)], &[(0, 1)]]);
        let items = ItemTokens::from_index(&idx).unwrap();
        let d = items.decoder_input(&[0, 1]);
        let (a, b) = (items.tokens(0), items.tokens(1));
        assert_eq!(d.seq, 3);
        assert_eq!(d.decoder_input_ids, vec![0, a[0] as i64, a[1] as i64, 0, b[0] as i64, 0]);
        assert_eq!(d.labels, vec![a[0] as i64, a[1] as i64, 1, b[0] as i64, 1, 0]);
    }
}
