//! Dense integer ids and the mapping back to the user's own ids.

use std::collections::HashMap;
use std::path::Path;

use super::error::{DataError, Result};

/// A bijection between dense ids `0..len` and the raw ids of the input files.
///
/// Dense ids are assigned in ascending numeric order when every raw id is a non-negative
/// integer (so LC-Rec datasets keep their own numbering), otherwise in order of first
/// appearance. Either way the assignment is deterministic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdMap {
    raw: Vec<String>,
    index: HashMap<String, u32>,
}

impl IdMap {
    /// Builds the map from raw ids given in order of first appearance (duplicates ignored).
    pub fn from_first_appearance<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut raw: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if seen.insert(id) {
                raw.push(id.to_string());
            }
        }
        let numeric: Option<Vec<u64>> = raw.iter().map(|s| s.parse::<u64>().ok()).collect();
        if let Some(nums) = numeric {
            let mut order: Vec<usize> = (0..raw.len()).collect();
            order.sort_by_key(|&i| nums[i]);
            raw = order.into_iter().map(|i| std::mem::take(&mut raw[i])).collect();
        }
        Self::from_raw(raw)
    }

    /// Builds the map from raw ids already in dense order.
    pub fn from_raw(raw: Vec<String>) -> Self {
        let index = raw.iter().enumerate().map(|(i, s)| (s.clone(), i as u32)).collect();
        Self { raw, index }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The raw id of dense id `dense`.
    pub fn raw(&self, dense: u32) -> &str {
        &self.raw[dense as usize]
    }

    /// The dense id of raw id `raw`, if known.
    pub fn dense(&self, raw: &str) -> Option<u32> {
        self.index.get(raw).copied()
    }

    /// All raw ids in dense order.
    pub fn raw_ids(&self) -> &[String] {
        &self.raw
    }

    /// Saves the map as a JSON array of raw ids (position = dense id).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::artifact::write_json(path, &self.raw)
            .map_err(|e| DataError::io(e.path, e.source))
    }

    /// Loads a map written by [`IdMap::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let raw: Vec<String> = serde_json::from_str(&text)
            .map_err(|e| DataError::line(path, e.line() as u64, e.to_string()))?;
        let map = Self::from_raw(raw);
        if map.index.len() != map.raw.len() {
            let mut first = HashMap::new();
            for (i, id) in map.raw.iter().enumerate() {
                if let Some(j) = first.insert(id.as_str(), i) {
                    return Err(DataError::file(path, format!("duplicate ids in id map: {id:?} at positions {j} and {i}")));
                }
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_sort_numerically() {
        let m = IdMap::from_first_appearance(["10", "2", "0", "2"]);
        assert_eq!(m.raw_ids(), &["0", "2", "10"]);
        assert_eq!(m.dense("10"), Some(2));
    }

    #[test]
    fn string_ids_keep_first_appearance() {
        let m = IdMap::from_first_appearance(["b", "10", "a"]);
        assert_eq!(m.raw_ids(), &["b", "10", "a"]);
        assert_eq!(m.raw(2), "a");
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("items.json");
        let m = IdMap::from_first_appearance(["x", "y"]);
        m.save(&p).unwrap();
        assert_eq!(IdMap::load(&p).unwrap(), m);
    }
}
