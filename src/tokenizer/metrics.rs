//! What a tokenizer run reports: codebook use per level (used codes, perplexity), collision
//! rates before and after collision handling, reconstruction error.
//!
//! Perplexity is `exp(entropy)` of a level's code distribution over the items: the number of
//! equally used codes that would give the same entropy (codebook size when perfectly balanced).


use serde::Serialize;

use super::collisions::CollisionReport;

/// Use of one codebook level over the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelUsage {
    /// 0-based level (`a` = 0).
    pub level: usize,
    /// Distinct codes used by at least one item.
    pub used_codes: usize,
    /// Codes available.
    pub codebook_size: usize,
    /// `used_codes / codebook_size`.
    pub utilisation: f64,
    /// `exp(entropy)` of the code distribution.
    pub perplexity: f64,
}

/// Per-level use of `codes` (one row per item, all of the same length).
pub fn level_usage(codes: &[Vec<u32>], codebook_size: usize) -> Vec<LevelUsage> {
    let levels = codes.first().map_or(0, Vec::len);
    (0..levels)
        .map(|level| {
            let size = codebook_size.max(codes.iter().map(|c| c[level] as usize + 1).max().unwrap_or(0));
            let mut counts = vec![0usize; size];
            for c in codes {
                counts[c[level] as usize] += 1;
            }
            let n = codes.len() as f64;
            let entropy: f64 =
                counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 / n).map(|p| -p * p.ln()).sum();
            let used_codes = counts.iter().filter(|&&c| c > 0).count();
            LevelUsage {
                level,
                used_codes,
                codebook_size,
                utilisation: used_codes as f64 / codebook_size as f64,
                perplexity: entropy.exp(),
            }
        })
        .collect()
}

pub use crate::data::semantic_index::collision_rate;

/// Everything `metrics.json` records about a tokenizer run.
#[derive(Debug, Clone, Serialize)]
pub struct TokenizerMetrics {
    /// `rqvae`, `rqkmeans` or `import`.
    pub kind: String,
    /// Catalogue items.
    pub items: usize,
    /// Codebook use of the tokenizer's own levels (final IDs, after Sinkhorn re-assignment).
    pub levels: Vec<LevelUsage>,
    /// Mean squared reconstruction error over the catalogue (none for imported indices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recon_mse: Option<f64>,
    /// Collision handling: rates before and after, rounds, the extra level.
    pub collisions: CollisionReport,
    /// Length of the final IDs (levels plus the disambiguation level when one was added).
    pub id_length: usize,
    /// Device the tokenizer ran on.
    pub device: String,
    /// Wall-clock seconds of training (or import) and ID assignment.
    pub seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_perplexity() {
        let codes = vec![vec![0, 1], vec![1, 1], vec![2, 1], vec![3, 1]];
        let u = level_usage(&codes, 8);
        assert_eq!(u[0].used_codes, 4);
        assert!((u[0].perplexity - 4.0).abs() < 1e-9);
        assert!((u[0].utilisation - 0.5).abs() < 1e-12);
        assert_eq!(u[1].used_codes, 1);
        assert!((u[1].perplexity - 1.0).abs() < 1e-9);
        assert_eq!(collision_rate(&codes), 0.0);
        let dup = vec![vec![0, 1], vec![0, 1], vec![2, 1], vec![0, 1]];
        assert!((collision_rate(&dup) - 0.5).abs() < 1e-12);
    }
}
