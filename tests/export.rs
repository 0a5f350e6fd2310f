//! `sidrec export` round-trips through `transformers`: the folder it writes from the committed
//! TIGER checkpoint `tests/fixtures/export_tiny/` holds exactly the weights and config that
//! `T5ForConditionalGeneration.from_pretrained` was checked on (`tests/fixtures/
//! export_reference.py`, run by hand, wrote `export_tiny_logits.safetensors`), and sidrec's own
//! forward of the checkpoint gives transformers' logits. Also DiscRec's documented layout and
//! the refusals (an existing folder, SASRec, bad checkpoints). All on the CPU.

mod support;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use sidrec::model::discrec::weights as discrec_weights;
use sidrec::model::t5::weights::{load_pretrained, named_tensors};
use sidrec::train::checkpoint;
use support::{assert_clean_failure, sidrec};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn export(cwd: &Path, ckpt: &Path, to: &Path) -> std::process::Output {
    sidrec(cwd, &["export", "--checkpoint", ckpt.to_str().unwrap(), "--to", to.to_str().unwrap()])
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f32s(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
    let v = st.tensor(name).unwrap_or_else(|_| panic!("{name} missing"));
    assert_eq!(v.dtype(), Dtype::F32, "{name}");
    (v.shape().to_vec(), v.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
}

fn i64s(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<i64>) {
    let v = st.tensor(name).unwrap_or_else(|_| panic!("{name} missing"));
    assert_eq!(v.dtype(), Dtype::I64, "{name}");
    (v.shape().to_vec(), v.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect())
}

fn max_abs_diff(logits: Tensor<3>, want: (Vec<usize>, Vec<f32>)) -> f32 {
    assert_eq!(logits.dims().to_vec(), want.0);
    let got: Vec<f32> = logits.into_data().convert::<f32>().try_into_vec().unwrap();
    got.iter().zip(&want.1).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

#[test]
fn tiger_export_round_trips_through_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    // An existing empty folder is a valid destination.
    std::fs::create_dir(&hf).unwrap();
    let out = export(dir.path(), &fixture("export_tiny"), &hf);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(fixture("export_tiny_logits.safetensors")).unwrap();
    let reference = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();

    // The config transformers loaded is the one written now.
    let config = json(&hf.join("config.json"));
    assert_eq!(config, serde_json::from_str::<serde_json::Value>(&meta["config.json"]).unwrap());
    assert_eq!((config["tie_word_embeddings"].as_bool(), config["feed_forward_proj"].as_str()), (Some(true), Some("relu")));

    // The weights transformers loaded are the ones written now, value for value; what it holds
    // besides them are the tied copies of `shared.weight`.
    let exported_bytes = std::fs::read(hf.join("model.safetensors")).unwrap();
    let exported = SafeTensors::deserialize(&exported_bytes).unwrap();
    let names: Vec<String> = exported.names().into_iter().map(String::from).collect();
    assert_eq!(names.len(), 47, "shared + 18 encoder + 28 decoder tensors");
    for name in &names {
        assert_eq!(f32s(&exported, name), f32s(&reference, &format!("weights.{name}")), "{name}");
    }
    let shared = f32s(&exported, "shared.weight");
    let theirs: Vec<String> = reference.names().into_iter().filter_map(|n| n.strip_prefix("weights.")).map(String::from).collect();
    assert_eq!(theirs.len(), 50);
    for extra in theirs.iter().filter(|n| !names.contains(n)) {
        assert!(["encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"].contains(&extra.as_str()), "{extra}");
        assert_eq!(f32s(&reference, &format!("weights.{extra}")), shared, "{extra} is tied to shared.weight");
    }

    // sidrec_vocab.json lists the checkpoint's items with their token ids.
    let device = Device::flex();
    let ck = checkpoint::load(&fixture("export_tiny"), &device).unwrap();
    let items = ck.item_tokens().unwrap();
    let vocab = json(&hf.join("sidrec_vocab.json"));
    assert_eq!(vocab["vocab_size"], 66);
    assert_eq!(vocab["levels"][3]["first_token_id"], 50);
    let listed = vocab["items"].as_array().unwrap();
    assert_eq!(listed.len(), items.num_items());
    for (i, entry) in listed.iter().enumerate() {
        assert_eq!(entry["item"], ck.items.raw(i as u32));
        let tokens: Vec<u32> = serde_json::from_value(entry["tokens"].clone()).unwrap();
        assert_eq!(tokens, items.tokens(i as u32));
    }

    // Batch 0: the reference built it from sidrec_vocab.json; sidrec's batching gives the same
    // rows, and its forward of the checkpoint transformers' logits.
    let histories: Vec<Vec<u32>> = serde_json::from_str(&meta["histories"]).unwrap();
    let targets: Vec<u32> = serde_json::from_str(&meta["targets"]).unwrap();
    let hs: Vec<&[u32]> = histories.iter().map(Vec::as_slice).collect();
    let enc = items.encoder_input(&hs);
    let dec = items.decoder_input(&targets);
    assert_eq!(i64s(&reference, "batch0.input_ids"), (vec![enc.batch, enc.seq], enc.input_ids.clone()));
    let mask: Vec<i64> = enc.attention_mask.iter().map(|&m| m as i64).collect();
    assert_eq!(i64s(&reference, "batch0.attention_mask").1, mask);
    assert_eq!(i64s(&reference, "batch0.decoder_input_ids"), (vec![dec.batch, dec.seq], dec.decoder_input_ids.clone()));
    let logits = ck.model.logits(&ck.model.encoder_batch(&enc, &device), &dec.to_device(&device));
    let diff0 = max_abs_diff(logits, f32s(&reference, "batch0.logits"));

    // Batch 1: random tokens, a right-padded row, padding in the decoder inputs.
    let ints = |name: &str| {
        let (shape, v) = i64s(&reference, name);
        Tensor::<2, Int>::from_ints(TensorData::new(v, [shape[0], shape[1]]), &device)
    };
    let logits = ck.model.t5.forward(ints("batch1.input_ids"), ints("batch1.attention_mask").float(), ints("batch1.decoder_input_ids"));
    let diff1 = max_abs_diff(logits, f32s(&reference, "batch1.logits"));
    eprintln!(
        "export round trip on the CPU: max |logit diff| vs transformers {} = {diff0:e} (batch 0), {diff1:e} (batch 1)",
        meta["transformers"]
    );
    assert!(diff0 < 1e-5 && diff1 < 1e-5, "{diff0:e} {diff1:e}");

    // transformers' generate, constrained to the items' IDs, ranks what `sidrec recommend`
    // ranks (20 beams both, scores summed over the tokens).
    let history: Vec<String> = serde_json::from_str(&meta["generate.history"]).unwrap();
    let ckpt = fixture("export_tiny");
    let mut args = vec!["recommend", "--device", "cpu", "--checkpoint", ckpt.to_str().unwrap(), "--top-k", "10", "--history"];
    args.extend(history.iter().map(String::as_str));
    let out = sidrec(dir.path(), &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours: Vec<(String, f32)> = recs[0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["item"].as_str().unwrap().to_string(), r["score"].as_f64().unwrap() as f32))
        .collect();
    let their_items: Vec<String> = serde_json::from_str(&meta["generate.items"]).unwrap();
    let their_scores = f32s(&reference, "generate.scores").1;
    assert_eq!(ours.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), their_items);
    for ((item, score), want) in ours.iter().zip(&their_scores) {
        assert!((score - want).abs() < 1e-4, "{item}: score {score} vs transformers {want}");
    }

    // sidrec reads the folder back to the same weights.
    let (_, reloaded) = load_pretrained(&hf, &device).unwrap();
    assert_eq!(named_tensors(&reloaded), named_tensors(&ck.model.t5));
    assert!(!hf.join(sidrec::cli::export_cmd::DISCREC_WEIGHTS).exists());
}

#[test]
fn discrec_export_writes_its_input_blocks_in_the_documented_layout() {
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("nested/hf");
    let out = export(dir.path(), &fixture("export_tiny_discrec"), &hf);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("inputs_embeds"));
    let device = Device::flex();
    let ck = checkpoint::load(&fixture("export_tiny_discrec"), &device).unwrap();

    // The T5 part reloads in sidrec with the checkpoint's weights.
    let (config, t5) = load_pretrained(&hf, &device).unwrap();
    assert_eq!(config, ck.spec.model.t5(66));
    assert_eq!(named_tensors(&t5), named_tensors(&ck.model.t5));

    // The README's table, for d_model 8, IDs of 4 tokens (6 position rows), d_ff 16.
    let bytes = std::fs::read(hf.join("discrec_input.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let per_block: [(&str, &[usize]); 16] = [
        ("position.weight", &[6, 8]),
        ("norm.weight", &[8]),
        ("norm.bias", &[8]),
        ("query.weight", &[8, 8]),
        ("query.bias", &[8]),
        ("key.weight", &[8, 8]),
        ("key.bias", &[8]),
        ("value.weight", &[8, 8]),
        ("value.bias", &[8]),
        ("norm2.weight", &[8]),
        ("norm2.bias", &[8]),
        ("ff_in.weight", &[16, 8]),
        ("ff_in.bias", &[16]),
        ("ff_out.weight", &[8, 16]),
        ("ff_out.bias", &[8]),
        ("gate.weight", &[2, 8]),
    ];
    let mut want: Vec<(String, Vec<usize>)> = Vec::new();
    for block in ["encoder", "decoder"] {
        want.extend(per_block.iter().map(|(n, s)| (format!("{block}.{n}"), s.to_vec())));
    }
    want.sort();
    let mut got: Vec<(String, Vec<usize>)> = st.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec())).collect();
    got.sort();
    assert_eq!(got, want);

    // The values are the checkpoint's, and sidrec's loader reads them back.
    let discrec = ck.model.discrec().unwrap();
    let ours = discrec_weights::named_tensors(discrec);
    for (name, shape, values) in &ours {
        assert_eq!(&f32s(&st, name), &(shape.clone(), values.clone()), "{name}");
    }
    let mut fresh = sidrec::seed::init_seeded(5, |host| ck.spec.init(host).unwrap()).input;
    let sidrec::model::generator::Input::DiscRec(fresh) = &mut fresh else { panic!("a DiscRec input") };
    assert_ne!(discrec_weights::named_tensors(fresh), ours);
    discrec_weights::load_safetensors(fresh, &hf.join("discrec_input.safetensors"), &device).unwrap();
    assert_eq!(discrec_weights::named_tensors(fresh), ours);

    let info = json(&hf.join("discrec_config.json"));
    assert_eq!((info["d_model"].as_u64(), info["max_id_tokens"].as_u64(), info["position_rows"].as_u64()), (Some(8), Some(4), Some(6)));
    assert_eq!((info["settings"]["heads"].as_u64(), info["decoder_block"].as_bool()), (Some(2), Some(true)));
    assert_eq!(json(&hf.join("sidrec_vocab.json"))["model_kind"], "discrec");
}

/// Copies the committed TIGER checkpoint into `to`.
fn copy_checkpoint(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(fixture("export_tiny")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn export_takes_run_folders_and_refuses_existing_folders_sasrec_and_bad_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A run folder stands for its checkpoints/best.
    copy_checkpoint(&d.join("run/checkpoints/best"));
    let out = export(d, &d.join("run"), &d.join("a"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.join("a/model.safetensors").is_file());

    // An existing non-empty destination is refused and left alone.
    std::fs::write(d.join("a/model.safetensors"), b"mine").unwrap();
    let out = export(d, &fixture("export_tiny"), &d.join("a"));
    assert_clean_failure(&out, &["exists and is not empty"]);
    assert_eq!(std::fs::read(d.join("a/model.safetensors")).unwrap(), b"mine");
    let out = export(d, &fixture("export_tiny"), &d.join("a/config.json"));
    assert_clean_failure(&out, &["is not a folder"]);

    // SASRec: pointed at the item table `sidrec train` exports.
    let sasrec = d.join("sasrec");
    copy_checkpoint(&sasrec);
    let spec = std::fs::read_to_string(sasrec.join("generator.json")).unwrap().replace("\"kind\": \"tiger\"", "\"kind\": \"sasrec\"");
    std::fs::write(sasrec.join("generator.json"), spec).unwrap();
    std::fs::remove_file(sasrec.join("manifest.json")).unwrap();
    let out = export(d, &sasrec, &d.join("b"));
    assert_clean_failure(&out, &["SASRec checkpoint has no T5", "item_embeddings.safetensors"]);

    // Not a checkpoint; a corrupt one. Nothing is left behind.
    let out = export(d, &d.join("a"), &d.join("b"));
    assert_clean_failure(&out, &["not a sidrec checkpoint"]);
    let corrupt = d.join("corrupt");
    copy_checkpoint(&corrupt);
    let mut bpk = std::fs::read(corrupt.join("model.bpk")).unwrap();
    let last = bpk.len() - 1;
    bpk[last] ^= 1;
    std::fs::write(corrupt.join("model.bpk"), bpk).unwrap();
    let out = export(d, &corrupt, &d.join("b"));
    assert_clean_failure(&out, &["model.bpk", "checksum differs"]);
    let mut left: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["a", "corrupt", "run", "sasrec"]);
}
