//! Semantic-ID index files in the LC-Rec/LETTER format:
//! `{"<item id>": ["<a_183>", "<b_70>", "<c_232>", "<d_6>"]}`.
//!
//! The letter is the codebook level (`a` = 0), the number the code. Files written by other tools
//! can be read and ours used by them.
//!
//! # Two codebooks
//! IDs may mix a semantic and a collaborative (CF) codebook, as FlexCode's do. The letter's case
//! is the marker: lowercase letters are levels of the semantic codebook, uppercase letters
//! levels of the collaborative one, so `["<A_17>", "<B_3>", "<a_200>", "<b_5>"]` is two CF
//! tokens then two semantic tokens. Inside each codebook the levels follow one another from
//! `a` (`A`): the n-th token of a codebook in an ID is of its n-th level. An index that uses
//! lowercase letters only is the plain LC-Rec format.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::error::{DataError, Result};
use super::formats::lcrec::{check_unique_keys, kind, read_object};
use super::idmap::IdMap;

/// Which codebook a token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codebook {
    /// The semantic codebook (item text); lowercase letters.
    #[default]
    Semantic,
    /// The collaborative codebook (CF embeddings); uppercase letters.
    Collaborative,
}

impl Codebook {
    /// Both codebooks, in vocabulary order.
    pub const ALL: [Codebook; 2] = [Codebook::Semantic, Codebook::Collaborative];

    /// The letter of level `level` (`a`/`A` = 0).
    pub fn letter(self, level: u8) -> char {
        match self {
            Codebook::Semantic => (b'a' + level) as char,
            Codebook::Collaborative => (b'A' + level) as char,
        }
    }
}

impl std::fmt::Display for Codebook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Codebook::Semantic => "semantic",
            Codebook::Collaborative => "collaborative",
        })
    }
}

/// One token of a semantic ID: code `code` of level `level` of codebook `codebook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeToken {
    /// The codebook (the letter's case).
    pub codebook: Codebook,
    /// Level inside the codebook (0 = `a` or `A`).
    pub level: u8,
    /// Code inside the level.
    pub code: u32,
}

impl CodeToken {
    /// Code `code` of level `level` of the semantic codebook.
    pub fn sem(level: u8, code: u32) -> Self {
        Self { codebook: Codebook::Semantic, level, code }
    }

    /// Code `code` of level `level` of the collaborative codebook.
    pub fn cf(level: u8, code: u32) -> Self {
        Self { codebook: Codebook::Collaborative, level, code }
    }

    /// Parses `"<a_12>"` (semantic) or `"<A_12>"` (collaborative).
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("token {s:?} is not of the form \"<a_12>\" (semantic) or \"<A_12>\" (collaborative)");
        let inner = s.strip_prefix('<').and_then(|t| t.strip_suffix('>')).ok_or_else(bad)?;
        let (letter, code) = inner.split_once('_').ok_or_else(bad)?;
        let mut chars = letter.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else { return Err(bad()) };
        let (codebook, level) = if c.is_ascii_lowercase() {
            (Codebook::Semantic, c as u8 - b'a')
        } else if c.is_ascii_uppercase() {
            (Codebook::Collaborative, c as u8 - b'A')
        } else {
            return Err(bad());
        };
        if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let code = code.parse::<u32>().map_err(|_| bad())?;
        Ok(Self { codebook, level, code })
    }
}

impl std::fmt::Display for CodeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}_{}>", self.codebook.letter(self.level), self.code)
    }
}

/// Checks that inside each codebook the levels of `id` follow one another from level 0; the
/// error names the first token that does not.
pub fn check_level_order(id: &[CodeToken]) -> std::result::Result<(), String> {
    let mut next = [0u8; 2];
    for (i, t) in id.iter().enumerate() {
        let n = &mut next[t.codebook as usize];
        if t.level != *n {
            return Err(format!(
                "token {} is {t}, but the next {} token must be of level '{}' (inside each codebook the letters go {} in order, one level a token)",
                i + 1,
                t.codebook,
                t.codebook.letter(*n),
                match t.codebook {
                    Codebook::Semantic => "a, b, c, ...",
                    Codebook::Collaborative => "A, B, C, ...",
                }
            ));
        }
        *n += 1;
    }
    Ok(())
}

/// The semantic ID of every catalogue item, in dense item order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemanticIndex {
    /// `ids[item]` = that item's tokens.
    pub ids: Vec<Vec<CodeToken>>,
}

/// `1 - distinct IDs / items` of any list of IDs (0 when every ID is unique, or none is given).
pub fn collision_rate<T: std::hash::Hash + Eq>(ids: &[T]) -> f64 {
    if ids.is_empty() {
        return 0.0;
    }
    let distinct: std::collections::HashSet<&T> = ids.iter().collect();
    1.0 - distinct.len() as f64 / ids.len() as f64
}

/// How many items the collision `groups` hold.
fn colliding(groups: &[Vec<u32>]) -> usize {
    groups.iter().map(Vec::len).sum()
}

/// The largest code an index file may hold: no codebook of sidrec's (nor LC-Rec's, TIGER's,
/// LETTER's) comes near 2^20 codes a level, and the vocabulary and usage counts are sized by
/// the largest code, so a larger one is refused where it is read rather than allocated for.
pub const MAX_CODE: u32 = (1 << 20) - 1;

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
        check_unique_keys(path, &object, "item")?;
        let mut ids: Vec<Option<Vec<CodeToken>>> = vec![None; items.len()];
        let mut report = IndexReport::default();
        let mut first_unknown = None;
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
            if let Some(t) = parsed.iter().find(|t| t.code > MAX_CODE) {
                return Err(DataError::key(
                    path,
                    item,
                    format!("token {t} has code {}, beyond any codebook (at most {} codes a level)", t.code, MAX_CODE + 1),
                ));
            }
            check_level_order(&parsed).map_err(|m| DataError::key(path, item, m))?;
            match items.dense(item.trim()) {
                Some(d) => ids[d as usize] = Some(parsed),
                None => {
                    report.extra_entries += 1;
                    first_unknown.get_or_insert(item.as_str());
                }
            }
        }
        let missing: Vec<&str> =
            ids.iter().enumerate().filter(|(_, v)| v.is_none()).map(|(i, _)| items.raw(i as u32)).collect();
        if let Some(first) = missing.first() {
            let unknown = match first_unknown {
                Some(u) => format!(
                    "; {} of its {} entries name items that are not in the catalogue (first: {u:?}): is it the index of another dataset?",
                    report.extra_entries,
                    object.len()
                ),
                None => String::new(),
            };
            return Err(DataError::file(
                path,
                format!("{} catalogue items have no semantic ID (first: item {first:?}){unknown}", missing.len()),
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

    /// An index from per-item codes: `codes[item][level]` becomes token `(level, code)`.
    pub fn from_codes(codes: &[Vec<u32>]) -> Self {
        let ids = codes
            .iter()
            .map(|c| c.iter().enumerate().map(|(l, &code)| CodeToken::sem(l as u8, code)).collect())
            .collect();
        Self { ids }
    }

    /// The length shared by every ID, or `None` when lengths differ (or the index is empty).
    pub fn id_length(&self) -> Option<usize> {
        let first = self.ids.first()?.len();
        self.ids.iter().all(|id| id.len() == first).then_some(first)
    }

    /// `1 - distinct IDs / items`: 0 when every ID is unique.
    pub fn collision_rate(&self) -> f64 {
        collision_rate(&self.ids)
    }

    /// Whether any ID uses the collaborative codebook.
    pub fn has_collaborative(&self) -> bool {
        self.ids.iter().flatten().any(|t| t.codebook == Codebook::Collaborative)
    }

    /// Makes every ID unique as TIGER and GRID do: when some IDs collide, appends one level
    /// whose code numbers the items of each colliding group 0, 1, 2, ... in item order, and
    /// gives code 0 to every other item, so all IDs keep one length. The appended token is the
    /// next level of the codebook of the ID's last token (so a plain semantic index of 4 levels
    /// gets `<e_n>`, as TIGER's fifth code). Returns whether a level was added. An index with
    /// collisions needs IDs of one length (see [`SemanticIndex::id_length`]) and a free letter
    /// (26 levels a codebook); otherwise the error says why and the index is left as it was.
    pub fn add_disambiguation_level(&mut self) -> std::result::Result<bool, String> {
        let groups = self.collisions();
        if groups.is_empty() {
            return Ok(false);
        }
        if self.id_length().is_none() {
            return Err(format!(
                "{} items share their ID with another, and IDs have different lengths, so no disambiguation level can be \
                 added: give every item an ID of one length, or make the IDs unique",
                colliding(&groups)
            ));
        }
        let next_level = |id: &[CodeToken]| {
            let last = id.last().map(|t| t.codebook).unwrap_or_default();
            (last, id.iter().filter(|t| t.codebook == last).count())
        };
        if let Some(full) = self.ids.iter().map(|id| next_level(id)).find(|&(_, n)| n >= 26) {
            return Err(format!(
                "{} items share their ID with another, and IDs with {} levels of the {} codebook leave no letter for a disambiguation level",
                colliding(&groups),
                full.1,
                full.0
            ));
        }
        let mut extra = vec![0u32; self.ids.len()];
        for group in &groups {
            for (rank, &item) in group.iter().enumerate() {
                extra[item as usize] = rank as u32;
            }
        }
        for (id, code) in self.ids.iter_mut().zip(extra) {
            let (codebook, level) = next_level(id);
            id.push(CodeToken { codebook, level: level as u8, code });
        }
        Ok(true)
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
        assert_eq!(t, CodeToken::sem(2, 232));
        assert_eq!(t.to_string(), "<c_232>");
        let t = CodeToken::parse("<C_7>").unwrap();
        assert_eq!(t, CodeToken::cf(2, 7));
        assert_eq!(t.to_string(), "<C_7>");
        for bad in ["c_1", "<c1>", "<ab_1>", "<a_-1>", "<a_x>", "<a_+1>", "<1_2>", "<a_>", "<é_1>"] {
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
    fn disambiguation_makes_ids_unique_and_keeps_one_length() {
        let mut idx = SemanticIndex::from_codes(&[vec![1, 2], vec![3, 4], vec![1, 2], vec![1, 2], vec![3, 4], vec![0, 0]]);
        assert_eq!(idx.id_length(), Some(2));
        assert!((idx.collision_rate() - 0.5).abs() < 1e-12);
        assert!(idx.add_disambiguation_level().unwrap());
        assert!(idx.collisions().is_empty());
        assert_eq!(idx.collision_rate(), 0.0);
        let extra: Vec<u32> = idx.ids.iter().map(|id| id[2].code).collect();
        assert_eq!(extra, vec![0, 0, 1, 2, 1, 0]);
        assert!(idx.ids.iter().all(|id| id[2].level == 2));
        assert!(!idx.add_disambiguation_level().unwrap(), "an index without collisions is left alone");
        assert_eq!(idx.id_length(), Some(3));
    }

    #[test]
    fn collisions_that_no_level_can_fix_are_errors_not_panics() {
        // Colliding IDs of different lengths.
        let mut idx = SemanticIndex::from_codes(&[vec![1, 2], vec![1, 2], vec![3]]);
        let before = idx.clone();
        let err = idx.add_disambiguation_level().unwrap_err();
        assert!(err.contains("2 items share their ID") && err.contains("different lengths"), "{err}");
        assert_eq!(idx, before);
        // 26 levels: no letter left.
        let mut idx = SemanticIndex::from_codes(&[vec![0; 26], vec![0; 26]]);
        let err = idx.add_disambiguation_level().unwrap_err();
        assert!(err.contains("IDs with 26 levels of the semantic codebook leave no letter"), "{err}");
        // Without collisions, neither matters.
        let mut idx = SemanticIndex::from_codes(&[vec![1, 2], vec![3]]);
        assert!(!idx.add_disambiguation_level().unwrap());
    }

    #[test]
    fn levels_out_of_order_or_repeated_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.index.json");
        let items = IdMap::from_first_appearance(["0", "1"]);
        for (bad, what) in [
            (r#"{"0": ["<a_1>", "<a_2>"], "1": ["<a_0>"]}"#, "token 2 is <a_2>, but the next semantic token must be of level 'b'"),
            (r#"{"0": ["<a_1>"], "1": ["<b_0>"]}"#, "token 1 is <b_0>, but the next semantic token must be of level 'a'"),
            (r#"{"0": ["<a_1>", "<c_2>"], "1": ["<a_0>"]}"#, "token 2 is <c_2>"),
            (r#"{"0": ["<A_1>", "<a_2>", "<A_3>"], "1": ["<a_0>"]}"#, "token 3 is <A_3>, but the next collaborative token must be of level 'B'"),
            (r#"{"0": ["<B_1>"], "1": ["<a_0>"]}"#, "token 1 is <B_1>"),
        ] {
            std::fs::write(&p, bad).unwrap();
            let err = SemanticIndex::read(&p, &items).unwrap_err().to_string();
            assert!(err.contains("x.index.json") && err.contains(what), "{err}");
        }
    }

    #[test]
    fn mixed_ids_read_write_and_disambiguate_in_their_last_codebook() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mixed.index.json");
        std::fs::write(
            &p,
            r#"{"0": ["<A_1>", "<a_2>", "<b_0>"], "1": ["<A_1>", "<a_2>", "<b_0>"], "2": ["<a_1>", "<A_2>", "<B_0>"], "3": ["<A_3>", "<B_1>", "<C_0>"]}"#,
        )
        .unwrap();
        let items = IdMap::from_first_appearance(["0", "1", "2", "3"]);
        let (mut idx, _) = SemanticIndex::read(&p, &items).unwrap();
        assert!(idx.has_collaborative());
        assert_eq!(idx.ids[2], vec![CodeToken::sem(0, 1), CodeToken::cf(0, 2), CodeToken::cf(1, 0)]);
        assert!(idx.add_disambiguation_level().unwrap());
        assert!(idx.collisions().is_empty());
        // Each ID grows by the next level of its last token's codebook.
        assert_eq!(idx.ids[0][3], CodeToken::sem(2, 0));
        assert_eq!(idx.ids[1][3], CodeToken::sem(2, 1));
        assert_eq!(idx.ids[2][3], CodeToken::cf(2, 0));
        assert_eq!(idx.ids[3][3], CodeToken::cf(3, 0));
        for id in &idx.ids {
            check_level_order(id).unwrap();
        }
        let out = dir.path().join("out.index.json");
        idx.write(&out, &items).unwrap();
        assert!(std::fs::read_to_string(&out).unwrap().contains("\"<D_0>\""));
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
        std::fs::write(&p, r#"{"0": ["<a_1>"], "1": ["<a_2>"], "0": ["<a_3>"]}"#).unwrap();
        let err = SemanticIndex::read(&p, &items).unwrap_err().to_string();
        assert!(err.contains("x.index.json (key \"0\"): item \"0\" appears twice"), "{err}");
        std::fs::write(&p, r#"{"7": ["<a_1>"], "8": ["<a_2>"]}"#).unwrap();
        let err = SemanticIndex::read(&p, &items).unwrap_err().to_string();
        assert!(err.contains("2 catalogue items have no semantic ID") && err.contains("2 of its 2 entries name items that are not in the catalogue (first: \"7\")"), "{err}");
        std::fs::write(&p, r#"{"0": ["<a_1>"], "1": ["<a_4000000000>"]}"#).unwrap();
        let err = SemanticIndex::read(&p, &items).unwrap_err().to_string();
        assert!(err.contains("(key \"1\"): token <a_4000000000> has code 4000000000, beyond any codebook"), "{err}");
        std::fs::write(&p, r#"{"0": ["<a_1>"], "1": ["a1"]}"#).unwrap();
        let err = SemanticIndex::read(&p, &items).unwrap_err().to_string();
        assert!(err.contains("x.index.json (key \"1\"): token \"a1\""), "{err}");
    }
}
