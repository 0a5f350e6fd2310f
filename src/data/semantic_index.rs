//! Semantic-ID index files in the LC-Rec/LETTER format:
//! `{"<item id>": ["<a_183>", "<b_70>", "<c_232>", "<d_6>"]}`.
//!
//! The letter is the codebook level (`a` = 0), the number the code. Files written by other tools
//! can be read and ours used by them.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::error::{DataError, Result};
use super::formats::lcrec::{kind, read_object};
use super::idmap::IdMap;

/// One token of a semantic ID: code `code` of codebook level `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeToken {
    /// Codebook level (0 = `a`).
    pub level: u8,
    /// Code inside the level.
    pub code: u32,
}

impl CodeToken {
    /// Parses `"<a_12>"`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("token {s:?} is not of the form \"<a_12>\"");
        let inner = s.strip_prefix('<').and_then(|t| t.strip_suffix('>')).ok_or_else(bad)?;
        let (letter, code) = inner.split_once('_').ok_or_else(bad)?;
        let mut chars = letter.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else { return Err(bad()) };
        if !c.is_ascii_lowercase() {
            return Err(bad());
        }
        let code = code.parse::<u32>().map_err(|_| bad())?;
        Ok(Self { level: c as u8 - b'a', code })
    }
}

impl std::fmt::Display for CodeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}_{}>", (b'a' + self.level) as char, self.code)
    }
}

/// The semantic ID of every catalogue item, in dense item order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemanticIndex {
    /// `ids[item]` = that item's tokens.
    pub ids: Vec<Vec<CodeToken>>,
}

/// What reading an index file found besides the IDs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Entries for items that are not in the catalogue (e.g. removed by filtering).
    pub extra_entries: usize,
}

impl SemanticIndex {
    /// Reads `path`, mapping its raw item ids through `items`. Every catalogue item must have
    /// an entry; entries for other items are counted in the report and skipped.
    pub fn read(path: &Path, items: &IdMap) -> Result<(Self, IndexReport)> {
        let object: Vec<(String, Value)> = read_object(path)?;
        let mut ids: Vec<Option<Vec<CodeToken>>> = vec![None; items.len()];
        let mut report = IndexReport::default();
        for (item, tokens) in &object {
            let Value::Array(tokens) = tokens else {
                return Err(DataError::key(path, item, format!("expected a list of tokens, found {}", kind(tokens))));
            };
            let parsed = tokens
                .iter()
                .map(|t| match t {
                    Value::String(s) => CodeToken::parse(s),
                    other => Err(format!("expected a token string, found {}", kind(other))),
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|m| DataError::key(path, item, m))?;
            if parsed.is_empty() {
                return Err(DataError::key(path, item, "empty semantic ID"));
            }
            match items.dense(item) {
                Some(d) => ids[d as usize] = Some(parsed),
                None => report.extra_entries += 1,
            }
        }
        let missing: Vec<&str> =
            ids.iter().enumerate().filter(|(_, v)| v.is_none()).map(|(i, _)| items.raw(i as u32)).collect();
        if let Some(first) = missing.first() {
            return Err(DataError::file(
                path,
                format!("{} catalogue items have no semantic ID (first: item {first:?})", missing.len()),
            ));
        }
        Ok((Self { ids: ids.into_iter().map(|v| v.expect("checked")).collect() }, report))
    }

    /// Writes the index in the LC-Rec format with the raw ids of `items`, atomically.
    pub fn write(&self, path: &Path, items: &IdMap) -> Result<()> {
        let object: serde_json::Map<String, Value> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, toks)| {
                let toks = toks.iter().map(|t| Value::String(t.to_string())).collect();
                (items.raw(i as u32).to_string(), Value::Array(toks))
            })
            .collect();
        crate::artifact::write_json(path, &object).map_err(|e| DataError::io(e.path, e.source))
    }

    /// Groups of items sharing the same full ID (only groups of two or more).
    pub fn collisions(&self) -> Vec<Vec<u32>> {
        let mut groups: HashMap<&[CodeToken], Vec<u32>> = HashMap::new();
        for (i, id) in self.ids.iter().enumerate() {
            groups.entry(id.as_slice()).or_default().push(i as u32);
        }
        let mut out: Vec<Vec<u32>> = groups.into_values().filter(|g| g.len() > 1).collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_print() {
        let t = CodeToken::parse("<c_232>").unwrap();
        assert_eq!(t, CodeToken { level: 2, code: 232 });
        assert_eq!(t.to_string(), "<c_232>");
        for bad in ["c_1", "<c1>", "<C_1>", "<ab_1>", "<a_-1>", "<a_x>"] {
            assert!(CodeToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trip_and_collisions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.index.json");
        std::fs::write(&p, r#"{"1": ["<a_1>", "<b_2>"], "0": ["<a_1>", "<b_2>"], "9": ["<a_3>"], "2": ["<a_0>", "<b_0>"]}"#).unwrap();
        let items = IdMap::from_first_appearance(["0", "1", "2"]);
        let (idx, report) = SemanticIndex::read(&p, &items).unwrap();
        assert_eq!(report.extra_entries, 1);
        assert_eq!(idx.collisions(), vec![vec![0, 1]]);
        let out = dir.path().join("out.index.json");
        idx.write(&out, &items).unwrap();
        assert_eq!(SemanticIndex::read(&out, &items).unwrap().0, idx);
    }

    #[test]
    fn missing_items_and_bad_tokens_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.index.json");
        let items = IdMap::from_first_appearance(["0", "1"]);
        std::fs::write(&p, r#"{"0": ["<a_1>"]}"#).unwrap();
        let err = SemanticIndex::read(&p, &items).unwrap_err().to_string();
        assert!(err.contains("1 catalogue items have no semantic ID (first: item \"1\")"), "{err}");
        std::fs::write(&p, r#"{"0": ["<a_1>"], "1": ["a1"]}"#).unwrap();
        let err = SemanticIndex::read(&p, &items).unwrap_err().to_string();
        assert!(err.contains("x.index.json (key \"1\"): token \"a1\""), "{err}");
    }
}
