//! The TOML run configuration: a plain serde layer (unknown keys rejected with their path,
//! every key defaulted), `--set section.key=value` overrides, and the effective config written
//! into the run folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::device::DeviceChoice;
use crate::data::{DatasetOptions, Format, SyntheticConfig};
use crate::eval::EvalConfig;
use crate::model::ModelConfig;
use crate::tokenizer::TokenizerConfig;
use crate::train::TrainConfig;

/// Where a run writes and what it runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSection {
    /// Output folder; default `runs/<command>`.
    pub out_dir: Option<PathBuf>,
    /// Seed for everything random in the run.
    pub seed: u64,
    /// `wgpu`, `wgpu-cpu` or `cpu`.
    pub device: DeviceChoice,
}

impl Default for RunSection {
    fn default() -> Self {
        Self { out_dir: None, seed: 42, device: DeviceChoice::Auto }
    }
}

/// Which dataset and how to prepare it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// `synthetic` (the embedded dataset) or a path: a dataset folder or an interaction file.
    pub dataset: String,
    /// `auto`, `lcrec`, `recbole` or `csv`.
    pub format: Format,
    /// k-core filter (SPEC: 5 for raw data; 0 or 1 disables it).
    pub k_core: usize,
    /// Drop interactions rated below this (formats with ratings only).
    pub min_rating: Option<f32>,
    /// History window: the last `max_len` items before each target (SPEC: 20).
    pub max_len: usize,
    /// Fraction of items, by training popularity, that form the head bucket.
    pub head_fraction: f64,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            dataset: "synthetic".into(),
            format: Format::Auto,
            k_core: 5,
            min_rating: None,
            max_len: 20,
            head_fraction: 0.2,
        }
    }
}

impl DataSection {
    /// The dataset options of the data layer.
    pub fn options(&self) -> DatasetOptions {
        DatasetOptions { k_core: self.k_core, min_rating: self.min_rating }
    }
}

/// How item text becomes embeddings (`sidrec embed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedSection {
    /// Model folder with config.json, tokenizer.json and model.safetensors (all-MiniLM-L6-v2).
    pub model_dir: Option<PathBuf>,
    /// Item text fields to use, in this order; empty = every field in file order.
    pub fields: Vec<String>,
    /// Longest input in tokens, [CLS] and [SEP] included (at most 512 for MiniLM).
    pub max_len: usize,
    /// Texts per batch.
    pub batch_size: usize,
    /// Pad batches to a multiple of this many tokens; 0 = automatic (16 on wgpu devices, where
    /// each new shape compiles kernels; 1 on the CPU backend).
    pub pad_multiple: usize,
}

impl Default for EmbedSection {
    fn default() -> Self {
        Self { model_dir: None, fields: Vec::new(), max_len: 256, batch_size: 64, pad_multiple: 0 }
    }
}

/// A whole run configuration, as read from `configs/*.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// `[run]`
    pub run: RunSection,
    /// `[data]`
    pub data: DataSection,
    /// `[synthetic]`: the embedded dataset's generator.
    pub synthetic: SyntheticConfig,
    /// `[embed]`
    pub embed: EmbedSection,
    /// `[eval]`
    pub eval: EvalConfig,
    /// `[tokenizer]`: semantic IDs (`sidrec tokenize`).
    pub tokenizer: TokenizerConfig,
    /// `[model]`: the generator's kind and sizes (`sidrec train`).
    pub model: ModelConfig,
    /// `[train]`: how the generator trains.
    pub train: TrainConfig,
}

/// A configuration that cannot be used, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The underlying error (in the message only, so that `{:#}` says it once).
        error: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path}: {msg}")]
    Syntax {
        /// The config file.
        path: String,
        /// The parser's message (with line and column).
        msg: String,
    },
    /// A key is unknown or has a value of the wrong type or range.
    #[error("{origin}: {key}: {msg}")]
    Key {
        /// The config file, or `--set` for an override.
        origin: String,
        /// The dotted key, e.g. `data.k_core`.
        key: String,
        /// What is wrong.
        msg: String,
    },
    /// A `--set` argument is not `section.key=value`.
    #[error("--set {arg:?}: expected section.key=value")]
    Override {
        /// The argument as given.
        arg: String,
    },
}

/// Parses an override value as a TOML value, or as a bare string when it is not one
/// (`--set data.dataset=../data/x` needs no quotes).
fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("key v"),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Sets `key` (dotted) to `value` in `table`, creating sub-tables.
fn set_path(table: &mut toml::Table, key: &str, value: toml::Value, arg: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Override { arg: arg.into() });
    }
    let mut t = table;
    for p in &parts[..parts.len() - 1] {
        let entry = t.entry(p.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
        t = entry.as_table_mut().ok_or_else(|| ConfigError::Key {
            origin: "--set".into(),
            key: key.into(),
            msg: format!("{p} is not a section"),
        })?;
    }
    t.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

impl RunConfig {
    /// Reads `path` (or starts from the defaults when `None`), applies `overrides`
    /// (`section.key=value`), and checks every value.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Io { path: p.into(), error: e })?;
                Self::load_str(&text, &p.display().to_string(), overrides)
            }
            None => Self::load_str("", "defaults", overrides),
        }
    }

    /// Like [`RunConfig::load`], from TOML `text` named `source` in messages (the quickstart's
    /// built-in config, for one).
    pub fn load_str(text: &str, source: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        let source = source.to_string();
        let mut table = text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::Syntax { path: source.clone(), msg: e.to_string() })?;
        for arg in overrides {
            let (key, value) = arg.split_once('=').ok_or_else(|| ConfigError::Override { arg: arg.clone() })?;
            set_path(&mut table, key.trim(), parse_value(value.trim()), arg)?;
        }
        let source = if overrides.is_empty() { source } else { format!("{source} (with --set)") };
        let config: RunConfig =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Key {
                origin: source.clone(),
                key: e.path().to_string(),
                msg: e.inner().to_string(),
            })?;
        config.validate().map_err(|(key, msg)| ConfigError::Key { origin: source, key: key.into(), msg })?;
        Ok(config)
    }

    /// Checks ranges that the types cannot express; returns the key and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.data.max_len == 0 {
            return Err(("data.max_len", "must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&self.data.head_fraction) {
            return Err(("data.head_fraction", format!("must lie in [0, 1], got {}", self.data.head_fraction)));
        }
        self.eval.validate()?;
        if self.embed.batch_size == 0 {
            return Err(("embed.batch_size", "must be at least 1".into()));
        }
        if self.embed.max_len < 2 {
            return Err(("embed.max_len", "must be at least 2 ([CLS] and [SEP])".into()));
        }
        self.synthetic.validate().map_err(|m| ("synthetic", m))?;
        self.tokenizer.validate()?;
        self.model.validate()?;
        self.train.validate()?;
        Ok(())
    }

    /// The config as TOML, as written into the run folder.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a run config always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn partial_files_get_defaults_and_overrides_apply() {
        let (_d, p) = write("[data]\nk_core = 3\n");
        let sets = vec![
            "data.dataset=../x/ml-1m".to_string(),
            "eval.ks=[1, 20]".into(),
            "run.device=cpu".into(),
            "tokenizer.kind=rqkmeans".into(),
            "tokenizer.embeddings=e.npy".into(),
        ];
        let c = RunConfig::load(Some(&p), &sets).unwrap();
        assert_eq!(c.data.k_core, 3);
        assert_eq!(c.data.max_len, 20);
        assert_eq!(c.data.dataset, "../x/ml-1m");
        assert_eq!(c.eval.ks, vec![1, 20]);
        assert_eq!(c.run.device, DeviceChoice::Cpu);
        assert_eq!(c.tokenizer.kind, crate::tokenizer::TokenizerKind::Rqkmeans);
        assert_eq!(c.tokenizer.embeddings, Some(PathBuf::from("e.npy")));
        assert_eq!(c.tokenizer.levels, 4);
        // The effective config reads back to the same value.
        let (_d2, p2) = write(&c.to_toml());
        assert_eq!(RunConfig::load(Some(&p2), &[]).unwrap(), c);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let (_d, p) = write("[data]\nkcore = 3\n");
        let e = RunConfig::load(Some(&p), &[]).unwrap_err().to_string();
        assert!(e.contains("c.toml: data.kcore: unknown field `kcore`"), "{e}");
        let e = RunConfig::load(None, &["model.layers=4".into()]).unwrap_err().to_string();
        assert!(e.contains("model.layers: unknown field `layers`"), "{e}");
        let e = RunConfig::load(None, &["train.warmup_fraction=1.5".into()]).unwrap_err().to_string();
        assert!(e.contains("train.warmup_fraction: must lie in [0, 1)"), "{e}");
        let e = RunConfig::load(None, &["data.k_core=-1".into()]).unwrap_err().to_string();
        assert!(e.contains("data.k_core"), "{e}");
        let e = RunConfig::load(None, &["run.device=tpu".into()]).unwrap_err().to_string();
        assert!(e.contains("run.device") && e.contains("unknown variant `tpu`"), "{e}");
        let e = RunConfig::load(None, &["data.head_fraction=1.5".into()]).unwrap_err().to_string();
        assert!(e.contains("data.head_fraction: must lie in [0, 1]"), "{e}");
        let e = RunConfig::load(None, &["tokenizer.kind=\"vq\"".into()]).unwrap_err().to_string();
        assert!(e.contains("tokenizer.kind") && e.contains("unknown variant `vq`"), "{e}");
        let e = RunConfig::load(None, &["tokenizer.levels=0".into()]).unwrap_err().to_string();
        assert!(e.contains("tokenizer.levels: must be at least 1"), "{e}");
        let e = RunConfig::load(None, &["nonsense".into()]).unwrap_err().to_string();
        assert!(e.contains("expected section.key=value"), "{e}");
        let (_d, p) = write("[data\nk_core = 3\n");
        let e = RunConfig::load(Some(&p), &[]).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("line 1"), "{e}");
    }
}
