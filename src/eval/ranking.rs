//! Full-catalogue ranking on the device, for models that score every item (e.g. SASRec).
//!
//! The rank of a target is the position a stable descending sort by score would give it, with
//! the smaller item id first among equal scores. It is computed by counting, so no
//! `[batch, items]` sort or index tensor is needed and only `batch` integers come back to the
//! host.

use burn::tensor::{Int, Tensor, TensorData};

/// The 0-based rank of `targets[b]` in row `b` of `scores` (`[batch, items]`, finite values).
///
/// # Shapes
/// - scores: `[batch, items]`
/// - targets: `batch` item ids
pub fn target_ranks(scores: Tensor<2>, targets: &[u32]) -> Vec<u32> {
    let [batch, items] = scores.dims();
    assert_eq!(targets.len(), batch, "one target per row");
    assert!(targets.iter().all(|&t| (t as usize) < items), "target id out of range");
    let device = scores.device();
    let t = Tensor::<1, Int>::from_ints(
        TensorData::new(targets.iter().map(|&x| x as i64).collect::<Vec<_>>(), [batch]),
        &device,
    )
    .reshape([batch, 1]);
    let target_scores = scores.clone().gather(1, t.clone()).expand([batch, items]); // [batch, items]
    let ids = Tensor::<1, Int>::arange(0..items as i64, &device).reshape([1, items]).expand([batch, items]);
    let above = scores.clone().greater(target_scores.clone()).int().sum_dim(1); // [batch, 1]
    let ties_before = scores.equal(target_scores).bool_and(ids.lower(t.expand([batch, items]))).int().sum_dim(1);
    (above + ties_before)
        .into_data()
        .try_into_vec_as::<i64>()
        .expect("integer ranks")
        .into_iter()
        .map(|r| r as u32)
        .collect()
}

/// Host reference of [`target_ranks`] on a row-major `[batch, items]` slice.
pub fn target_ranks_host(scores: &[f32], items: usize, targets: &[u32]) -> Vec<u32> {
    targets
        .iter()
        .enumerate()
        .map(|(b, &t)| {
            let row = &scores[b * items..(b + 1) * items];
            let s = row[t as usize];
            row.iter().enumerate().filter(|&(i, &x)| x > s || (x == s && i < t as usize)).count() as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn matches_the_host_reference_with_ties() {
        let device = Device::flex();
        let scores = vec![0.5, 0.9, 0.5, 0.1, /* row 2 */ 1.0, 1.0, 1.0, 1.0];
        let targets = [2, 3];
        let t = Tensor::<2>::from_data(TensorData::new(scores.clone(), [2, 4]), &device);
        let got = target_ranks(t, &targets);
        assert_eq!(got, target_ranks_host(&scores, 4, &targets));
        assert_eq!(got, vec![2, 3]);
    }
}
