//! Saving and loading a trained FlexCode tokenizer whole, so that the router's shares and both
//! codebooks' codes can be recomputed (for new CF or text embeddings, or to inspect the router)
//! without training again.
//!
//! A tokenizer folder holds three files:
//! - `semantic.safetensors` and `collaborative.safetensors`: the two RQ-VAEs, each in the
//!   format of a plain `sidrec tokenize` ([`crate::tokenizer::io`]), so either one can be read
//!   alone;
//! - `flexcode.safetensors`: the projections into the shared space (`proj_sem.weight`,
//!   `proj_cf.weight`), the transition predictor (`predictor.weight`) and the router
//!   (`router.hidden.weight`, `router.hidden.bias`, `router.output.weight`,
//!   `router.output.bias`), f32 in PyTorch layout (`[out, in]`), with the widths as JSON
//!   metadata. Values are stored bit for bit.
//!
//! With a fixed semantic index there is no semantic RQ-VAE: `semantic.safetensors` is not
//! written, and `flexcode.safetensors` holds the code tables (`sem_table.<level>`,
//! `[codebook_size, code_dim]`) with their sizes in the metadata. The codes themselves are the
//! index's (its path is in `tokenizer.json`).

use std::path::Path;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::fixed::FixedCodes;
use super::model::{FlexCode, Router, SemanticSide, ROUTER_INPUTS};
use crate::tokenizer::io::{load, save, write_f32_tensors, TokenizerIoError};
use crate::tokenizer::Tokenizer;

/// The semantic RQ-VAE's file in a tokenizer folder.
pub const SEMANTIC_FILE: &str = "semantic.safetensors";
/// The collaborative RQ-VAE's file.
pub const COLLABORATIVE_FILE: &str = "collaborative.safetensors";
/// The projections, predictor and router.
pub const HEADS_FILE: &str = "flexcode.safetensors";

/// Metadata key of [`HEADS_FILE`].
const META_KEY: &str = "sidrec_flexcode";

/// The widths [`HEADS_FILE`] records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HeadsArch {
    shared_dim: usize,
    router_hidden: usize,
    router_inputs: usize,
    /// `[levels, codebook_size, code_dim]` of the code tables of a fixed semantic index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fixed_semantic: Option<[usize; 3]>,
}

fn linear_tensors(name: &str, layer: &Linear, out: &mut Vec<(String, Vec<f32>, Vec<usize>)>) {
    let w = layer.weight.val().transpose();
    let shape = w.dims().to_vec();
    out.push((format!("{name}.weight"), w.into_data().try_into_vec_as().expect("f32 weights"), shape));
    if let Some(b) = &layer.bias {
        let b = b.val();
        let n = b.dims()[0];
        out.push((format!("{name}.bias"), b.into_data().try_into_vec_as().expect("f32 weights"), vec![n]));
    }
}

/// Writes `model` into folder `dir` (the three files above, each atomically).
pub fn save_flexcode(model: &FlexCode, dir: &Path) -> Result<(), TokenizerIoError> {
    let mut tensors = Vec::new();
    let mut fixed_semantic = None;
    match &model.sem {
        SemanticSide::RqVae(rq) => save(&Tokenizer::RqVae(rq.clone()), &dir.join(SEMANTIC_FILE))?,
        SemanticSide::Fixed(t) => {
            for (l, table) in t.tables.iter().enumerate() {
                let v = table.val();
                let shape = v.dims().to_vec();
                tensors.push((format!("sem_table.{l}"), v.into_data().try_into_vec_as().expect("f32 weights"), shape));
            }
            fixed_semantic = Some([t.levels(), t.codebook_size(), t.code_dim()]);
        }
    }
    save(&Tokenizer::RqVae(model.cf.clone()), &dir.join(COLLABORATIVE_FILE))?;
    linear_tensors("proj_sem", &model.proj_sem, &mut tensors);
    linear_tensors("proj_cf", &model.proj_cf, &mut tensors);
    linear_tensors("predictor", &model.predictor, &mut tensors);
    linear_tensors("router.hidden", &model.router.hidden, &mut tensors);
    linear_tensors("router.output", &model.router.output, &mut tensors);
    let arch = HeadsArch {
        shared_dim: model.proj_sem.weight.val().dims()[1],
        router_hidden: model.router.hidden.weight.val().dims()[1],
        router_inputs: ROUTER_INPUTS,
        fixed_semantic,
    };
    let meta = serde_json::to_string(&arch).expect("the widths serialise");
    write_f32_tensors(&dir.join(HEADS_FILE), &tensors, META_KEY, meta)
}

fn rqvae(path: &Path, device: &Device) -> Result<crate::tokenizer::RqVae, TokenizerIoError> {
    match load(path, device)? {
        Tokenizer::RqVae(m) => Ok(m),
        other => Err(TokenizerIoError::Format {
            path: path.to_path_buf(),
            msg: format!("holds a {} tokenizer; FlexCode's codebooks are RQ-VAEs", other.kind()),
        }),
    }
}

/// Reads the FlexCode tokenizer saved by [`save_flexcode`] in folder `dir` onto `device`.
/// Every problem names the file: a missing file, a file of another kind, a missing tensor or
/// one whose shape does not fit the two RQ-VAEs.
pub fn load_flexcode(dir: &Path, device: &Device) -> Result<FlexCode, TokenizerIoError> {
    let cf = rqvae(&dir.join(COLLABORATIVE_FILE), device)?;
    let path = dir.join(HEADS_FILE);
    let bad = |m: String| TokenizerIoError::Format { path: path.clone(), msg: m };
    let bytes = std::fs::read(&path).map_err(|e| TokenizerIoError::Io { path: path.clone(), source: e })?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let arch: HeadsArch = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| bad(format!("no {META_KEY:?} metadata: not a FlexCode tokenizer saved by sidrec")))
        .and_then(|s| serde_json::from_str(s).map_err(|e| bad(format!("unreadable {META_KEY:?} metadata: {e}"))))?;
    if arch.router_inputs != ROUTER_INPUTS {
        return Err(bad(format!("its router reads {} inputs per item, this version computes {ROUTER_INPUTS}", arch.router_inputs)));
    }
    let sem_rq = match arch.fixed_semantic {
        None => Some(rqvae(&dir.join(SEMANTIC_FILE), device)?),
        Some(_) => None,
    };
    let sem_levels = sem_rq.as_ref().map_or(arch.fixed_semantic.map_or(0, |a| a[0]), |s| s.quantizer.levels());
    if sem_levels != cf.quantizer.levels() {
        return Err(bad(format!(
            "the semantic {} has {sem_levels} levels and the collaborative one {}; FlexCode's two codebooks have the same token budget",
            if sem_rq.is_some() { "RQ-VAE" } else { "code table" },
            cf.quantizer.levels()
        )));
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let tensor = |name: &str, shape: &[usize]| -> Result<TensorData, TokenizerIoError> {
        let view = st.tensor(name).map_err(|_| bad(format!("tensor {name:?} is missing")))?;
        if view.shape() != shape || view.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor {name:?} is {:?} {:?}, expected F32 {shape:?}", view.dtype(), view.shape())));
        }
        let v: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(TensorData::new(v, shape.to_vec()))
    };
    let layer = |name: &str, d_in: usize, d_out: usize, bias: bool| -> Result<Linear, TokenizerIoError> {
        let w = Tensor::<2>::from_data(tensor(&format!("{name}.weight"), &[d_out, d_in])?, device).transpose();
        let b = if bias { Some(Param::from_tensor(Tensor::<1>::from_data(tensor(&format!("{name}.bias"), &[d_out])?, device))) } else { None };
        Ok(Linear { weight: Param::from_tensor(w), bias: b })
    };
    let shared = arch.shared_dim;
    let sem = match (sem_rq, arch.fixed_semantic) {
        (Some(rq), _) => SemanticSide::RqVae(rq),
        (None, Some([levels, size, dim])) => {
            let tables = (0..levels)
                .map(|l| Ok(Param::from_tensor(Tensor::<2>::from_data(tensor(&format!("sem_table.{l}"), &[size, dim])?, device))))
                .collect::<Result<Vec<_>, TokenizerIoError>>()?;
            SemanticSide::Fixed(FixedCodes { tables })
        }
        (None, None) => unreachable!("an RQ-VAE is read unless the tables are recorded"),
    };
    Ok(FlexCode {
        proj_sem: layer("proj_sem", sem.code_dim(), shared, false)?,
        proj_cf: layer("proj_cf", cf.quantizer.dim(), shared, false)?,
        predictor: layer("predictor", shared, shared, false)?,
        router: Router {
            hidden: layer("router.hidden", ROUTER_INPUTS, arch.router_hidden, true)?,
            output: layer("router.output", arch.router_hidden, 1, true)?,
        },
        sem,
        cf,
    })
}
