//! DiscRec's item-local attention at the paper's sizes: 20-item histories of 4-token IDs plus
//! EOS (T = 81), batch 256, d_model 128 in 2 heads of 64. The custom kernel
//! (`shaders/item_attention*.wgsl`) against the dense masked reference, forward and
//! forward + backward (dq, dk, dv), on `wgpu-cpu` (both) and `cpu` (the reference only: the
//! CPU backend has no kernel).
//!
//! ```sh
//! cargo bench --bench item_attention            # both devices
//! cargo bench --bench item_attention -- wgpu    # criterion's name filter
//! SIDREC_BENCH_DEVICES=auto cargo bench --bench item_attention -- --quick   # a GPU machine
//! ```
//! `SIDREC_BENCH_DEVICES` (comma-separated `--device` names) replaces the default `wgpu-cpu,cpu`.
//! On every device with the kernel, a JSON line (`"check": "item_attention"`) first gives the
//! largest difference between the kernel and the reference: the output, and the gradients of a
//! randomly weighted sum of it.
//!
//! `cargo bench --bench item_attention -- discrec_block` (plain timed loop, printed) times the
//! whole training step of both DiscRec blocks (encoder block over
//! the batch above, decoder block over 5-token prefixes, dropout on, forward + backward), the
//! part DiscRec adds to a TIGER training step.

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use criterion::{criterion_group, criterion_main, Criterion};
use sidrec::kernels::item_attention::{item_local_attention, item_local_attention_reference};
use sidrec::kernels::Capabilities;
use sidrec::model::discrec::DiscRecConfig;
use sidrec::model::EncoderBatch;

mod common;

const BATCH: usize = 256;
const ITEMS: usize = 20;
const ID_LEN: usize = 4;
const SEQ: usize = ITEMS * ID_LEN + 1;
const HEADS: usize = 2;
const D_KV: usize = 64;

/// Full histories: slot `ITEMS + 1 - i` for item `i`, EOS (slot 1) last.
fn slots(device: &Device) -> Tensor<2, Int> {
    let row: Vec<i64> = (0..SEQ).map(|j| if j == SEQ - 1 { 1 } else { (ITEMS - j / ID_LEN + 1) as i64 }).collect();
    let all: Vec<i64> = (0..BATCH).flat_map(|_| row.iter().copied()).collect();
    Tensor::from_ints(TensorData::new(all, [BATCH, SEQ]), device)
}

type Attention = fn(Tensor<4>, Tensor<4>, Tensor<4>, Tensor<2, Int>, usize) -> Tensor<4>;

fn bench_device(c: &mut Criterion, name: &str, device: &Device, paths: &[(&str, Attention)]) {
    let mut group = c.benchmark_group(format!("item_attention/{name}"));
    group.sample_size(10).warm_up_time(std::time::Duration::from_secs(3));
    let shape = [BATCH, SEQ, HEADS, D_KV];
    let slot = slots(device);
    let qkv = [0; 3].map(|_| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device));
    for &(path, f) in paths {
        group.bench_function(format!("{path}/forward"), |b| {
            b.iter(|| {
                let [q, k, v] = qkv.clone();
                let out = f(q, k, v, slot.clone(), ID_LEN);
                device.sync().expect("sync");
                out
            })
        });
        let ad = device.clone().autodiff();
        let slot_ad = slots(&ad);
        let qkv_ad = [0; 3].map(|_| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &ad));
        group.bench_function(format!("{path}/forward+backward"), |b| {
            b.iter(|| {
                let [q, k, v] = qkv_ad.clone().map(|t| t.require_grad());
                let out = f(q.clone(), k.clone(), v.clone(), slot_ad.clone(), ID_LEN);
                let grads = out.sum().backward();
                let g = [&q, &k, &v].map(|t| t.grad(&grads));
                device.sync().expect("sync");
                g
            })
        });
    }
    group.finish();
}

/// Prints, as one JSON line, the largest difference between the kernel and the reference on
/// `device`: the output, and `dq`, `dk`, `dv` of a randomly weighted sum of it.
fn check(name: &str, device: &Device) {
    let ad = device.clone().autodiff();
    let shape = [BATCH, SEQ, HEADS, D_KV];
    let slot = slots(&ad);
    let qkv = [0; 3].map(|_| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &ad));
    let weight = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &ad);
    let run = |f: Attention| {
        let [q, k, v] = qkv.clone().map(|t| t.require_grad());
        let out = f(q.clone(), k.clone(), v.clone(), slot.clone(), ID_LEN);
        let grads = (out.clone() * weight.clone()).sum().backward();
        let [dq, dk, dv] = [&q, &k, &v].map(|t| t.grad(&grads).expect("a gradient"));
        [out.inner(), dq, dk, dv]
    };
    let (kernel, reference) = (run(item_local_attention), run(item_local_attention_reference));
    let diff: Vec<f32> = kernel.into_iter().zip(reference).map(|(a, b)| (a - b).abs().max().into_scalar::<f32>()).collect();
    println!(
        "{{\"check\": \"item_attention\", \"device\": \"{name}\", \"batch\": {BATCH}, \"seq\": {SEQ}, \"max_abs_diff_out\": {:.3e}, \"max_abs_diff_dq\": {:.3e}, \"max_abs_diff_dk\": {:.3e}, \"max_abs_diff_dv\": {:.3e}}}",
        diff[0], diff[1], diff[2], diff[3]
    );
}

/// Both DiscRec blocks, forward + backward, at d_model 128 (the kernel where the device has it).
fn bench_block(name: &str, device: &Device) {
    let ad = device.clone().autodiff();
    let model = DiscRecConfig::default().init(HEADS * D_KV, ID_LEN, None, &ad);
    let item_slot = slots(&ad);
    let pos: Vec<i64> = (0..BATCH * SEQ).map(|j| if j % SEQ == SEQ - 1 { ID_LEN as i64 + 1 } else { (j % SEQ % ID_LEN) as i64 + 1 }).collect();
    let item_pos = Tensor::<2, Int>::from_ints(TensorData::new(pos, [BATCH, SEQ]), &ad);
    let batch = EncoderBatch {
        input_ids: item_pos.clone(),
        attention_mask: Tensor::ones([BATCH, SEQ], &ad),
        item_pos: Some(item_pos),
        item_slot: Some(item_slot),
        lengths: vec![SEQ; BATCH],
    };
    let d = HEADS * D_KV;
    let enc = Tensor::<3>::random([BATCH, SEQ, d], Distribution::Normal(0.0, 1.0), &ad);
    let dec = Tensor::<3>::random([BATCH, ID_LEN + 1, d], Distribution::Normal(0.0, 1.0), &ad);
    let dec_ids = Tensor::<2, Int>::zeros([BATCH, ID_LEN + 1], &ad);
    // A plain timed loop: one step is seconds on lavapipe, and criterion would take its
    // first step (kernel compilation) as the estimate.
    let step = || {
        let t = std::time::Instant::now();
        let (e, p) = (enc.clone().require_grad(), dec.clone().require_grad());
        let loss = model.encoder_input(e.clone(), &batch).embeds.sum() + model.decoder_input(p.clone(), &dec_ids).embeds.sum();
        let grads = loss.backward();
        let g = (e.grad(&grads), p.grad(&grads));
        device.sync().expect("sync");
        drop(g);
        t.elapsed().as_secs_f64()
    };
    let warm = step();
    let times: Vec<f64> = (0..3).map(|_| step()).collect();
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!("discrec_block/{name}/encoder+decoder/forward+backward: first step {warm:.3} s, then {times:.3?} s, mean {mean:.3} s");
}

fn benches(c: &mut Criterion) {
    // Only on request (the filter `discrec_block`): it is slow on lavapipe.
    let block = std::env::args().any(|a| a.contains("discrec_block"));
    let both: [(&str, Attention); 2] = [("kernel", item_local_attention), ("reference", item_local_attention_reference)];
    for name in common::env_devices(&["wgpu-cpu", "cpu"]) {
        let Some((_, device)) = common::init_device(&name) else { continue };
        // The CPU backend has no kernel: only the reference runs there.
        let paths = if Capabilities::of(&device).wgsl_kernels { &both[..] } else { &both[1..] };
        if paths.len() == 2 {
            check(&name, &device);
        }
        bench_device(c, &name, &device, paths);
        if block {
            bench_block(&name, &device);
        }
    }
}

criterion_group!(item_attention, benches);
criterion_main!(item_attention);
