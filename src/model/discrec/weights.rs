//! Loading and saving DiscRec's block weights as a safetensors file, under the names of the
//! PyTorch reference `tests/fixtures/discrec_reference.py` (used by the parity tests, and by
//! `sidrec export` for `discrec_input.safetensors`).
//!
//! Names, each under `encoder.` or `decoder.`: `position.weight` `[L+2, d_model]`,
//! `norm.{weight,bias}`, `{query,key,value}.{weight,bias}` (weights `[out, in]` as PyTorch),
//! `norm2.{weight,bias}`, `ff_in.{weight,bias}`, `ff_out.{weight,bias}`, `gate.weight` `[2, d_model]`.
//! Parts a config leaves out are skipped.

use std::path::Path;

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::block::{DiscRec, InputBlock};
use super::layer_norm::LayerNorm;
use crate::data::DataError;

/// Reads tensor `name` as f32 of shape `shape`.
fn read(st: &SafeTensors, path: &Path, name: &str, shape: &[usize]) -> Result<Vec<f32>, DataError> {
    let view = st.tensor(name).map_err(|_| DataError::key(path, name, "missing from the file"))?;
    if view.shape() != shape {
        return Err(DataError::key(path, name, format!("has shape {:?}, the model expects {shape:?}", view.shape())));
    }
    if view.dtype() != Dtype::F32 {
        return Err(DataError::key(path, name, format!("has dtype {:?}; only F32 is supported", view.dtype())));
    }
    Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

struct Reader<'a> {
    st: SafeTensors<'a>,
    path: &'a Path,
    device: &'a Device,
}

impl Reader<'_> {
    fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<D>, DataError> {
        let v = read(&self.st, self.path, name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(v, shape), self.device))
    }

    fn linear(&self, p: &str, l: &mut Linear) -> Result<(), DataError> {
        let [d_in, d_out] = l.weight.dims();
        l.weight = Param::from_tensor(self.tensor(&format!("{p}.weight"), [d_out, d_in])?.transpose());
        if l.bias.is_some() {
            l.bias = Some(Param::from_tensor(self.tensor(&format!("{p}.bias"), [d_out])?));
        }
        Ok(())
    }

    fn norm(&self, p: &str, n: &mut LayerNorm) -> Result<(), DataError> {
        let dims = n.gamma.dims();
        n.gamma = Param::from_tensor(self.tensor(&format!("{p}.weight"), dims)?);
        n.beta = Param::from_tensor(self.tensor(&format!("{p}.bias"), dims)?);
        Ok(())
    }

    fn embedding(&self, p: &str, e: &mut Embedding) -> Result<(), DataError> {
        e.weight = Param::from_tensor(self.tensor(&format!("{p}.weight"), e.weight.dims())?);
        Ok(())
    }

    fn block(&self, p: &str, b: &mut InputBlock) -> Result<(), DataError> {
        if let Some(e) = b.position.as_mut() {
            self.embedding(&format!("{p}.position"), e)?;
        }
        if let Some(n) = b.norm.as_mut() {
            self.norm(&format!("{p}.norm"), n)?;
        }
        if let Some(c) = b.branch.as_mut() {
            self.linear(&format!("{p}.query"), &mut c.query)?;
            self.linear(&format!("{p}.key"), &mut c.key)?;
            self.linear(&format!("{p}.value"), &mut c.value)?;
            self.norm(&format!("{p}.norm2"), &mut c.norm)?;
            self.linear(&format!("{p}.ff_in"), &mut c.ff_in)?;
            self.linear(&format!("{p}.ff_out"), &mut c.ff_out)?;
        }
        if let Some(g) = b.gate.as_mut() {
            self.embedding(&format!("{p}.gate"), g)?;
        }
        Ok(())
    }
}

/// Overwrites every parameter of `model` with the values of the safetensors file `path`.
pub fn load_safetensors(model: &mut DiscRec, path: &Path, device: &Device) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| DataError::file(path, format!("not a valid safetensors file: {e}")))?;
    let reader = Reader { st, path, device };
    reader.block("encoder", &mut model.encoder)?;
    if let Some(d) = model.decoder.as_mut() {
        reader.block("decoder", d)?;
    }
    Ok(())
}

/// One exported tensor: name, shape and row-major values.
type Named = (String, Vec<usize>, Vec<f32>);

fn host<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
    let shape = t.dims().to_vec();
    (shape, t.into_data().convert::<f32>().try_into_vec().expect("f32 after convert"))
}

fn push<const D: usize>(out: &mut Vec<Named>, name: String, t: Tensor<D>) {
    let (shape, values) = host(t);
    out.push((name, shape, values));
}

fn push_linear(out: &mut Vec<Named>, p: &str, l: &Linear) {
    push(out, format!("{p}.weight"), l.weight.val().transpose()); // [out, in]
    if let Some(b) = &l.bias {
        push(out, format!("{p}.bias"), b.val());
    }
}

fn push_norm(out: &mut Vec<Named>, p: &str, n: &LayerNorm) {
    push(out, format!("{p}.weight"), n.gamma.val());
    push(out, format!("{p}.bias"), n.beta.val());
}

fn push_block(out: &mut Vec<Named>, p: &str, b: &InputBlock) {
    if let Some(e) = &b.position {
        push(out, format!("{p}.position.weight"), e.weight.val());
    }
    if let Some(n) = &b.norm {
        push_norm(out, &format!("{p}.norm"), n);
    }
    if let Some(c) = &b.branch {
        push_linear(out, &format!("{p}.query"), &c.query);
        push_linear(out, &format!("{p}.key"), &c.key);
        push_linear(out, &format!("{p}.value"), &c.value);
        push_norm(out, &format!("{p}.norm2"), &c.norm);
        push_linear(out, &format!("{p}.ff_in"), &c.ff_in);
        push_linear(out, &format!("{p}.ff_out"), &c.ff_out);
    }
    if let Some(g) = &b.gate {
        push(out, format!("{p}.gate.weight"), g.weight.val());
    }
}

/// Every parameter of `model` under the names [`load_safetensors`] reads, on the host (linear
/// weights `[out, in]`).
pub fn named_tensors(model: &DiscRec) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut out = Vec::new();
    push_block(&mut out, "encoder", &model.encoder);
    if let Some(d) = &model.decoder {
        push_block(&mut out, "decoder", d);
    }
    out
}

/// Writes every parameter of `model` to `path` as F32 safetensors ([`named_tensors`]),
/// atomically; [`load_safetensors`] reads it back.
pub fn save_safetensors(model: &DiscRec, path: &Path) -> Result<(), DataError> {
    crate::model::t5::weights::write_f32_tensors(path, &named_tensors(model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::discrec::DiscRecConfig;

    #[test]
    fn save_then_load_round_trips_every_part() {
        let device = Device::flex();
        let c = DiscRecConfig { d_ff: 8, ..DiscRecConfig::default() };
        let model = crate::seed::init_seeded(40, |host| c.init(8, 3, None, host));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("discrec.safetensors");
        save_safetensors(&model, &path).unwrap();
        let mut other = crate::seed::init_seeded(41, |host| c.init(8, 3, None, host));
        assert_ne!(named_tensors(&model), named_tensors(&other));
        load_safetensors(&mut other, &path, &device).unwrap();
        let (a, b) = (named_tensors(&model), named_tensors(&other));
        // Per block: position, norm (2), query/key/value (6), norm2 (2), ff_in/ff_out (4), gate.
        assert_eq!(a.len(), 2 * 16);
        assert_eq!(a, b);
        let shape = |n: &str| a.iter().find(|t| t.0 == n).map(|t| t.1.clone()).unwrap();
        assert_eq!(shape("encoder.position.weight"), [5, 8]);
        assert_eq!(shape("decoder.ff_in.weight"), [8, 8]);
        assert_eq!(shape("decoder.gate.weight"), [2, 8]);
    }
}
