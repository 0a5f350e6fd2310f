//! End-to-end checks of the `sidrec` binary: commands, bad input, real datasets.

mod support;

use support::{assert_clean_failure, beauty_dir, data_dir, sidrec};

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Small model and training settings for the synthetic dataset.
const TINY_MODEL: &[&str] = &[
    "--set", "model.d_model=32", "--set", "model.d_kv=16", "--set", "model.d_ff=64", "--set", "model.num_layers=1",
    "--set", "model.num_decoder_layers=1", "--set", "model.num_heads=2", "--set", "train.batch_size=64",
    "--set", "train.lr=3e-3", "--set", "eval.beam_size=10",
];

fn tiny(args: &[&str], epochs: &str) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.extend(TINY_TOKENIZER.iter().chain(TINY_MODEL).map(|s| s.to_string()));
    v.extend(["--set".to_string(), format!("train.epochs={epochs}")]);
    v
}

fn run(dir: &std::path::Path, args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sidrec(dir, &args)
}

#[test]
fn quickstart_on_cpu_trains_and_reports_the_generator_beside_the_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &tiny(&["quickstart", "--device", "cpu", "--discrec"], "2"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("most-popular") && stdout.contains("tiger"), "{stdout}");
    let run = dir.path().join("runs/quickstart");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    // The generator on valid and test, then the two baselines on both.
    assert_eq!(metrics.as_array().unwrap().len(), 6);
    assert!(metrics[0]["model"].as_str().unwrap().starts_with("tiger"));
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("users = 300"), "{config}");
    for f in ["items.json", "metrics.jsonl", "training.png", "tokenizer/synthetic.index.json", "checkpoints/best/model.bpk"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    // --discrec: DiscRec on TIGER's IDs, then both generators' test rows side by side.
    let discrec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("discrec/metrics.json")).unwrap()).unwrap();
    assert!(discrec[0]["model"].as_str().unwrap().starts_with("discrec"), "{discrec}");
    assert_eq!(
        std::fs::read(run.join("discrec/checkpoints/best/items.index.json")).unwrap(),
        std::fs::read(run.join("checkpoints/best/items.index.json")).unwrap(),
        "DiscRec trained on other IDs than TIGER"
    );
    let table = stdout.rsplit_once("\ntest ").map(|(_, t)| t).unwrap_or_default();
    let rows: Vec<&str> = table.lines().skip(1).map(|l| l.split_whitespace().next().unwrap_or_default()).collect();
    assert_eq!(rows[..4], ["tiger", "discrec", "most-popular", "random"], "{stdout}");
}

/// `recommend --top-k 5` with checkpoint `ckpt` for a two-item history of run folder `run`'s
/// catalogue: five of its items, best first. Returns the catalogue's raw ids.
fn assert_recommends_top_5(cwd: &std::path::Path, run: &std::path::Path, ckpt: &str) -> Vec<String> {
    let items: Vec<String> = serde_json::from_str(&std::fs::read_to_string(run.join("items.json")).unwrap()).unwrap();
    let out = sidrec(cwd, &["recommend", "--device", "cpu", "--checkpoint", ckpt, "--top-k", "5", "--history", &items[0], &items[3]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = recs[0]["items"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|r| items.contains(&r["item"].as_str().unwrap().to_string())));
    let scores: Vec<f64> = list.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    items
}

#[test]
fn train_resumes_then_eval_and_recommend_use_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &tiny(&["train", "synthetic", "--device", "cpu", "--out", "t"], "1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = |d: &std::path::Path| std::fs::read_to_string(d.join("t/metrics.jsonl")).unwrap().lines().count();
    assert_eq!(log(dir.path()), 1);
    // Started again with more epochs: continues from epoch 1.
    let out = run(dir.path(), &tiny(&["train", "synthetic", "--device", "cpu", "--out", "t"], "2"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resumed from the checkpoint of epoch 1"), "{stderr}");
    assert!(stderr.contains("resuming with train.epochs 1 -> 2"), "the change is said: {stderr}");
    assert_eq!(log(dir.path()), 2);
    let state = std::fs::read_to_string(dir.path().join("t/checkpoints/last/state.json")).unwrap();
    assert!(state.contains("\"changes\"") && state.contains("train.epochs"), "and kept: {state}");
    // A run folder in use by another process: refused, naming it (here the test's own lock).
    let held = sidrec::cli::lock::RunLock::acquire(&dir.path().join("t")).unwrap();
    let out = run(dir.path(), &tiny(&["train", "synthetic", "--device", "cpu", "--out", "t"], "2"));
    assert_clean_failure(&out, &["is in use by process", &std::process::id().to_string()]);
    drop(held);
    // Other training settings on resume: refused with each key, nothing overwritten.
    let mut other = tiny(&["train", "synthetic", "--device", "cpu", "--out", "t"], "3");
    other.extend(["--set".into(), "train.lr=1e-2".into(), "--set".into(), "train.batch_size=32".into()]);
    assert_clean_failure(&run(dir.path(), &other), &["train.lr 0.003 -> 0.01", "train.batch_size 64 -> 32", "--restart"]);
    assert_eq!(log(dir.path()), 2);
    // Other model settings on the same folder: refused, nothing overwritten.
    let mut other = tiny(&["train", "synthetic", "--device", "cpu", "--out", "t"], "3");
    other.extend(["--set".into(), "model.d_ff=48".into()]);
    assert_clean_failure(&run(dir.path(), &other), &["other model settings", "--restart"]);

    let ckpt = dir.path().join("t/checkpoints/best");
    let ckpt = ckpt.to_str().unwrap();
    let out = run(dir.path(), &tiny(&["eval", "synthetic", "--device", "cpu", "--out", "e", "--checkpoint", ckpt], "1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("e/metrics.json")).unwrap()).unwrap();
    assert!(metrics[1]["all"]["recall@10"].as_f64().is_some() && metrics[1]["part"] == "test", "{metrics}");

    let items = assert_recommends_top_5(dir.path(), &dir.path().join("t"), ckpt);
    let file = write(dir.path(), "h.txt", &format!("{} {}\n\n{}\n", items[0], items[1], items[2]));
    let out = sidrec(dir.path(), &["recommend", "--device", "cpu", "--checkpoint", ckpt, "--histories", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(recs.as_array().unwrap().len(), 2);
    assert_eq!(recs[1]["items"].as_array().unwrap().len(), 10);

    // Bad input: unknown ids (named with the line), no history, not a checkpoint.
    let bad = write(dir.path(), "bad.txt", &format!("{}\nnot-an-item\n", items[0]));
    let out = sidrec(dir.path(), &["recommend", "--device", "cpu", "--checkpoint", ckpt, "--histories", bad.to_str().unwrap()]);
    assert_clean_failure(&out, &["bad.txt line 2", "unknown item id \"not-an-item\""]);
    let out = sidrec(dir.path(), &["recommend", "--device", "cpu", "--checkpoint", ckpt]);
    assert_clean_failure(&out, &["no history given"]);
    let out = sidrec(dir.path(), &["recommend", "--device", "cpu", "--checkpoint", "nowhere", "--history", "1"]);
    assert_clean_failure(&out, &["nowhere", "not a sidrec checkpoint"]);
    let out = sidrec(dir.path(), &["eval", "synthetic", "--device", "cpu", "--checkpoint", "nowhere"]);
    assert_clean_failure(&out, &["nowhere", "not a sidrec checkpoint"]);
    // An edited generator.json without codebook levels, of kind discrec: an error naming it.
    let edited = dir.path().join("edited");
    std::fs::create_dir(&edited).unwrap();
    for f in std::fs::read_dir(ckpt).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, edited.join(f.file_name().unwrap())).unwrap();
    }
    let mut spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(edited.join("generator.json")).unwrap()).unwrap();
    spec["level_sizes"] = serde_json::json!([]);
    spec["model"]["kind"] = serde_json::json!("discrec");
    std::fs::write(edited.join("generator.json"), spec.to_string()).unwrap();
    let recommend = || sidrec(dir.path(), &["recommend", "--device", "cpu", "--checkpoint", edited.to_str().unwrap(), "--history", &items[0]]);
    // The manifest catches the edit; without it (a checkpoint of an older version) the spec
    // itself is checked.
    assert_clean_failure(&recommend(), &["generator.json", "manifest.json records"]);
    std::fs::remove_file(edited.join("manifest.json")).unwrap();
    assert_clean_failure(&recommend(), &["generator.json", "at least one token"]);
}

/// Small tokenizer settings for the synthetic dataset.
const TINY_TOKENIZER: &[&str] = &[
    "--set", "synthetic.users=300", "--set", "synthetic.items=150", "--set", "synthetic.topics=6",
    "--set", "tokenizer.levels=3", "--set", "tokenizer.codebook_size=16", "--set", "tokenizer.hidden=[32]",
    "--set", "tokenizer.code_dim=8", "--set", "tokenizer.epochs=6", "--set", "tokenizer.batch_size=64",
    "--set", "tokenizer.eval_every=3",
];

fn tokenize(dir: &std::path::Path, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["tokenize", "synthetic", "--device", "cpu", "--out", out];
    args.extend_from_slice(TINY_TOKENIZER);
    args.extend_from_slice(extra);
    sidrec(dir, &args)
}

#[test]
fn tokenize_synthetic_writes_unique_ids_deterministically_and_imports_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokenize(dir.path(), "a", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("collision rate") && stdout.contains("used codes per level"), "{stdout}");
    let run = dir.path().join("a");
    for f in ["synthetic.index.json", "tokenizer.safetensors", "tokenizer.json", "metrics.json", "train_log.jsonl", "items.json", "config.toml"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["collisions"]["rate_final"], 0.0);
    assert_eq!(metrics["levels"].as_array().unwrap().len(), 3);
    assert!(metrics["levels"][0]["perplexity"].as_f64().unwrap() >= 1.0);
    let log = std::fs::read_to_string(run.join("train_log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 7, "epoch 0 (initialisation) and 6 epochs: {log}");
    let index: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(run.join("synthetic.index.json")).unwrap()).unwrap();
    let ids: std::collections::HashSet<String> = index.values().map(|v| v.to_string()).collect();
    assert_eq!(ids.len(), index.len(), "IDs are unique");
    assert!(index.values().next().unwrap()[0].as_str().unwrap().starts_with("<a_"));

    // Same seed, same device: identical IDs; another seed: different ones.
    let out = tokenize(dir.path(), "b", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a = std::fs::read(run.join("synthetic.index.json")).unwrap();
    assert_eq!(a, std::fs::read(dir.path().join("b/synthetic.index.json")).unwrap());
    let out = tokenize(dir.path(), "c", &["--set", "tokenizer.seed=5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(a, std::fs::read(dir.path().join("c/synthetic.index.json")).unwrap());

    // Importing our own index: already unique, so the IDs come back unchanged.
    let imported = run.join("synthetic.index.json");
    let out = tokenize(dir.path(), "d", &["--import", imported.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let back: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("d/synthetic.index.json")).unwrap()).unwrap();
    assert_eq!(back, serde_json::Value::Object(index));

    // Residual k-means, the fast tokenizer.
    let out = tokenize(dir.path(), "e", &["--set", "tokenizer.kind=rqkmeans"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("e/metrics.json")).unwrap()).unwrap();
    assert_eq!(m["kind"], "rqkmeans");
    assert_eq!(m["collisions"]["rate_final"], 0.0);
}

#[test]
fn ids_of_different_lengths_and_mixed_codebooks_train_evaluate_and_recommend_with_tiger_and_discrec() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = tokenize(d, "tok", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Item i keeps its ID and gets i % 3 more tokens: IDs of 3 to 6 tokens, some a prefix of
    // others (the trie ends every ID with EOS).
    let index: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(d.join("tok/synthetic.index.json")).unwrap()).unwrap();
    let varied: serde_json::Map<String, serde_json::Value> = index
        .into_iter()
        .enumerate()
        .map(|(i, (item, id))| {
            let mut id: Vec<String> = serde_json::from_value(id).unwrap();
            let n = id.len();
            id.extend((n..n + i % 3).map(|l| format!("<{}_{}>", (b'a' + l as u8) as char, (i * 7 + l) % 16)));
            (item, serde_json::json!(id))
        })
        .collect();
    let lengths: std::collections::BTreeSet<usize> = varied.values().map(|v| v.as_array().unwrap().len()).collect();
    assert!(lengths.len() >= 3, "{lengths:?}");
    // Item i gets i % 3 collaborative tokens (`<A_..>`, `<B_..>`) and then semantic ones, 3 to
    // 5 tokens in all, as FlexCode's mixed IDs (codes: the base-16 digits of i, so every ID
    // is unique).
    let mixed: serde_json::Map<String, serde_json::Value> = varied
        .keys()
        .enumerate()
        .map(|(i, item)| {
            let (cf, len) = (i % 3, 3 + (i / 3) % 3);
            let id: Vec<String> = (0..len)
                .map(|j| {
                    let code = (i >> (4 * j)) & 15;
                    let letter = if j < cf { (b'A' + j as u8) as char } else { (b'a' + (j - cf) as u8) as char };
                    format!("<{letter}_{code}>")
                })
                .collect();
            (item.clone(), serde_json::json!(id))
        })
        .collect();
    let file = write(d, "varied.index.json", &serde_json::Value::Object(varied).to_string());
    let mixed_file = write(d, "mixed.index.json", &serde_json::Value::Object(mixed).to_string());
    for (index, name) in [(&file, "varied"), (&mixed_file, "mixed")] {
        for kind in ["tiger", "discrec"] {
            let out_dir = format!("{name}-{kind}");
            let mut args = tiny(&["train", "synthetic", "--device", "cpu", "--out", &out_dir, "--index", index.to_str().unwrap()], "1");
            args.extend(["--set".into(), format!("model.kind=\"{kind}\""), "--set".into(), "eval.length_penalty=1.0".into()]);
            let out = run(d, &args);
            assert!(out.status.success(), "{out_dir}: {}", String::from_utf8_lossy(&out.stderr));
            let run_dir = d.join(&out_dir);
            let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("metrics.json")).unwrap()).unwrap();
            assert!(metrics[1]["all"]["recall@10"].as_f64().is_some(), "{metrics}");
            let spec: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(run_dir.join("checkpoints/best/generator.json")).unwrap()).unwrap();
            let ckpt = run_dir.join("checkpoints/best");
            if name == "varied" {
                assert_eq!(spec["level_sizes"].as_array().unwrap().len(), *lengths.last().unwrap(), "a level a token slot");
                assert_eq!(spec["max_id_len"], *lengths.last().unwrap());
                assert!(spec.get("cf_level_sizes").is_none(), "{spec}");
            } else {
                // Semantic levels a..e (5 tokens, none CF), collaborative A and B; IDs of 5 tokens.
                assert_eq!((spec["level_sizes"].as_array().unwrap().len(), spec["cf_level_sizes"].as_array().unwrap().len()), (5, 2), "{spec}");
                assert_eq!(spec["max_id_len"], 5);
                let saved = std::fs::read_to_string(ckpt.join("items.index.json")).unwrap();
                assert!(saved.contains("\"<B_") && saved.contains("\"<e_"), "the checkpoint keeps the mixed IDs");
                // The stand-alone evaluation reads them back from the checkpoint.
                let out = run(d, &tiny(&["eval", "synthetic", "--device", "cpu", "--out", &format!("{out_dir}-eval"), "--checkpoint", ckpt.to_str().unwrap()], "1"));
                assert!(out.status.success(), "{out_dir} eval: {}", String::from_utf8_lossy(&out.stderr));
            }
            let items: Vec<String> = serde_json::from_str(&std::fs::read_to_string(run_dir.join("items.json")).unwrap()).unwrap();
            let out = sidrec(d, &["recommend", "--device", "cpu", "--checkpoint", ckpt.to_str().unwrap(), "--top-k", "5", "--history", &items[1], &items[2]]);
            assert!(out.status.success(), "{out_dir}: {}", String::from_utf8_lossy(&out.stderr));
            let recs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(recs[0]["items"].as_array().unwrap().len(), 5, "{recs}");
        }
    }
}

#[test]
fn tokenize_import_fixes_collisions_and_bad_inputs_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A tiny dataset whose index file has a collision (items 1 and 2).
    let data = write(d, "t.csv", "user,item,timestamp\nu,1,1\nu,2,2\nu,3,3\nv,1,1\nv,2,2\nv,3,3\n");
    let index = write(d, "t.index.json", r#"{"1": ["<a_1>", "<b_2>"], "2": ["<a_1>", "<b_2>"], "3": ["<a_0>", "<b_2>"]}"#);
    let out = sidrec(d, &["tokenize", data.to_str().unwrap(), "--import", index.to_str().unwrap(), "--out", "r", "--set", "data.k_core=0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fixed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("r/t.index.json")).unwrap()).unwrap();
    assert_eq!(fixed["1"], serde_json::json!(["<a_1>", "<b_2>", "<c_0>"]));
    assert_eq!(fixed["2"], serde_json::json!(["<a_1>", "<b_2>", "<c_1>"]));
    assert_eq!(fixed["3"], serde_json::json!(["<a_0>", "<b_2>", "<c_0>"]));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("r/metrics.json")).unwrap()).unwrap();
    assert_eq!(m["collisions"]["colliding_items_before"], 2);
    assert_eq!(m["id_length"], 3);

    // Embeddings with the wrong number of rows name the file and both counts.
    let emb = d.join("e.npy");
    sidrec::data::Embeddings::new(2, 4, vec![0.5; 8]).save_npy(&emb).unwrap();
    let out = sidrec(d, &["tokenize", data.to_str().unwrap(), "--embeddings", emb.to_str().unwrap(), "--set", "data.k_core=0"]);
    assert_clean_failure(&out, &["e.npy", "has 2 rows but the dataset has 3 items"]);
    // A real dataset without embeddings says how to get them.
    let out = sidrec(d, &["tokenize", data.to_str().unwrap(), "--set", "data.k_core=0"]);
    assert_clean_failure(&out, &["no item embeddings given", "--embeddings"]);
    // NaN in the embeddings is rejected with its position.
    sidrec::data::Embeddings::new(3, 2, vec![0.0, 1.0, f32::NAN, 0.0, 1.0, 1.0]).save_npy(&emb).unwrap();
    let out = sidrec(d, &["tokenize", data.to_str().unwrap(), "--embeddings", emb.to_str().unwrap(), "--set", "data.k_core=0"]);
    assert_clean_failure(&out, &["e.npy", "row 1, column 0 is not finite"]);
    assert!(!d.join("runs/tokenize/t.index.json").exists());
}

#[test]
fn train_refuses_an_index_it_cannot_make_unique_or_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = write(d, "t.csv", "user,item,timestamp\nu,1,1\nu,2,2\nu,3,3\nv,1,1\nv,2,2\nv,3,3\n");
    let letters = |n: usize, code: u32| (0..n).map(|l| format!("\"<{}_{code}>\"", (b'a' + l as u8) as char)).collect::<Vec<_>>().join(", ");
    let cases = [
        // Colliding IDs (items 1 and 2) of different lengths: no disambiguation level fits.
        (r#"{"1": ["<a_1>", "<b_2>"], "2": ["<a_1>", "<b_2>"], "3": ["<a_0>"]}"#.to_string(), vec!["2 items share their ID", "different lengths"]),
        // Colliding IDs of 26 levels: no letter left for the level.
        (format!(r#"{{"1": [{}], "2": [{}], "3": [{}]}}"#, letters(26, 0), letters(26, 0), letters(26, 1)), vec!["IDs with 26 levels of the semantic codebook leave no letter"]),
        // A repeated level letter.
        (r#"{"1": ["<a_1>", "<a_2>"], "2": ["<a_0>", "<b_2>"], "3": ["<a_2>", "<b_2>"]}"#.to_string(), vec!["key \"1\"", "must be of level 'b'"]),
    ];
    for (text, expected) in cases {
        let index = write(d, "t.index.json", &text);
        let out = sidrec(
            d,
            &["train", data.to_str().unwrap(), "--index", index.to_str().unwrap(), "--device", "cpu", "--out", "r", "--set", "data.k_core=0"],
        );
        let mut expected = expected;
        expected.push("t.index.json");
        assert_clean_failure(&out, &expected);
        assert!(!d.join("r/checkpoints").exists(), "nothing trained");
    }
}

#[test]
fn the_vocabulary_follows_the_declared_codebook_size_not_the_codes_used() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 6 users over 5 items whose IDs use codes 0..=2 only.
    let mut csv = String::from("user,item,timestamp\n");
    for u in 0..6 {
        for t in 0..5 {
            csv += &format!("u{u},{},{t}\n", (u + t) % 5 + 1);
        }
    }
    let data = write(d, "v.csv", &csv);
    let index = write(d, "v.index.json", r#"{"1": ["<a_0>", "<b_0>"], "2": ["<a_0>", "<b_1>"], "3": ["<a_1>", "<b_2>"], "4": ["<a_2>", "<b_0>"], "5": ["<a_2>", "<b_2>"]}"#);
    let train = |size: &str| {
        let mut args = vec!["train".to_string(), data.display().to_string(), "--index".into(), index.display().to_string()];
        args.extend(["--device", "cpu", "--out", "r", "--restart", "--set", "data.k_core=0", "--set"].map(String::from));
        args.push(format!("tokenizer.codebook_size={size}"));
        args.extend(TINY_MODEL.iter().map(|s| s.to_string()));
        args.extend(["--set", "train.epochs=1"].map(String::from));
        run(d, &args)
    };
    let out = train("8");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("r/checkpoints/best/generator.json")).unwrap()).unwrap();
    assert_eq!(spec["level_sizes"], serde_json::json!([8, 8]), "two levels of the declared 8 codes, not of the 3 used");
    // A declared size smaller than the codes used is an error naming the setting.
    assert_clean_failure(&train("2"), &["v.index.json", "<b_2> is outside the vocabulary", "tokenizer.codebook_size (2)"]);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        // Malformed JSON, with the line.
        (vec![write(d, "a.inter.json", "{\"0\": [1, 2,\n").display().to_string()], vec!["a.inter.json:2", "malformed JSON"]),
        // Malformed CSV row, with the line.
        (vec![write(d, "b.csv", "user,item,timestamp\nu,i,1\nu,i\n").display().to_string()], vec!["b.csv:3", "expected at least 3 fields"]),
        // Negative id.
        (vec![write(d, "c.csv", "user,item\nu,-1\n").display().to_string()], vec!["c.csv:2", "negative item id"]),
        // NaN timestamp.
        (vec![write(d, "e.csv", "user,item,timestamp\nu,i,nan\n").display().to_string()], vec!["e.csv:2", "not a finite number"]),
        // A one-item history after filtering.
        (
            vec![
                write(d, "f.csv", "u,1,1\nu,2,2\nu,3,3\nv,1,1\n").display().to_string(),
                "--set".into(),
                "data.k_core=0".into(),
            ],
            vec!["dataset f", "one-item history", "data.k_core"],
        ),
        // Nothing left after filtering.
        (vec![write(d, "g.csv", "u,1,1\nu,2,2\nu,3,3\n").display().to_string()], vec!["dataset g", "no interactions left"]),
        // A missing file.
        (vec![d.join("missing.inter").display().to_string()], vec!["missing.inter", "no such file"]),
        // An unknown config key.
        (vec!["synthetic".into(), "--set".into(), "data.kcore=3".into()], vec!["data.kcore", "unknown field"]),
    ];
    for (args, expected) in cases {
        let mut full = vec!["data", "stats"];
        full.extend(args.iter().map(String::as_str));
        let out = sidrec(d, &full);
        assert_clean_failure(&out, &expected);
    }
    // A config file with an unknown key names the file and the key.
    let cfg = write(d, "bad.toml", "[eval]\nks = [5]\ncutoffs = 3\n");
    let out = sidrec(d, &["eval", "--config", cfg.to_str().unwrap()]);
    assert_clean_failure(&out, &["bad.toml", "eval.cutoffs"]);
}

#[test]
fn eval_writes_baselines_without_partial_files_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = sidrec(dir.path(), &["eval", "synthetic", "--device", "cpu", "--out", "r", "--set", "synthetic.users=200"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(dir.path().join("r/metrics.json")).unwrap();
    assert!(text.contains("\"head\"") && text.contains("recall@10"));
    // A failing run leaves no metrics file behind.
    let bad = write(dir.path(), "x.csv", "u,1,1\n");
    let out = sidrec(dir.path(), &["eval", bad.to_str().unwrap(), "--out", "r2"]);
    assert!(!out.status.success());
    assert!(!dir.path().join("r2/metrics.json").exists());
}

#[test]
fn beauty_stats_match_the_published_figures() {
    let Some(beauty) = beauty_dir() else { return };
    let out = sidrec(beauty.parent().unwrap(), &["data", "stats", beauty.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["users"], 22363);
    assert_eq!(s["items"], 12101);
    assert_eq!(s["interactions"], 198502);
    assert_eq!(s["train_examples"], 131413);
    assert_eq!(s["valid_examples"], 22363);
}

#[test]
fn movielens_100k_stats_are_sensible() {
    let Some(ml) = data_dir("ml-100k") else { return };
    let out = sidrec(&ml, &["data", "stats", ml.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every ml-100k user has >= 20 ratings; 5-core drops the rarest items only.
    assert_eq!(s["users"], 943);
    let items = s["items"].as_u64().unwrap();
    assert!((1300..1682).contains(&items), "{items}");
    assert_eq!(s["raw_interactions"], 100000);
    assert!(s["items_with_text"].as_u64().unwrap() == items, "every ml-100k item has a title");
}

/// A small SASRec on the tiny synthetic dataset.
const TINY_SASREC: &[&str] = &[
    "--set", "synthetic.users=300", "--set", "synthetic.items=150", "--set", "synthetic.topics=6",
    "--set", "model.kind=sasrec", "--set", "model.sasrec.hidden=32", "--set", "model.sasrec.max_len=10",
    "--set", "model.sasrec.dropout=0.2", "--set", "train.batch_size=32", "--set", "train.lr=3e-3",
    "--set", "train.weight_decay=0", "--set", "train.warmup_fraction=0", "--set", "train.epochs=8",
];

fn sasrec_args(args: &[&str], extra: &[&str]) -> Vec<String> {
    args.iter().chain(TINY_SASREC).chain(extra).map(|s| s.to_string()).collect()
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn sasrec_trains_beats_most_popular_recommends_and_exports_embeddings_for_tokenize() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &sasrec_args(&["train", "synthetic", "--device", "cpu", "--out", "s"], &[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The loss falls over the epochs.
    let log: Vec<serde_json::Value> = std::fs::read_to_string(d.join("s/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(log.len(), 8);
    let loss = |i: usize| log[i]["train_loss"].as_f64().unwrap();
    assert!(loss(7) < 0.8 * loss(0), "train loss {} -> {}", loss(0), loss(7));
    // SASRec beats most-popular on the test split.
    let metrics = json(&d.join("s/metrics.json"));
    let test_r10 = |name: &str| {
        metrics.as_array().unwrap().iter().find(|r| r["model"].as_str().unwrap().starts_with(name) && r["part"] == "test").unwrap()["all"]["recall@10"]
            .as_f64()
            .unwrap()
    };
    assert!(test_r10("sasrec") > test_r10("most-popular"), "{metrics}");
    for f in ["item_embeddings.npy", "item_embeddings.safetensors", "training.png", "checkpoints/best/model.bpk", "checkpoints/last/optimizer.bpk"] {
        assert!(d.join("s").join(f).is_file(), "{f} missing");
    }
    assert!(!d.join("s/checkpoints/best/items.index.json").exists());

    // eval and recommend read the checkpoint.
    let ckpt = d.join("s/checkpoints/best");
    let ckpt = ckpt.to_str().unwrap();
    let out = run(d, &sasrec_args(&["eval", "synthetic", "--device", "cpu", "--out", "e", "--checkpoint", ckpt], &[]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&d.join("e/metrics.json"))[1]["all"]["recall@10"], metrics[1]["all"]["recall@10"]);
    assert_recommends_top_5(d, &d.join("s"), ckpt);

    // The exported embeddings tokenize; on another catalogue they are refused.
    let emb = d.join("s/item_embeddings.npy");
    let out = tokenize(d, "t", &["--embeddings", emb.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.join("t/synthetic.index.json").is_file());
    let out = tokenize(d, "t2", &["--embeddings", emb.to_str().unwrap(), "--set", "synthetic.items=100"]);
    assert_clean_failure(&out, &["item_embeddings.npy", "rows but the dataset has"]);

    // A SASRec run folder refuses to resume as a generator (the library refuses both ways).
    let out = run(d, &tiny(&["train", "synthetic", "--device", "cpu", "--out", "s"], "1"));
    assert_clean_failure(&out, &["holds a sasrec model", "tiger", "--restart"]);
}

/// FlexCode end to end through the CLI on `cpu`: the study trains SASRec for the CF
/// embeddings, tokenizes with the dual codebooks (mixed IDs), trains and evaluates the
/// generator beside TIGER's semantic IDs, and writes one table; then `tokenize` alone with the
/// SASRec run folder as `--cf-embeddings`.
#[test]
fn flexcode_tokenizes_mixed_ids_and_the_study_compares_it_with_tiger() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut args = tiny(&["flexcode-study", "synthetic", "--device", "cpu", "--out", "study", "--variants", "tiger,flexcode"], "1");
    args.extend(
        [
            "--set", "synthetic.cf_pairs=10", "--set", "synthetic.p_cf=0.5", "--set", "tokenizer.flexcode.sasrec_epochs=2",
            "--set", "model.sasrec.hidden=16", "--set", "model.sasrec.max_len=10", "--set", "tokenizer.flexcode.transition_batch=64",
        ]
        .map(String::from),
    );
    let out = run(d, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = std::fs::read_to_string(d.join("study/study.md")).unwrap();
    for want in ["| 3 | tiger |", "| 3 | flexcode |", "head R@10", "tail N@10"] {
        assert!(table.contains(want), "{want} missing from:\n{table}");
    }
    let study: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("study/study.json")).unwrap()).unwrap();
    assert_eq!(study.as_array().unwrap().len(), 2);
    let tok = d.join("study/seed-42/L3/flexcode/tokenizer");
    for f in [
        "synthetic.index.json",
        "cf_share.csv",
        "cf_share.png",
        "train_log.jsonl",
        "metrics.json",
        "tokenizer.json",
        "semantic.safetensors",
        "collaborative.safetensors",
        "flexcode.safetensors",
    ] {
        assert!(tok.join(f).is_file(), "{f} missing");
    }
    let index = std::fs::read_to_string(tok.join("synthetic.index.json")).unwrap();
    assert!(index.contains("\"<A_") && index.contains("\"<a_"), "the IDs mix both codebooks");
    let log = std::fs::read_to_string(tok.join("train_log.jsonl")).unwrap();
    for term in ["sem_recon", "cf_quant", "align", "transition", "balance", "smooth"] {
        assert!(log.contains(term), "{term} missing from the log");
    }
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tok.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["collisions"]["rate_final"], 0.0);
    assert!(m["head"]["mean_cf_share"].as_f64().is_some() && m["popularity_buckets"].as_array().unwrap().len() == 5, "{m}");

    // The FlexCode run resumed with the TIGER run's plain index: refused, naming both.
    let plain = d.join("study/seed-42/L3/tiger/tokenizer/synthetic.index.json");
    let fc_run = d.join("study/seed-42/L3/flexcode");
    let mut args = tiny(&["train", "synthetic", "--device", "cpu", "--out", fc_run.to_str().unwrap()], "2");
    args.extend(["--set", "synthetic.cf_pairs=10", "--set", "synthetic.p_cf=0.5", "--set", &format!("model.index={:?}", plain.to_str().unwrap())].map(String::from));
    assert_clean_failure(&run(d, &args), &["tiger/tokenizer/synthetic.index.json: holds plain semantic IDs", "trained on FlexCode's mixed IDs", "a resumed run keeps its IDs"]);
    // A FlexCode index with one ID cut short, beside its tokenizer.json: refused, naming the item.
    let edited = d.join("edited");
    std::fs::create_dir(&edited).unwrap();
    std::fs::copy(tok.join("tokenizer.json"), edited.join("tokenizer.json")).unwrap();
    let mut ids: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&index).unwrap();
    let (first, id) = ids.iter_mut().nth(5).unwrap();
    let first = first.clone();
    id.as_array_mut().unwrap().pop();
    std::fs::write(edited.join("synthetic.index.json"), serde_json::to_string(&ids).unwrap()).unwrap();
    let mut args = tiny(&["train", "synthetic", "--device", "cpu", "--out", "edited-run"], "1");
    let path = edited.join("synthetic.index.json");
    args.extend(["--set", "synthetic.cf_pairs=10", "--set", "synthetic.p_cf=0.5", "--set", &format!("model.index={:?}", path.to_str().unwrap())].map(String::from));
    assert_clean_failure(&run(d, &args), &["synthetic.index.json", &format!("item {first:?}"), "a FlexCode index gives every item the same length"]);

    // tokenize alone, reusing the study's SASRec run for the CF embeddings.
    let sasrec = d.join("study/seed-42/sasrec");
    let mut args = tiny(&["tokenize", "synthetic", "--device", "cpu", "--out", "tok", "--cf-embeddings", sasrec.to_str().unwrap()], "1");
    args.extend(["--set", "synthetic.cf_pairs=10", "--set", "synthetic.p_cf=0.5", "--set", "tokenizer.kind=\"flexcode\""].map(String::from));
    let out = run(d, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CF share (mean a, mean CF tokens)"));
    assert!(!d.join("tok/sasrec").exists(), "the given CF embeddings are used, no SASRec is trained");
    // CF embeddings with the wrong number of rows name the file.
    let bad = d.join("bad.npy");
    sidrec::data::Embeddings::new(3, 4, vec![0.5; 12]).save_npy(&bad).unwrap();
    let mut args = tiny(&["tokenize", "synthetic", "--device", "cpu", "--out", "bad", "--cf-embeddings", bad.to_str().unwrap()], "1");
    args.extend(["--set", "tokenizer.kind=\"flexcode\""].map(String::from));
    assert_clean_failure(&run(d, &args), &["bad.npy", "has 3 rows"]);
    // So do CF embeddings that hold NaN.
    let nan = d.join("nan.npy");
    let mut values = vec![0.5; 12];
    values[5] = f32::NAN;
    sidrec::data::Embeddings::new(3, 4, values).save_npy(&nan).unwrap();
    let mut args = tiny(&["tokenize", "synthetic", "--device", "cpu", "--out", "nan", "--cf-embeddings", nan.to_str().unwrap()], "1");
    args.extend(["--set", "tokenizer.kind=\"flexcode\""].map(String::from));
    assert_clean_failure(&run(d, &args), &["nan.npy", "row 1, column 1 is not finite"]);
    assert!(!d.join("nan/synthetic.index.json").exists() && !d.join("bad/synthetic.index.json").exists());
}

/// Every checkpoint carries a manifest (size and CRC-32 of each file); a flipped byte or a
/// truncated file is an error naming it, and a resumed `train` falls back to the previous
/// checkpoint only with a warning.
#[test]
fn corrupt_checkpoints_are_named_and_resuming_falls_back_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &tiny(&["train", "synthetic", "--device", "cpu", "--out", "r"], "1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = d.join("r/checkpoints/last");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(last.join("manifest.json")).unwrap()).unwrap();
    for f in ["model.bpk", "optimizer.bpk", "state.json", "items.json", "items.index.json", "generator.json"] {
        assert!(manifest["files"][f]["crc32"].is_u64(), "{f} missing from {manifest}");
    }
    // A flipped byte in the best checkpoint's weights: recommend names the file.
    let best = d.join("r/checkpoints/best");
    let weights = best.join("model.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&weights, &bytes).unwrap();
    let items: Vec<String> = serde_json::from_str(&std::fs::read_to_string(d.join("r/items.json")).unwrap()).unwrap();
    let out = sidrec(d, &["recommend", "--device", "cpu", "--checkpoint", best.to_str().unwrap(), "--history", &items[0]]);
    assert_clean_failure(&out, &["model.bpk", "checksum differs from manifest.json"]);

    // The last checkpoint truncated, with an intact previous one beside it (as an interrupted
    // save leaves): resuming warns and continues from the previous one.
    let old = d.join("r/checkpoints/last.old");
    std::fs::create_dir(&old).unwrap();
    for f in std::fs::read_dir(&last).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, old.join(f.file_name().unwrap())).unwrap();
    }
    let state = last.join("state.json");
    let text = std::fs::read(&state).unwrap();
    std::fs::write(&state, &text[..text.len() / 2]).unwrap();
    let out = run(d, &tiny(&["train", "synthetic", "--device", "cpu", "--out", "r"], "2"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning:") && stderr.contains("state.json") && stderr.contains("truncated or changed"), "{stderr}");
    assert!(stderr.contains("resuming from the previous checkpoint"), "{stderr}");
    // Without a previous one, the damaged checkpoint is an error naming the file.
    let out = run(d, &tiny(&["train", "synthetic", "--device", "cpu", "--out", "r"], "3"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let items_file = last.join("items.json");
    let text = std::fs::read(&items_file).unwrap();
    std::fs::write(&items_file, &text[..text.len() - 3]).unwrap();
    let out = run(d, &tiny(&["train", "synthetic", "--device", "cpu", "--out", "r"], "4"));
    assert_clean_failure(&out, &["items.json", "truncated or changed"]);
}

/// A run that diverges stops at once naming the epoch and the step, and writes no checkpoint of
/// the broken weights; with `train.on_nonfinite = "skip"` the bad steps are skipped and counted
/// instead, and the run still stops when a whole epoch is skipped, naming the last good
/// checkpoint.
#[test]
fn a_diverging_run_stops_with_a_clear_error_or_skips_the_bad_steps() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A learning rate of 1e30 sends the weights to infinity within a step or two.
    let mut args = tiny(&["train", "synthetic", "--device", "cpu", "--out", "r"], "3");
    args.extend(["--set", "train.lr=1e30", "--set", "train.log_every=1", "--set", "train.grad_clip=0", "--set", "train.warmup_fraction=0"].map(String::from));
    let out = run(d, &args);
    assert_clean_failure(&out, &["the training loss became", "at epoch 1, step", "no checkpoint was written yet", "train.on_nonfinite"]);
    assert!(!d.join("r/checkpoints/last").exists(), "no checkpoint of broken weights");

    args.extend(["--set", "train.on_nonfinite=\"skip\""].map(String::from));
    let out = run(d, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: epoch 1: skipped") && stderr.contains("NaN or infinite"), "{stderr}");
    // Here the one finite step of epoch 1 leaves weights from which every step of epoch 2 is
    // non-finite: the run stops, naming epoch 1's checkpoint.
    assert_clean_failure(&out, &["steps of the epoch were skipped", "at epoch 2", "checkpoints/last (epoch 1)", "Lower train.lr"]);
    assert!(!stderr.contains("set train.on_nonfinite"), "{stderr}");
    let log = std::fs::read_to_string(d.join("r/metrics.jsonl")).unwrap();
    assert!(log.contains("\"skipped_steps\""), "{log}");
}

/// Output into a pipe nobody reads any more (`sidrec info | head -0`) ends sidrec quietly, as
/// it ends other command-line tools: by SIGPIPE, with no panic.
#[test]
fn a_closed_stdout_pipe_ends_the_command_without_a_panic() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(support::sidrec_bin())
        .args(["info", "--device", "cpu"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes before sidrec writes its first line
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert_ne!(status.code(), Some(101), "stderr: {stderr}");
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "status {status:?}, stderr: {stderr}");
}
