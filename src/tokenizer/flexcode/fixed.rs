//! FlexCode's semantic side from a fixed, ready-made index (`tokenizer.flexcode.semantic_index`;
//! the design is ours, SPEC section 5 assumes a semantic RQ-VAE over item text).
//!
//! Some datasets ship no item text but a semantic ID per item made elsewhere (Amazon Beauty with
//! LETTER's 4-level index). FlexCode then takes its semantic codes from that index and trains
//! no semantic RQ-VAE:
//! - the semantic code of item i at level l is the index's l-th token of item i (only the
//!   first L levels are read, L = `tokenizer.levels`, the token budget; an index shorter than L
//!   is refused);
//! - what the router, the fused latent and the alignment read of the semantic side comes from a
//!   trainable table per level, `E_l` of `codebook_size x code_dim`: the contribution of level l
//!   is `qsem_il = E_l[c_il]` (projected by `proj_sem` into the shared space, as the RQ-VAE's
//!   codes are) and the semantic latent is their sum `z_sem_i = sum_l E_l[c_il]` (as an
//!   RQ-VAE's quantised latent is the sum of its levels' codes).
//!
//! What trains the tables: the alignment InfoNCE between `proj_sem(z_sem)` and `proj_cf(z_cf)`.
//! It pulls every code's vector towards the CF latents of the items that hold it, so `z_sem` of
//! an item is what its semantic group says about its collaborative behaviour, pooled over every
//! item sharing its codes: the signal a tail item's own, noisy CF embedding lacks. The transition
//! loss trains them only with `transition_to_encoders`, as it reaches the RQ-VAEs' codebooks only
//! then (otherwise the router would weigh tables fitted to the transitions against fixed CF
//! codes). With neither, the tables would stay random, so that setting is refused.
//!
//! The tables start at the scale of the CF codebooks after their k-means initialisation (each
//! entry normal with standard deviation `rms(CF level-1 codes) / sqrt(L)`, so that `z_sem` has
//! about the scale of a CF latent and neither side dominates the fused latent at the start).

use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::idmap::IdMap;
use crate::data::semantic_index::{Codebook, SemanticIndex};

/// The trainable side of fixed semantic codes: one table per level.
#[derive(Module, Debug)]
pub struct FixedCodes {
    /// `tables[l]`: `[codebook_size, code_dim]`, the vector of each code of level l.
    pub tables: Vec<Param<Tensor<2>>>,
}

impl FixedCodes {
    /// Tables of `levels` x `codebook_size` x `code_dim`, entries normal with standard
    /// deviation `std`, drawn from `seed`.
    pub fn init(levels: usize, codebook_size: usize, code_dim: usize, std: f64, seed: u64, device: &Device) -> Self {
        let tables = (0..levels as u64)
            .map(|l| Param::from_tensor(crate::seed::normal([codebook_size, code_dim], seed.wrapping_add(l), device).mul_scalar(std)))
            .collect();
        Self { tables }
    }

    /// Number of levels.
    pub fn levels(&self) -> usize {
        self.tables.len()
    }

    /// Codes per level.
    pub fn codebook_size(&self) -> usize {
        self.tables.first().map_or(0, |t| t.val().dims()[0])
    }

    /// Width of a code vector.
    pub fn code_dim(&self) -> usize {
        self.tables.first().map_or(0, |t| t.val().dims()[1])
    }

    /// Every level's contribution `E_l[c_il]`.
    ///
    /// # Shapes
    /// - codes: `[batch, levels]`
    /// - output: `[batch, levels, code_dim]`
    pub fn contributions(&self, codes: Tensor<2, Int>) -> Tensor<3> {
        let [batch, levels] = codes.dims();
        assert_eq!(levels, self.levels(), "one code per level");
        let per_level = self
            .tables
            .iter()
            .enumerate()
            .map(|(l, t)| t.val().select(0, codes.clone().slice([0..batch, l..l + 1]).reshape([batch])))
            .collect();
        Tensor::stack(per_level, 1)
    }

    /// The semantic latent `sum_l E_l[c_il]`.
    ///
    /// # Shapes
    /// - codes: `[batch, levels]`
    /// - output: `[batch, code_dim]`
    pub fn latent(&self, codes: Tensor<2, Int>) -> Tensor<2> {
        let [batch, _] = codes.dims();
        self.contributions(codes).sum_dim(1).reshape([batch, self.code_dim()])
    }
}

/// `[items, levels]` the codes as a device tensor.
pub fn codes_tensor(codes: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let levels = codes.first().map_or(0, Vec::len);
    let flat: Vec<i64> = codes.iter().flatten().map(|&c| c as i64).collect();
    Tensor::from_ints(TensorData::new(flat, [codes.len(), levels]), device)
}

/// The semantic codes FlexCode reads from `index` for a token budget of `levels`: every item's
/// first `levels` tokens, which must be semantic (lowercase) ones, of codes below
/// `codebook_size`. Errors name the item (its raw id in `items`) and the problem.
pub fn semantic_codes(index: &SemanticIndex, items: &IdMap, levels: usize, codebook_size: usize) -> Result<Vec<Vec<u32>>, String> {
    let shortest = index.ids.iter().map(Vec::len).min().unwrap_or(0);
    if shortest < levels {
        let i = index.ids.iter().position(|id| id.len() == shortest).unwrap_or(0);
        return Err(format!(
            "the index gives item {:?} {shortest} levels, but the token budget tokenizer.levels is {levels}: \
             FlexCode reads the first L levels of every item's semantic ID (lower tokenizer.levels to at most {shortest})",
            items.raw(i as u32)
        ));
    }
    index
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            id[..levels]
                .iter()
                .map(|t| {
                    if t.codebook != Codebook::Semantic {
                        Err(format!(
                            "item {:?} has the collaborative token {t} among its first {levels}: a semantic index holds lowercase (semantic) tokens only",
                            items.raw(i as u32)
                        ))
                    } else if t.code as usize >= codebook_size {
                        Err(format!(
                            "item {:?} has token {t}, code {} beyond tokenizer.codebook_size = {codebook_size} (set it to the index's codebook size)",
                            items.raw(i as u32),
                            t.code
                        ))
                    } else {
                        Ok(t.code)
                    }
                })
                .collect()
        })
        .collect()
}

/// Reads the index file `path` (LC-Rec format, every catalogue item in `items` present) and
/// returns [`semantic_codes`]; every error names the file.
pub fn read_semantic_codes(path: &Path, items: &IdMap, levels: usize, codebook_size: usize) -> Result<Vec<Vec<u32>>, String> {
    let (index, _) = SemanticIndex::read(path, items).map_err(|e| format!("tokenizer.flexcode.semantic_index: {e}"))?;
    semantic_codes(&index, items, levels, codebook_size).map_err(|e| format!("{}: {e}", path.display()))
}
