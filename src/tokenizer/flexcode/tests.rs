//! FlexCode end to end on a toy catalogue (CPU backend, seeded): losses, router behaviour,
//! fixed splits, IDs, reproducibility, input errors, gradients, the report files.
//!
//! The toy: items fall in 4 behaviour clusters and follow items of their own cluster. For the
//! "popular" half, the CF embedding is the cluster (plus a little noise) and the text embedding
//! is noise; for the "rare" half it is the other way round. The transition loss should then
//! give popular items more CF tokens than rare ones.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::config::FlexCodeConfig;
use super::train::{model_config, step_losses, StepBatch, TrainData};
use super::*;
use crate::data::idmap::IdMap;
use crate::data::semantic_index::{check_level_order, Codebook, SemanticIndex};
use crate::tokenizer::config::{TokenizerConfig, TokenizerKind};

pub(super) const ITEMS: usize = 96;
pub(super) const CLUSTERS: usize = 4;
const DIM: usize = 8;

pub(super) fn popular(i: usize) -> bool {
    i < ITEMS / 2
}

/// The toy inputs (see the module docs).
pub(super) fn toy(device: &Device) -> FlexCodeInputs {
    let mut rng = StdRng::seed_from_u64(11);
    let mut noise = || crate::seed::standard_normal(&mut rng) as f32;
    let mut x_sem = Vec::with_capacity(ITEMS * DIM);
    let mut x_cf = Vec::with_capacity(ITEMS * DIM);
    for i in 0..ITEMS {
        let cluster: Vec<f32> = (0..DIM).map(|d| if d == i % CLUSTERS { 2.0 } else { 0.0 }).collect();
        let (clean, noisy) = if popular(i) { (&mut x_cf, &mut x_sem) } else { (&mut x_sem, &mut x_cf) };
        clean.extend(cluster.iter().map(|c| c + 0.1 * noise()));
        noisy.extend((0..DIM).map(|_| noise()));
    }
    let counts: Vec<u32> = (0..ITEMS).map(|i| if popular(i) { 40 + (i % 7) as u32 } else { 1 + (i % 3) as u32 }).collect();
    let logs: Vec<f32> = counts.iter().map(|&c| (c as f32).ln_1p()).collect();
    let mean = logs.iter().sum::<f32>() / ITEMS as f32;
    let std = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f32>() / ITEMS as f32).sqrt();
    let mut rank: Vec<usize> = (0..ITEMS).collect();
    rank.sort_by_key(|&i| (counts[i], i));
    let mut pct = vec![0.0f32; ITEMS];
    for (r, &i) in rank.iter().enumerate() {
        pct[i] = r as f32 / (ITEMS - 1) as f32;
    }
    let stats = (0..ITEMS).map(|i| [(logs[i] - mean) / std, pct[i], 0.5]).collect();
    // Six transitions per item, to a random item of the same cluster and the same half.
    let mut rng = StdRng::seed_from_u64(12);
    let mut transitions = Vec::new();
    for i in 0..ITEMS {
        for _ in 0..6 {
            let j = loop {
                let j = rng.random_range(0..ITEMS);
                if j != i && j % CLUSTERS == i % CLUSTERS && popular(j) == popular(i) {
                    break j;
                }
            };
            transitions.push((i as u32, j as u32));
        }
    }
    let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [ITEMS, DIM]), device);
    FlexCodeInputs { x_sem: SemanticInput::Embeddings(t(x_sem)), x_cf: t(x_cf), stats, counts, transitions }
}

pub(super) fn toy_config() -> TokenizerConfig {
    TokenizerConfig {
        kind: TokenizerKind::Flexcode,
        levels: 3,
        codebook_size: 8,
        code_dim: 4,
        hidden: vec![16],
        epochs: 30,
        batch_size: 32,
        lr: 1e-2,
        kmeans_iters: 5,
        sinkhorn: false,
        collision_rounds: 5,
        encode_batch: 64,
        seed: Some(7),
        flexcode: FlexCodeConfig { shared_dim: 8, transition_batch: 64, lambda_smooth: 0.1, ..FlexCodeConfig::default() },
        ..TokenizerConfig::default()
    }
}

fn train(cfg: &TokenizerConfig) -> FlexCodeResult {
    train_flexcode(&toy(&Device::flex()), cfg, &Device::flex(), |_| {}).unwrap()
}

fn mean_share(r: &FlexCodeResult, group: impl Fn(usize) -> bool) -> f64 {
    let v: Vec<f64> = (0..ITEMS).filter(|&i| group(i)).map(|i| r.ids.cf_share[i] as f64).collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn every_loss_term_behaves_on_the_toy_problem() {
    let r = train(&toy_config());
    let (first, last) = (&r.log[0], r.log.last().unwrap());
    assert_eq!(r.log.len(), 30);
    for (name, a, b) in [
        ("sem_recon", first.sem_recon, last.sem_recon),
        ("cf_recon", first.cf_recon, last.cf_recon),
        ("align", first.align, last.align),
        ("transition", first.transition, last.transition),
        ("total", first.total, last.total),
    ] {
        assert!(b < a, "{name}: {a} -> {b}");
    }
    // The quantization terms may grow with the latents' scale; each RQ-VAE's sum falls.
    assert!(last.sem_recon + last.sem_quant < first.sem_recon + first.sem_quant, "{first:?} {last:?}");
    assert!(last.cf_recon + last.cf_quant < first.cf_recon + first.cf_quant, "{first:?} {last:?}");
    // The balance keeps the mean share near the target; tau anneals from 1 to 0.1.
    assert!(last.balance < 0.01 && (last.mean_cf_share - 0.5).abs() < 0.1, "{last:?}");
    assert!((first.tau - 1.0).abs() < 1e-12 && (last.tau - 0.1).abs() < 1e-9);
    // Smoothness: a strong weight makes count-sorted neighbours closer than none does.
    let smooth = |lambda| {
        let mut cfg = toy_config();
        cfg.epochs = 12;
        cfg.flexcode.lambda_smooth = lambda;
        train(&cfg).log.last().unwrap().smooth
    };
    let (free, smoothed) = (smooth(0.0), smooth(500.0));
    assert!(smoothed < free / 4.0, "smoothness {free} without the term, {smoothed} with it");
    // Balance: a target of 0.8 moves the mean share up.
    let mut cfg = toy_config();
    cfg.epochs = 12;
    cfg.flexcode.target_cf_share = 0.8;
    cfg.flexcode.lambda_balance = 20.0;
    let high = train(&cfg).log.last().unwrap().mean_cf_share;
    assert!(high > 0.7, "mean share {high} with target 0.8");
}

#[test]
fn popular_items_get_a_larger_cf_share_than_rare_ones() {
    let r = train(&toy_config());
    let (head, tail) = (mean_share(&r, popular), mean_share(&r, |i| !popular(i)));
    assert!(head > tail + 0.2, "mean a: popular {head}, rare {tail}");
    let k = |group: &dyn Fn(usize) -> bool| {
        (0..ITEMS).filter(|&i| group(i)).map(|i| r.ids.cf_tokens[i] as f64).sum::<f64>() / (ITEMS / 2) as f64
    };
    assert!(k(&popular) > k(&|i| !popular(i)), "mean k");
    // The report sees it too: the head bucket has the larger share.
    assert!(r.metrics.head.mean_cf_share > r.metrics.tail.mean_cf_share);
}

#[test]
fn a_fixed_split_gives_exactly_k_cf_tokens() {
    for k in [0, 1, 3] {
        let mut cfg = toy_config();
        cfg.epochs = 2;
        cfg.flexcode.router = false;
        cfg.flexcode.fixed_cf_tokens = k;
        let r = train(&cfg);
        assert!(r.ids.cf_tokens.iter().all(|&t| t == k));
        for id in &r.ids.index.ids {
            let cf = id[..3].iter().filter(|t| t.codebook == Codebook::Collaborative).count();
            assert_eq!(cf, k, "{id:?}");
            assert!(id[..k].iter().all(|t| t.codebook == Codebook::Collaborative));
            check_level_order(id).unwrap();
        }
        assert!(r.log.iter().all(|l| l.balance == 0.0 && l.smooth == 0.0));
        assert_eq!(r.metrics.fixed_cf_tokens, Some(k));
    }
}

#[test]
fn ids_are_collision_free_ordered_and_round_trip_with_the_report() {
    // Two codes of two levels for 96 items: most IDs collide before handling.
    let mut cfg = toy_config();
    cfg.epochs = 3;
    cfg.levels = 2;
    cfg.codebook_size = 2;
    let r = train(&cfg);
    let c = &r.ids.collisions;
    assert!(c.colliding_items_before > 0 && c.disambiguation_level && c.rate_final == 0.0, "{c:?}");
    assert!(r.ids.index.collisions().is_empty());
    assert_eq!(r.ids.index.id_length(), Some(3));
    for id in &r.ids.index.ids {
        check_level_order(id).unwrap();
    }
    let items = IdMap::from_raw((0..ITEMS).map(|i| format!("item{i}")).collect());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flexcode.index.json");
    r.ids.index.write(&path, &items).unwrap();
    assert_eq!(SemanticIndex::read(&path, &items).unwrap().0, r.ids.index);

    write_report(dir.path(), &r, &items).unwrap();
    let log = std::fs::read_to_string(dir.path().join("train_log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    assert!(log.lines().next().unwrap().contains("\"transition\""));
    let csv = std::fs::read_to_string(dir.path().join("cf_share.csv")).unwrap();
    assert_eq!(csv.lines().count(), ITEMS + 1);
    assert!(csv.starts_with("item,dense_id,count,cf_share,cf_tokens\nitem0,0,40,"), "{csv}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["popularity_buckets"].as_array().unwrap().len(), 5);
    assert_eq!(m["head"]["items"], 20);
    assert_eq!(m["collaborative_levels"].as_array().unwrap().len(), 2);
    assert_eq!(&std::fs::read(dir.path().join("cf_share.png")).unwrap()[1..4], b"PNG");
    let short = IdMap::from_raw(vec!["a".into()]);
    assert!(write_report(dir.path(), &r, &short).is_err());
}

#[test]
fn the_same_seed_gives_the_same_index() {
    let mut cfg = toy_config();
    cfg.epochs = 4;
    let (a, b) = (train(&cfg), train(&cfg));
    assert_eq!(a.ids.index, b.ids.index);
    assert_eq!(a.ids.cf_share, b.ids.cf_share);
    assert_eq!(a.log.iter().map(|l| l.total).collect::<Vec<_>>(), b.log.iter().map(|l| l.total).collect::<Vec<_>>());
    cfg.seed = Some(8);
    assert_ne!(train(&cfg).log[0].total, a.log[0].total);
}

#[test]
fn bad_inputs_are_errors_naming_the_problem() {
    let d = Device::flex();
    let cfg = toy_config();
    let good = toy(&d);
    let err = |inputs: FlexCodeInputs, cfg: &TokenizerConfig| train_flexcode(&inputs, cfg, &d, |_| {}).unwrap_err();
    let e = err(FlexCodeInputs { x_cf: good.x_cf.clone().slice(0..10), ..good.clone() }, &cfg);
    assert!(e.contains("x_cf has 10 rows, but x_sem has 96"), "{e}");
    let e = err(FlexCodeInputs { stats: good.stats[..5].to_vec(), ..good.clone() }, &cfg);
    assert!(e.contains("stats has 5 rows"), "{e}");
    let e = err(FlexCodeInputs { counts: vec![1; 3], ..good.clone() }, &cfg);
    assert!(e.contains("counts has 3 rows"), "{e}");
    let e = err(FlexCodeInputs { transitions: vec![(0, 96)], ..good.clone() }, &cfg);
    assert!(e.contains("transition 0 -> 96"), "{e}");
    let e = err(FlexCodeInputs { transitions: Vec::new(), ..good.clone() }, &cfg);
    assert!(e.contains("no training transitions"), "{e}");
    let mut stats = good.stats.clone();
    stats[4][1] = f32::NAN;
    let e = err(FlexCodeInputs { stats, ..good.clone() }, &cfg);
    assert!(e.contains("stats of item 4"), "{e}");
    let SemanticInput::Embeddings(x_sem) = &good.x_sem else { unreachable!() };
    let mut x: Vec<f32> = x_sem.clone().into_data().try_into_vec_as().unwrap();
    x[3] = f32::NAN;
    x[9] = f32::INFINITY;
    let x_sem = Tensor::<2>::from_data(TensorData::new(x, [ITEMS, DIM]), &d);
    let e = err(FlexCodeInputs { x_sem: SemanticInput::Embeddings(x_sem), ..good.clone() }, &cfg);
    assert!(e.contains("x_sem holds 2 NaN or infinite values"), "{e}");
    let mut bad = cfg.clone();
    bad.flexcode.align_temperature = 0.0;
    let e = err(good.clone(), &bad);
    assert!(e.starts_with("tokenizer.flexcode.align_temperature"), "{e}");
    // Without the router, no transitions are needed.
    let mut fixed = cfg.clone();
    fixed.epochs = 1;
    fixed.flexcode.router = false;
    assert!(train_flexcode(&FlexCodeInputs { transitions: Vec::new(), ..good }, &fixed, &d, |_| {}).is_ok());
}

#[test]
fn the_router_gets_gradient_from_the_transition_loss() {
    let d = Device::flex();
    let inputs = toy(&d);
    let mut cfg = toy_config();
    let model = model_config(&cfg, Some(DIM), DIM, 3).init(&d);
    let data = TrainData::new(&inputs, &d);
    let catalogue = model.catalogue(&data.x_sem, &data.x_cf, &data.stats, 64);
    let ad = d.clone().autodiff();
    let model = model.to_device(&ad).train();
    let ints = |v: Vec<i64>| Tensor::<1, Int>::from_ints(TensorData::new(v.clone(), [v.len()]), &d);
    let src: Vec<i64> = inputs.transitions.iter().step_by(7).map(|t| t.0 as i64).collect();
    let dst: Vec<i64> = inputs.transitions.iter().step_by(7).map(|t| t.1 as i64).collect();
    let batch = StepBatch { items: ints((0..16).collect()), transitions: Some((ints(src), ints(dst))) };
    let grad_sum = |p: &burn::module::Param<Tensor<2>>, grads: &burn::tensor::Gradients| {
        p.val().grad(grads).map(|g| g.abs().sum().into_scalar::<f32>()).unwrap_or(0.0)
    };
    for to_encoders in [false, true] {
        cfg.flexcode.transition_to_encoders = to_encoders;
        let out = step_losses(&model, &data, &catalogue, &batch, 1.0, &cfg);
        let grads = out.transition.backward();
        let router = grad_sum(&model.router.output.weight, &grads);
        assert!(router.is_finite() && router > 0.0, "router gradient {router}");
        assert!(grad_sum(&model.predictor.weight, &grads) > 0.0);
        let encoder = grad_sum(&model.cf.encoder.layers[0].weight, &grads);
        assert_eq!(encoder > 0.0, to_encoders, "encoder gradient {encoder} with transition_to_encoders = {to_encoders}");
    }
    // A fixed split has no router to train.
    cfg.flexcode.router = false;
    let out = step_losses(&model, &data, &catalogue, &batch, 1.0, &cfg);
    assert_eq!(grad_sum(&model.router.output.weight, &out.transition.backward()), 0.0);
}

#[test]
fn alignment_pulls_the_two_latents_together() {
    let d = Device::flex();
    let mut inputs = toy(&d);
    // Both embeddings carry the same information: the CF one is a scaled, rotated copy.
    let SemanticInput::Embeddings(x_sem) = &inputs.x_sem else { unreachable!() };
    let x: Vec<f32> = x_sem.clone().into_data().try_into_vec_as().unwrap();
    let cf: Vec<f32> = x.chunks(DIM).flat_map(|r| (0..DIM).map(move |c| 0.5 * r[(c + 3) % DIM])).collect();
    inputs.x_cf = Tensor::from_data(TensorData::new(cf, [ITEMS, DIM]), &d);
    let mut cfg = toy_config();
    cfg.epochs = 15;
    cfg.flexcode.lambda_align = 1.0;
    let r = train_flexcode(&inputs, &cfg, &d, |_| {}).unwrap();
    // In-batch negatives of a batch of 32: chance is ln 32 = 3.47.
    let last = r.log.last().unwrap().align;
    assert!(last < 0.6 * 32f64.ln(), "alignment {} -> {last}", r.log[0].align);
}


#[test]
fn the_saved_tokenizer_reloads_whole_and_gives_the_same_shares_and_ids() {
    let d = Device::flex();
    let mut cfg = toy_config();
    cfg.epochs = 6;
    let inputs = toy(&d);
    let r = train_flexcode(&inputs, &cfg, &d, |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_flexcode(&r.model, dir.path()).unwrap();
    let back = load_flexcode(dir.path(), &d).unwrap();
    let data = super::train::TrainData::new(&inputs, &d);
    let again = super::ids::assign_flex_ids(&back, &data, &cfg).unwrap();
    assert_eq!(again.index, r.ids.index, "the reloaded tokenizer gives every item the same mixed ID");
    assert_eq!(again.cf_share, r.ids.cf_share, "and the same CF share, bit for bit");
    assert_eq!(back.router.output.bias.as_ref().unwrap().val().into_data(), r.model.router.output.bias.as_ref().unwrap().val().into_data());

    // Damaged folders: each error names the file and the problem.
    let err = |dir: &std::path::Path| load_flexcode(dir, &d).unwrap_err().to_string();
    let heads = dir.path().join(super::io::HEADS_FILE);
    let bytes = std::fs::read(&heads).unwrap();
    std::fs::write(&heads, &bytes[..bytes.len() - 8]).unwrap();
    let e = err(dir.path());
    assert!(e.contains("flexcode.safetensors") && e.contains("not a valid safetensors file"), "{e}");
    std::fs::remove_file(&heads).unwrap();
    let e = err(dir.path());
    assert!(e.contains("flexcode.safetensors"), "{e}");
    // A collaborative RQ-VAE with another token budget than the semantic one.
    let mut short = cfg.clone();
    short.levels = 2;
    short.epochs = 1;
    let other = train_flexcode(&inputs, &short, &d, |_| {}).unwrap();
    save_flexcode(&r.model, dir.path()).unwrap();
    crate::tokenizer::save(&crate::tokenizer::Tokenizer::RqVae(other.model.cf), &dir.path().join(super::io::COLLABORATIVE_FILE)).unwrap();
    let e = err(dir.path());
    assert!(e.contains("has 3 levels and the collaborative one 2"), "{e}");
    std::fs::remove_file(dir.path().join(super::io::SEMANTIC_FILE)).unwrap();
    let e = err(dir.path());
    assert!(e.contains("semantic.safetensors"), "{e}");
}
