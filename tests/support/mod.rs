//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `sidrec` binary: Cargo's, or `SIDREC_BIN` when set (a copy kept aside when several
/// checkouts share one build folder and overwrite each other's binary).
pub fn sidrec_bin() -> PathBuf {
    std::env::var_os("SIDREC_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sidrec")))
}

/// Runs the `sidrec` binary with `args` in `cwd`.
pub fn sidrec(cwd: &Path, args: &[&str]) -> Output {
    Command::new(sidrec_bin())
        .args(args)
        .current_dir(cwd)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the sidrec binary runs")
}

/// Asserts that `out` failed cleanly: non-zero exit, no panic, and stderr containing every
/// string of `expected`.
pub fn assert_clean_failure(out: &Output, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    for e in expected {
        assert!(stderr.contains(e), "stderr should contain {e:?}: {stderr}");
    }
}

/// The folder of fetched public datasets (`SIDREC_DATA_DIR`, else `~/.cache/sidrec/data`),
/// or `None` with a message saying how to get it. When `SIDREC_REQUIRE_DATA` is set (CI),
/// missing data is a failure instead.
pub fn data_dir(name: &str) -> Option<PathBuf> {
    let base = std::env::var_os("SIDREC_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sidrec/data")));
    let dir = base.map(|b| b.join(name)).filter(|d| d.is_dir());
    if dir.is_none() {
        let msg = format!("dataset {name} not found: run `bash .ci/fetch-data` (or set SIDREC_DATA_DIR)");
        assert!(std::env::var_os("SIDREC_REQUIRE_DATA").is_none(), "{msg}");
        eprintln!("skipped: {msg}");
    }
    dir
}

/// The shared Amazon Beauty folder beside the repository, or `None` with a message; a failure
/// instead when `SIDREC_REQUIRE_DATA` is set (CI, which has `../shared` beside its clone).
pub fn beauty_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/amazon-beauty-2014");
    if !dir.join("Beauty.inter.json").is_file() {
        let msg = "../shared/data/amazon-beauty-2014/Beauty.inter.json is absent (team-internal data)";
        assert!(std::env::var_os("SIDREC_REQUIRE_DATA").is_none(), "{msg}, and SIDREC_REQUIRE_DATA is set");
        eprintln!("skipped: {msg}");
        return None;
    }
    Some(dir)
}

/// The all-MiniLM-L6-v2 folder (`SIDREC_MODEL_DIR`, else `~/.cache/sidrec/models/...`), or
/// `None` with a message; a failure instead when `SIDREC_REQUIRE_DATA` is set (CI).
pub fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SIDREC_MODEL_DIR").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sidrec/models/all-MiniLM-L6-v2"))
    });
    let dir = dir.filter(|d| d.join("model.safetensors").is_file());
    if dir.is_none() {
        let msg = "all-MiniLM-L6-v2 not found: run `bash .ci/fetch-data minilm` (or set SIDREC_MODEL_DIR)";
        assert!(std::env::var_os("SIDREC_REQUIRE_DATA").is_none(), "{msg}");
        eprintln!("skipped: {msg}");
    }
    dir
}

/// The reference sentences (text and token ids) and their embeddings, computed with the
/// Python reference stack by `tests/fixtures/minilm_reference.py`.
pub struct MiniLmFixture {
    pub texts: Vec<String>,
    pub input_ids: Vec<Vec<u32>>,
    pub embeddings: sidrec::data::Embeddings,
}

pub fn minilm_fixture() -> MiniLmFixture {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("minilm_sentences.json")).unwrap()).unwrap();
    let rows = json.as_array().unwrap();
    let texts = rows.iter().map(|r| r["text"].as_str().unwrap().to_string()).collect();
    let input_ids = rows
        .iter()
        .map(|r| r["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect())
        .collect();
    let embeddings = sidrec::data::Embeddings::load(&dir.join("minilm_reference.safetensors"), Some("embeddings")).unwrap();
    MiniLmFixture { texts, input_ids, embeddings }
}

/// Embeds the fixture sentences on `device` and asserts cosine similarity >= 0.9999 with the
/// reference for every sentence. Returns the smallest similarity.
/// `batch_size` and `pad_multiple` choose how much padding each batch carries.
pub fn assert_minilm_parity(model: &Path, device: &burn::tensor::Device, batch_size: usize, pad_multiple: usize) -> f64 {
    let fx = minilm_fixture();
    let enc = sidrec::embed::SentenceEncoder::load(model, 256, device).unwrap().with_pad_multiple(pad_multiple);
    let texts: Vec<&str> = fx.texts.iter().map(String::as_str).collect();
    let got = enc.embed(&texts, batch_size, |_| {}).unwrap();
    let dim = fx.embeddings.dim;
    assert_eq!(got.len(), texts.len() * dim);
    let mut worst = f64::INFINITY;
    for (i, text) in texts.iter().enumerate() {
        let a = &got[i * dim..(i + 1) * dim];
        let b = fx.embeddings.row(i);
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let cos = dot / (na * nb);
        assert!(cos >= 0.9999, "sentence {i} ({text:?}): cosine {cos}");
        worst = worst.min(cos);
    }
    eprintln!("minilm parity on {device:?}: worst cosine {worst:.7} over {} sentences", texts.len());
    worst
}

/// Loads `tests/fixtures/discrec_block.safetensors` (written by
/// `tests/fixtures/discrec_reference.py`) into a DiscRec block on `device` (made autodiff here)
/// and checks outputs, gate weights and input gradients of both blocks against PyTorch's.
/// `kernel` picks the item-attention path. Returns the largest absolute difference seen.
pub fn assert_discrec_parity(device: &burn::tensor::Device, kernel: bool) -> f32 {
    use burn::tensor::{Int, Tensor, TensorData, Tolerance};
    use sidrec::model::discrec::{weights::load_safetensors, DiscRecConfig};
    use sidrec::model::EncoderBatch;

    let device = device.clone().autodiff();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/discrec_block.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let raw = |name: &str| {
        let v = st.tensor(name).unwrap();
        (v.shape().to_vec(), v.data().to_vec())
    };
    let floats = |name: &str| {
        let (shape, data) = raw(name);
        let v: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        TensorData::new(v, shape)
    };
    let ints = |name: &str| {
        let (shape, data) = raw(name);
        let v: Vec<i64> = data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
        Tensor::<2, Int>::from_ints(TensorData::new(v, [shape[0], shape[1]]), &device)
    };
    let config = DiscRecConfig { d_ff: 32, dropout: 0.0, kernel, ..DiscRecConfig::default() };
    let mut model = sidrec::seed::init_unseeded(|| config.init(16, 3, None, &device));
    load_safetensors(&mut model, &path, &device).unwrap();

    let item_pos = ints("enc.item_pos");
    let [b, s] = item_pos.dims();
    let batch = EncoderBatch {
        input_ids: item_pos.clone(),
        attention_mask: Tensor::ones([b, s], &device),
        item_pos: Some(item_pos),
        item_slot: Some(ints("enc.item_slot")),
        lengths: vec![s; b],
    };
    let tol = Tolerance::rel_abs(1e-4, 1e-4);
    let mut worst = 0f32;
    let mut check = |got: TensorData, want: TensorData, what: &str| {
        let g: Vec<f32> = got.iter::<f32>().collect();
        let w: Vec<f32> = want.iter::<f32>().collect();
        let diff = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        eprintln!("discrec parity ({what}, kernel {kernel}): max |diff| = {diff:e}");
        worst = worst.max(diff);
        got.assert_approx_eq::<f32>(&want, tol);
    };
    for (p, encoder) in [("enc", true), ("dec", false)] {
        let e = Tensor::<3>::from_data(floats(&format!("{p}.e")), &device).require_grad();
        let out = if encoder { model.encoder_input(e.clone(), &batch) } else { model.decoder_input(e.clone(), &Tensor::zeros([e.dims()[0], e.dims()[1]], &device)) };
        let proj = Tensor::<3>::from_data(floats(&format!("{p}.proj")), &device);
        let grads = (out.embeds.clone() * proj).sum().backward();
        check(out.embeds.into_data(), floats(&format!("{p}.out")), &format!("{p} out"));
        check(out.gate_sem.unwrap().into_data(), floats(&format!("{p}.gate_sem")), &format!("{p} gate"));
        check(e.grad(&grads).unwrap().into_data(), floats(&format!("{p}.grad_e")), &format!("{p} grad e"));
    }
    worst
}

/// Every file and folder under `dir` with its contents (`None` for a folder), to check that a
/// failing command created or changed nothing.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(dir: &Path, root: &Path, out: &mut std::collections::BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                walk(&p, root, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The paths that differ between two [`snapshot`]s: created, removed or changed.
pub fn snapshot_diff(
    before: &std::collections::BTreeMap<PathBuf, Option<Vec<u8>>>,
    after: &std::collections::BTreeMap<PathBuf, Option<Vec<u8>>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (p, v) in after {
        match before.get(p) {
            None => out.push(format!("created {}", p.display())),
            Some(b) if b != v => out.push(format!("changed {}", p.display())),
            _ => {}
        }
    }
    out.extend(before.keys().filter(|p| !after.contains_key(*p)).map(|p| format!("removed {}", p.display())));
    out
}
