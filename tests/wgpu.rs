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
    assert!(report.contains("--device auto would take:"), "{report}");
    // `auto` sees the software adapter through Vulkan and never takes it.
    let adapters = sidrec::cli::device::primary_adapters();
    let software: Vec<_> = adapters.iter().filter(|a| a.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu).collect();
    assert!(!software.is_empty(), "{adapters:?}");
    if let sidrec::cli::device::AutoTarget::Gpu { name, .. } = sidrec::cli::device::pick_auto(&adapters).target {
        assert!(software.iter().all(|a| a.name != name), "auto took the software adapter {name}");
    }
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
    let mut model = sidrec::seed::init_unseeded(|| config.init(&device));
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
        .map(|i| vec![CodeToken::sem(0, i % 3), CodeToken::sem(1, i / 3 % 5), CodeToken::sem(2, i / 15)])
        .collect();
    let items = ItemTokens::from_index(&SemanticIndex { ids }).unwrap();
    let histories: [&[u32]; 3] = [&[1, 2, 3], &[29], &[]];
    let cpu = Device::flex();
    let mut cpu_model = sidrec::seed::init_unseeded(|| config.init(&cpu));
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


mod quantize {
    use super::software_wgpu;
    use burn::tensor::{Device, Int, Tensor, TensorData};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use sidrec::kernels::quantize::{kernel_available, nearest_code, nearest_code_reference, NearestCode};

    fn host(out: NearestCode) -> (Vec<i64>, Vec<f32>) {
        (out.index.into_data().try_into_vec_as().unwrap(), out.dist.into_data().try_into_vec_as().unwrap())
    }

    /// Exact (f64) squared distances of every row to every code, `[n][k]`.
    fn oracle(x: &[f32], c: &[f32], d: usize) -> Vec<Vec<f64>> {
        x.chunks(d)
            .map(|r| c.chunks(d).map(|q| r.iter().zip(q).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum()).collect())
            .collect()
    }

    /// `n x d` values in [-1, 1), or small integers (exact arithmetic on both paths) when `ints`.
    fn values(rng: &mut StdRng, len: usize, ints: bool) -> Vec<f32> {
        (0..len).map(|_| if ints { rng.random_range(-3i32..=3) as f32 } else { rng.random_range(-1.0f32..1.0) }).collect()
    }

    /// A codebook whose odd rows repeat the row before them (exact ties), and rows of x that sit
    /// exactly on codes or near them.
    fn tied_inputs(rng: &mut StdRng, n: usize, k: usize, d: usize) -> (Vec<f32>, Vec<f32>) {
        let mut c = values(rng, k * d, true);
        for i in (1..k).step_by(2) {
            let (prev, this) = c.split_at_mut(i * d);
            this[..d].copy_from_slice(&prev[(i - 1) * d..]);
        }
        let mut x = values(rng, n * d, true);
        for (r, row) in x.chunks_mut(d).enumerate().filter(|(r, _)| r % 3 == 0) {
            let code = (r * 7) % k;
            row.copy_from_slice(&c[code * d..(code + 1) * d]);
            row[r % d] += 1.0;
        }
        (x, c)
    }

    fn run(device: &Device, x: &[f32], c: &[f32], d: usize, reference: bool) -> (Vec<i64>, Vec<f32>) {
        let xt = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [x.len() / d, d]), device);
        let ct = Tensor::<2>::from_data(TensorData::new(c.to_vec(), [c.len() / d, d]), device);
        host(if reference { nearest_code_reference(xt, ct) } else { nearest_code(xt, ct) })
    }

    /// Exact inputs: kernel, reference and the host oracle agree on every index and distance,
    /// and every tie goes to the smallest index.
    fn assert_exact(device: &Device, n: usize, k: usize, d: usize, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (x, c) = tied_inputs(&mut rng, n, k, d);
        let (ki, kd) = run(device, &x, &c, d, false);
        let (ri, rd) = run(device, &x, &c, d, true);
        let mut ties = 0;
        for (r, row) in oracle(&x, &c, d).iter().enumerate() {
            let min = row.iter().cloned().fold(f64::INFINITY, f64::min);
            let first = row.iter().position(|&v| v == min).unwrap() as i64;
            ties += (row.iter().filter(|&&v| v == min).count() > 1) as usize;
            assert_eq!((ki[r], kd[r] as f64), (first, min), "kernel, row {r} (n={n}, k={k}, d={d})");
            assert_eq!((ri[r], rd[r] as f64), (first, min), "reference, row {r} (n={n}, k={k}, d={d})");
        }
        assert!(ties > n / 4, "only {ties} tied rows of {n}");
    }

    /// Random real inputs: distances agree within float error and each path's index is a
    /// nearest code up to that error (near-ties may legitimately differ).
    fn assert_close(device: &Device, n: usize, k: usize, d: usize, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (x, c) = (values(&mut rng, n * d, false), values(&mut rng, k * d, false));
        let (ki, kd) = run(device, &x, &c, d, false);
        let (ri, rd) = run(device, &x, &c, d, true);
        let tol = 1e-4 * d as f64;
        let mut same = 0;
        for (r, row) in oracle(&x, &c, d).iter().enumerate() {
            let min = row.iter().cloned().fold(f64::INFINITY, f64::min);
            for (name, i, dist) in [("kernel", ki[r], kd[r]), ("reference", ri[r], rd[r])] {
                assert!(row[i as usize] <= min + tol, "{name} row {r}: code {i} at {} > min {min}", row[i as usize]);
                assert!((dist as f64 - min).abs() <= tol, "{name} row {r}: distance {dist}, exact {min}");
            }
            assert!((kd[r] as f64 - min).abs() <= 1e-6 * d as f64 * min.max(1.0), "kernel row {r}: {} vs {min}", kd[r]);
            same += (ki[r] == ri[r]) as usize;
        }
        assert!(same as f64 >= 0.999 * n as f64, "indices agree on only {same} of {n} rows");
    }

    #[test]
    fn quantize_kernel_matches_the_reference_on_wgpu() {
        let Some(device) = software_wgpu() else { return };
        assert!(kernel_available(&device) && kernel_available(&device.clone().autodiff()));
        assert!(!kernel_available(&Device::flex()));
        // n not a multiple of the workgroup size; d = 32 (vec4 loads) and d = 7, 130 (scalar
        // loads; 130 also leaves a partial last codebook tile).
        assert_exact(&device, 1001, 256, 32, 1);
        assert_exact(&device, 777, 256, 7, 2);
        assert_exact(&device, 333, 256, 130, 3);
        assert_exact(&device, 65, 3, 4, 4);
        assert_close(&device, 1001, 256, 32, 5);
        assert_close(&device, 100_000, 256, 32, 6);
    }

    #[test]
    fn quantize_kernel_runs_on_autodiff_tensors() {
        let Some(device) = software_wgpu() else { return };
        let ad = device.clone().autodiff();
        let mut rng = StdRng::seed_from_u64(7);
        let (n, k, d) = (300, 64, 32);
        let (x, c) = tied_inputs(&mut rng, n, k, d);
        let expected = run(&device, &x, &c, d, false);
        let xt = Tensor::<2>::from_data(TensorData::new(x, [n, d]), &ad).require_grad();
        let ct = Tensor::<2>::from_data(TensorData::new(c, [k, d]), &ad).require_grad();
        let out = nearest_code(xt.clone(), ct.clone());
        let index: Tensor<1, Int> = out.index.clone();
        // Straight-through use as the tokenizer does: gradients reach x and the codebook.
        let quantized = ct.clone().select(0, index);
        let ste = xt.clone() + (quantized.clone() - xt.clone()).detach();
        let loss = ste.sum() + (quantized - xt.clone().detach()).powi_scalar(2).sum() + out.dist.clone().sum();
        let grads = loss.backward();
        assert!(xt.grad(&grads).is_some() && ct.grad(&grads).is_some());
        assert_eq!(host(out), expected);
    }
}

mod item_attention {
    use super::software_wgpu;
    use burn::tensor::{Device, Int, Tensor, TensorData, Tolerance};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use sidrec::kernels::item_attention::{item_local_attention, item_local_attention_reference, kernel_available};

    /// Left-padded rows of items of 1 to `max_len` tokens (slots counted from the end) closed
    /// by EOS, as `ItemTokens::encoder_input` builds them; some rows are short (padding).
    fn slots(rng: &mut StdRng, batch: usize, seq: usize, max_len: usize) -> Vec<i64> {
        let mut out = vec![0i64; batch * seq];
        for r in 0..batch {
            let real = if r % 3 == 0 { rng.random_range(1..=seq.min(5)) } else { rng.random_range(seq / 2..=seq) };
            let row = &mut out[r * seq..(r + 1) * seq];
            row[seq - 1] = 1;
            let (mut j, mut slot) = (seq - 1, 2);
            while j > seq - real {
                let len = rng.random_range(1..=max_len).min(j - (seq - real));
                for t in j - len..j {
                    row[t] = slot;
                }
                j -= len;
                slot += 1;
            }
        }
        out
    }

    /// Forward and input gradients of the kernel against the dense reference, on random inputs
    /// with padding, variable-length items and several head sizes.
    #[test]
    fn item_attention_kernel_matches_the_reference_on_wgpu() {
        let Some(device) = software_wgpu() else { return };
        let ad = device.autodiff();
        assert!(kernel_available(&ad), "the kernel path must run here");
        let mut rng = StdRng::seed_from_u64(11);
        for (batch, seq, heads, d_kv, max_len) in [(7, 23, 2, 8, 4), (5, 81, 2, 64, 4), (3, 17, 1, 4, 3)] {
            let slot = slots(&mut rng, batch, seq, max_len);
            let slot = Tensor::<2, Int>::from_ints(TensorData::new(slot, [batch, seq]), &ad);
            let shape = [batch, seq, heads, d_kv];
            let rand = |rng: &mut StdRng| {
                let v: Vec<f32> = (0..batch * seq * heads * d_kv).map(|_| rng.random_range(-2.0f32..2.0)).collect();
                TensorData::new(v, shape)
            };
            let (qd, kd, vd, pd) = (rand(&mut rng), rand(&mut rng), rand(&mut rng), rand(&mut rng));
            let proj = Tensor::<4>::from_data(pd, &ad);
            let mut results = Vec::new();
            for kernel in [true, false] {
                let [q, k, v] = [&qd, &kd, &vd].map(|d| Tensor::<4>::from_data(d.clone(), &ad).require_grad());
                let f = if kernel { item_local_attention } else { item_local_attention_reference };
                let out = f(q.clone(), k.clone(), v.clone(), slot.clone(), max_len);
                let grads = (out.clone() * proj.clone()).sum().backward();
                let g = [&q, &k, &v].map(|t| t.grad(&grads).unwrap().into_data());
                results.push((out.into_data(), g));
            }
            let tol = Tolerance::rel_abs(1e-4, 1e-4);
            let (ko, kg) = &results[0];
            let (ro, rg) = &results[1];
            ko.assert_approx_eq::<f32>(ro, tol);
            for (name, (a, b)) in ["dq", "dk", "dv"].iter().zip(kg.iter().zip(rg)) {
                eprintln!("{name} ({batch}, {seq}, {heads}, {d_kv}): checking");
                a.assert_approx_eq::<f32>(b, tol);
            }
        }
    }

    /// The DiscRec block against PyTorch (`tests/fixtures/discrec_reference.py`): on the CPU
    /// backend (reference attention), and on wgpu with the kernel and with the reference.
    #[test]
    fn discrec_block_matches_pytorch_on_cpu_and_wgpu() {
        let cpu = super::support::assert_discrec_parity(&Device::flex(), true);
        assert!(cpu < 1e-4);
        let Some(device) = software_wgpu() else { return };
        assert!(kernel_available(&device));
        super::support::assert_discrec_parity(&device, true);
        super::support::assert_discrec_parity(&device, false);
    }
}

mod matmul {
    use super::software_wgpu;
    use burn::tensor::{Tensor, TensorData, Tolerance};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use sidrec::kernels::matmul::{matmul_using, uses_kernel, uses_kernel_under, MatmulPolicy};

    fn random<const D: usize>(rng: &mut StdRng, shape: [usize; D], device: &burn::tensor::Device) -> Tensor<D> {
        let v: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        Tensor::from_data(TensorData::new(v, shape), device).require_grad()
    }

    /// Forward and gradients of the tiled kernel against Burn's matmul on the same adapter, on
    /// random inputs: ragged sizes (not multiples of the tile), transposed views (as attention
    /// passes `k^T`), a broadcast batch and the rank-2 product of the linear layers.
    #[test]
    fn tiled_matmul_matches_burns_matmul_on_wgpu() {
        let Some(device) = software_wgpu() else { return };
        let ad = device.autodiff();
        assert!(uses_kernel(&ad), "on a software adapter the default policy runs the kernel");
        assert!(!uses_kernel_under(MatmulPolicy::Burn, &ad));
        // Explicit policies, not the process-wide one: the other tests of this binary run
        // meanwhile and must keep the default.
        let mut rng = StdRng::seed_from_u64(17);
        let tol = Tolerance::rel_abs(1e-4, 1e-4);
        // [batch, heads, m, k] @ ([batch, heads, n, k] transposed), sizes off the 8 x 8 tile.
        for (b, h, m, k, n) in [(3, 2, 41, 16, 41), (2, 3, 5, 9, 13), (1, 1, 1, 1, 1)] {
            let a = random(&mut rng, [b, h, m, k], &ad);
            let bt = random(&mut rng, [b, h, n, k], &ad);
            let proj = random(&mut rng, [b, h, m, n], &ad).detach();
            let mut results = Vec::new();
            for policy in [MatmulPolicy::Auto, MatmulPolicy::Burn] {
                let (a, bt) = (a.clone().detach().require_grad(), bt.clone().detach().require_grad());
                let out = matmul_using(policy, a.clone(), bt.clone().swap_dims(2, 3));
                let grads = (out.clone() * proj.clone()).sum().backward();
                results.push([out.into_data(), a.grad(&grads).unwrap().into_data(), bt.grad(&grads).unwrap().into_data()]);
            }
            for (name, (x, y)) in ["out", "da", "db"].iter().zip(results[0].iter().zip(&results[1])) {
                eprintln!("{name} ({b}, {h}, {m}, {k}, {n}): checking");
                x.assert_approx_eq::<f32>(y, tol);
            }
        }
        // A broadcast batch ([1, k, n] against [3, m, k]) and a rank-2 linear-layer product.
        let a = random(&mut rng, [3, 7, 12], &ad);
        let w = random(&mut rng, [1, 12, 10], &ad);
        let x = random(&mut rng, [37, 20], &ad);
        let v = random(&mut rng, [20, 9], &ad);
        let mut results = Vec::new();
        for policy in [MatmulPolicy::Auto, MatmulPolicy::Burn] {
            let [a, w] = [&a, &w].map(|t| t.clone().detach().require_grad());
            let [x, v] = [&x, &v].map(|t| t.clone().detach().require_grad());
            let (o3, o2) = (matmul_using(policy, a.clone(), w.clone()), matmul_using(policy, x.clone(), v.clone()));
            let grads = (o3.clone().powi_scalar(2).sum() + o2.clone().sin().sum()).backward();
            results.push(vec![
                o3.into_data(),
                o2.into_data(),
                a.grad(&grads).unwrap().into_data(),
                w.grad(&grads).unwrap().into_data(),
                x.grad(&grads).unwrap().into_data(),
                v.grad(&grads).unwrap().into_data(),
            ]);
        }
        assert_eq!(results[0][3].shape().to_vec(), vec![1, 12, 10], "the broadcast operand's gradient keeps its shape");
        for (name, (x, y)) in ["o3", "o2", "da", "dw", "dx", "dv"].iter().zip(results[0].iter().zip(&results[1])) {
            eprintln!("{name}: checking");
            x.assert_approx_eq::<f32>(y, tol);
        }
    }
}

/// One training step's loss and every parameter gradient of a small DiscRec generator (the
/// tiled matmul, the item-attention kernels and Burn's ops on wgpu) against the same model on
/// the CPU backend, with padded histories of different lengths and IDs that mix two codebooks;
/// then beam search over that catalogue on both.
#[test]
fn discrec_generator_gradients_on_wgpu_match_the_cpu_backend() {
    use burn::module::Module;
    use sidrec::data::{CodeToken, SemanticIndex};
    use sidrec::model::{Generator, GeneratorKind, ItemTokens, ModelConfig, TokenVocab};

    use sidrec::decode::{beam_search_scored, Trie};

    let Some(device) = software_wgpu() else { return };
    let mut rng = StdRng::seed_from_u64(23);
    // IDs that mix the two codebooks as FlexCode's do: k collaborative tokens, then semantic
    // ones, 3 to 5 tokens in all.
    let mut ids = std::collections::BTreeSet::new();
    while ids.len() < 60 {
        let (cf, len) = (rng.random_range(0..3u8), rng.random_range(3..6u8));
        let id: Vec<CodeToken> = (0..len)
            .map(|j| if j < cf { CodeToken::cf(j, rng.random_range(0..8)) } else { CodeToken::sem(j - cf, rng.random_range(0..8)) })
            .collect();
        ids.insert(id);
    }
    let vocab = TokenVocab::with_collaborative(vec![8; 5], vec![8; 2]);
    let items = ItemTokens::new(vocab, &SemanticIndex { ids: ids.into_iter().collect() }).unwrap();
    assert!(items.has_collaborative() && items.max_len() == 5);
    let histories: Vec<Vec<u32>> = (0..6).map(|i| (0..1 + i % 5).map(|_| rng.random_range(0..60)).collect()).collect();
    let refs: Vec<&[u32]> = histories.iter().map(Vec::as_slice).collect();
    let targets: Vec<u32> = (0..6).map(|_| rng.random_range(0..60)).collect();
    let (enc, dec) = (items.encoder_input(&refs), items.decoder_input(&targets));
    let mut cfg = ModelConfig { kind: GeneratorKind::Discrec, d_model: 32, d_kv: 8, num_heads: 4, d_ff: 64, num_layers: 1, num_decoder_layers: 1, dropout: 0.0, ..Default::default() };
    cfg.discrec.d_ff = 64;
    cfg.discrec.dropout = 0.0;
    let cpu = Device::flex().autodiff();
    let model = sidrec::seed::try_init_seeded(50, |host| Generator::new(&cfg, items.vocab(), items.max_len(), host)).unwrap();
    let mut results = Vec::new();
    for dev in [cpu, device.clone().autodiff()] {
        let m = model.clone().to_device(&dev).train();
        let loss = m.loss(&enc.to_device(&dev), &dec.to_device(&dev));
        results.push(loss_and_grads(&m, loss));
    }
    assert_same_loss_and_grads(&results[0], &results[1], 20);
    // Constrained beam search over the mixed catalogue (what eval and recommend run) ranks
    // the same on both, under both scorings.
    for alpha in [0.0, 1.0] {
        let ranked: Vec<_> = [Device::flex(), device.clone()]
            .iter()
            .map(|dev| {
                let m = model.clone().to_device(dev);
                beam_search_scored(&m, &m.encoder_batch(&enc, dev), &Trie::new(&items, true, dev).unwrap(), 8, 5, alpha)
            })
            .collect();
        for (c, g) in ranked[0].iter().zip(&ranked[1]) {
            assert_eq!(c.iter().map(|x| x.0).collect::<Vec<_>>(), g.iter().map(|x| x.0).collect::<Vec<_>>(), "alpha {alpha}");
            assert!(c.iter().zip(g).all(|(a, b)| (a.1 - b.1).abs() < 1e-3), "alpha {alpha}: {c:?} vs {g:?}");
        }
    }
}

/// Every float parameter's gradient, in visiting order.
struct Collect<'a>(&'a burn::optim::GradientsParams, Vec<Vec<f32>>);
impl burn::module::ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        if let Some(g) = self.0.get::<D>(param.id) {
            self.1.push(g.into_data().try_to_vec::<f32>().unwrap());
        }
    }
}

/// The value of `loss` and the gradient of every parameter of `m`.
fn loss_and_grads<M: burn::module::Module>(m: &M, loss: Tensor<1>) -> (f32, Vec<Vec<f32>>) {
    let value: f32 = loss.clone().into_scalar();
    let grads = burn::optim::GradientsParams::from_grads(loss.backward(), m);
    let mut c = Collect(&grads, Vec::new());
    m.visit(&mut c);
    (value, c.1)
}

/// Same loss (1e-4) and every gradient within 1e-3 of its largest entry, with at least
/// `min_params` parameters.
fn assert_same_loss_and_grads(cpu: &(f32, Vec<Vec<f32>>), gpu: &(f32, Vec<Vec<f32>>), min_params: usize) {
    let ((cpu_loss, cpu_grads), (gpu_loss, gpu_grads)) = (cpu, gpu);
    assert!((cpu_loss - gpu_loss).abs() < 1e-4, "loss {cpu_loss} on cpu, {gpu_loss} on wgpu");
    assert_eq!(cpu_grads.len(), gpu_grads.len());
    assert!(cpu_grads.len() > min_params, "every parameter has a gradient");
    for (i, (a, b)) in cpu_grads.iter().zip(gpu_grads).enumerate() {
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-3 * scale, "parameter {i}: max |grad diff| {diff} (largest |grad| {scale})");
    }
}

/// A small SASRec's scores, both losses and every parameter gradient on wgpu against the CPU
/// backend, with histories of different lengths (padding and the causal mask on both).
#[test]
fn sasrec_forward_and_gradients_on_wgpu_match_the_cpu_backend() {
    use burn::module::Module;
    use burn::tensor::Tolerance;
    use sidrec::model::sasrec::{SasRecConfig, SasRecLoss, SequenceInput, TrainingInput};

    let Some(device) = software_wgpu() else { return };
    let c = SasRecConfig { hidden: 16, blocks: 2, heads: 2, max_len: 6, d_ff: 16, dropout: 0.0, loss: SasRecLoss::Ce, negatives: 2 };
    let model = sidrec::seed::init_seeded(30, |host| c.init(12, host));
    let mut rng = StdRng::seed_from_u64(31);
    let seqs: Vec<Vec<u32>> = (0..4).map(|i| (0..2 + i * 2).map(|_| rng.random_range(0..12)).collect()).collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let batch = TrainingInput::new(&refs, c.max_len, 0, 12, c.negatives, &mut rng);
    let histories = SequenceInput::new(&refs, c.max_len, 0);
    let mut scores = Vec::new();
    let mut results = Vec::new();
    for dev in [Device::flex(), device] {
        scores.push(model.clone().to_device(&dev).scores(&histories.to_device(&dev)).into_data());
        let m = model.clone().to_device(&dev.clone().autodiff()).train();
        let x = batch.input.to_device(&dev.autodiff());
        results.push((loss_and_grads(&m, m.ce_loss(&x, &batch.targets)), loss_and_grads(&m, m.bce_loss(&x, &batch.targets))));
    }
    scores[1].assert_approx_eq::<f32>(&scores[0], Tolerance::rel_abs(1e-4, 1e-4));
    assert_same_loss_and_grads(&results[0].0, &results[1].0, 20);
    assert_same_loss_and_grads(&results[0].1, &results[1].1, 20);
}

/// A hand-made index whose IDs mix the two codebooks (3 to 5 tokens) trains TIGER and DiscRec,
/// evaluates them and recommends from their checkpoints through the CLI on the software
/// adapter (tiny sizes: this is the pipeline's plumbing on wgpu, not a measurement).
#[test]
fn mixed_ids_train_evaluate_and_recommend_through_the_cli_on_wgpu() {
    if software_wgpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Item i: i % 3 collaborative tokens, then semantic ones, 3 to 5 in all; the codes are the
    // base-16 digits of i, so every ID is unique.
    let index: serde_json::Map<String, serde_json::Value> = (0..150usize)
        .map(|i| {
            let (cf, len) = (i % 3, 3 + (i / 3) % 3);
            let id: Vec<String> = (0..len)
                .map(|j| {
                    let letter = if j < cf { (b'A' + j as u8) as char } else { (b'a' + (j - cf) as u8) as char };
                    format!("<{letter}_{}>", (i >> (4 * j)) & 15)
                })
                .collect();
            (i.to_string(), serde_json::json!(id))
        })
        .collect();
    let file = d.join("mixed.index.json");
    std::fs::write(&file, serde_json::Value::Object(index).to_string()).unwrap();
    let sidrec = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sidrec")).args(args).current_dir(d).output().unwrap();
        assert!(out.status.success(), "sidrec {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let sizes = [
        "--set", "synthetic.users=300", "--set", "synthetic.items=150", "--set", "synthetic.topics=6",
        "--set", "tokenizer.codebook_size=16", "--set", "model.d_model=32", "--set", "model.d_kv=16",
        "--set", "model.d_ff=64", "--set", "model.num_layers=1", "--set", "model.num_decoder_layers=1",
        "--set", "model.num_heads=2", "--set", "model.discrec.d_ff=64", "--set", "train.batch_size=64",
        "--set", "train.lr=3e-3", "--set", "train.epochs=1", "--set", "eval.beam_size=10",
    ];
    for kind in ["tiger", "discrec"] {
        let mut args = vec!["train", "synthetic", "--device", "wgpu-cpu", "--out", kind, "--index", file.to_str().unwrap()];
        args.extend(sizes);
        let model = format!("model.kind=\"{kind}\"");
        args.extend(["--set", &model]);
        sidrec(&args);
        let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join(kind).join("metrics.json")).unwrap()).unwrap();
        let test = metrics.as_array().unwrap().iter().find(|r| r["part"] == "test").unwrap();
        assert!(test["all"]["recall@10"].as_f64().is_some_and(|r| (0.0..=1.0).contains(&r)), "{metrics}");
        let ckpt = d.join(kind).join("checkpoints/best");
        let out = sidrec(&["recommend", "--device", "wgpu-cpu", "--checkpoint", ckpt.to_str().unwrap(), "--top-k", "5", "--history", "3", "17"]);
        let recs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(recs[0]["items"].as_array().unwrap().len(), 5, "{recs}");
    }
}

/// FlexCode's dual-codebook tokenizer through the CLI on lavapipe (both RQ-VAEs through the
/// WGSL nearest-code kernel), beside the same run on `cpu`: mixed, collision-free IDs of one
/// length, and the router's mean CF shares (overall, head, tail) within 0.05 of the CPU run's.
#[test]
fn flexcode_tokenizer_on_wgpu_gives_mixed_ids_and_the_cpu_router_split() {
    if software_wgpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sidrec = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sidrec")).args(args).current_dir(d).output().unwrap();
        assert!(out.status.success(), "sidrec {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let sizes = [
        "--set", "synthetic.users=300", "--set", "synthetic.items=150", "--set", "synthetic.topics=6",
        "--set", "synthetic.cf_pairs=10", "--set", "tokenizer.codebook_size=16", "--set", "tokenizer.hidden=[32]",
        "--set", "tokenizer.epochs=8", "--set", "tokenizer.flexcode.transition_batch=128",
    ];
    // The catalogue's size from a plain CPU run, then CF embeddings for it: the semantic
    // features of another synthetic draw, a deterministic stand-in for SASRec's table.
    let mut args = vec!["tokenize", "synthetic", "--device", "cpu", "--out", "plain"];
    args.extend(sizes);
    sidrec(&args);
    let plain: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(d.join("plain/synthetic.index.json")).unwrap()).unwrap();
    let n = plain.len();
    let mut rng = StdRng::seed_from_u64(5);
    let cf: Vec<f32> = (0..n * 16).map(|_| rng.random_range(-1.0..1.0)).collect();
    let cf_file = d.join("cf.npy");
    sidrec::data::Embeddings::new(n, 16, cf).save_npy(&cf_file).unwrap();
    let mut shares = Vec::new();
    for device in ["cpu", "wgpu-cpu"] {
        let out = format!("fc-{device}");
        let mut args = vec!["tokenize", "synthetic", "--device", device, "--out", &out, "--cf-embeddings", cf_file.to_str().unwrap()];
        args.extend(sizes);
        args.extend(["--set", "tokenizer.kind=\"flexcode\""]);
        sidrec(&args);
        let index: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(d.join(&out).join("synthetic.index.json")).unwrap()).unwrap();
        assert_eq!(index.len(), n);
        let ids: std::collections::BTreeSet<String> = index.values().map(|v| v.to_string()).collect();
        assert_eq!(ids.len(), n, "{device}: the IDs are collision-free");
        let lengths: std::collections::BTreeSet<usize> = index.values().map(|v| v.as_array().unwrap().len()).collect();
        assert_eq!(lengths.len(), 1, "{device}: one ID length, {lengths:?}");
        let text = serde_json::Value::Object(index).to_string();
        assert!(text.contains("\"<A_") && text.contains("\"<a_"), "{device}: the IDs mix both codebooks");
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join(&out).join("metrics.json")).unwrap()).unwrap();
        assert_eq!(m["collisions"]["rate_final"], 0.0, "{m}");
        let share = |g: &str| m[g]["mean_cf_share"].as_f64().unwrap();
        shares.push([share("all"), share("head"), share("tail")]);
        assert!(d.join(&out).join("flexcode.safetensors").is_file());
    }
    for g in 0..3 {
        assert!((shares[0][g] - shares[1][g]).abs() < 0.05, "cpu {:?} vs wgpu {:?}", shares[0], shares[1]);
    }
}

/// A run whose tensors exceed the adapter's largest buffer (128 MiB on lavapipe) stops before
/// its first step with an error that names the tensor, the limit and the setting to lower;
/// without the check, lavapipe refused the 205 MiB buffer and Burn panicked at the next read.
#[test]
fn a_batch_above_the_adapters_largest_buffer_is_refused_before_training() {
    let Some(device) = software_wgpu() else { return };
    let limit = sidrec::kernels::capabilities::Capabilities::of(&device).max_buffer_bytes.expect("a wgpu adapter has a buffer limit");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 150 items, IDs of 3 tokens (base-16 digits of the item: unique).
    let index: serde_json::Map<String, serde_json::Value> =
        (0..150usize).map(|i| (i.to_string(), serde_json::json!((0..3).map(|j| format!("<{}_{}>", (b'a' + j as u8) as char, (i >> (4 * j)) & 15)).collect::<Vec<_>>()))).collect();
    std::fs::write(d.join("t.index.json"), serde_json::Value::Object(index).to_string()).unwrap();
    // The encoder's attention scores: batch x 16 heads x 61 x 61 floats (20 items of 3 tokens + EOS).
    let per_example = 16 * 61 * 61 * 4;
    let fits = limit / per_example;
    let run = |batch: u64, eval_batch: u64| {
        let (batch, eval_batch) = (format!("train.batch_size={batch}"), format!("eval.batch_size={eval_batch}"));
        let args = [
            "train", "synthetic", "--device", "wgpu-cpu", "--out", "o", "--index", "t.index.json",
            "--set", "synthetic.users=300", "--set", "synthetic.items=150", "--set", "synthetic.topics=6",
            "--set", "tokenizer.codebook_size=16", "--set", "model.d_model=32", "--set", "model.d_kv=4",
            "--set", "model.d_ff=64", "--set", "model.num_layers=1", "--set", "model.num_decoder_layers=1",
            "--set", "model.num_heads=16", "--set", "train.epochs=1", "--set", &batch, "--set", &eval_batch,
        ];
        let out = std::process::Command::new(support::sidrec_bin()).args(args).current_dir(d).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, stderr) = run(fits + 1, 16);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let shape = format!("the encoder's self-attention scores [{}, 16, 61, 61]", fits + 1);
    assert!(stderr.contains(&shape) && stderr.contains("above the largest buffer of this software wgpu adapter"), "{stderr}");
    assert!(stderr.contains(&format!("lower train.batch_size to at most {fits}")), "{stderr}");
    assert!(!d.join("o/checkpoints").exists());
    // Evaluation's batch is checked too, before training starts.
    let (code, stderr) = run(16, fits + 1);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("lower eval.batch_size to at most {fits}")), "{stderr}");
}
