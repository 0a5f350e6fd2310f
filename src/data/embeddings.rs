//! Item embedding matrices: reading and writing `.npy` and `.safetensors`, with the checks
//! every consumer needs (2-D, float, finite, one row per catalogue item).

use std::path::Path;

use super::error::{DataError, Location, Result};

/// A dense row-major `[rows, dim]` matrix of `f32`, one row per item in dense-id order.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// Number of rows.
    pub rows: usize,
    /// Width of each row.
    pub dim: usize,
    /// `rows * dim` values, row-major.
    pub data: Vec<f32>,
}

impl Embeddings {
    /// Wraps `data` as a `[rows, dim]` matrix.
    pub fn new(rows: usize, dim: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), rows * dim, "embedding data has the wrong length");
        Self { rows, dim, data }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Reads `.npy` or `.safetensors` by extension. For safetensors, `key` names the tensor; it
    /// may be left out when the file holds exactly one.
    pub fn load(path: &Path, key: Option<&str>) -> Result<Self> {
        let emb = match path.extension().and_then(|e| e.to_str()) {
            Some("npy") => Self::load_npy(path)?,
            Some("safetensors") => Self::load_safetensors(path, key)?,
            _ => return Err(DataError::file(path, "unknown embedding format: expected .npy or .safetensors")),
        };
        emb.check_finite(path)?;
        Ok(emb)
    }

    fn load_npy(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let bad = |m: String| DataError::file(path, m);
        let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(format!("not a valid .npy file: {e}")))?;
        let shape = npy.shape().to_vec();
        let [rows, dim] = shape[..] else {
            return Err(bad(format!("expected a 2-D matrix [items, dim], found shape {shape:?}")));
        };
        if npy.order() == npyz::Order::Fortran {
            return Err(bad("Fortran-ordered arrays are not supported: save with C order".into()));
        }
        let dtype = npy.dtype().descr();
        let data: Vec<f32> = match dtype.trim_matches(['\'', '<', '>', '|', '=']) {
            "f4" => npy.into_vec::<f32>(),
            "f8" => npy.into_vec::<f64>().map(|v| v.into_iter().map(|x| x as f32).collect()),
            other => return Err(bad(format!("unsupported dtype {other:?}: expected float32 or float64"))),
        }
        .map_err(|e| bad(format!("truncated or unreadable data: {e}")))?;
        Ok(Self::new(rows as usize, dim as usize, data))
    }

    fn load_safetensors(path: &Path, key: Option<&str>) -> Result<Self> {
        use safetensors::{Dtype, SafeTensors};
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| DataError::file(path, format!("not a valid safetensors file: {e}")))?;
        let mut names = st.names();
        names.sort();
        let name = match key {
            Some(k) => k.to_string(),
            None if names.len() == 1 => names[0].to_string(),
            None => {
                return Err(DataError::file(
                    path,
                    format!("holds {} tensors ({}); name the embedding tensor", names.len(), names.join(", ")),
                ))
            }
        };
        let view = st.tensor(&name).map_err(|_| {
            DataError::key(path, &name, format!("no such tensor (the file has: {})", names.join(", ")))
        })?;
        let bad = |m: String| DataError::Format { path: path.into(), at: Location::Key(name.clone()), msg: m };
        let [rows, dim] = view.shape()[..] else {
            return Err(bad(format!("expected a 2-D matrix [items, dim], found shape {:?}", view.shape())));
        };
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F64 => raw
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            other => return Err(bad(format!("unsupported dtype {other:?}: expected F32 or F64"))),
        };
        Ok(Self::new(rows, dim, data))
    }

    /// Errors on the first NaN or infinite value, naming its row and column.
    pub fn check_finite(&self, path: &Path) -> Result<()> {
        if self.rows == 0 || self.dim == 0 {
            return Err(DataError::file(path, format!("empty matrix [{}, {}]", self.rows, self.dim)));
        }
        if let Some(pos) = self.data.iter().position(|x| !x.is_finite()) {
            return Err(DataError::file(
                path,
                format!(
                    "value {} at row {}, column {} is not finite",
                    self.data[pos],
                    pos / self.dim,
                    pos % self.dim
                ),
            ));
        }
        Ok(())
    }

    /// Errors unless there is exactly one row per catalogue item.
    pub fn check_rows(&self, path: &Path, items: usize) -> Result<()> {
        if self.rows != items {
            return Err(DataError::file(
                path,
                format!(
                    "has {} rows but the dataset has {items} items: rows must follow the dataset's \
                     dense item ids (see items.json in the run folder)",
                    self.rows
                ),
            ));
        }
        Ok(())
    }

    /// Writes the matrix as a float32 C-order `.npy`, atomically.
    pub fn save_npy(&self, path: &Path) -> Result<()> {
        use npyz::WriterBuilder;
        crate::artifact::write_atomic(path, |w| {
            let mut writer = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&[self.rows as u64, self.dim as u64])
                .writer(w)
                .begin_nd()?;
            writer.extend(self.data.iter().copied())?;
            writer.finish()
        })
        .map_err(|e| DataError::io(e.path, e.source))
    }

    /// Writes the matrix as a single F32 tensor named `name` in a `.safetensors` file, atomically.
    pub fn save_safetensors(&self, path: &Path, name: &str) -> Result<()> {
        let bytes: &[u8] = bytemuck::cast_slice(&self.data);
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![self.rows, self.dim], bytes)
            .map_err(|e| DataError::file(path, e.to_string()))?;
        let out = safetensors::serialize([(name, view)], None).map_err(|e| DataError::file(path, e.to_string()))?;
        crate::artifact::write_bytes(path, &out).map_err(|e| DataError::io(e.path, e.source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Embeddings {
        Embeddings::new(3, 2, vec![0.0, 1.0, 2.0, 3.0, 4.5, -5.0])
    }

    #[test]
    fn npy_and_safetensors_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let npy = dir.path().join("e.npy");
        sample().save_npy(&npy).unwrap();
        assert_eq!(Embeddings::load(&npy, None).unwrap(), sample());
        let st = dir.path().join("e.safetensors");
        sample().save_safetensors(&st, "embeddings").unwrap();
        assert_eq!(Embeddings::load(&st, None).unwrap(), sample());
        assert_eq!(Embeddings::load(&st, Some("embeddings")).unwrap().row(2), &[4.5, -5.0]);
        let err = Embeddings::load(&st, Some("nope")).unwrap_err().to_string();
        assert!(err.contains("no such tensor (the file has: embeddings)"), "{err}");
    }

    #[test]
    fn bad_matrices_are_rejected_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nan.npy");
        Embeddings::new(2, 2, vec![0.0, 1.0, f32::NAN, 3.0]).save_npy(&p).unwrap();
        let err = Embeddings::load(&p, None).unwrap_err().to_string();
        assert!(err.contains("nan.npy: value NaN at row 1, column 0 is not finite"), "{err}");

        let p = dir.path().join("inf.safetensors");
        Embeddings::new(1, 2, vec![0.0, f32::INFINITY]).save_safetensors(&p, "x").unwrap();
        let err = Embeddings::load(&p, None).unwrap_err().to_string();
        assert!(err.contains("row 0, column 1 is not finite"), "{err}");

        let p = dir.path().join("garbage.npy");
        std::fs::write(&p, b"not numpy").unwrap();
        let err = Embeddings::load(&p, None).unwrap_err().to_string();
        assert!(err.contains("garbage.npy: not a valid .npy file"), "{err}");

        let p = dir.path().join("e.txt");
        std::fs::write(&p, b"1 2").unwrap();
        assert!(Embeddings::load(&p, None).unwrap_err().to_string().contains("unknown embedding format"));

        let err = sample().check_rows(Path::new("e.npy"), 4).unwrap_err().to_string();
        assert!(err.contains("e.npy: has 3 rows but the dataset has 4 items"), "{err}");
    }
}
