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
