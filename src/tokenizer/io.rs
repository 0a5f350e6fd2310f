//! Saving and loading a trained tokenizer: one `.safetensors` file holding every weight (f32,
//! PyTorch layout: linear weights `[out, in]`) and, in its metadata, the architecture as JSON.
//!
//! Tensor names: `encoder.{i}.weight`, `encoder.{i}.bias`, `decoder.{i}.weight`,
//! `decoder.{i}.bias` (RQ-VAE only) and `codebook.{l}` (`[codebook_size, dim]`). Values are
//! stored bit for bit, so a reloaded tokenizer gives the same codes as the one that was saved.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::config::TokenizerKind;
use super::encode::Tokenizer;
use super::quantizer::ResidualQuantizer;
use super::rq_kmeans::RqKMeans;
use super::rqvae::{Mlp, RqVae};

/// Metadata key holding the architecture.
const META_KEY: &str = "sidrec_tokenizer";

/// A tokenizer file that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerIoError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a sidrec tokenizer or is inconsistent.
    #[error("{path}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

/// The architecture of a saved tokenizer (what loading needs besides the weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizerArch {
    /// `rqvae` or `rqkmeans`.
    pub kind: TokenizerKind,
    /// Width of the embeddings it reads.
    pub input_dim: usize,
    /// Encoder widths from input to latent (RQ-VAE; empty for RQ-KMeans).
    pub encoder_widths: Vec<usize>,
    /// Residual levels.
    pub levels: usize,
    /// Codes per level.
    pub codebook_size: usize,
    /// Width of every code.
    pub code_dim: usize,
}

impl Tokenizer {
    /// Its architecture.
    pub fn arch(&self) -> TokenizerArch {
        let q = self.quantizer();
        let encoder_widths = match self {
            Tokenizer::RqVae(m) => {
                let mut w: Vec<usize> = m.encoder.layers.iter().map(|l| l.weight.val().dims()[0]).collect();
                w.push(q.dim());
                w
            }
            Tokenizer::RqKMeans(_) => Vec::new(),
        };
        TokenizerArch {
            kind: self.kind(),
            input_dim: self.input_dim(),
            encoder_widths,
            levels: q.levels(),
            codebook_size: q.codebook_size(),
            code_dim: q.dim(),
        }
    }
}

fn host(t: Tensor<2>) -> (Vec<f32>, Vec<usize>) {
    let shape = t.dims().to_vec();
    (t.into_data().try_into_vec_as::<f32>().expect("f32 weights"), shape)
}

/// Every tensor of `tok` by name, in PyTorch layout.
fn named_tensors(tok: &Tokenizer) -> Vec<(String, Vec<f32>, Vec<usize>)> {
    let mut out = Vec::new();
    if let Tokenizer::RqVae(m) = tok {
        for (part, mlp) in [("encoder", &m.encoder), ("decoder", &m.decoder)] {
            for (i, layer) in mlp.layers.iter().enumerate() {
                let (w, s) = host(layer.weight.val().transpose());
                out.push((format!("{part}.{i}.weight"), w, s));
                if let Some(b) = &layer.bias {
                    let b = b.val();
                    let n = b.dims()[0];
                    out.push((format!("{part}.{i}.bias"), b.into_data().try_into_vec_as().expect("f32"), vec![n]));
                }
            }
        }
    }
    for (l, c) in tok.quantizer().codebooks.iter().enumerate() {
        let (w, s) = host(c.val());
        out.push((format!("codebook.{l}"), w, s));
    }
    out
}

/// Writes `tok` to `path` atomically.
pub fn save(tok: &Tokenizer, path: &Path) -> Result<(), TokenizerIoError> {
    let arch = serde_json::to_string(&tok.arch()).expect("the architecture serialises");
    write_f32_tensors(path, &named_tensors(tok), META_KEY, arch)
}

/// Writes named f32 `tensors` (data, shape) to the safetensors file `path` atomically, with
/// `meta` under metadata key `key`.
pub(crate) fn write_f32_tensors(
    path: &Path,
    tensors: &[(String, Vec<f32>, Vec<usize>)],
    key: &str,
    meta: String,
) -> Result<(), TokenizerIoError> {
    let bad = |m: String| TokenizerIoError::Format { path: path.into(), msg: m };
    let views = tensors
        .iter()
        .map(|(name, data, shape)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(data))
                .map(|v| (name.clone(), v))
                .map_err(|e| bad(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta = HashMap::from([(key.to_string(), meta)]);
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| bad(e.to_string()))?;
    crate::artifact::write_bytes(path, &bytes).map_err(|e| TokenizerIoError::Io { path: e.path, source: e.source })
}

/// Reads a tokenizer saved by [`save`] onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<Tokenizer, TokenizerIoError> {
    let bad = |m: String| TokenizerIoError::Format { path: path.into(), msg: m };
    let bytes = std::fs::read(path).map_err(|e| TokenizerIoError::Io { path: path.into(), source: e })?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let arch_json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| bad(format!("no {META_KEY:?} metadata: not a tokenizer saved by sidrec")))?;
    let arch: TokenizerArch =
        serde_json::from_str(arch_json).map_err(|e| bad(format!("unreadable tokenizer architecture: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    build(&arch, device, |name, shape| {
        let view = st.tensor(name).map_err(|_| format!("tensor {name:?} is missing"))?;
        if view.shape() != shape || view.dtype() != Dtype::F32 {
            return Err(format!("tensor {name:?} is {:?} {:?}, expected F32 {shape:?}", view.dtype(), view.shape()));
        }
        Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    })
    .map_err(bad)
}

impl Tokenizer {
    /// The same tokenizer rebuilt from its host weights exactly as [`load`] builds it. Tensor
    /// layouts left behind by training can change the last bits of a matmul; encoding with the
    /// canonical form gives bit for bit what a saved and reloaded tokenizer gives.
    pub fn canonical(&self, device: &Device) -> Tokenizer {
        let tensors: HashMap<String, (Vec<f32>, Vec<usize>)> =
            named_tensors(self).into_iter().map(|(n, d, s)| (n, (d, s))).collect();
        build(&self.arch(), device, |name, shape| {
            let (data, s) = tensors.get(name).ok_or_else(|| format!("tensor {name:?} is missing"))?;
            (s.as_slice() == shape).then(|| data.clone()).ok_or_else(|| format!("tensor {name:?} has shape {s:?}"))
        })
        .expect("a tokenizer's own tensors match its architecture")
    }
}

/// Builds a tokenizer of architecture `arch` from named PyTorch-layout tensors.
fn build(
    arch: &TokenizerArch,
    device: &Device,
    tensor: impl Fn(&str, &[usize]) -> Result<Vec<f32>, String>,
) -> Result<Tokenizer, String> {
    let get = |name: &str, shape: &[usize]| tensor(name, shape).map(|v| TensorData::new(v, shape.to_vec()));
    if arch.levels == 0 {
        return Err("a tokenizer needs at least one level".into());
    }
    let codebooks = (0..arch.levels)
        .map(|l| Ok(Tensor::from_data(get(&format!("codebook.{l}"), &[arch.codebook_size, arch.code_dim])?, device)))
        .collect::<Result<Vec<Tensor<2>>, String>>()?;
    let quantizer = ResidualQuantizer::from_codebooks(codebooks);
    match arch.kind {
        TokenizerKind::Flexcode => Err("a FlexCode tokenizer is saved as its two RQ-VAEs, each of kind \"rqvae\"".into()),
        TokenizerKind::Rqkmeans => Ok(Tokenizer::RqKMeans(RqKMeans { quantizer })),
        TokenizerKind::Rqvae => {
            let w = &arch.encoder_widths;
            if w.len() < 2 || w[0] != arch.input_dim || w[w.len() - 1] != arch.code_dim {
                return Err(format!("inconsistent encoder widths {w:?}"));
            }
            let mlp = |part: &str, widths: &[usize]| -> Result<Mlp, String> {
                let layers = widths
                    .windows(2)
                    .enumerate()
                    .map(|(i, io)| {
                        let weight = Tensor::<2>::from_data(get(&format!("{part}.{i}.weight"), &[io[1], io[0]])?, device);
                        let bias = Tensor::<1>::from_data(get(&format!("{part}.{i}.bias"), &[io[1]])?, device);
                        Ok(Linear { weight: Param::from_tensor(weight.transpose()), bias: Some(Param::from_tensor(bias)) })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(Mlp { layers })
            };
            let rev: Vec<usize> = w.iter().rev().copied().collect();
            Ok(Tokenizer::RqVae(RqVae { encoder: mlp("encoder", w)?, decoder: mlp("decoder", &rev)?, quantizer }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::collisions::{assign_ids, CollisionOptions};
    use crate::tokenizer::rqvae::RqVaeConfig;
    use crate::tokenizer::train::{train_rqvae, TrainOptions};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn saving_and_reloading_gives_the_same_ids_for_every_item() {
        let device = Device::flex();
        let mut rng = StdRng::seed_from_u64(2);
        let x: Vec<f32> = (0..80 * 10).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [80, 10]), &device);
        let arch = RqVaeConfig::new(10).with_hidden(vec![16]).with_code_dim(4).with_levels(2).with_codebook_size(8);
        let opts = TrainOptions { epochs: 3, batch_size: 32, ..TrainOptions::default() };
        let tok = Tokenizer::RqVae(train_rqvae(x.clone(), &arch, &opts, |_| {}).model).canonical(&device);
        let collide = CollisionOptions { rounds: 20, epsilon: 0.003, iters: 50 };
        let (ids, _) = assign_ids(&tok, x.clone(), 32, collide);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.safetensors");
        save(&tok, &path).unwrap();
        let back = load(&path, &device).unwrap();
        assert_eq!(back.arch(), tok.arch());
        assert_eq!(assign_ids(&back, x.clone(), 32, collide).0, ids);

        let bad = dir.path().join("other.safetensors");
        crate::data::Embeddings::new(1, 1, vec![0.0]).save_safetensors(&bad, "x").unwrap();
        let err = load(&bad, &device).unwrap_err().to_string();
        assert!(err.contains("other.safetensors") && err.contains("not a tokenizer saved by sidrec"), "{err}");
    }
}
