//! The LC-Rec/LETTER JSON layout.
//!
//! - `<name>.inter.json`: `{"<user id>": [item id, ...]}`, each list oldest first;
//! - `<name>.item.json` (optional): `{"<item id>": {"title": ..., "description": ..., ...}}`.
//!
//! Timestamps are not stored: the position in each list is the time, and the log's
//! `has_timestamps` stays false.

use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::sibling;
use crate::data::error::{DataError, Result};
use crate::data::log::{check_id, InteractionLog, ItemText};

/// A JSON object with its keys in file order (serde_json's own map sorts them, and the order
/// of users and of item text fields is meaningful).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V_<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V_(std::marker::PhantomData))
    }
}

/// Reads a JSON object from `path` with its keys in file order; syntax and type errors carry
/// the line.
pub(crate) fn read_object<V: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<(String, V)>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    // A UTF-8 byte order mark (some editors write one) is not JSON; it is skipped.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let top_level_object = text.trim_start().starts_with('{');
    serde_json::from_str::<OrderedMap<V>>(text).map(|m| m.0).map_err(|e| {
        let msg = e.to_string();
        if e.is_data() && !top_level_object {
            DataError::file(path, format!("expected a JSON object at the top level ({msg})"))
        } else if e.is_data() {
            DataError::line(path, e.line() as u64, format!("unexpected value: {msg}"))
        } else {
            DataError::line(path, e.line() as u64, format!("malformed JSON: {msg}"))
        }
    })
}

/// Errors when two keys of a JSON object read by [`read_object`] are the same id (after
/// trimming), naming the key: serde_json would otherwise keep one of them silently.
pub(crate) fn check_unique_keys<V>(path: &Path, object: &[(String, V)], what: &str) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(object.len());
    for (key, _) in object {
        if !seen.insert(key.trim()) {
            return Err(DataError::key(path, key, format!("{what} {:?} appears twice", key.trim())));
        }
    }
    Ok(())
}

/// A word for the JSON type of `v`, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An item id from a JSON value: a non-negative integer or a non-empty string.
fn item_id(v: &Value) -> std::result::Result<String, String> {
    match v {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Ok(u.to_string()),
            (None, Some(i)) => Err(format!("negative item id {i}")),
            _ => Err(format!("item id {n} is not an integer")),
        },
        Value::String(s) => check_id("item", s).map(str::to_string),
        other => Err(format!("item id must be an integer or a string, found {}", kind(other))),
    }
}

/// Reads `<name>.inter.json` and, if present, `<name>.item.json` beside it.
pub fn load(inter: &Path) -> Result<InteractionLog> {
    let object: Vec<(String, Value)> = read_object(inter)?;
    check_unique_keys(inter, &object, "user")?;
    let mut log = InteractionLog::new(super::dataset_name(inter));
    let mut buf = String::new();
    for (user, items) in &object {
        let user_id = check_id("user", user).map_err(|m| DataError::key(inter, user, m))?;
        let Value::Array(items) = items else {
            return Err(DataError::key(
                inter,
                user,
                format!("expected a list of item ids, found {}", kind(items)),
            ));
        };
        if items.is_empty() {
            return Err(DataError::key(inter, user, "empty history: the user's list of items is empty"));
        }
        for (pos, v) in items.iter().enumerate() {
            buf.clear();
            let id = item_id(v).map_err(|m| DataError::key(inter, user, format!("{m} at position {pos}")))?;
            buf.push_str(&id);
            log.push(user_id, &buf, pos as f64, None);
        }
    }
    let item_file = sibling(inter, ".item.json");
    if item_file.exists() {
        log.item_text = load_item_text(&item_file)?;
    }
    if log.records.is_empty() {
        return Err(DataError::file(inter, "no interactions in the file (an empty object)"));
    }
    Ok(log)
}

/// Flattens one field value to text: strings as they are, arrays joined with ", ",
/// numbers and booleans printed; null and empty values are dropped.
fn field_text(v: &Value) -> Option<String> {
    let s = match v {
        Value::Null => return None,
        Value::String(s) => s.trim().to_string(),
        Value::Array(a) => a.iter().filter_map(field_text).collect::<Vec<_>>().join(", "),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Object(_) => v.to_string(),
    };
    (!s.is_empty()).then_some(s)
}

/// Reads `<name>.item.json`: item id -> object of text fields.
pub fn load_item_text(path: &Path) -> Result<std::collections::HashMap<String, ItemText>> {
    /// An entry of the file: an object of text fields (kept in file order), or anything else.
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Fields(OrderedMap<Value>),
        Other(#[allow(dead_code)] Value),
    }
    let object: Vec<(String, OrderedMap<Value>)> = read_object::<Entry>(path)?
        .into_iter()
        .map(|(item, v)| match v {
            Entry::Fields(fields) => Ok((item, fields)),
            Entry::Other(_) => Err(item),
        })
        .collect::<std::result::Result<_, String>>()
        .map_err(|item| DataError::key(path, &item, "expected an object of text fields ({\"title\": ...})"))?;
    check_unique_keys(path, &object, "item")?;
    let mut out = std::collections::HashMap::with_capacity(object.len());
    for (item, OrderedMap(fields)) in object {
        let id = check_id("item", &item).map_err(|m| DataError::key(path, &item, m))?.to_string();
        let text: ItemText =
            fields.iter().filter_map(|(k, v)| field_text(v).map(|t| (k.clone(), t))).collect();
        out.insert(id, text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_sequences_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let inter = write(dir.path(), "B.inter.json", r#"{"0": [3, 1, 2], "1": ["2", 3]}"#);
        write(
            dir.path(),
            "B.item.json",
            r#"{"3": {"title": "Lipstick", "categories": ["Beauty", "Makeup"], "price": null}}"#,
        );
        let log = load(&inter).unwrap();
        assert_eq!(log.name, "B");
        // A byte order mark is skipped.
        let bom = write(dir.path(), "C.inter.json", "\u{feff}{\"0\": [1]}");
        assert_eq!(load(&bom).unwrap().records.len(), 1);
        assert_eq!(log.records.len(), 5);
        assert_eq!(log.items.name(log.records[0].item), "3");
        assert_eq!(log.records[2].time, 2.0);
        assert!(!log.has_timestamps, "list positions are not timestamps");
        assert_eq!(
            log.item_text["3"],
            vec![
                ("title".to_string(), "Lipstick".to_string()),
                ("categories".to_string(), "Beauty, Makeup".to_string())
            ]
        );
    }

    #[test]
    fn bad_input_names_file_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("{\"0\": [1, 2,\n 3", "x.inter.json:2: malformed JSON"),
            ("[1, 2]", "expected a JSON object at the top level"),
            (r#"{"7": 5}"#, "x.inter.json (key \"7\"): expected a list of item ids, found a number"),
            (r#"{"7": [1, -4]}"#, "negative item id -4 at position 1"),
            (r#"{"7": [1, 2.5]}"#, "item id 2.5 is not an integer"),
            (r#"{"-2": [1]}"#, "negative user id"),
            (r#"{"7": [null]}"#, "found null"),
            (r#"{"7": [1], "8": []}"#, "x.inter.json (key \"8\"): empty history"),
            (r#"{"7": [1], "8": [2], "7": [3]}"#, "x.inter.json (key \"7\"): user \"7\" appears twice"),
            (r#"{"7": [1, 99999999999999999999999]}"#, "is not an integer at position 1"),
            ("{}", "x.inter.json: no interactions in the file"),
        ];
        for (text, expected) in cases {
            let p = write(dir.path(), "x.inter.json", text);
            let err = load(&p).unwrap_err().to_string();
            assert!(err.contains("x.inter.json"), "{err}");
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }
}
