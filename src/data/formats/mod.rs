//! Readers for the input formats, and detection of which one a path holds.
//!
//! - [`lcrec`]: the LC-Rec/LETTER JSON layout (`<name>.inter.json`, optional `<name>.item.json`);
//! - [`recbole`]: RecBole atomic files (`<name>.inter`, optional `<name>.item`);
//! - [`delimited`]: a plain CSV/TSV of user,item[,timestamp[,rating]].

pub mod delimited;
pub mod lcrec;
pub mod recbole;

use std::path::{Path, PathBuf};

use super::error::{DataError, Result};
use super::log::InteractionLog;

/// An input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decide from the path.
    Auto,
    /// LC-Rec/LETTER JSON layout.
    Lcrec,
    /// RecBole atomic files.
    Recbole,
    /// Plain CSV/TSV.
    Csv,
}

/// A resolved input: the format and the interaction file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The format.
    pub format: Format,
    /// The interaction file (`*.inter.json`, `*.inter`, `*.csv`...).
    pub inter: PathBuf,
}

/// Finds the files in `dir` whose names end with `suffix`.
fn files_with_suffix(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        if path.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Decides the format and interaction file of `path` (a file or a dataset folder).
pub fn resolve(path: &Path, format: Format) -> Result<Resolved> {
    if !path.exists() {
        return Err(DataError::file(path, "no such file or folder"));
    }
    if path.is_dir() {
        let candidates = [(Format::Lcrec, ".inter.json"), (Format::Recbole, ".inter")];
        for (f, suffix) in candidates {
            if format != Format::Auto && format != f {
                continue;
            }
            let found = files_with_suffix(path, suffix)?;
            match found.len() {
                0 => continue,
                1 => return Ok(Resolved { format: f, inter: found.into_iter().next().expect("one") }),
                _ => {
                    let names: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
                    return Err(DataError::file(
                        path,
                        format!("several interaction files ({}); name one of them", names.join(", ")),
                    ));
                }
            }
        }
        return Err(DataError::file(
            path,
            "found no interaction file: expected <name>.inter.json (LC-Rec) or <name>.inter (RecBole), \
             or give a .csv/.tsv file",
        ));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let detected = if name.ends_with(".inter.json") {
        Format::Lcrec
    } else if name.ends_with(".inter") {
        Format::Recbole
    } else {
        Format::Csv
    };
    let format = if format == Format::Auto { detected } else { format };
    Ok(Resolved { format, inter: path.to_path_buf() })
}

/// Reads the interaction log (and item text, where the format has it) from `path`.
pub fn load(path: &Path, format: Format) -> Result<InteractionLog> {
    let r = resolve(path, format)?;
    match r.format {
        Format::Lcrec => lcrec::load(&r.inter),
        Format::Recbole => recbole::load(&r.inter),
        Format::Csv | Format::Auto => delimited::load(&r.inter),
    }
}

/// The dataset name of an interaction file: its file name without the format's suffix.
pub fn dataset_name(inter: &Path) -> String {
    let name = inter.file_name().and_then(|n| n.to_str()).unwrap_or("dataset");
    for suffix in [".inter.json", ".inter", ".csv", ".tsv", ".txt"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return stem.to_string();
        }
    }
    name.to_string()
}

/// The file beside `inter` for the same dataset with a different suffix
/// (e.g. `Beauty.inter.json` -> `Beauty.item.json`).
pub fn sibling(inter: &Path, suffix: &str) -> PathBuf {
    inter.with_file_name(format!("{}{suffix}", dataset_name(inter)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_folders_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.inter.json"), "{}").unwrap();
        let r = resolve(dir.path(), Format::Auto).unwrap();
        assert_eq!(r.format, Format::Lcrec);
        assert_eq!(dataset_name(&r.inter), "x");
        assert_eq!(sibling(&r.inter, ".item.json"), dir.path().join("x.item.json"));
        let csv = dir.path().join("log.tsv");
        std::fs::write(&csv, "").unwrap();
        assert_eq!(resolve(&csv, Format::Auto).unwrap().format, Format::Csv);
        assert!(resolve(&dir.path().join("nope"), Format::Auto).is_err());
        let err = resolve(dir.path(), Format::Recbole).unwrap_err().to_string();
        assert!(err.contains("found no interaction file"), "{err}");
    }
}
