//! Tokenizer speed on 12,101 items (the Amazon Beauty catalogue size) of random unit-norm
//! 384-d embeddings, with the SPEC sizes (encoder 2048-1024-512-256-128-64-32, 4 x 256 codes,
//! batch 1024, Sinkhorn at the last level, dead-code re-seeding):
//! - RQ-VAE k-means initialisation (residual k-means on the encoder outputs, 10 iterations);
//! - one RQ-VAE epoch, cold (first, compiles kernels on wgpu) and warm (the second);
//! - RQ-KMeans fit (4 levels of 256 codes, 10 iterations each) on the raw embeddings;
//! - final IDs: encoding the catalogue plus collision handling.
//!
//! ```sh
//! cargo bench --bench rqvae_epoch -- --device cpu --device wgpu-cpu [--items 12101]
//! ```
//! A plain timed binary, not criterion: one epoch takes seconds to minutes on two cores.

mod common;

use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sidrec::tokenizer::{
    assign_ids, train_rqvae, CollisionOptions, KMeansConfig, ResidualKMeansConfig, RqKMeans, RqVaeConfig, Tokenizer,
    TrainOptions,
};

/// `n` random unit vectors of width `d` (Gaussian directions), seeded.
fn embeddings(n: usize, d: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(17);
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        let row: Vec<f32> = (0..d)
            .map(|_| {
                let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect();
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        data.extend(row.iter().map(|v| v / norm));
    }
    data
}

fn main() {
    let args = common::Args::from_env();
    let devices = args.devices(&["cpu", "wgpu-cpu"]);
    let n = args.num("--items", 12_101);
    let d = 384;
    let data = embeddings(n, d);
    for dev in &devices {
        let Some((_, device)) = common::init_device(dev) else { continue };
        let x = Tensor::<2>::from_data(TensorData::new(data.clone(), [n, d]), &device);
        let arch = RqVaeConfig::new(d);
        // Three epochs: the first is cold, the second warm; the third carries the final evaluation.
        let opts = TrainOptions { epochs: 3, eval_every: 0, ..TrainOptions::default() };
        let start = Instant::now();
        let trained = train_rqvae(x.clone(), &arch, &opts, |m| eprintln!("{dev}: epoch {} at {:.2}s", m.epoch, m.elapsed_s));
        let total = start.elapsed().as_secs_f64();
        let t: Vec<f64> = trained.log.iter().map(|m| m.elapsed_s).collect();
        let collide = CollisionOptions { rounds: 20, epsilon: 0.003, iters: 50 };
        let tok = Tokenizer::RqVae(trained.model).canonical(&device);
        let start = Instant::now();
        let (_, report) = assign_ids(&tok, x.clone(), 4096, collide);
        let ids_s = start.elapsed().as_secs_f64();
        println!(
            "{{\"device\": \"{dev}\", \"items\": {n}, \"dim\": {d}, \"rqvae_init_s\": {:.2}, \"rqvae_epoch_cold_s\": {:.2}, \"rqvae_epoch_warm_s\": {:.2}, \"rqvae_3_epochs_total_s\": {total:.2}, \"ids_s\": {ids_s:.2}, \"sinkhorn_rounds\": {}}}",
            t[0],
            t[1] - t[0],
            t[2] - t[1],
            report.sinkhorn_rounds
        );
        let kcfg = ResidualKMeansConfig { levels: 4, kmeans: KMeansConfig { k: 256, iters: 10, balanced: None, seed: 0 } };
        let start = Instant::now();
        let tok = Tokenizer::RqKMeans(RqKMeans::fit(x.clone(), &kcfg));
        let fit_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let (_, report) = assign_ids(&tok, x, 4096, collide);
        println!(
            "{{\"device\": \"{dev}\", \"items\": {n}, \"dim\": {d}, \"rqkmeans_fit_s\": {fit_s:.2}, \"ids_s\": {:.2}, \"collision_rate_before\": {:.4}}}",
            start.elapsed().as_secs_f64(),
            report.rate_before
        );
    }
}
