//! k-means on the device: k-means++ seeding, Lloyd iterations, and a balanced variant.
//!
//! References: Arthur & Vassilvitskii, "k-means++" (SODA 2007) for the seeding; Lloyd's
//! algorithm for the iterations. The balanced variant replaces the nearest-centroid assignment
//! by a Sinkhorn-balanced one (equal mass per centroid), a soft form of the size-constrained
//! k-means the LC-Rec/LETTER code uses for codebook initialisation.
//!
//! Everything stays on the device: the seeding samples with an exponential race against
//! host-drawn noise (no read-back), the centroid update is a one-hot matmul
//! (deterministic, unlike an atomic scatter-add), and empty clusters are re-seeded with the
//! points farthest from their centroid (the only read-back: one flag per iteration saying
//! whether any cluster is empty).

use burn::tensor::{Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::sinkhorn::{sinkhorn_assign, sq_distances};
use crate::kernels::quantize::nearest_code;

/// How to run k-means.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansConfig {
    /// Number of centroids.
    pub k: usize,
    /// Lloyd iterations after seeding.
    pub iters: usize,
    /// Sinkhorn-balanced assignments (epsilon, iterations) instead of nearest-centroid ones.
    pub balanced: Option<(f64, usize)>,
    /// Seed of the k-means++ sampling.
    pub seed: u64,
}

/// Centroids and the final assignment.
#[derive(Debug, Clone)]
pub struct KMeans {
    /// `[k, d]` centroids.
    pub centroids: Tensor<2>,
    /// `[n]` nearest centroid of every point (for the final centroids).
    pub assignment: Tensor<1, Int>,
}

/// k-means++ seeding: the first centroid uniformly, each next one with probability proportional
/// to the squared distance to the nearest centroid so far.
///
/// The draw is an exponential race: with `E_i` independent Exp(1) variables (drawn on the host
/// from `rng`), `argmax_i w_i / E_i` is index `i` with probability `w_i / sum(w)`. That is one
/// reduction on the device per centroid, with no read-back (a cumulative sum would do the same
/// in principle, but Burn's wgpu `cumsum` is quadratic in the length).
///
/// # Shapes
/// - x: `[n, d]`
/// - output: `[k, d]`
pub fn kmeans_plus_plus(x: Tensor<2>, k: usize, rng: &mut StdRng) -> Tensor<2> {
    let [n, d] = x.dims();
    assert!(n > 0 && k > 0, "k-means++ needs points ({n}) and centroids ({k})");
    let device = x.device();
    let x = x.detach();
    let dist_to = |c: Tensor<2>| (x.clone() - c.expand([n, d])).powi_scalar(2).sum_dim(1).reshape([n]);
    let first = Tensor::<1, Int>::from_ints(TensorData::new(vec![rng.random_range(0..n) as i64], [1]), &device);
    let mut centroids = vec![x.clone().select(0, first)];
    let mut min_dist = dist_to(centroids[0].clone());
    for _ in 1..k {
        let exp: Vec<f32> = (0..n).map(|_| (-(1.0 - rng.random::<f64>()).ln()).max(1e-30) as f32).collect();
        let exp = Tensor::<1>::from_data(TensorData::new(exp, [n]), &device);
        let idx = (min_dist.clone() / exp).argmax(0); // [1]
        let c = x.clone().select(0, idx); // [1, d]
        min_dist = min_dist.min_pair(dist_to(c.clone()));
        centroids.push(c);
    }
    Tensor::cat(centroids, 0)
}

/// Assigns every point to a centroid: nearest, or Sinkhorn-balanced.
fn assign(x: Tensor<2>, centroids: Tensor<2>, balanced: Option<(f64, usize)>) -> (Tensor<1, Int>, Tensor<1>) {
    match balanced {
        None => {
            let near = nearest_code(x, centroids);
            (near.index, near.dist)
        }
        Some((eps, iters)) => {
            let dist = sq_distances(x, centroids);
            let [n, _] = dist.dims();
            let index = sinkhorn_assign(dist.clone(), eps, iters);
            let d = dist.gather(1, index.clone().reshape([n, 1])).reshape([n]);
            (index, d)
        }
    }
}

/// Runs k-means on the rows of `x`.
///
/// # Shapes
/// - x: `[n, d]`
/// - output: centroids `[k, d]`, assignment `[n]`
pub fn kmeans(x: Tensor<2>, cfg: &KMeansConfig) -> KMeans {
    let [n, _] = x.dims();
    let x = x.detach();
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let k = cfg.k;
    let mut centroids = kmeans_plus_plus(x.clone(), k, &mut rng);
    for _ in 0..cfg.iters {
        let (index, dist) = assign(x.clone(), centroids.clone(), cfg.balanced);
        let one_hot = index.one_hot::<2>(k).float(); // [n, k]
        let sums = one_hot.clone().transpose().matmul(x.clone()); // [k, d]
        let counts = one_hot.sum_dim(0).transpose(); // [k, 1]
        let [_, d] = sums.dims();
        let means = sums / counts.clone().clamp_min(1.0).expand([k, d]);
        let empty = counts.equal_elem(0.0); // [k, 1]
        // One flag read per iteration spares the sort (slow on wgpu) when no cluster is empty.
        if !empty.clone().any().into_scalar::<bool>() {
            centroids = means;
            continue;
        }
        // The e-th empty cluster takes the e-th point farthest from its centroid.
        let far = dist.argsort_descending(0); // [n]
        let rank = (empty.clone().int().cumsum(0) - 1).clamp(0, n as i64 - 1).reshape([k]);
        let far_points = x.clone().select(0, far.select(0, rank)); // [k, d]
        let empty = empty.expand([k, d]);
        centroids = means.mask_where(empty, far_points);
    }
    let (assignment, _) = assign(x, centroids.clone(), None);
    KMeans { centroids, assignment }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// `per` points around each of `centres`, shuffled, with their true cluster.
    fn blobs(centres: &[[f32; 3]], per: usize, spread: f32, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..centres.len() * per).map(|i| i % centres.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let data = order
            .iter()
            .flat_map(|&c| centres[c].map(|v| v + rng.random_range(-spread..spread)))
            .collect();
        (data, order)
    }

    fn labels(t: Tensor<1, Int>) -> Vec<usize> {
        t.into_data().try_into_vec_as::<i64>().unwrap().into_iter().map(|v| v as usize).collect()
    }

    /// Every true cluster maps to exactly one found cluster and vice versa.
    fn recovers(found: &[usize], truth: &[usize], k: usize) -> bool {
        let mut map = vec![None; k];
        for (&f, &t) in found.iter().zip(truth) {
            match map[t] {
                None => map[t] = Some(f),
                Some(prev) if prev != f => return false,
                _ => {}
            }
        }
        let mut used: Vec<_> = map.iter().flatten().collect();
        used.sort();
        used.dedup();
        used.len() == k
    }

    #[test]
    fn kmeans_recovers_separable_clusters() {
        let device = Device::flex();
        let centres = [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0], [10.0, 10.0, 10.0], [-10.0, 5.0, 0.0]];
        let (data, truth) = blobs(&centres, 40, 1.0, 1);
        let x = Tensor::<2>::from_data(TensorData::new(data, [240, 3]), &device);
        for balanced in [None, Some((0.003, 50))] {
            for seed in 0..3 {
                let km = kmeans(x.clone(), &KMeansConfig { k: 6, iters: 10, balanced, seed });
                assert!(recovers(&labels(km.assignment), &truth, 6), "balanced {balanced:?} seed {seed}");
            }
        }
    }

    #[test]
    fn seeding_is_deterministic_and_picks_distinct_points() {
        let device = Device::flex();
        let (data, _) = blobs(&[[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]], 30, 2.0, 2);
        let x = Tensor::<2>::from_data(TensorData::new(data, [60, 3]), &device);
        let a = kmeans_plus_plus(x.clone(), 20, &mut StdRng::seed_from_u64(4)).into_data();
        let b = kmeans_plus_plus(x.clone(), 20, &mut StdRng::seed_from_u64(4)).into_data();
        assert_eq!(a, b);
        let rows: Vec<f32> = a.try_into_vec_as().unwrap();
        let mut seen: Vec<&[f32]> = rows.chunks(3).collect();
        seen.sort_by(|p, q| p.partial_cmp(q).unwrap());
        seen.dedup();
        assert_eq!(seen.len(), 20, "k-means++ never picks a chosen point twice while others are left");
    }

    #[test]
    fn every_cluster_is_used_and_more_centroids_than_points_do_not_panic() {
        let device = Device::flex();
        let (data, _) = blobs(&[[0.0, 0.0, 0.0]], 50, 1.0, 3);
        let x = Tensor::<2>::from_data(TensorData::new(data, [50, 3]), &device);
        let km = kmeans(x.clone(), &KMeansConfig { k: 16, iters: 10, balanced: None, seed: 0 });
        let mut used = labels(km.assignment);
        used.sort();
        used.dedup();
        assert_eq!(used.len(), 16);
        let km = kmeans(x.slice(0..5), &KMeansConfig { k: 8, iters: 3, balanced: None, seed: 0 });
        assert_eq!(km.centroids.dims(), [8, 3]);
    }
}
