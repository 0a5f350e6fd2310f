//! A strict reader of `.npy` float matrices that checks every size the header claims against
//! the file's own size before it allocates anything.
//!
//! The format: the magic `\x93NUMPY`, a version (1.x: a 2-byte header length; 2.x and 3.x: a
//! 4-byte one), then the header, a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }`, then the raw data. Only what
//! item embeddings need is accepted: a 2-D, C-ordered matrix of float32 or float64, either
//! byte order. Everything else is an error that says what was found.

/// A parsed `.npy` matrix: `rows * dim` values, row-major, as `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyMatrix {
    /// Number of rows.
    pub rows: usize,
    /// Width of each row.
    pub dim: usize,
    /// The values, row-major.
    pub data: Vec<f32>,
}

const MAGIC: &[u8] = b"\x93NUMPY";
/// Deepest nesting of the header's literal (the real one nests two levels).
const MAX_DEPTH: usize = 8;

/// A value of the header's Python literal.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Int(u64),
    Bool(bool),
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
    None,
}

impl Lit {
    fn describe(&self) -> String {
        match self {
            Lit::Str(s) => format!("{s:?}"),
            Lit::Int(i) => i.to_string(),
            Lit::Bool(b) => if *b { "True".into() } else { "False".into() },
            Lit::None => "None".into(),
            Lit::Tuple(_) => "a tuple".into(),
            Lit::List(_) => "a list".into(),
            Lit::Dict(_) => "a dict".into(),
        }
    }
}

/// A recursive-descent parser of the Python literals `.npy` headers use.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(format!("expected '{}' at byte {} of the header, found '{}'", c as char, self.pos, x.escape_ascii())),
            None => Err(format!("expected '{}' at the end of the header", c as char)),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > MAX_DEPTH {
            return Err(format!("the header nests deeper than {MAX_DEPTH} levels"));
        }
        match self.peek() {
            None => Err("the header ends where a value was expected".into()),
            Some(b'{') => {
                self.pos += 1;
                let mut out = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(Lit::Dict(out));
                    }
                    let k = self.value(depth + 1)?;
                    self.expect(b':')?;
                    let v = self.value(depth + 1)?;
                    out.push((k, v));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at byte {} of the header", self.pos)),
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                self.pos += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut out = Vec::new();
                loop {
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        return Ok(if open == b'(' { Lit::Tuple(out) } else { Lit::List(out) });
                    }
                    out.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(c) if c == close => {}
                        _ => return Err(format!("expected ',' or '{}' at byte {} of the header", close as char, self.pos)),
                    }
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos] != q {
                    if self.s[self.pos] == b'\\' {
                        return Err("escapes in the header's strings are not supported".into());
                    }
                    self.pos += 1;
                }
                if self.pos >= self.s.len() {
                    return Err("a string in the header is not closed".into());
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| "the header is not valid UTF-8".to_string())?;
                self.pos += 1;
                Ok(Lit::Str(text.to_string()))
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.pos]).expect("ASCII digits");
                // Python 2 wrote long integers with an `L` suffix.
                if self.s.get(self.pos) == Some(&b'L') {
                    self.pos += 1;
                }
                digits.parse::<u64>().map(Lit::Int).map_err(|_| format!("the number {digits} in the header is too large"))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Lit::Bool(true)),
                    b"False" => Ok(Lit::Bool(false)),
                    b"None" => Ok(Lit::None),
                    w => Err(format!("unexpected word {:?} in the header", String::from_utf8_lossy(w))),
                }
            }
            Some(c) => Err(format!("unexpected character '{}' at byte {} of the header", c.escape_ascii(), self.pos)),
        }
    }
}

/// Parses the `.npy` file `bytes` as a 2-D float matrix; the error says what is wrong (the
/// caller adds the file name).
pub fn parse(bytes: &[u8]) -> Result<NpyMatrix, String> {
    if bytes.len() < MAGIC.len() + 2 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a .npy file (no \\x93NUMPY magic at its start)".into());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, utf8) = match major {
        1 => (2, false),
        2 => (4, false),
        3 => (4, true),
        _ => return Err(format!("unsupported .npy version {major}.{minor} (1.0, 2.0 and 3.0 are known)")),
    };
    let prelude = 8 + len_bytes;
    if bytes.len() < prelude {
        return Err(format!("truncated: the file ends inside its {prelude}-byte prelude ({} bytes)", bytes.len()));
    }
    let header_len = if len_bytes == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as u64
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as u64
    };
    // The length the header claims is checked against the file before anything is read.
    let available = (bytes.len() - prelude) as u64;
    if header_len > available {
        return Err(format!(
            "truncated or corrupt: the header claims {header_len} bytes, but only {available} follow the prelude"
        ));
    }
    let header = &bytes[prelude..prelude + header_len as usize];
    if !utf8 && !header.is_ascii() {
        return Err(format!("the header of a version {major}.{minor} file must be ASCII"));
    }
    let mut p = Parser { s: header, pos: 0 };
    let dict = p.value(0).map_err(|e| format!("unreadable header: {e}"))?;
    if p.peek().is_some() {
        return Err(format!("unreadable header: unexpected text after the dict at byte {}", p.pos));
    }
    let Lit::Dict(entries) = dict else {
        return Err(format!("unreadable header: expected a dict, found {}", dict.describe()));
    };
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| *k == Lit::Str(key.into()))
            .map(|(_, v)| v)
            .ok_or_else(|| format!("the header has no '{key}' entry"))
    };
    let descr = match get("descr")? {
        Lit::Str(s) => s.clone(),
        other => return Err(format!("unsupported dtype {}: a structured array; expected float32 ('<f4') or float64 ('<f8')", other.describe())),
    };
    let fortran = match get("fortran_order")? {
        Lit::Bool(b) => *b,
        other => return Err(format!("'fortran_order' must be True or False, found {}", other.describe())),
    };
    let shape: Vec<u64> = match get("shape")? {
        Lit::Tuple(dims) => dims
            .iter()
            .map(|d| match d {
                Lit::Int(n) => Ok(*n),
                other => Err(format!("the shape holds {}, not a size", other.describe())),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("'shape' must be a tuple, found {}", other.describe())),
    };
    let [rows, dim] = shape[..] else {
        return Err(format!("expected a 2-D matrix [items, dim], found shape {shape:?}"));
    };
    if fortran {
        return Err("Fortran-ordered arrays are not supported: save with C order (numpy.ascontiguousarray)".into());
    }
    let little = cfg!(target_endian = "little");
    let (width, little) = match descr.as_str() {
        "<f4" => (4, true),
        ">f4" => (4, false),
        "=f4" => (4, little),
        "<f8" => (8, true),
        ">f8" => (8, false),
        "=f8" => (8, little),
        other => return Err(format!("unsupported dtype {other:?}: expected float32 ('<f4') or float64 ('<f8')")),
    };
    let data = &bytes[prelude + header_len as usize..];
    let need = rows.checked_mul(dim).and_then(|n| n.checked_mul(width));
    match need {
        Some(n) if n == data.len() as u64 => {}
        Some(n) if n > data.len() as u64 => {
            return Err(format!(
                "truncated: shape [{rows}, {dim}] of {descr} needs {n} bytes of data, but the file has {} after its header",
                data.len()
            ))
        }
        Some(n) => {
            return Err(format!(
                "shape [{rows}, {dim}] of {descr} needs {n} bytes of data, but the file has {} after its header (extra bytes at the end)",
                data.len()
            ))
        }
        None => return Err(format!("shape [{rows}, {dim}] is too large to address")),
    }
    let (rows, dim) = (rows as usize, dim as usize);
    let values: Vec<f32> = if width == 4 {
        data.chunks_exact(4)
            .map(|b| {
                let b = [b[0], b[1], b[2], b[3]];
                if little { f32::from_le_bytes(b) } else { f32::from_be_bytes(b) }
            })
            .collect()
    } else {
        data.chunks_exact(8)
            .map(|b| {
                let b: [u8; 8] = b.try_into().expect("8 bytes");
                (if little { f64::from_le_bytes(b) } else { f64::from_be_bytes(b) }) as f32
            })
            .collect()
    };
    Ok(NpyMatrix { rows, dim, data: values })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((header.len() as u16).to_le_bytes());
        } else {
            out.extend((header.len() as u32).to_le_bytes());
        }
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn reads_what_numpy_writes() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.5, -5.0, 6.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let m = parse(&file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }          \n", &data)).unwrap();
        assert_eq!((m.rows, m.dim), (3, 2));
        assert_eq!(m.data, vec![1.0, 2.0, 3.0, 4.5, -5.0, 6.0]);
        let data: Vec<u8> = [1.0f64, -2.0].iter().flat_map(|x| x.to_be_bytes()).collect();
        let m = parse(&file(2, "{\"shape\": (1L, 2L), \"fortran_order\": False, \"descr\": \">f8\"}", &data)).unwrap();
        assert_eq!(m.data, vec![1.0, -2.0]);
    }

    #[test]
    fn sizes_in_the_header_are_checked_against_the_file() {
        let h = |shape: &str, descr: &str| format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let cases = [
            (file(1, &h("(1000000000000, 4)", "<f4"), &[0; 16]), "shape [1000000000000, 4] of <f4 needs 16000000000000 bytes"),
            (file(1, &h("(18446744073709551615, 4)", "<f4"), &[]), "too large to address"),
            (file(1, &h("(2, 2)", "<f4"), &[0; 12]), "truncated"),
            (file(1, &h("(1, 1)", "<f4"), &[0; 8]), "extra bytes"),
            (file(1, &h("(4,)", "<f4"), &[0; 16]), "expected a 2-D matrix [items, dim], found shape [4]"),
            (file(1, &h("(1, 2, 2)", "<f4"), &[0; 16]), "found shape [1, 2, 2]"),
            (file(1, &h("(2, 2)", "<i8"), &[0; 32]), "unsupported dtype \"<i8\""),
            (file(1, &"((((((((((((((((((((".to_string(), &[]), "nests deeper"),
            (file(7, "{}", &[]), "unsupported .npy version 7.0"),
            (b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}".to_vec(), "the header claims 4294967295 bytes, but only 2 follow"),
            (b"\x93NUMPY\x01".to_vec(), "not a .npy file"),
        ];
        for (bytes, want) in cases {
            let err = parse(&bytes).unwrap_err();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
        let fortran = file(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", &[0; 16]);
        assert!(parse(&fortran).unwrap_err().contains("Fortran-ordered"));
    }
}
