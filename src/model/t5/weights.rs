//! Loading and saving T5 weights under their Hugging Face names (`model.safetensors`,
//! `config.json`), so that checkpoints move between sidrec and `transformers` both ways.
//!
//! Names: `shared.weight`; `{encoder,decoder}.block.{i}.layer.0.SelfAttention.{q,k,v,o}.weight`
//! (and `.relative_attention_bias.weight` in block 0); the decoder's
//! `layer.1.EncDecAttention.*`; `layer.{1,2}.DenseReluDense.{wi,wo}.weight`;
//! `layer.{j}.layer_norm.weight`; `{encoder,decoder}.final_layer_norm.weight`. Linear weights are
//! stored `[out, in]` as in PyTorch. The tied copies (`encoder.embed_tokens`,
//! `decoder.embed_tokens`, `lm_head`) are not written, as `save_pretrained` does; on loading,
//! `encoder.embed_tokens.weight` stands in for a missing `shared.weight`.

use std::path::Path;

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::attention::Attention;
use super::config::T5Config;
use super::model::T5ForConditionalGeneration;
use super::stack::Stack;
use crate::data::DataError;

/// A parameter slot, by checkpoint name.
enum Slot<'a> {
    /// Weight stored `[out, in]` in the checkpoint, `[in, out]` in Burn.
    Linear(&'a mut Linear),
    Norm(&'a mut RmsNorm),
    Embedding(&'a mut Embedding),
}

fn attention_slots<'a>(p: &str, a: &'a mut Attention, out: &mut Vec<(String, Slot<'a>)>) {
    out.push((format!("{p}.q.weight"), Slot::Linear(&mut a.q)));
    out.push((format!("{p}.k.weight"), Slot::Linear(&mut a.k)));
    out.push((format!("{p}.v.weight"), Slot::Linear(&mut a.v)));
    out.push((format!("{p}.o.weight"), Slot::Linear(&mut a.o)));
    if let Some(e) = a.relative_attention_bias.as_mut() {
        out.push((format!("{p}.relative_attention_bias.weight"), Slot::Embedding(e)));
    }
}

fn stack_slots<'a>(p: &str, s: &'a mut Stack, out: &mut Vec<(String, Slot<'a>)>) {
    for (i, b) in s.block.iter_mut().enumerate() {
        let p = format!("{p}.block.{i}.layer");
        attention_slots(&format!("{p}.0.SelfAttention"), &mut b.self_attention.attention, out);
        out.push((format!("{p}.0.layer_norm.weight"), Slot::Norm(&mut b.self_attention.layer_norm)));
        let mut ff = 1;
        if let Some(c) = b.cross_attention.as_mut() {
            attention_slots(&format!("{p}.1.EncDecAttention"), &mut c.attention, out);
            out.push((format!("{p}.1.layer_norm.weight"), Slot::Norm(&mut c.layer_norm)));
            ff = 2;
        }
        out.push((format!("{p}.{ff}.DenseReluDense.wi.weight"), Slot::Linear(&mut b.feed_forward.wi)));
        out.push((format!("{p}.{ff}.DenseReluDense.wo.weight"), Slot::Linear(&mut b.feed_forward.wo)));
        out.push((format!("{p}.{ff}.layer_norm.weight"), Slot::Norm(&mut b.feed_forward.layer_norm)));
    }
    out.push((format!("{p}.final_layer_norm.weight"), Slot::Norm(&mut s.final_layer_norm)));
}

fn slots(model: &mut T5ForConditionalGeneration) -> Vec<(String, Slot<'_>)> {
    let mut out = vec![("shared.weight".to_string(), Slot::Embedding(&mut model.shared))];
    stack_slots("encoder", &mut model.encoder, &mut out);
    stack_slots("decoder", &mut model.decoder, &mut out);
    out
}

/// Reads tensor `name` (or the first of `fallbacks` present) as f32 of shape `shape`.
fn read(st: &SafeTensors, path: &Path, name: &str, fallbacks: &[&str], shape: &[usize]) -> Result<Vec<f32>, DataError> {
    let view = std::iter::once(name)
        .chain(fallbacks.iter().copied())
        .find_map(|n| st.tensor(n).ok())
        .ok_or_else(|| DataError::key(path, name, "missing from the checkpoint"))?;
    if view.shape() != shape {
        return Err(DataError::key(path, name, format!("has shape {:?}, the model expects {shape:?}", view.shape())));
    }
    if view.dtype() != Dtype::F32 {
        return Err(DataError::key(path, name, format!("has dtype {:?}; only F32 checkpoints are supported", view.dtype())));
    }
    Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Overwrites every parameter of `model` with the values of the safetensors file `path`
/// (Hugging Face names; other tensors in the file are ignored).
pub fn load_safetensors(model: &mut T5ForConditionalGeneration, path: &Path, device: &Device) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| DataError::file(path, format!("not a valid safetensors file: {e}")))?;
    for (name, slot) in slots(model) {
        match slot {
            Slot::Linear(l) => {
                let [d_in, d_out] = l.weight.dims();
                let w = read(&st, path, &name, &[], &[d_out, d_in])?;
                let w = Tensor::<2>::from_data(TensorData::new(w, [d_out, d_in]), device).transpose();
                l.weight = Param::from_tensor(w);
            }
            Slot::Norm(n) => {
                let [d] = n.gamma.dims();
                let w = read(&st, path, &name, &[], &[d])?;
                n.gamma = Param::from_tensor(Tensor::from_data(TensorData::new(w, [d]), device));
            }
            Slot::Embedding(e) => {
                let dims = e.weight.dims();
                let fallbacks: &[&str] = if name == "shared.weight" { &["encoder.embed_tokens.weight"] } else { &[] };
                let w = read(&st, path, &name, fallbacks, &dims)?;
                e.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, dims), device));
            }
        }
    }
    Ok(())
}

/// Every parameter under its Hugging Face name, in the checkpoint's layout, on the host.
pub fn named_tensors(model: &T5ForConditionalGeneration) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut copy = model.clone();
    let host = |t: TensorData| -> Vec<f32> { t.convert::<f32>().try_into_vec().expect("f32 after convert") };
    slots(&mut copy)
        .into_iter()
        .map(|(name, slot)| match slot {
            Slot::Linear(l) => {
                let w = l.weight.val().transpose(); // [out, in]
                (name, w.dims().to_vec(), host(w.into_data()))
            }
            Slot::Norm(n) => (name, n.gamma.dims().to_vec(), host(n.gamma.val().into_data())),
            Slot::Embedding(e) => (name, e.weight.dims().to_vec(), host(e.weight.val().into_data())),
        })
        .collect()
}

/// Writes every parameter of `model` to `path` as F32 safetensors under Hugging Face names,
/// atomically.
pub fn save_safetensors(model: &T5ForConditionalGeneration, path: &Path) -> Result<(), DataError> {
    write_f32_tensors(path, &named_tensors(model))
}

/// Writes named F32 tensors `(name, shape, row-major values)` to `path` as safetensors,
/// atomically (DiscRec's input blocks use it too).
pub fn write_f32_tensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Result<(), DataError> {
    let views = tensors
        .iter()
        .map(|(name, shape, data)| {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(data))
                .map_err(|e| DataError::key(path, name, e.to_string()))?;
            Ok((name.as_str(), view))
        })
        .collect::<Result<Vec<_>, DataError>>()?;
    let bytes = safetensors::serialize(views, None).map_err(|e| DataError::file(path, e.to_string()))?;
    crate::artifact::write_bytes(path, &bytes).map_err(|e| DataError::io(e.path, e.source))
}

/// Writes a Hugging Face model folder: `config.json` and `model.safetensors`, loadable with
/// `T5ForConditionalGeneration.from_pretrained(dir)`.
pub fn save_pretrained(model: &T5ForConditionalGeneration, config: &T5Config, dir: &Path) -> Result<(), DataError> {
    let config_path = dir.join("config.json");
    crate::artifact::write_json(&config_path, &config.to_hf_json()).map_err(|e| DataError::io(e.path, e.source))?;
    save_safetensors(model, &dir.join("model.safetensors"))
}

/// Reads a Hugging Face model folder (`config.json` + `model.safetensors`).
pub fn load_pretrained(dir: &Path, device: &Device) -> Result<(T5Config, T5ForConditionalGeneration), DataError> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| DataError::io(&config_path, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| DataError::file(&config_path, format!("not valid JSON: {e}")))?;
    let config = T5Config::from_hf_json(&json).map_err(|m| DataError::file(&config_path, m))?;
    let mut model = crate::seed::init_unseeded(|| config.init(device));
    load_safetensors(&mut model, &dir.join("model.safetensors"), device)?;
    Ok((config, model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Int, Tolerance};
    use std::path::PathBuf;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/t5_tiny.safetensors")
    }

    /// The configuration of `tests/fixtures/t5_reference.py`.
    pub(crate) fn fixture_config() -> T5Config {
        T5Config::new(40)
            .with_d_model(16)
            .with_d_kv(8)
            .with_d_ff(32)
            .with_num_layers(2)
            .with_num_decoder_layers(2)
            .with_num_heads(2)
            .with_relative_attention_num_buckets(8)
            .with_relative_attention_max_distance(20)
    }

    fn get(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<u8>) {
        let v = st.tensor(name).unwrap();
        (v.shape().to_vec(), v.data().to_vec())
    }

    fn ints(st: &SafeTensors, name: &str, device: &Device) -> Tensor<2, Int> {
        let (shape, data) = get(st, name);
        let v: Vec<i64> = data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
        Tensor::from_ints(TensorData::new(v, [shape[0], shape[1]]), device)
    }

    fn floats(st: &SafeTensors, name: &str) -> TensorData {
        let (shape, data) = get(st, name);
        let v: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        TensorData::new(v, shape)
    }

    #[test]
    fn logits_and_loss_match_transformers() {
        let device = Device::flex();
        let mut model = crate::seed::init_unseeded(|| fixture_config().init(&device));
        load_safetensors(&mut model, &fixture(), &device).unwrap();
        let bytes = std::fs::read(fixture()).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        for b in 0..2 {
            let ids = ints(&st, &format!("batch{b}.input_ids"), &device);
            let mask = ints(&st, &format!("batch{b}.attention_mask"), &device).float();
            let dec = ints(&st, &format!("batch{b}.decoder_input_ids"), &device);
            let labels = ints(&st, &format!("batch{b}.labels"), &device);
            let logits = model.forward(ids, mask, dec);
            let expected = floats(&st, &format!("batch{b}.logits"));
            let diff = (logits.clone() - Tensor::from_data(expected.clone(), &device)).abs().max().into_scalar::<f32>();
            eprintln!("t5 parity batch {b} on the CPU: max |logit diff| = {diff:e}");
            logits.to_data().assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-4));
            let loss = T5ForConditionalGeneration::loss(logits, labels).into_scalar::<f32>();
            let want = floats(&st, &format!("batch{b}.loss")).try_into_vec::<f32>().unwrap()[0];
            assert!((loss - want).abs() < 1e-4, "batch {b}: loss {loss} vs {want}");
        }
    }

    #[test]
    fn buckets_match_transformers() {
        let bytes = std::fs::read(fixture()).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        for (name, bidirectional) in [("buckets.bidirectional", true), ("buckets.causal", false)] {
            let (_, data) = get(&st, name);
            let want: Vec<i64> = data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
            let got: Vec<i64> =
                (-160..=160).map(|r| super::super::attention::relative_position_bucket(r, bidirectional, 32, 128)).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn save_then_load_round_trips_and_errors_name_the_key() {
        let device = Device::flex();
        let config = fixture_config();
        let model = crate::seed::init_seeded(30, |host| config.init(host));
        let dir = tempfile::tempdir().unwrap();
        save_pretrained(&model, &config, dir.path()).unwrap();
        let (config2, loaded) = load_pretrained(dir.path(), &device).unwrap();
        assert_eq!(config2, config);
        let a = named_tensors(&model);
        let b = named_tensors(&loaded);
        // shared + encoder 2 x 8 + bias + norm + decoder 2 x 13 + bias + norm.
        assert_eq!(a.len(), 47);
        assert_eq!(a, b);
        // The fixture's names are exactly ours (plus the batches).
        let bytes = std::fs::read(fixture()).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut theirs: Vec<String> = st.names().into_iter().filter(|n| n.ends_with(".weight")).map(str::to_string).collect();
        theirs.sort();
        let mut ours: Vec<String> = a.into_iter().map(|t| t.0).collect();
        ours.sort();
        assert_eq!(ours, theirs);
        // A checkpoint of another size fails with the tensor's name.
        let mut small = crate::seed::init_unseeded(|| fixture_config().with_d_ff(8).init(&device));
        let err = load_safetensors(&mut small, &fixture(), &device).unwrap_err().to_string();
        assert!(err.contains("encoder.block.0.layer.1.DenseReluDense.wi.weight") && err.contains("has shape [32, 16]"), "{err}");
    }
}
