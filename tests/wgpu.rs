//! Tests on the wgpu backend over a software Vulkan adapter (lavapipe in CI).
//!
//! Every wgpu test lives in this one binary: each pays shader compilation. Without an adapter
//! they skip with a message, unless `SIDREC_REQUIRE_WGPU` is set (as `.ci/run` does), where a
//! missing adapter is a failure.

use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sidrec::cli::device::{info_report, DeviceChoice};
use sidrec::eval::ranking::{target_ranks, target_ranks_host};

mod support;

fn software_wgpu() -> Option<Device> {
    match DeviceChoice::WgpuCpu.init() {
        Ok(d) => Some(d),
        Err(e) => {
            assert!(std::env::var_os("SIDREC_REQUIRE_WGPU").is_none(), "no software wgpu adapter: {e:#}");
            eprintln!("skipped: no software wgpu adapter ({e:#})");
            None
        }
    }
}

#[test]
fn full_catalogue_ranks_on_wgpu_match_the_host() {
    let Some(device) = software_wgpu() else { return };
    let (batch, items) = (64, 3001);
    let mut rng = StdRng::seed_from_u64(5);
    // Coarse values so that many scores tie and the id tie-break matters.
    let scores: Vec<f32> = (0..batch * items).map(|_| rng.random_range(0..50) as f32 / 8.0).collect();
    let targets: Vec<u32> = (0..batch).map(|_| rng.random_range(0..items as u32)).collect();
    let expected = target_ranks_host(&scores, items, &targets);
    let t = Tensor::<2>::from_data(TensorData::new(scores.clone(), [batch, items]), &device);
    assert_eq!(target_ranks(t, &targets), expected);
    // The same on the CPU backend.
    let t = Tensor::<2>::from_data(TensorData::new(scores, [batch, items]), &Device::flex());
    assert_eq!(target_ranks(t, &targets), expected);
}

#[test]
fn info_reports_the_software_adapter() {
    if software_wgpu().is_none() {
        return;
    }
    let report = info_report(DeviceChoice::WgpuCpu).unwrap();
    assert!(report.contains("wgpu adapters found"), "{report}");
    assert!(report.contains("max buffer size"), "{report}");
    assert!(report.contains("f32"), "{report}");
}

#[test]
fn minilm_embeddings_on_wgpu_match_the_reference() {
    let Some(device) = software_wgpu() else { return };
    let Some(model) = support::model_dir() else { return };
    // One batch holds every sentence (2 to 256 tokens), so lavapipe compiles one set of
    // kernels; mixed-length batching itself is covered on the CPU backend.
    support::assert_minilm_parity(&model, &device, 64, 16);
}

#[test]
fn tokenizer_on_wgpu_is_deterministic_and_reloads_to_the_same_ids() {
    use sidrec::tokenizer::{assign_ids, load, save, train_rqvae, CollisionOptions, RqVaeConfig, Tokenizer, TrainOptions};
    let Some(device) = software_wgpu() else { return };
    let mut rng = StdRng::seed_from_u64(8);
    let (n, d) = (96, 12);
    let data: Vec<f32> = (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x = Tensor::<2>::from_data(TensorData::new(data, [n, d]), &device);
    let arch = RqVaeConfig::new(d).with_hidden(vec![16]).with_code_dim(4).with_levels(3).with_codebook_size(8);
    // Few kernels: Sinkhorn only in collision handling, 3 k-means iterations, one batch size.
    let opts = TrainOptions {
        epochs: 2,
        batch_size: 32,
        eval_every: 0,
        encode_batch: 96,
        kmeans_iters: 3,
        sinkhorn: None,
        ..TrainOptions::default()
    };
    let collide = CollisionOptions { rounds: 5, epsilon: 0.003, iters: 20 };
    let run = || {
        let tok = Tokenizer::RqVae(train_rqvae(x.clone(), &arch, &opts, |_| {}).model).canonical(&device);
        let (ids, report) = assign_ids(&tok, x.clone(), 96, collide);
        assert!(ids.collisions().is_empty(), "{report:?}");
        (tok, ids)
    };
    let (tok, ids) = run();
    assert_eq!(run().1, ids, "same seed, same device: same IDs");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.safetensors");
    save(&tok, &path).unwrap();
    let back = load(&path, &device).unwrap();
    assert_eq!(assign_ids(&back, x, 96, collide).0, ids, "reloaded tokenizer, same IDs");
}
