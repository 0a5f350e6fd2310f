//! FlexCode with a fixed semantic index (`tokenizer.flexcode.semantic_index`) on the toy of
//! [`super::tests`] (CPU backend, seeded): the semantic tokens are the index's, IDs are
//! collision-free, the router and the code tables train, bad index files are clear errors.
//!
//! The toy's index: 4 levels of 8 codes. For the rare half, level 1 is the item's behaviour
//! cluster (its text would say what it is); for the popular half the codes are random (their CF
//! embedding carries the cluster). Level 2 has only 2 codes, so that prefixes collide.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::fixed::{read_semantic_codes, semantic_codes};
use super::model::SemanticSide;
use super::tests::{popular, toy, toy_config, CLUSTERS, ITEMS};
use super::train::{model_config, step_losses, StepBatch, TrainData};
use super::*;
use crate::data::idmap::IdMap;
use crate::data::semantic_index::{check_level_order, Codebook, CodeToken, SemanticIndex};
use crate::tokenizer::config::TokenizerConfig;
use crate::tokenizer::metrics::level_usage;

fn items() -> IdMap {
    IdMap::from_raw((0..ITEMS).map(|i| format!("item{i}")).collect())
}

/// The toy's 4-level index (see the module docs).
fn toy_index() -> SemanticIndex {
    let mut rng = StdRng::seed_from_u64(21);
    let codes: Vec<Vec<u32>> = (0..ITEMS)
        .map(|i| {
            let first = if popular(i) { rng.random_range(0..8) } else { (i % CLUSTERS) as u32 };
            vec![first, rng.random_range(0..2), rng.random_range(0..8), rng.random_range(0..8)]
        })
        .collect();
    SemanticIndex::from_codes(&codes)
}

/// The toy with the index's first `levels` codes as its semantic side.
fn fixed_inputs(levels: usize) -> FlexCodeInputs {
    let codes = semantic_codes(&toy_index(), &items(), levels, 8).unwrap();
    FlexCodeInputs { x_sem: SemanticInput::Codes(codes), ..toy(&Device::flex()) }
}

fn fixed_config() -> TokenizerConfig {
    let mut cfg = toy_config();
    cfg.flexcode.semantic_index = Some("toy.index.json".into());
    cfg
}

fn train(inputs: &FlexCodeInputs, cfg: &TokenizerConfig) -> FlexCodeResult {
    train_flexcode(inputs, cfg, &Device::flex(), |_| {}).unwrap()
}

/// The semantic tokens of an ID (its disambiguation token left out).
fn semantic_part(id: &[CodeToken], levels: usize) -> Vec<u32> {
    id[..levels].iter().filter(|t| t.codebook == Codebook::Semantic).map(|t| t.code).collect()
}

#[test]
fn the_semantic_tokens_are_the_index_prefix_and_ids_are_collision_free() {
    let index = toy_index();
    let mut cfg = fixed_config();
    cfg.epochs = 6;
    for (router, k) in [(true, 0), (false, 0), (false, 1), (false, 3)] {
        cfg.flexcode.router = router;
        cfg.flexcode.fixed_cf_tokens = k;
        let r = train(&fixed_inputs(3), &cfg);
        assert!(matches!(r.model.sem, SemanticSide::Fixed(_)));
        for (i, id) in r.ids.index.ids.iter().enumerate() {
            let k = r.ids.cf_tokens[i];
            let expected: Vec<u32> = index.ids[i][..3 - k].iter().map(|t| t.code).collect();
            assert_eq!(semantic_part(id, 3), expected, "item {i} with {k} CF tokens: {id:?}");
            assert!(id[..k].iter().all(|t| t.codebook == Codebook::Collaborative));
            check_level_order(id).unwrap();
        }
        assert!(r.ids.index.collisions().is_empty(), "router {router}, k {k}");
        assert_eq!(r.ids.collisions.rate_final, 0.0);
        // The semantic code use is the index's.
        let prefix: Vec<Vec<u32>> = index.ids.iter().map(|id| id[..3].iter().map(|t| t.code).collect()).collect();
        assert_eq!(r.ids.sem_codes, prefix);
        assert_eq!(r.metrics.semantic_levels, level_usage(&prefix, 8));
        assert_eq!(r.metrics.semantic_side, "fixed-index");
        assert!(r.log.iter().all(|l| l.sem_recon == 0.0 && l.sem_quant == 0.0 && l.reset_codes_sem == vec![0; 3]));
    }
    // Semantic-only IDs of a 2-level budget collide a lot (16 prefixes for 96 items): fixed codes
    // are kept, and the disambiguation level separates them.
    cfg.levels = 2;
    cfg.flexcode.router = false;
    cfg.flexcode.fixed_cf_tokens = 0;
    let r = train(&fixed_inputs(2), &cfg);
    let c = &r.ids.collisions;
    assert!(c.colliding_items_before > 0 && c.sinkhorn_rounds == 0 && c.disambiguation_level, "{c:?}");
    assert!(r.ids.index.collisions().is_empty());
    for (i, id) in r.ids.index.ids.iter().enumerate() {
        assert_eq!(id.len(), 3);
        assert_eq!(semantic_part(id, 2), vec![index.ids[i][0].code, index.ids[i][1].code]);
        assert_eq!((id[2].codebook, id[2].level), (Codebook::Semantic, 2), "the disambiguation token is level c");
    }
}

#[test]
fn the_router_and_the_code_tables_train_with_fixed_codes() {
    let inputs = fixed_inputs(3);
    let r = train(&inputs, &fixed_config());
    let (first, last) = (&r.log[0], r.log.last().unwrap());
    assert!(last.align < first.align, "alignment {} -> {}", first.align, last.align);
    assert!(last.transition < first.transition, "transition {} -> {}", first.transition, last.transition);
    assert!(last.balance < 0.01 && (last.mean_cf_share - 0.5).abs() < 0.1, "{last:?}");
    // The router separates the halves: popular items (clean CF, random codes) get the larger
    // CF share, rare ones (noisy CF, codes naming their cluster) the smaller.
    let mean = |g: &dyn Fn(usize) -> bool| {
        (0..ITEMS).filter(|&i| g(i)).map(|i| r.ids.cf_share[i] as f64).sum::<f64>() / (ITEMS / 2) as f64
    };
    let (head, tail) = (mean(&popular), mean(&|i| !popular(i)));
    assert!(head > tail + 0.1, "mean a: popular {head}, rare {tail}");

    // Gradients of one step: the transition loss reaches the router, and the tables only with
    // transition_to_encoders; the alignment reaches the tables.
    let d = Device::flex();
    let mut cfg = fixed_config();
    let model = model_config(&cfg, None, 8, 3).init(&d);
    let data = TrainData::new(&inputs, &d);
    let catalogue = model.catalogue(&data.x_sem, &data.x_cf, &data.stats, 64);
    let model = model.to_device(&d.clone().autodiff()).train();
    let ints = |v: Vec<i64>| Tensor::<1, Int>::from_ints(TensorData::new(v.clone(), [v.len()]), &d);
    let src: Vec<i64> = inputs.transitions.iter().step_by(7).map(|t| t.0 as i64).collect();
    let dst: Vec<i64> = inputs.transitions.iter().step_by(7).map(|t| t.1 as i64).collect();
    let batch = StepBatch { items: ints((0..16).collect()), transitions: Some((ints(src), ints(dst))) };
    let SemanticSide::Fixed(tables) = &model.sem else { panic!("code tables expected") };
    let grad = |p: &burn::module::Param<Tensor<2>>, grads: &burn::tensor::Gradients| {
        p.val().grad(grads).map(|g| g.abs().sum().into_scalar::<f32>()).unwrap_or(0.0)
    };
    for to_encoders in [false, true] {
        cfg.flexcode.transition_to_encoders = to_encoders;
        let out = step_losses(&model, &data, &catalogue, &batch, 1.0, &cfg);
        let grads = out.transition.backward();
        assert!(grad(&model.router.output.weight, &grads) > 0.0);
        assert_eq!(grad(&tables.tables[0], &grads) > 0.0, to_encoders, "tables with transition_to_encoders = {to_encoders}");
        let out = step_losses(&model, &data, &catalogue, &batch, 1.0, &cfg);
        assert!(grad(&tables.tables[0], &out.align.backward()) > 0.0, "the alignment trains the tables");
        assert_eq!(out.sem_recon.into_scalar::<f32>(), 0.0);
    }
}

#[test]
fn the_fixed_tokenizer_reloads_and_gives_the_same_ids() {
    let mut cfg = fixed_config();
    cfg.epochs = 3;
    let inputs = fixed_inputs(3);
    let r = train(&inputs, &cfg);
    let dir = tempfile::tempdir().unwrap();
    save_flexcode(&r.model, dir.path()).unwrap();
    assert!(!dir.path().join(super::io::SEMANTIC_FILE).exists(), "no semantic RQ-VAE to save");
    let back = load_flexcode(dir.path(), &Device::flex()).unwrap();
    assert!(matches!(back.sem, SemanticSide::Fixed(_)));
    let data = TrainData::new(&inputs, &Device::flex());
    let again = super::ids::assign_flex_ids(&back, &data, &cfg).unwrap();
    assert_eq!((again.index, again.cf_share), (r.ids.index, r.ids.cf_share));
}

#[test]
fn bad_index_files_and_settings_are_clear_errors() {
    let items = IdMap::from_raw(vec!["0".into(), "1".into()]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("letter.index.json");
    let read = |text: &str, levels: usize| {
        std::fs::write(&path, text).unwrap();
        read_semantic_codes(&path, &items, levels, 256)
    };
    let good = r#"{"0": ["<a_1>", "<b_2>", "<c_3>"], "1": ["<a_4>", "<b_5>", "<c_6>"]}"#;
    assert_eq!(read(good, 2).unwrap(), vec![vec![1, 2], vec![4, 5]]);
    assert_eq!(read(good, 3).unwrap(), vec![vec![1, 2, 3], vec![4, 5, 6]]);
    for (text, levels, what) in [
        (good, 4, "item \"0\" 3 levels, but the token budget tokenizer.levels is 4"),
        (r#"{"0": ["<a_1>", "<b_2>"]}"#, 2, "1 catalogue items have no semantic ID (first: item \"1\")"),
        (r#"{"0": ["<a_1>"], "1": ["<a_2>"], "7": ["<a_3>"]}"#, 1, ""),
        (r#"{"5": ["<a_1>"], "7": ["<a_3>"]}"#, 1, "name items that are not in the catalogue (first: \"5\")"),
        (r#"{"0": ["<a_1>", "b_2"], "1": ["<a_4>", "<b_5>"]}"#, 2, "(key \"0\"): token \"b_2\" is not of the form"),
        (r#"{"0": ["<A_1>", "<B_2>"], "1": ["<a_4>", "<b_5>"]}"#, 2, "item \"0\" has the collaborative token <A_1>"),
        (r#"{"0": ["<a_1>", "<b_256>"], "1": ["<a_4>", "<b_5>"]}"#, 2, "item \"0\" has token <b_256>, code 256 beyond tokenizer.codebook_size = 256"),
    ] {
        match read(text, levels) {
            // Entries for items outside the catalogue are skipped, as everywhere.
            Ok(codes) => assert!(what.is_empty(), "{text}: {codes:?}"),
            Err(e) => assert!(e.contains("letter.index.json") && e.contains(what), "{text}: {e}"),
        }
    }
    let e = read("{", 1).unwrap_err();
    assert!(e.contains("letter.index.json"), "{e}");

    // Code tables that nothing would train are refused, by the config and by training.
    let mut cfg = fixed_config();
    cfg.flexcode.lambda_align = 0.0;
    assert_eq!(cfg.validate().unwrap_err().0, "tokenizer.flexcode.lambda_align");
    cfg.flexcode.semantic_index = None;
    assert!(cfg.validate().is_ok(), "only with a fixed index");
    let e = train_flexcode(&fixed_inputs(3), &cfg, &Device::flex(), |_| {}).unwrap_err();
    assert!(e.contains("tokenizer.flexcode.lambda_align") && e.contains("stay random"), "{e}");
    cfg.flexcode.transition_to_encoders = true;
    assert!(train_flexcode(&fixed_inputs(3), &TokenizerConfig { epochs: 1, ..cfg.clone() }, &Device::flex(), |_| {}).is_ok());
    // Codes that do not fit the budget or the codebook.
    let cfg = fixed_config();
    let e = train_flexcode(&fixed_inputs(2), &cfg, &Device::flex(), |_| {}).unwrap_err();
    assert!(e.contains("fixed semantic codes have 2 levels, the token budget tokenizer.levels is 3"), "{e}");
    let e = train_flexcode(&fixed_inputs(3), &TokenizerConfig { codebook_size: 4, ..cfg.clone() }, &Device::flex(), |_| {}).unwrap_err();
    assert!(e.contains("beyond tokenizer.codebook_size = 4"), "{e}");
    let mut ragged = fixed_inputs(3);
    if let SemanticInput::Codes(c) = &mut ragged.x_sem {
        c[5].pop();
    }
    let e = train_flexcode(&ragged, &cfg, &Device::flex(), |_| {}).unwrap_err();
    assert!(e.contains("item 5 has 2 levels, item 0 has 3"), "{e}");
}
