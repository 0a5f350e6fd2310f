//! Delimited text logs: a plain CSV/TSV of `user,item[,timestamp[,rating]]`, and the table
//! reader that the RecBole format shares.
//!
//! A header is recognised when a field of the first row names the user column (`user`,
//! `user_id`, `userid`, `uid`, with an optional RecBole `:type` suffix); columns are then found
//! by name. Without a header the columns are positional. Without a timestamp the file order is
//! the time.

use std::path::Path;

use crate::data::error::{DataError, Result};
use crate::data::log::{check_id, InteractionLog};

const USER_NAMES: &[&str] = &["user", "user_id", "userid", "uid"];
const ITEM_NAMES: &[&str] = &["item", "item_id", "itemid", "iid"];
const TIME_NAMES: &[&str] = &["timestamp", "time", "ts"];
const RATING_NAMES: &[&str] = &["rating", "score"];

/// Which columns hold what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Columns {
    /// User id column.
    pub user: usize,
    /// Item id column.
    pub item: usize,
    /// Timestamp column, if any.
    pub time: Option<usize>,
    /// Rating column, if any.
    pub rating: Option<usize>,
    /// How many fields every row has: as many as the header (or, without one, the first row).
    pub count: usize,
}

impl Columns {
    fn width(&self) -> usize {
        [Some(self.user), Some(self.item), self.time, self.rating].into_iter().flatten().max().unwrap_or(0) + 1
    }
}

/// A header field's bare name: lower case, without a RecBole `:type` suffix.
pub(crate) fn bare_name(field: &str) -> String {
    field.trim().split(':').next().unwrap_or("").to_ascii_lowercase()
}

/// Finds the columns named in `header`; errors name the file and list the header.
pub(crate) fn columns_from_header(path: &Path, header: &[String]) -> Result<Columns> {
    let find = |names: &[&str]| header.iter().position(|h| names.contains(&bare_name(h).as_str()));
    let missing = |what: &str, names: &[&str]| {
        DataError::line(
            path,
            1,
            format!("no {what} column in the header [{}] (expected one of {names:?})", header.join(", ")),
        )
    };
    Ok(Columns {
        user: find(USER_NAMES).ok_or_else(|| missing("user", USER_NAMES))?,
        item: find(ITEM_NAMES).ok_or_else(|| missing("item", ITEM_NAMES))?,
        time: find(TIME_NAMES),
        rating: find(RATING_NAMES),
        count: header.len(),
    })
}

/// The UTF-8 byte order mark that spreadsheet programs put at the start of CSV files.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Opens a delimited reader over `path`, past a UTF-8 byte order mark if the file starts with
/// one (as spreadsheets write them: the header is then read as if there were none). `quoting`
/// enables CSV double quotes (off for RecBole, whose titles contain bare quotes).
pub(crate) fn open(path: &Path, delimiter: u8, quoting: bool) -> Result<csv::Reader<std::fs::File>> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut head = Vec::with_capacity(3);
    (&mut file).take(3).read_to_end(&mut head).map_err(|e| DataError::io(path, e))?;
    if head != BOM {
        file.rewind().map_err(|e| DataError::io(path, e))?;
    }
    Ok(csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .quoting(quoting)
        .from_reader(file))
}

/// Converts a csv error into a data error on the right line.
pub(crate) fn csv_error(path: &Path, e: csv::Error) -> DataError {
    match e.position() {
        Some(p) => DataError::line(path, p.line(), e.to_string()),
        None => DataError::file(path, e.to_string()),
    }
}

/// Decodes the fields of `rec` as UTF-8.
pub(crate) fn fields<'a>(path: &Path, line: u64, rec: &'a csv::ByteRecord) -> Result<Vec<&'a str>> {
    rec.iter()
        .map(|f| std::str::from_utf8(f).map_err(|_| DataError::line(path, line, "invalid UTF-8")))
        .collect()
}

/// Reads every data row of `reader` (after any header) into `log`, and records in
/// [`InteractionLog::has_timestamps`] whether `cols` has a timestamp column.
pub(crate) fn read_rows(
    path: &Path,
    reader: &mut csv::Reader<std::fs::File>,
    cols: Columns,
    log: &mut InteractionLog,
) -> Result<()> {
    let width = cols.width();
    log.has_timestamps = cols.time.is_some();
    let mut rec = csv::ByteRecord::new();
    let mut row = 0usize;
    while reader.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))? {
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() == 1 && rec[0].iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if rec.iter().any(|f| f.contains(&b'\n') || f.contains(&b'\r')) {
            return Err(DataError::line(
                path,
                line,
                "a quoted field runs over a line break: an unclosed '\"' quote? (ids cannot hold line breaks)",
            ));
        }
        let f = fields(path, line, &rec)?;
        if f.len() < width {
            return Err(DataError::line(
                path,
                line,
                format!("expected at least {width} fields, found {}", f.len()),
            ));
        }
        if f.len() != cols.count {
            return Err(DataError::line(
                path,
                line,
                format!("expected {} fields as in the first line, found {} (a ragged row)", cols.count, f.len()),
            ));
        }
        let bad = |m: String| DataError::line(path, line, m);
        let user = check_id("user", f[cols.user]).map_err(bad)?;
        let item = check_id("item", f[cols.item]).map_err(bad)?;
        let time = match cols.time {
            Some(c) => {
                let t = f[c].trim();
                match t.parse::<f64>() {
                    Ok(v) if v.is_finite() => v,
                    _ => return Err(bad(format!("timestamp {t:?} is not a finite number"))),
                }
            }
            None => row as f64,
        };
        let rating = match cols.rating {
            Some(c) => {
                let r = f[c].trim();
                match r.parse::<f32>() {
                    Ok(v) if v.is_finite() => Some(v),
                    _ => return Err(bad(format!("rating {r:?} is not a finite number"))),
                }
            }
            None => None,
        };
        log.push(user, item, time, rating);
        row += 1;
    }
    Ok(())
}

/// The delimiter of `path`: tab for `.tsv`, comma for `.csv`, otherwise tab if the first line
/// has one, else comma.
fn delimiter(path: &Path) -> Result<u8> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("tsv") => Ok(b'\t'),
        Some("csv") => Ok(b','),
        _ => {
            use std::io::{BufRead, Read};
            let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
            let mut first = Vec::new();
            // The first line only, and at most 64 KiB of it.
            std::io::BufReader::new(file.take(1 << 16)).read_until(b'\n', &mut first).map_err(|e| DataError::io(path, e))?;
            Ok(if first.contains(&b'\t') { b'\t' } else { b',' })
        }
    }
}

/// Reads a plain CSV/TSV interaction log.
pub fn load(path: &Path) -> Result<InteractionLog> {
    let delim = delimiter(path)?;
    let mut reader = open(path, delim, true)?;
    let mut log = InteractionLog::new(super::dataset_name(path));
    let mut first = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut first).map_err(|e| csv_error(path, e))? {
        return Err(DataError::file(path, "the file is empty"));
    }
    let head: Vec<String> = fields(path, 1, &first)?.into_iter().map(str::to_string).collect();
    let is_header = head.iter().any(|h| USER_NAMES.contains(&bare_name(h).as_str()));
    let cols = if is_header {
        columns_from_header(path, &head)?
    } else {
        let n = head.len();
        if n < 2 {
            return Err(DataError::line(path, 1, format!("expected user,item[,timestamp[,rating]], found {n} field")));
        }
        Columns { user: 0, item: 1, time: (n > 2).then_some(2), rating: (n > 3).then_some(3), count: n }
    };
    if !is_header {
        // The first row is data: read the file again from its start.
        reader = open(path, delim, true)?;
    }
    read_rows(path, &mut reader, cols, &mut log)?;
    if log.records.is_empty() {
        return Err(DataError::file(path, "no interactions in the file"));
    }
    Ok(log)
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
    fn header_positional_and_quoting() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.csv", "item_id,user_id,timestamp\n\"x, y\",u1,5\nz,u1,3\n");
        let log = load(&p).unwrap();
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.items.name(0), "x, y");
        assert_eq!(log.records[1].time, 3.0);
        assert!(log.has_timestamps);

        let p = write(dir.path(), "b.tsv", "u1\ti1\t10\n\nu1\ti2\t11\n");
        let log = load(&p).unwrap();
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.name, "b");

        // A byte order mark (as spreadsheets write) is skipped: the header is found.
        let p = write(dir.path(), "bom.csv", "\u{feff}user,item,timestamp\nu1,i1,10\n");
        let log = load(&p).unwrap();
        assert_eq!((log.records.len(), log.users.name(0)), (1, "u1"));
        assert!(log.has_timestamps);

        let p = write(dir.path(), "c.txt", "u,i\nv,j\n");
        let log = load(&p).unwrap();
        assert_eq!((log.records[0].time, log.records[1].time), (0.0, 1.0));
        assert!(!log.has_timestamps, "file positions are not timestamps");
    }

    #[test]
    fn bad_rows_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("user,item,timestamp\nu,i,1\nu,i,abc\n", "bad.csv:3: timestamp \"abc\" is not a finite number"),
            ("user,item,timestamp\nu,i,1\nu,i,NaN\n", "bad.csv:3: timestamp \"NaN\""),
            ("user,item,timestamp\nu,i,1\nu\n", "bad.csv:3: expected at least 3 fields, found 1"),
            ("user,item\nu,-7\n", "bad.csv:2: negative item id \"-7\""),
            ("user,item\n,i\n", "bad.csv:2: empty user id"),
            ("user,product\nu,i\n", "bad.csv:1: no item column in the header"),
            ("", "bad.csv: the file is empty"),
            ("user,item\n", "no interactions in the file"),
            ("user,item,timestamp\nu,i,1,9\n", "bad.csv:2: expected 3 fields as in the first line, found 4"),
            ("u,i\nu,j\nu,k,3\n", "bad.csv:3: expected 2 fields as in the first line, found 3"),
            ("user,item,timestamp\nu,\"i,1\nv,j,2\n", "bad.csv:2: a quoted field runs over a line break"),
        ];
        for (text, expected) in cases {
            let p = write(dir.path(), "bad.csv", text);
            let err = load(&p).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
        }
    }
}
