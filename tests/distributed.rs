//! Data-parallel training in one process (`--devices`), and the multi-rank loop on a group of
//! threads standing in for MPI ranks: with dropout off, the weights after several steps equal
//! those of one device with the whole batch, within float tolerance (see `TOLERANCE`).

mod dp;

use std::time::Instant;

use burn::tensor::Device;
use dp::{losses, max_abs_diff, ok, sidrec, train_args, weights};
use sidrec::cli::config::RunConfig;
use sidrec::cli::run::prepare;
use sidrec::data::SemanticIndex;
use sidrec::model::{ItemTokens, ModelConfig};
use sidrec::train::checkpoint::GeneratorSpec;
use sidrec::train::distributed::{threads, ParallelRef};
use sidrec::train::generator_task::train_parallel;
use sidrec::train::trainer::{train, TrainInputs};
use sidrec::train::TrainConfig;

/// The largest difference allowed between a weight trained on shards and on the whole batch.
///
/// Not zero: splitting a batch changes the order of float additions (each shard sums its own
/// tokens' gradients, the shard sums are added, and the encoder rows of a shard are padded to
/// that shard's longest history, which changes the shapes of the matrix products), so the
/// gradients differ by a few float32 roundings, about 1e-7 relative. AdamW's update
/// `lr * m / (sqrt(v) + eps)` passes a relative gradient error on nearly unchanged, so after `k`
/// steps a weight can differ by about `k * lr * 1e-6`, around 1e-8 here; components whose
/// gradient is itself at the rounding level are the exception, and there the update's sign can
/// differ, by up to `2 * lr` a step. 1e-5 is far above the first and far below the second
/// (6e-3 at lr 3e-3) and below the differences a real change of the run makes (a different
/// batch size: about 1e-2, checked below).
const TOLERANCE: f32 = 1e-5;

#[test]
fn two_in_process_replicas_train_the_weights_of_one_device_with_the_whole_batch() {
    for kind in ["tiger", "sasrec"] {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let half = tempfile::tempdir().unwrap();
        let t = Instant::now();
        ok(&sidrec(&train_args(one.path(), kind, 2, 3, &[])), "one device");
        let t_one = t.elapsed();
        let t = Instant::now();
        let stderr = ok(&sidrec(&train_args(two.path(), kind, 2, 3, &["--devices", "2"])), "two replicas");
        let t_two = t.elapsed();
        assert!(stderr.contains("data parallel: 1 rank(s) x 2 replica(s); global batch 256 (128 per replica)"), "{stderr}");
        assert!(stderr.contains("2 replicas on 1 device(s) (Burn's CPU backend (flex), one device)"), "{stderr}");
        ok(&sidrec(&train_args(half.path(), kind, 2, 3, &["--set", "train.batch_size=128"])), "batch 128");
        let (w1, w2, wh) = (weights(one.path(), "last"), weights(two.path(), "last"), weights(half.path(), "last"));
        let d = max_abs_diff(&w1, &w2);
        let other_run = max_abs_diff(&w1, &wh);
        eprintln!(
            "{kind}: {} weights; 1 device vs 2 replicas: max |diff| {d:.3e}; vs a batch-128 run: {other_run:.3e}; \
             times {:.1}s and {:.1}s",
            w1.len(),
            t_one.as_secs_f64(),
            t_two.as_secs_f64()
        );
        assert!(d <= TOLERANCE, "{kind}: replicas differ from one device by {d:e}");
        assert!(other_run > 100.0 * TOLERANCE, "{kind}: a different run differs by only {other_run:e}: the test cannot tell");
        let (l1, l2) = (losses(one.path()), losses(two.path()));
        assert_eq!(l1.len(), 2);
        for ((a, va), (b, vb)) in l1.iter().zip(&l2) {
            assert!((a - b).abs() < 1e-5 * a.abs() && (va - vb).abs() < 1e-5 * va.abs(), "{kind}: losses {l1:?} vs {l2:?}");
        }
    }
}

#[test]
fn device_lists_are_checked_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = sidrec(&train_args(dir.path(), "tiger", 1, 1, &["--devices", "0,x"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give a count (2) or comma-separated adapter indices"));
    // More replicas than examples in a batch.
    let out = sidrec(&train_args(dir.path(), "tiger", 1, 1, &["--devices", "3", "--set", "train.batch_size=2"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("must be at least the number of replicas (3"), "{stderr}");
}

fn tiny_inputs_setup() -> (sidrec::cli::run::Prepared, SemanticIndex) {
    let sets: Vec<String> = ["synthetic.users=120", "synthetic.items=40", "synthetic.topics=4", "data.max_len=5", "run.device=cpu"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cfg = RunConfig::load(None, &sets).unwrap();
    let p = prepare(&cfg).unwrap();
    // IDs of three and four tokens, so that shards hold different numbers of label tokens.
    let codes: Vec<Vec<u32>> = (0..p.ds.num_items() as u32)
        .map(|i| {
            let mut id = vec![i % 4, (i / 4) % 4, i / 16];
            if i % 3 == 0 {
                id.push(i % 2);
            }
            id
        })
        .collect();
    (p, SemanticIndex::from_codes(&codes))
}

/// The multi-rank loop (the one MPI runs: flattened gradients summed across ranks, sharded
/// validation, rank 0's start state broadcast, rank 0 alone writing) on two threads standing in
/// for two ranks, against one process with the whole batch; IDs of different lengths make the
/// shards' token counts differ, so the token weighting matters.
#[test]
fn two_thread_ranks_train_the_weights_of_one_process_with_the_whole_batch() {
    let (p, index) = tiny_inputs_setup();
    let items = ItemTokens::from_index(&index).unwrap();
    let model = ModelConfig {
        d_model: 16,
        d_kv: 8,
        d_ff: 32,
        num_layers: 1,
        num_decoder_layers: 1,
        num_heads: 2,
        relative_attention_num_buckets: 8,
        relative_attention_max_distance: 16,
        dropout: 0.0,
        ..Default::default()
    };
    let spec = GeneratorSpec::generator(model, &items, 5, "synthetic".into());
    let cfg = TrainConfig { epochs: 2, batch_size: 64, lr: 3e-3, patience: 0, eval_every: 1, max_batches_per_epoch: 4, ..Default::default() };
    let eval = sidrec::eval::EvalConfig { beam_size: 10, ..Default::default() };
    let inputs = |dir: &std::path::Path| TrainInputs {
        ds: &p.ds,
        split: &p.split,
        index: &index,
        items: &items,
        item_ids: &p.ds.items,
        spec: spec.clone(),
        cfg: &cfg,
        eval: &eval,
        pop: &p.pop,
        seed: 11,
        device: Device::flex(),
        fixed_shapes: false,
        dir: dir.to_path_buf(),
    };
    let one = tempfile::tempdir().unwrap();
    let single = train(&inputs(one.path()), |_| true).unwrap();
    let two = tempfile::tempdir().unwrap();
    let ranks = threads::group(2);
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = ranks
            .iter()
            .map(|r| {
                let inp = inputs(two.path());
                s.spawn(move || train_parallel(&inp, ParallelRef { devices: &[], group: Some(r) }, |_| true).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Both ranks agree on the log; rank 0 wrote the run folder.
    assert_eq!(outcomes[0].state.log.len(), 2);
    for (a, b) in outcomes[0].state.log.iter().zip(&outcomes[1].state.log) {
        assert_eq!((a.train_loss, a.valid_loss, &a.valid_metrics), (b.train_loss, b.valid_loss, &b.valid_metrics));
    }
    for (a, b) in single.state.log.iter().zip(&outcomes[0].state.log) {
        assert!((a.train_loss - b.train_loss).abs() < 1e-5 * a.train_loss, "{} vs {}", a.train_loss, b.train_loss);
        assert!((a.valid_loss - b.valid_loss).abs() < 1e-5 * a.valid_loss, "{} vs {}", a.valid_loss, b.valid_loss);
        let (ma, mb) = (a.valid_metrics.as_ref().unwrap(), b.valid_metrics.as_ref().unwrap());
        assert_eq!(ma.keys().collect::<Vec<_>>(), mb.keys().collect::<Vec<_>>());
        for (k, v) in ma {
            assert!((v - mb[k]).abs() < 1e-9, "{k}: {v} vs {} (sharded validation metrics)", mb[k]);
        }
    }
    let d = max_abs_diff(&weights(one.path(), "last"), &weights(two.path(), "last"));
    eprintln!("two thread ranks vs one process: max |diff| {d:.3e}");
    assert!(d <= TOLERANCE, "ranks differ from one process by {d:e}");
    assert!(two.path().join("metrics.jsonl").is_file() && two.path().join("training.png").is_file());
}
