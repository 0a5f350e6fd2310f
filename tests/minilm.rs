//! The built-in sentence encoder against the Python reference (transformers), on the CPU
//! backend, and the `sidrec embed` command. The wgpu parity check lives in `tests/wgpu.rs`.

mod support;

use support::{assert_clean_failure, assert_minilm_parity, minilm_fixture, model_dir, sidrec};

#[test]
fn tokenizer_matches_the_reference_exactly() {
    let Some(model) = model_dir() else { return };
    let fx = minilm_fixture();
    let enc = sidrec::embed::SentenceEncoder::load(&model, 256, &burn::tensor::Device::flex()).unwrap();
    let texts: Vec<&str> = fx.texts.iter().map(String::as_str).collect();
    let ids = enc.tokenize(&texts).unwrap();
    for (i, (got, want)) in ids.iter().zip(&fx.input_ids).enumerate() {
        assert_eq!(got, want, "sentence {i}: {:?}", fx.texts[i]);
    }
    assert!(ids.iter().any(|t| t.len() == 256), "the fixture exercises truncation at 256");
}

#[test]
fn cpu_embeddings_match_the_reference() {
    let Some(model) = model_dir() else { return };
    let device = burn::tensor::Device::flex();
    // Small batches, padded to the longest input of each.
    assert_minilm_parity(&model, &device, 7, 1);
    // Batches padded to multiples of 16 (as on wgpu): padding must not change a thing.
    assert_minilm_parity(&model, &device, 16, 16);
}

#[test]
fn embed_command_writes_the_matrix_and_handles_items_without_text() {
    let Some(model) = model_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("toy.inter.json"), r#"{"0": [1, 2, 3], "1": [2, 3, 4], "2": [4, 1, 2]}"#).unwrap();
    std::fs::write(
        d.join("toy.item.json"),
        r#"{"1": {"title": "Toy Story", "genre": "Animation"}, "2": {"title": "Heat"}, "3": {"title": "Casino", "genre": "Crime"}}"#,
    )
    .unwrap();
    let out = sidrec(
        d,
        &["embed", "toy.inter.json", "--model", model.to_str().unwrap(), "--device", "cpu", "--out", "e", "--set", "data.k_core=0"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 of 4 items have no text") && stderr.contains("item \"4\""), "{stderr}");
    let e = sidrec::data::Embeddings::load(&d.join("e/embeddings.npy"), None).unwrap();
    assert_eq!((e.rows, e.dim), (4, 384));
    let st = sidrec::data::Embeddings::load(&d.join("e/embeddings.safetensors"), None).unwrap();
    assert_eq!(st, e);
    for i in 0..4 {
        let n: f32 = e.row(i).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "row {i} norm {n}");
    }
    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("e/embeddings.json")).unwrap()).unwrap();
    assert_eq!(info["missing_text_items"], 1);
    assert_eq!(info["dim"], 384);
}

#[test]
fn embed_without_a_usable_model_folder_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = sidrec(d, &["embed", "synthetic", "--device", "cpu"]);
    assert_clean_failure(&out, &["no model folder given", "--model"]);
    let out = sidrec(d, &["embed", "synthetic", "--device", "cpu", "--model", "nowhere"]);
    assert_clean_failure(&out, &["nowhere", "model folder not found"]);
    std::fs::create_dir(d.join("half")).unwrap();
    std::fs::write(d.join("half/config.json"), "{}").unwrap();
    let out = sidrec(d, &["embed", "synthetic", "--device", "cpu", "--model", "half"]);
    assert_clean_failure(&out, &["half", "tokenizer.json is missing"]);
}
