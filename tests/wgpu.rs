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

/// Reads the T5 parity fixture (`tests/fixtures/t5_reference.py`).
fn t5_fixture() -> (std::path::PathBuf, Vec<u8>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/t5_tiny.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

fn fixture_tensor(st: &safetensors::SafeTensors, name: &str) -> (Vec<usize>, Vec<u8>) {
    let v = st.tensor(name).unwrap();
    (v.shape().to_vec(), v.data().to_vec())
}

#[test]
fn t5_on_wgpu_matches_transformers_and_the_cpu_beam_search() {
    use burn::tensor::{Int, Tolerance};
    use sidrec::data::{CodeToken, SemanticIndex};
    use sidrec::decode::{beam_search, Trie};
    use sidrec::model::t5::{load_safetensors, T5Config};
    use sidrec::model::ItemTokens;

    let Some(device) = software_wgpu() else { return };
    let config = T5Config::new(40)
        .with_d_model(16)
        .with_d_kv(8)
        .with_d_ff(32)
        .with_num_layers(2)
        .with_num_decoder_layers(2)
        .with_num_heads(2)
        .with_relative_attention_num_buckets(8)
        .with_relative_attention_max_distance(20);
    let (path, bytes) = t5_fixture();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut model = config.init(&device);
    load_safetensors(&mut model, &path, &device).unwrap();
    let ints = |name: &str| {
        let (shape, data) = fixture_tensor(&st, name);
        let v: Vec<i64> = data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
        Tensor::<2, Int>::from_ints(TensorData::new(v, [shape[0], shape[1]]), &device)
    };
    let t0 = std::time::Instant::now();
    for b in 0..2 {
        let logits = model.forward(
            ints(&format!("batch{b}.input_ids")),
            ints(&format!("batch{b}.attention_mask")).float(),
            ints(&format!("batch{b}.decoder_input_ids")),
        );
        let (shape, data) = fixture_tensor(&st, &format!("batch{b}.logits"));
        let want: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let want = TensorData::new(want, shape);
        let diff = (logits.clone() - Tensor::from_data(want.clone(), &device)).abs().max().into_scalar::<f32>();
        eprintln!("t5 parity batch {b} on wgpu: max |logit diff| = {diff:e} ({:?})", t0.elapsed());
        logits.into_data().assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-3));
    }

    // Beam search over a 3-level catalogue of 30 items, on wgpu and on the CPU backend.
    let ids = (0..30u32)
        .map(|i| vec![CodeToken { level: 0, code: i % 3 }, CodeToken { level: 1, code: i / 3 % 5 }, CodeToken { level: 2, code: i / 15 }])
        .collect();
    let items = ItemTokens::from_index(&SemanticIndex { ids }).unwrap();
    let histories: [&[u32]; 3] = [&[1, 2, 3], &[29], &[]];
    let cpu = Device::flex();
    let mut cpu_model = config.init(&cpu);
    load_safetensors(&mut cpu_model, &path, &cpu).unwrap();
    let run = |m: &sidrec::model::T5ForConditionalGeneration, d: &Device| {
        let trie = Trie::new(&items, false, d).unwrap();
        beam_search(m, &items.encoder_input(&histories).to_device(d), &trie, 8, 5)
    };
    let (got, want) = (run(&model, &device), run(&cpu_model, &cpu));
    eprintln!("beam search done ({:?})", t0.elapsed());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.iter().map(|x| x.0).collect::<Vec<_>>(), w.iter().map(|x| x.0).collect::<Vec<_>>());
        assert!(g.iter().zip(w).all(|(a, b)| (a.1 - b.1).abs() < 1e-3), "{g:?} vs {w:?}");
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
