//! Loading Hugging Face BERT weights (`model.safetensors`) into [`Bert`].

use std::path::Path;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::bert::access::{slots, Slot};
use super::bert::Bert;
use crate::data::DataError;

/// Reads tensor `name` (with or without a `bert.` prefix) as f32, checking its shape.
fn tensor(st: &SafeTensors, path: &Path, name: &str, shape: &[usize]) -> Result<Vec<f32>, DataError> {
    let view = st
        .tensor(name)
        .or_else(|_| st.tensor(&format!("bert.{name}")))
        .map_err(|_| DataError::key(path, name, "missing from the checkpoint"))?;
    if view.shape() != shape {
        return Err(DataError::key(path, name, format!("has shape {:?}, the model expects {shape:?}", view.shape())));
    }
    if view.dtype() != Dtype::F32 {
        return Err(DataError::key(path, name, format!("has dtype {:?}; only F32 checkpoints are supported", view.dtype())));
    }
    Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

fn param1(v: Vec<f32>, device: &Device) -> Param<Tensor<1>> {
    let n = v.len();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), device))
}

fn param2(v: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Overwrites every parameter of `model` with the checkpoint's values.
pub fn load_safetensors(model: &mut Bert, path: &Path, device: &Device) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| DataError::file(path, format!("not a valid safetensors file: {e}")))?;
    for (prefix, slot) in slots(model) {
        match slot {
            Slot::Linear(l) => {
                let [d_in, d_out] = l.weight.dims();
                // Checkpoints store [out, in]; Burn's Linear holds [in, out].
                let w = tensor(&st, path, &format!("{prefix}.weight"), &[d_out, d_in])?;
                l.weight = Param::from_tensor(param2(w, [d_out, d_in], device).transpose());
                let b = tensor(&st, path, &format!("{prefix}.bias"), &[d_out])?;
                l.bias = Some(param1(b, device));
            }
            Slot::Norm(n) => {
                let [d] = n.gamma.dims();
                n.gamma = param1(tensor(&st, path, &format!("{prefix}.weight"), &[d])?, device);
                n.beta = Some(param1(tensor(&st, path, &format!("{prefix}.bias"), &[d])?, device));
            }
            Slot::Embedding(e) => {
                let [rows, d] = e.weight.dims();
                let w = tensor(&st, path, &format!("{prefix}.weight"), &[rows, d])?;
                e.weight = Param::from_tensor(param2(w, [rows, d], device));
            }
        }
    }
    Ok(())
}
