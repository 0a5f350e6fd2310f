//! RecBole atomic files: tab-separated, a header of `name:type` fields.
//!
//! - `<name>.inter`: `user_id:token  item_id:token  rating:float  timestamp:float` (order free);
//! - `<name>.item` (optional): `item_id:token` plus text fields (`movie_title:token_seq`,
//!   `genre:token`, ...), all of which become item text.

use std::collections::HashMap;
use std::path::Path;

use super::delimited::{bare_name, columns_from_header, csv_error, fields, open, read_rows};
use super::sibling;
use crate::data::error::{DataError, Result};
use crate::data::log::{check_id, InteractionLog, ItemText};

/// The field types of RecBole's atomic files.
const TYPES: &[&str] = &["token", "token_seq", "float", "float_seq"];

/// Reads the header row of a RecBole file.
fn header(path: &Path, reader: &mut csv::Reader<std::fs::File>) -> Result<Vec<String>> {
    let mut rec = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))? {
        return Err(DataError::file(path, "the file is empty (expected a header of name:type fields)"));
    }
    let head: Vec<String> = fields(path, 1, &rec)?.into_iter().map(str::to_string).collect();
    if !head.iter().all(|h| h.contains(':')) {
        return Err(DataError::line(
            path,
            1,
            format!("not a RecBole header (fields must be name:type): [{}]", head.join(", ")),
        ));
    }
    for h in &head {
        let (name, ty) = h.trim().split_once(':').expect("checked above");
        if name.trim().is_empty() {
            return Err(DataError::line(path, 1, format!("header field {h:?} has no name")));
        }
        if !TYPES.contains(&ty.trim()) {
            return Err(DataError::line(
                path,
                1,
                format!("header field {h:?} has an unknown type {ty:?} (RecBole's types: {})", TYPES.join(", ")),
            ));
        }
    }
    let names: Vec<String> = head.iter().map(|h| bare_name(h)).collect();
    if let Some((i, n)) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)) {
        return Err(DataError::line(path, 1, format!("header field {:?} names column {n:?} twice", head[i])));
    }
    Ok(head)
}

/// Reads `<name>.inter` and, if present, `<name>.item` beside it.
pub fn load(inter: &Path) -> Result<InteractionLog> {
    let mut reader = open(inter, b'\t', false)?;
    let head = header(inter, &mut reader)?;
    let cols = columns_from_header(inter, &head)?;
    let mut log = InteractionLog::new(super::dataset_name(inter));
    read_rows(inter, &mut reader, cols, &mut log)?;
    if log.records.is_empty() {
        return Err(DataError::file(inter, "no interactions in the file"));
    }
    let item_file = sibling(inter, ".item");
    if item_file.exists() {
        log.item_text = load_item_text(&item_file)?;
    }
    Ok(log)
}

/// Reads a RecBole `.item` file: every column but the item id becomes a text field.
pub fn load_item_text(path: &Path) -> Result<HashMap<String, ItemText>> {
    let mut reader = open(path, b'\t', false)?;
    let head = header(path, &mut reader)?;
    let names: Vec<String> = head.iter().map(|h| bare_name(h)).collect();
    let id_col = names.iter().position(|n| n == "item_id").ok_or_else(|| {
        DataError::line(path, 1, format!("no item_id column in the header [{}]", head.join(", ")))
    })?;
    let mut out = HashMap::new();
    let mut rec = csv::ByteRecord::new();
    while reader.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))? {
        let line = rec.position().map_or(0, |p| p.line());
        let f = fields(path, line, &rec)?;
        if f.len() == 1 && f[0].trim().is_empty() {
            continue;
        }
        if f.len() <= id_col {
            return Err(DataError::line(path, line, format!("expected {} fields, found {}", names.len(), f.len())));
        }
        let id = check_id("item", f[id_col]).map_err(|m| DataError::line(path, line, m))?;
        if out.contains_key(id) {
            return Err(DataError::line(path, line, format!("item {id:?} is described twice")));
        }
        let text: ItemText = names
            .iter()
            .zip(&f)
            .enumerate()
            .filter(|&(c, (_, v))| c != id_col && !v.trim().is_empty())
            .map(|(_, (n, v))| (n.clone(), v.trim().to_string()))
            .collect();
        out.insert(id.to_string(), text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inter_and_item_files() {
        let dir = tempfile::tempdir().unwrap();
        let inter = dir.path().join("ml.inter");
        std::fs::write(
            &inter,
            "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t\"Heat\" (1995)\t4\t20\n1\t2\t3\t10\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("ml.item"),
            "item_id:token\tmovie_title:token_seq\tgenre:token\n2\tToy Story\tAnimation Comedy\n",
        )
        .unwrap();
        let log = load(&inter).unwrap();
        assert_eq!(log.name, "ml");
        assert_eq!(log.items.name(0), "\"Heat\" (1995)");
        assert_eq!(log.records[0].rating, Some(4.0));
        assert_eq!(log.records[1].time, 10.0);
        assert!(log.has_timestamps);
        assert_eq!(
            log.item_text["2"],
            vec![
                ("movie_title".to_string(), "Toy Story".to_string()),
                ("genre".to_string(), "Animation Comedy".to_string())
            ]
        );
    }

    #[test]
    fn rejects_a_header_without_types() {
        let dir = tempfile::tempdir().unwrap();
        let inter = dir.path().join("x.inter");
        std::fs::write(&inter, "user_id\titem_id\n1\t2\n").unwrap();
        let err = load(&inter).unwrap_err().to_string();
        assert!(err.contains("x.inter:1: not a RecBole header"), "{err}");
        for (head, want) in [
            ("user_id:token\titem_id:str\n1\t2\n", "x.inter:1: header field \"item_id:str\" has an unknown type \"str\""),
            ("user_id:token\titem_id:token\tuser_id:token\n1\t2\t3\n", "names column \"user_id\" twice"),
            ("user_id:token\t:float\n1\t2\n", "header field \":float\" has no name"),
            ("user_id:token\ttimestamp:float\n1\t2\n", "x.inter:1: no item column in the header"),
            ("user_id:token\titem_id:token\ttimestamp:float\n1\t2\tNaN\n", "x.inter:2: timestamp \"NaN\" is not a finite number"),
        ] {
            std::fs::write(&inter, head).unwrap();
            let err = load(&inter).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }
}
