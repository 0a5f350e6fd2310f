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
        let format = Self::format(path)?;
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(path, format, &bytes, key)
    }

    /// The format of `path` by its extension: `npy` or `safetensors`.
    fn format(path: &Path) -> Result<&'static str> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("npy") => Ok("npy"),
            Some("safetensors") => Ok("safetensors"),
            _ => Err(DataError::file(path, "unknown embedding format: expected .npy or .safetensors")),
        }
    }

    /// Parses the contents `bytes` of embedding file `path` (named in errors; its extension
    /// picks the format), with the checks of [`Embeddings::load`]. Every size a header claims
    /// is checked against `bytes.len()` before anything is allocated for it.
    pub fn from_bytes(path: &Path, bytes: &[u8], key: Option<&str>) -> Result<Self> {
        Self::parse(path, Self::format(path)?, bytes, key)
    }

    fn parse(path: &Path, format: &str, bytes: &[u8], key: Option<&str>) -> Result<Self> {
        let emb = match format {
            "npy" => Self::parse_npy(path, bytes)?,
            _ => Self::parse_safetensors(path, bytes, key)?,
        };
        emb.check_finite(path)?;
        Ok(emb)
    }

    fn parse_npy(path: &Path, bytes: &[u8]) -> Result<Self> {
        let m = super::npy::parse(bytes).map_err(|m| DataError::file(path, m))?;
        Ok(Self::new(m.rows, m.dim, m.data))
    }

    fn parse_safetensors(path: &Path, bytes: &[u8], key: Option<&str>) -> Result<Self> {
        use safetensors::{Dtype, SafeTensors};
        // The safetensors crate checks the header length against the buffer (and caps it at
        // 100 MB) and every tensor's extent against the data before it reads them.
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| DataError::file(path, format!("not a valid safetensors file: {e}")))?;
        let mut names = st.names();
        names.sort();
        let name = match key {
            Some(k) => k.to_string(),
            None if names.len() == 1 => names[0].to_string(),
            None if names.is_empty() => return Err(DataError::file(path, "holds no tensors")),
            None => {
                return Err(DataError::file(
                    path,
                    format!(
                        "holds {} tensors ({}); name the embedding tensor (tokenizer.embeddings_key or \
                         tokenizer.flexcode.cf_embeddings_key)",
                        names.len(),
                        names.join(", ")
                    ),
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
        let width = match view.dtype() {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            other => return Err(bad(format!("unsupported dtype {other:?}: expected F32 or F64"))),
        };
        let raw = view.data();
        if rows.checked_mul(dim).and_then(|n| n.checked_mul(width)) != Some(raw.len()) {
            return Err(bad(format!("shape [{rows}, {dim}] does not match its {} bytes of data", raw.len())));
        }
        let data: Vec<f32> = if width == 4 {
            raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        } else {
            raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect()
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
        assert!(err.contains("garbage.npy: not a .npy file"), "{err}");

        let p = dir.path().join("e.txt");
        std::fs::write(&p, b"1 2").unwrap();
        assert!(Embeddings::load(&p, None).unwrap_err().to_string().contains("unknown embedding format"));

        let err = sample().check_rows(Path::new("e.npy"), 4).unwrap_err().to_string();
        assert!(err.contains("e.npy: has 3 rows but the dataset has 4 items"), "{err}");
    }
}
