//! Embedding a whole catalogue: one text per item, items without text handled by a documented
//! fallback.
//!
//! Fallback *(ours)*: an item whose selected fields are all empty gets the normalised mean of
//! the embeddings of the items that have text, a neutral point that carries no false signal;
//! such items are counted and reported. A catalogue with no text at all is an error.

use super::encoder::SentenceEncoder;
use super::item_text::item_text;
use crate::data::{DataError, Dataset, Embeddings};

/// The embeddings of a catalogue and the items that had no text.
#[derive(Debug, Clone)]
pub struct ItemEmbeddings {
    /// `[items, dim]` in dense item order, rows of unit norm.
    pub embeddings: Embeddings,
    /// Dense ids of the items that got the fallback.
    pub missing_text: Vec<u32>,
}

/// Embeds every item of `ds` from the fields `fields` (all when empty).
pub fn embed_items(
    ds: &Dataset,
    encoder: &SentenceEncoder,
    fields: &[String],
    batch_size: usize,
    progress: impl FnMut(usize),
) -> Result<ItemEmbeddings, DataError> {
    let texts: Vec<Option<String>> = ds.item_text.iter().map(|t| item_text(t, fields)).collect();
    let with_text: Vec<usize> = (0..texts.len()).filter(|&i| texts[i].is_some()).collect();
    if with_text.is_empty() {
        let what = if fields.is_empty() { "any text field".to_string() } else { format!("the fields {fields:?}") };
        return Err(DataError::dataset(
            &ds.name,
            format!("no item has {what}: give an item file (<name>.item.json or <name>.item) or precomputed embeddings"),
        ));
    }
    let refs: Vec<&str> = with_text.iter().map(|&i| texts[i].as_deref().expect("has text")).collect();
    let flat = encoder.embed(&refs, batch_size, progress)?;
    let dim = encoder.dim;

    let mut mean = vec![0f64; dim];
    for row in flat.chunks_exact(dim) {
        mean.iter_mut().zip(row).for_each(|(m, &x)| *m += x as f64);
    }
    let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    let fallback: Vec<f32> = mean.iter().map(|x| (x / norm) as f32).collect();

    let mut data = vec![0f32; ds.num_items() * dim];
    for (row, &i) in flat.chunks_exact(dim).zip(&with_text) {
        data[i * dim..(i + 1) * dim].copy_from_slice(row);
    }
    let missing_text: Vec<u32> = (0..texts.len()).filter(|&i| texts[i].is_none()).map(|i| i as u32).collect();
    for &i in &missing_text {
        let i = i as usize;
        data[i * dim..(i + 1) * dim].copy_from_slice(&fallback);
    }
    Ok(ItemEmbeddings { embeddings: Embeddings::new(ds.num_items(), dim, data), missing_text })
}
