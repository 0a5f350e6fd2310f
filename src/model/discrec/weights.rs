//! Loading DiscRec's block weights from a safetensors file, under the names of the PyTorch
//! reference `tests/fixtures/discrec_reference.py` (used by the parity tests).
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
