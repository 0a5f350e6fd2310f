//! The bad-input corpus (issue 17): malformed, inconsistent and hostile files for every reader,
//! each run through the real `sidrec` binary on `cpu`.
//!
//! Every case asserts:
//! - a non-zero exit status that is not a panic's (101) nor a signal's;
//! - no "panicked at" on stderr;
//! - a message naming the file (and line, key or tensor where there is one) and the problem;
//! - that nothing in the case's folder (the inputs, the `--out` folder, `runs/`) was created,
//!   changed or removed, and nothing was printed on stdout (where `recommend` writes).
//!
//! A case is a few lines in one of the tables below; add one whenever a reader learns to refuse
//! something new. The checkpoint and `recommend` cases share one tiny TIGER and one tiny SASRec
//! run, trained once for the whole binary.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::{sidrec, snapshot, snapshot_diff};

/// One bad input: the files to lay out, the command to run in their folder, and what stderr
/// must say.
struct Case {
    name: String,
    files: Vec<(String, Vec<u8>)>,
    /// Folders copied into the case folder before it runs: (source, name).
    copies: Vec<(PathBuf, String)>,
    /// Applied to the case folder after the files and copies are in place.
    edit: Option<Box<dyn Fn(&Path)>>,
    args: Vec<String>,
    expect: Vec<String>,
}

fn case(name: &str) -> Case {
    Case { name: name.into(), files: Vec::new(), copies: Vec::new(), edit: None, args: Vec::new(), expect: Vec::new() }
}

impl Case {
    fn file(mut self, name: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.files.push((name.into(), bytes.as_ref().to_vec()));
        self
    }
    fn copy(mut self, from: &Path, name: &str) -> Self {
        self.copies.push((from.to_path_buf(), name.into()));
        self
    }
    fn edit(mut self, f: impl Fn(&Path) + 'static) -> Self {
        self.edit = Some(Box::new(f));
        self
    }
    fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|s| s.as_ref().to_string()));
        self
    }
    fn expect(mut self, e: &[&str]) -> Self {
        self.expect.extend(e.iter().map(|s| s.to_string()));
        self
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Runs every case and fails with the list of those that broke a promise. Returns how many ran.
fn run_cases(group: &str, cases: Vec<Case>) -> usize {
    let mut failures = Vec::new();
    let n = cases.len();
    let started = Instant::now();
    let mut slowest = (Duration::ZERO, String::new());
    for c in cases {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, bytes) in &c.files {
            let p = d.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        for (from, name) in &c.copies {
            copy_dir(from, &d.join(name));
        }
        if let Some(edit) = &c.edit {
            edit(d);
        }
        let before = snapshot(d);
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let t = Instant::now();
        let out = sidrec(d, &args);
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, c.name.clone());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut problems = Vec::new();
        match out.status.code() {
            Some(0) => problems.push("exited 0".to_string()),
            Some(101) => problems.push("exited 101 (a panic)".to_string()),
            None => problems.push(format!("killed: {:?}", out.status)),
            Some(_) => {}
        }
        if stderr.contains("panicked at") {
            problems.push("stderr has \"panicked at\"".into());
        }
        for e in &c.expect {
            if !stderr.contains(e.as_str()) {
                problems.push(format!("stderr lacks {e:?}"));
            }
        }
        if !stdout.trim().is_empty() {
            problems.push(format!("printed on stdout: {}", stdout.chars().take(300).collect::<String>()));
        }
        let diff = snapshot_diff(&before, &snapshot(d));
        if !diff.is_empty() {
            problems.push(format!("files touched: {}", diff.join(", ")));
        }
        if std::env::var_os("SIDREC_CORPUS_VERBOSE").is_some() {
            eprintln!("[{}] {:.2}s: {}", c.name, took.as_secs_f64(), stderr.trim());
        }
        if !problems.is_empty() {
            failures.push(format!("[{}] sidrec {}\n    {}\n    stderr: {}", c.name, c.args.join(" "), problems.join("\n    "), stderr.trim()));
        }
    }
    eprintln!("{group}: {n} cases in {:.1}s (slowest {:.2}s: {})", started.elapsed().as_secs_f64(), slowest.0.as_secs_f64(), slowest.1);
    assert!(failures.is_empty(), "{} of {n} {group} cases failed:\n{}", failures.len(), failures.join("\n"));
    n
}

/// `eval FILE --out o`: a command that writes a run folder, on a dataset file (no k-core, so
/// that the tiny files are not filtered away).
fn eval_args(file: &str) -> Vec<String> {
    ["eval", file, "--out", "o", "--set", "data.k_core=0"].map(String::from).to_vec()
}

fn data_case(name: &str, file: &str, text: impl AsRef<[u8]>, expect: &[&str]) -> Case {
    case(name).file(file, text).args(&eval_args(file)).expect(&[&[file][..], expect].concat())
}

#[test]
fn lcrec_json() {
    let f = "a.inter.json";
    let nested = format!("{{\"0\": {}1{}}}", "[".repeat(300), "]".repeat(300));
    let good_inter = r#"{"0": [1, 2, 3], "1": [2, 3, 1]}"#;
    let cases = vec![
        data_case("malformed JSON", f, "{\"0\": [1, 2,\n", &["a.inter.json:2", "malformed JSON"]),
        data_case("not an object", f, "[[1, 2], [2, 3]]", &["expected a JSON object at the top level"]),
        data_case("history is a string", f, r#"{"0": "1 2 3"}"#, &["(key \"0\")", "expected a list of item ids, found a string"]),
        data_case("item id is an object", f, r#"{"0": [1, {"id": 2}]}"#, &["(key \"0\")", "found an object at position 1"]),
        data_case("item id is a float", f, r#"{"0": [1, 2.5]}"#, &["item id 2.5 is not an integer at position 1"]),
        data_case("negative item id", f, r#"{"0": [1, -4]}"#, &["negative item id -4"]),
        data_case("empty user", f, r#"{"0": [1, 2], "1": []}"#, &["(key \"1\")", "empty history"]),
        data_case("empty user id", f, r#"{"": [1, 2]}"#, &["empty user id"]),
        data_case("duplicate user", f, r#"{"0": [1, 2], "1": [2, 3], "0": [3]}"#, &["(key \"0\")", "user \"0\" appears twice"]),
        data_case("huge item id", f, r#"{"0": [1, 123456789012345678901234567890]}"#, &["(key \"0\")", "is not an integer at position 1"]),
        data_case("number out of range", f, r#"{"0": [1, 1e400]}"#, &["a.inter.json:1", "malformed JSON"]),
        data_case("empty object", f, "{}", &["no interactions in the file"]),
        data_case("empty file", f, "", &["a.inter.json:1", "malformed JSON"]),
        data_case("nested 300 deep", f, nested, &["malformed JSON", "recursion limit"]),
        data_case("invalid UTF-8", f, b"{\"0\": [\"\xff\xfe\"]}", &["valid UTF-8"]),
        case("item.json malformed")
            .file(f, good_inter)
            .file("a.item.json", "{\"1\": {\"title\": \"x\"},")
            .args(&eval_args(f))
            .expect(&["a.item.json:1", "malformed JSON"]),
        case("item.json entry not an object")
            .file(f, good_inter)
            .file("a.item.json", r#"{"1": {"title": "x"}, "2": "a title"}"#)
            .args(&eval_args(f))
            .expect(&["a.item.json (key \"2\")", "expected an object of text fields"]),
        case("item.json duplicate item")
            .file(f, good_inter)
            .file("a.item.json", r#"{"1": {"title": "x"}, "1": {"title": "y"}}"#)
            .args(&eval_args(f))
            .expect(&["a.item.json (key \"1\")", "item \"1\" appears twice"]),
    ];
    run_cases("LC-Rec JSON", cases);
}

#[test]
fn recbole_atomic_files() {
    let f = "b.inter";
    let head = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n";
    let good = format!("{head}1\t1\t5\t10\n1\t2\t4\t11\n1\t3\t4\t12\n2\t1\t3\t10\n2\t2\t3\t11\n2\t3\t3\t12\n");
    let cases = vec![
        data_case("no item field", f, "user_id:token\trating:float\n1\t5\n", &["b.inter:1", "no item column in the header"]),
        data_case("no user field", f, "item_id:token\trating:float\n1\t5\n", &["b.inter:1", "no user column in the header"]),
        data_case("header without types", f, "user_id\titem_id\n1\t2\n", &["b.inter:1", "not a RecBole header"]),
        data_case("unknown field type", f, "user_id:token\titem_id:str\n1\t2\n", &["b.inter:1", "unknown type \"str\""]),
        data_case("field named twice", f, "user_id:token\titem_id:token\titem_id:token\n1\t2\t3\n", &["b.inter:1", "twice"]),
        data_case("rating of the wrong type", f, format!("{head}1\t1\t5\t10\n1\t2\tgood\t11\n"), &["b.inter:3", "rating \"good\" is not a finite number"]),
        data_case("timestamp of the wrong type", f, format!("{head}1\t1\t5\t2024-01-01\n"), &["b.inter:2", "timestamp \"2024-01-01\" is not a finite number"]),
        data_case("NaN timestamp", f, format!("{head}1\t1\t5\t10\n1\t2\t4\tNaN\n"), &["b.inter:3", "timestamp \"NaN\" is not a finite number"]),
        data_case("infinite timestamp", f, format!("{head}1\t1\t5\tinf\n"), &["b.inter:2", "timestamp \"inf\""]),
        data_case("missing field in a row", f, format!("{head}1\t1\t5\t10\n1\t2\t4\n"), &["b.inter:3", "expected at least 4 fields, found 3"]),
        data_case("extra field in a row", f, format!("{head}1\t1\t5\t10\t7\n"), &["b.inter:2", "expected 4 fields as in the first line, found 5"]),
        data_case("empty file", f, "", &["the file is empty"]),
        data_case("header only", f, head, &["no interactions in the file"]),
        case("item file without item_id")
            .file(f, &good)
            .file("b.item", "movie_title:token_seq\tgenre:token\nHeat\tAction\n")
            .args(&eval_args(f))
            .expect(&["b.item:1", "no item_id column"]),
        case("item file with an item twice")
            .file(f, &good)
            .file("b.item", "item_id:token\tmovie_title:token_seq\n1\tHeat\n2\tToy Story\n1\tHeat again\n")
            .args(&eval_args(f))
            .expect(&["b.item:4", "item \"1\" is described twice"]),
        case("two interaction files in the folder")
            .file("data/x.inter", &good)
            .file("data/y.inter", &good)
            .args(&eval_args("data"))
            .expect(&["data", "several interaction files", "x.inter", "y.inter"]),
    ];
    run_cases("RecBole", cases);
}

#[test]
fn csv_and_tsv() {
    let cases = vec![
        data_case("unclosed quote", "c.csv", "user,item,timestamp\nu,\"i,1\nv,j,2\n", &["c.csv:2", "unclosed '\"' quote"]),
        data_case("ragged row, too few fields", "c.csv", "user,item,timestamp\nu,i,1\nu,j\n", &["c.csv:3", "expected at least 3 fields, found 2"]),
        data_case("ragged row, too many fields", "c.csv", "user,item,timestamp\nu,i,1\nu,j,2,9\n", &["c.csv:3", "expected 3 fields as in the first line, found 4"]),
        data_case("ragged row without a header", "c.tsv", "u\ti\t1\nu\tj\t2\t5\t6\n", &["c.tsv:2", "expected 3 fields as in the first line, found 5"]),
        data_case("empty file", "c.csv", "", &["c.csv", "the file is empty"]),
        data_case("blank lines only", "c.csv", "\n\n\n", &["c.csv", "the file is empty"]),
        data_case("header only", "c.csv", "user,item,timestamp\n", &["no interactions in the file"]),
        data_case("one field a row", "c.txt", "u\nv\n", &["c.txt:1", "expected user,item[,timestamp[,rating]], found 1 field"]),
        data_case("no item column", "c.csv", "user,product\nu,i\n", &["c.csv:1", "no item column in the header"]),
        data_case("NaN timestamp", "c.tsv", "user\titem\ttimestamp\nu\ti\tnan\n", &["c.tsv:2", "timestamp \"nan\" is not a finite number"]),
        data_case("rating not a number", "c.csv", "user,item,timestamp,rating\nu,i,1,five\n", &["c.csv:2", "rating \"five\" is not a finite number"]),
        data_case("negative id", "c.csv", "user,item\nu,-1\n", &["c.csv:2", "negative item id \"-1\""]),
        data_case("empty user id", "c.csv", "user,item\n ,i\n", &["c.csv:2", "empty user id"]),
        data_case("invalid UTF-8", "c.csv", b"user,item\nu,\xff\xfe\n", &["c.csv:2", "invalid UTF-8"]),
        case("k-core empties the file")
            .file("c.csv", "user,item,timestamp\nu,1,1\nu,2,2\nu,3,3\nv,1,1\nv,2,2\nv,3,3\n")
            .args(&["eval", "c.csv", "--out", "o", "--set", "data.k_core=5"])
            .expect(&["dataset c", "no interactions left after filtering (k_core = 5"]),
        case("missing file").args(&eval_args("nothing.csv")).expect(&["nothing.csv", "no such file"]),
        case("missing folder").args(&eval_args("nowhere/")).expect(&["nowhere", "no such file"]),
    ];
    run_cases("CSV/TSV", cases);
}

/// A BOM is what spreadsheet programs put in front of a UTF-8 CSV; users expect such files to
/// read like any other, so it is skipped in every text format (not a failure case).
#[test]
fn a_byte_order_mark_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = "u,1,1\nu,2,2\nu,3,3\nv,1,1\nv,2,2\nv,3,3\n";
    let files = [
        ("bom.csv", format!("\u{feff}user,item,timestamp\n{rows}")),
        ("bom.inter", format!("\u{feff}user_id:token\titem_id:token\ttimestamp:float\n{}", rows.replace(',', "\t"))),
        ("bom.inter.json", "\u{feff}{\"u\": [1, 2, 3], \"v\": [1, 2, 3]}".to_string()),
    ];
    for (name, text) in files {
        std::fs::write(d.join(name), text).unwrap();
        let out = sidrec(d, &["data", "stats", name, "--json", "--set", "data.k_core=0"]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!((s["users"].as_u64(), s["items"].as_u64(), s["interactions"].as_u64()), (Some(2), Some(3), Some(6)), "{name}: {s}");
    }
}

/// A `.npy` file (version 1) with header dict `header` and data `data`.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

fn npy_f32(shape: &str, values: &[f32]) -> Vec<u8> {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy(&format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"), &data)
}

/// A `.safetensors` file with header JSON `header` and data `data`.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// Three items seen by two users: a dataset for the embedding and index cases.
const SMALL: &str = "user,item,timestamp\nu,1,1\nu,2,2\nu,3,3\nv,1,1\nv,2,2\nv,3,3\n";

fn embedding_case(name: &str, file: &str, bytes: impl AsRef<[u8]>, expect: &[&str]) -> Case {
    case(name)
        .file("data.csv", SMALL)
        .file(file, bytes)
        .args(&["tokenize", "data.csv", "--embeddings", file, "--device", "cpu", "--out", "o", "--set", "data.k_core=0"])
        .expect(&[&[file][..], expect].concat())
}

#[test]
fn npy_embeddings() {
    let six = [0.5f32; 6];
    let f = "e.npy";
    let cases = vec![
        embedding_case("wrong dtype", f, npy("{'descr': '<i8', 'fortran_order': False, 'shape': (3, 2), }", &[0; 48]), &["unsupported dtype \"<i8\""]),
        embedding_case("float16", f, npy("{'descr': '<f2', 'fortran_order': False, 'shape': (3, 2), }", &[0; 12]), &["unsupported dtype \"<f2\""]),
        embedding_case("structured dtype", f, npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3, 2), }", &[0; 24]), &["unsupported dtype", "structured"]),
        embedding_case("Fortran order", f, npy("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", &[0; 24]), &["Fortran-ordered"]),
        embedding_case("1-D array", f, npy_f32("(6,)", &six), &["expected a 2-D matrix [items, dim], found shape [6]"]),
        embedding_case("3-D array", f, npy_f32("(3, 1, 2)", &six), &["found shape [3, 1, 2]"]),
        embedding_case("0-D array", f, npy_f32("()", &[0.5]), &["found shape []"]),
        embedding_case("truncated data", f, npy_f32("(3, 2)", &six[..5]), &["truncated", "needs 24 bytes", "has 20"]),
        embedding_case("extra data", f, npy_f32("(3, 2)", &[0.5; 7]), &["extra bytes"]),
        embedding_case("shape claims 10^12 rows", f, npy_f32("(1000000000000, 2)", &six), &["shape [1000000000000, 2] of <f4 needs 8000000000000 bytes"]),
        embedding_case("shape overflows", f, npy_f32("(18446744073709551615, 18446744073709551615)", &six), &["too large to address"]),
        embedding_case("header length past the end", f, b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{'descr': '<f4'}".to_vec(), &["the header claims 2147483647 bytes"]),
        embedding_case("no magic", f, b"PK\x03\x04 a zip file", &["not a .npy file"]),
        embedding_case("header missing shape", f, npy("{'descr': '<f4', 'fortran_order': False, }", &[]), &["no 'shape' entry"]),
        embedding_case("header not a dict", f, npy("[1, 2, 3]", &[]), &["expected a dict"]),
        embedding_case("NaN value", f, npy_f32("(3, 2)", &[0.0, 1.0, f32::NAN, 0.0, 1.0, 1.0]), &["row 1, column 0 is not finite"]),
        embedding_case("wrong number of rows", f, npy_f32("(2, 3)", &six), &["has 2 rows but the dataset has 3 items"]),
        embedding_case("empty matrix", f, npy_f32("(3, 0)", &[]), &["empty matrix [3, 0]"]),
        embedding_case("unknown extension", "e.txt", "0.5 0.5\n", &["unknown embedding format"]),
        case("FlexCode CF embeddings of another catalogue")
            .file("data.csv", SMALL)
            .file("e.npy", npy_f32("(3, 2)", &six))
            .file("cf.npy", npy_f32("(2, 3)", &six))
            .args(&["tokenize", "data.csv", "--embeddings", "e.npy", "--cf-embeddings", "cf.npy", "--device", "cpu", "--out", "o"])
            .args(&["--set", "data.k_core=0", "--set", "tokenizer.kind=flexcode"])
            .expect(&["cf.npy", "has 2 rows but the dataset has 3 items"]),
        case("missing file")
            .file("data.csv", SMALL)
            .args(&["tokenize", "data.csv", "--embeddings", "none.npy", "--device", "cpu", "--out", "o", "--set", "data.k_core=0"])
            .expect(&["none.npy", "No such file"]),
    ];
    run_cases("npy", cases);
}

#[test]
fn safetensors_embeddings() {
    let f = "e.safetensors";
    let data = [0u8; 24];
    let one = |dtype: &str, shape: &str, end: usize| format!(r#"{{"emb":{{"dtype":"{dtype}","shape":{shape},"data_offsets":[0,{end}]}}}}"#);
    let two = r#"{"a":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[3,2],"data_offsets":[24,48]}}"#;
    let cases = vec![
        embedding_case("corrupt header", f, safetensors(r#"{"emb":{"dtype":"F32","shape":[3,2],"#, &data), &["not a valid safetensors file"]),
        embedding_case("header length past the end", f, {
            let mut b = safetensors(&one("F32", "[3,2]", 24), &data);
            b[..8].copy_from_slice(&10_000u64.to_le_bytes());
            b
        }, &["not a valid safetensors file"]),
        embedding_case("header length of a terabyte", f, {
            let mut b = safetensors(&one("F32", "[3,2]", 24), &data);
            b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
            b
        }, &["not a valid safetensors file"]),
        embedding_case("shorter than its length field", f, b"\x10\x00\x00", &["not a valid safetensors file"]),
        embedding_case("offsets past the data", f, safetensors(&one("F32", "[3,2]", 24), &data[..8]), &["not a valid safetensors file"]),
        embedding_case("shape claims 10^12 rows", f, safetensors(&one("F32", "[1000000000000,2]", 24), &data), &["not a valid safetensors file"]),
        embedding_case("wrong dtype", f, safetensors(&one("I64", "[3,1]", 24), &data), &["(key \"emb\")", "unsupported dtype I64"]),
        embedding_case("1-D tensor", f, safetensors(&one("F32", "[6]", 24), &data), &["(key \"emb\")", "expected a 2-D matrix"]),
        embedding_case("several tensors, none named", f, safetensors(two, &[0u8; 48]), &["holds 2 tensors (a, b); name the embedding tensor"]),
        embedding_case("no tensors", f, safetensors("{}", &[]), &["holds no tensors"]),
        embedding_case("named tensor absent", f, safetensors(two, &[0u8; 48]), &["(key \"emb\")", "no such tensor (the file has: a, b)"])
            .args(&["--set", "tokenizer.embeddings_key=emb"]),
        embedding_case("infinite value", f, safetensors(&one("F32", "[3,2]", 24), &{
            let mut d = [0u8; 24];
            d[20..].copy_from_slice(&f32::INFINITY.to_le_bytes());
            d
        }), &["row 2, column 1 is not finite"]),
    ];
    run_cases("safetensors", cases);
}

fn index_case(name: &str, text: &str, expect: &[&str]) -> Case {
    case(name)
        .file("data.csv", SMALL)
        .file("t.index.json", text)
        .args(&["tokenize", "data.csv", "--import", "t.index.json", "--out", "o", "--set", "data.k_core=0"])
        .expect(&[&["t.index.json"][..], expect].concat())
}

#[test]
fn index_json() {
    let cases = vec![
        index_case("bad token syntax", r#"{"1": ["<a_1>", "b_2"], "2": ["<a_2>", "<b_2>"], "3": ["<a_3>", "<b_2>"]}"#, &["(key \"1\")", "token \"b_2\" is not of the form"]),
        index_case("negative code", r#"{"1": ["<a_-1>"], "2": ["<a_2>"], "3": ["<a_3>"]}"#, &["(key \"1\")", "token \"<a_-1>\""]),
        index_case("code too large", r#"{"1": ["<a_99999999999>"], "2": ["<a_2>"], "3": ["<a_3>"]}"#, &["(key \"1\")", "<a_99999999999>"]),
        index_case("code beyond any codebook", r#"{"1": ["<a_4000000000>"], "2": ["<a_2>"], "3": ["<a_3>"]}"#, &["(key \"1\")", "beyond any codebook"]),
        index_case("repeated level letter", r#"{"1": ["<a_1>", "<a_2>"], "2": ["<a_0>", "<b_2>"], "3": ["<a_2>", "<b_2>"]}"#, &["(key \"1\")", "must be of level 'b'"]),
        index_case("skipped level", r#"{"1": ["<a_1>", "<c_2>"], "2": ["<a_0>", "<b_2>"], "3": ["<a_2>", "<b_2>"]}"#, &["(key \"1\")", "token 2 is <c_2>"]),
        index_case("duplicate item", r#"{"1": ["<a_1>"], "2": ["<a_2>"], "3": ["<a_3>"], "1": ["<a_4>"]}"#, &["(key \"1\")", "item \"1\" appears twice"]),
        index_case("item missing", r#"{"1": ["<a_1>"], "2": ["<a_2>"]}"#, &["1 catalogue items have no semantic ID (first: item \"3\")"]),
        index_case("items unknown", r#"{"7": ["<a_1>"], "8": ["<a_2>"], "9": ["<a_3>"]}"#, &["3 catalogue items have no semantic ID", "not in the catalogue (first: \"7\")"]),
        index_case("token not a string", r#"{"1": ["<a_1>", 5], "2": ["<a_2>"], "3": ["<a_3>"]}"#, &["(key \"1\")", "expected a token string, found a number"]),
        index_case("ID not a list", r#"{"1": "<a_1>", "2": ["<a_2>"], "3": ["<a_3>"]}"#, &["(key \"1\")", "expected a list of tokens, found a string"]),
        index_case("empty ID", r#"{"1": [], "2": ["<a_2>"], "3": ["<a_3>"]}"#, &["(key \"1\")", "empty semantic ID"]),
        index_case("IDs of different lengths", r#"{"1": ["<a_1>", "<b_1>"], "2": ["<a_2>"], "3": ["<a_3>"]}"#, &["IDs have different lengths"]),
        index_case("malformed JSON", "{\"1\": [\"<a_1>\"],\n \"2\": [\"<a_2>\"\n", &["t.index.json:3", "malformed JSON"]),
        index_case("not an object", r#"[["<a_1>"]]"#, &["expected a JSON object at the top level"]),
    ];
    run_cases("index.json", cases);
}

/// `eval synthetic` (small) with config file `c.toml`.
fn config_case(name: &str, toml: &str, expect: &[&str]) -> Case {
    case(name)
        .file("c.toml", toml)
        .args(&["eval", "synthetic", "--config", "c.toml", "--out", "o", "--set", "synthetic.users=200"])
        .expect(&[&["c.toml"][..], expect].concat())
}

#[test]
fn config_toml() {
    let set = |name: &str, kv: &str, expect: &[&str]| {
        case(name).args(&["eval", "synthetic", "--out", "o", "--set", "synthetic.users=200", "--set", kv]).expect(expect)
    };
    let cases = vec![
        config_case("unknown key", "[data]\nkcore = 3\n", &["data.kcore", "unknown field `kcore`"]),
        config_case("unknown section", "[modle]\nd_model = 64\n", &["modle", "unknown field `modle`"]),
        config_case("wrong type", "[data]\nk_core = \"five\"\n", &["data.k_core", "invalid type"]),
        config_case("wrong type in a list", "[eval]\nks = [5, \"ten\"]\n", &["eval.ks", "invalid type"]),
        config_case("negative size", "[train]\nbatch_size = -4\n", &["train.batch_size"]),
        config_case("zero model size", "[model]\nd_model = 0\n", &["model"]),
        config_case("zero heads", "[model]\nnum_heads = 0\n", &["num_heads"]),
        config_case("beam of 0", "[eval]\nbeam_size = 0\n", &["eval.beam_size", "must be at least the largest cut-off"]),
        config_case("cut-off of 0", "[eval]\nks = [0, 10]\n", &["eval.ks", "positive cut-offs"]),
        config_case("zero epochs", "[train]\nepochs = 0\n", &["train.epochs", "must be at least 1"]),
        config_case("negative learning rate", "[train]\nlr = -0.001\n", &["train.lr", "must be a positive number"]),
        config_case("zero history window", "[data]\nmax_len = 0\n", &["data.max_len", "must be at least 1"]),
        config_case("zero tokenizer levels", "[tokenizer]\nlevels = 0\n", &["tokenizer.levels", "must be at least 1"]),
        config_case("head fraction above 1", "[data]\nhead_fraction = 1.5\n", &["data.head_fraction", "must lie in [0, 1]"]),
        config_case("unknown device", "[run]\ndevice = \"tpu\"\n", &["run.device", "unknown variant `tpu`"]),
        config_case("TOML syntax error", "[data\nk_core = 3\n", &["line 1"]),
        config_case("duplicate key", "[data]\nk_core = 3\nk_core = 4\n", &["duplicate key"]),
        case("invalid UTF-8")
            .file("c.toml", b"[data]\nformat = \"\xff\"\n")
            .args(&["eval", "synthetic", "--config", "c.toml", "--out", "o"])
            .expect(&["c.toml", "valid UTF-8"]),
        case("missing config file").args(&["eval", "synthetic", "--config", "none.toml", "--out", "o"]).expect(&["none.toml", "No such file"]),
        set("--set without a value", "nonsense", &["--set \"nonsense\"", "expected section.key=value"]),
        set("--set of a scalar as a section", "data.k_core.x=1", &["data.k_core", "invalid type: map, expected usize"]),
        set("--set into a scalar", "run.seed=1", &[]).args(&["--set", "run.seed.x=2"]).expect(&["run.seed.x", "seed is not a section"]),
        set("k-core that empties the dataset", "data.k_core=100000", &["dataset synthetic", "no interactions left after filtering", "k_core = 100000"]),
        set("zero synthetic users", "synthetic.users=0", &["synthetic"]),
    ];
    run_cases("config TOML", cases);
}

/// Tiny model settings for the shared runs (as in `tests/cli.rs`).
const TINY: &[&str] = &[
    "--set", "synthetic.users=300", "--set", "synthetic.items=150", "--set", "synthetic.topics=6",
    "--set", "tokenizer.kind=rqkmeans", "--set", "tokenizer.levels=3", "--set", "tokenizer.codebook_size=16",
    "--set", "model.d_model=32", "--set", "model.d_kv=16", "--set", "model.d_ff=64", "--set", "model.num_layers=1",
    "--set", "model.num_decoder_layers=1", "--set", "model.num_heads=2", "--set", "train.batch_size=64",
    "--set", "train.epochs=1", "--set", "eval.beam_size=10",
];

const TINY_SASREC: &[&str] = &[
    "--set", "synthetic.users=300", "--set", "synthetic.items=150", "--set", "synthetic.topics=6",
    "--set", "model.kind=sasrec", "--set", "model.sasrec.hidden=16", "--set", "model.sasrec.max_len=10",
    "--set", "train.batch_size=64", "--set", "train.epochs=1",
];

/// One tiny TIGER and one tiny SASRec, trained once for the binary.
struct Trained {
    tiger: PathBuf,
    sasrec: PathBuf,
    items: Vec<String>,
}

fn trained() -> &'static Trained {
    static RUNS: OnceLock<Trained> = OnceLock::new();
    RUNS.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_input-runs");
        if root.exists() {
            std::fs::remove_dir_all(&root).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        let started = Instant::now();
        let train = |out: &str, extra: &[&str]| {
            let mut args = vec!["train", "synthetic", "--device", "cpu", "--out", out];
            args.extend_from_slice(extra);
            let out = sidrec(&root, &args);
            assert!(out.status.success(), "training the shared run failed: {}", String::from_utf8_lossy(&out.stderr));
        };
        std::thread::scope(|s| {
            s.spawn(|| train("tiger", TINY));
            s.spawn(|| train("sasrec", TINY_SASREC));
        });
        eprintln!("shared runs trained in {:.1}s", started.elapsed().as_secs_f64());
        let items = serde_json::from_str(&std::fs::read_to_string(root.join("tiger/items.json")).unwrap()).unwrap();
        Trained { tiger: root.join("tiger"), sasrec: root.join("sasrec"), items }
    })
}

fn edit_json(path: &Path, f: impl Fn(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

fn truncate(path: &Path, keep: f64) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
}

#[test]
fn checkpoint_folders() {
    let t = trained();
    let best = t.tiger.join("checkpoints/best");
    let sas = t.sasrec.join("checkpoints/best");
    let item = t.items[0].as_str();
    // Each damage is tried with `recommend` and with `eval`, which both read checkpoints.
    let both = |name: &str, from: &Path, edit: fn(&Path), expect: &[&str]| {
        let rec = case(&format!("{name} (recommend)"))
            .copy(from, "ck")
            .edit(edit)
            .args(&["recommend", "--device", "cpu", "--checkpoint", "ck", "--history", item])
            .expect(expect);
        let mut eval_args = vec!["eval", "synthetic", "--device", "cpu", "--checkpoint", "ck", "--out", "o"];
        eval_args.extend_from_slice(&TINY[..6]);
        let eval = case(&format!("{name} (eval)")).copy(from, "ck").edit(edit).args(&eval_args).expect(expect);
        [rec, eval]
    };
    let mut cases: Vec<Case> = Vec::new();
    cases.extend(both("truncated weights", &best, |d| truncate(&d.join("ck/model.bpk"), 0.5), &["model.bpk", "truncated or changed"]));
    cases.extend(both("truncated weights, no manifest", &best, |d| {
        std::fs::remove_file(d.join("ck/manifest.json")).unwrap();
        truncate(&d.join("ck/model.bpk"), 0.5);
    }, &["model.bpk"]));
    cases.extend(both("empty weights, no manifest", &best, |d| {
        std::fs::remove_file(d.join("ck/manifest.json")).unwrap();
        std::fs::write(d.join("ck/model.bpk"), b"").unwrap();
    }, &["model.bpk"]));
    cases.extend(both("flipped byte in the weights", &best, |d| {
        let p = d.join("ck/model.bpk");
        let mut b = std::fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x10;
        std::fs::write(&p, b).unwrap();
    }, &["model.bpk", "checksum differs from manifest.json"]));
    cases.extend(both("missing weights", &best, |d| std::fs::remove_file(d.join("ck/model.bpk")).unwrap(), &["model.bpk", "listed in manifest.json but unreadable"]));
    cases.extend(both("missing weights, no manifest", &best, |d| {
        std::fs::remove_file(d.join("ck/manifest.json")).unwrap();
        std::fs::remove_file(d.join("ck/model.bpk")).unwrap();
    }, &["model.bpk", "No such file"]));
    cases.extend(both("missing items.json", &best, |d| std::fs::remove_file(d.join("ck/items.json")).unwrap(), &["items.json", "listed in manifest.json but unreadable"]));
    cases.extend(both("missing generator.json", &best, |d| std::fs::remove_file(d.join("ck/generator.json")).unwrap(), &["ck", "not a sidrec checkpoint"]));
    cases.extend(both("edited generator.json", &best, |d| edit_json(&d.join("ck/generator.json"), |v| v["model"]["d_ff"] = serde_json::json!(48)), &["generator.json", "manifest.json records"]));
    cases.extend(both("edited generator.json, no manifest", &best, |d| {
        std::fs::remove_file(d.join("ck/manifest.json")).unwrap();
        edit_json(&d.join("ck/generator.json"), |v| v["model"]["d_ff"] = serde_json::json!(48));
    }, &["model.bpk", "do not fit the model that generator.json describes"]));
    cases.extend(both("generator.json not JSON, no manifest", &best, |d| {
        std::fs::remove_file(d.join("ck/manifest.json")).unwrap();
        std::fs::write(d.join("ck/generator.json"), "{\"model\": ").unwrap();
    }, &["generator.json", "EOF while parsing"]));
    cases.extend(both("generator.json without levels, no manifest", &best, |d| {
        std::fs::remove_file(d.join("ck/manifest.json")).unwrap();
        edit_json(&d.join("ck/generator.json"), |v| v["level_sizes"] = serde_json::json!([]));
    }, &["generator.json"]));
    cases.extend(both("index of another length, no manifest", &best, |d| {
        std::fs::remove_file(d.join("ck/manifest.json")).unwrap();
        edit_json(&d.join("ck/items.index.json"), |v| {
            for id in v.as_object_mut().unwrap().values_mut() {
                id.as_array_mut().unwrap().truncate(1);
            }
        });
    }, &["items.index.json"]));
    cases.extend(both("items.json with a duplicate, no manifest", &best, |d| {
        std::fs::remove_file(d.join("ck/manifest.json")).unwrap();
        edit_json(&d.join("ck/items.json"), |v| {
            let first = v[0].clone();
            v[1] = first;
        });
    }, &["items.json", "duplicate ids"]));
    cases.extend(both("manifest not JSON", &best, |d| std::fs::write(d.join("ck/manifest.json"), "[").unwrap(), &["manifest.json"]));
    // A checkpoint of another kind: SASRec weights under a generator's spec and back.
    cases.extend(both("SASRec weights labelled tiger", &sas, |d| {
        std::fs::remove_file(d.join("ck/manifest.json")).unwrap();
        let tiger: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("tiger.json")).unwrap()).unwrap();
        std::fs::write(d.join("ck/generator.json"), tiger.to_string()).unwrap();
        std::fs::copy(d.join("tiger.index.json"), d.join("ck/items.index.json")).unwrap();
    }, &["model.bpk", "do not fit the model that generator.json describes"]));
    cases.extend(both("TIGER weights labelled sasrec", &best, |d| {
        std::fs::remove_file(d.join("ck/manifest.json")).unwrap();
        edit_json(&d.join("ck/generator.json"), |v| v["model"]["kind"] = "sasrec".into());
    }, &["model.bpk", "do not fit the model that generator.json describes"]));
    // Copies of the run folder's generator spec and index, for the relabelling above.
    for c in &mut cases {
        if c.name.starts_with("SASRec weights labelled tiger") {
            c.files.push(("tiger.json".into(), std::fs::read(best.join("generator.json")).unwrap()));
            c.files.push(("tiger.index.json".into(), std::fs::read(best.join("items.index.json")).unwrap()));
        }
    }
    // A run folder or a tokenizer folder instead of a checkpoint folder.
    cases.extend(both("a run folder, not a checkpoint", &t.tiger, |_| {}, &["ck", "not a sidrec checkpoint"]).into_iter().map(|c| c.edit(|d| std::fs::remove_dir_all(d.join("ck/checkpoints")).unwrap())));
    // The checkpoint against another catalogue or history window.
    let mut other = vec!["eval", "synthetic", "--device", "cpu", "--checkpoint", "ck", "--out", "o"];
    other.extend_from_slice(&["--set", "synthetic.users=300", "--set", "synthetic.items=100", "--set", "synthetic.topics=6"]);
    cases.push(case("eval on another catalogue").copy(&best, "ck").args(&other).expect(&["ck", "another item catalogue"]));
    cases.push(case("eval of SASRec on another catalogue").copy(&sas, "ck").args(&other).expect(&["ck", "another item catalogue"]));
    let mut window = vec!["eval", "synthetic", "--device", "cpu", "--checkpoint", "ck", "--out", "o", "--set", "data.max_len=7"];
    window.extend_from_slice(&TINY[..6]);
    cases.push(case("eval with another history window").copy(&best, "ck").args(&window).expect(&["ck", "history window of 20 items", "data.max_len = 7"]));
    // A failing command leaves an existing run folder exactly as it was.
    let mut again = vec!["eval", "synthetic", "--device", "cpu", "--checkpoint", "ck", "--out", "o"];
    again.extend_from_slice(&TINY[..6]);
    cases.push(
        case("an existing --out folder is left as it was")
            .file("o/metrics.json", "[\"the previous run's metrics\"]")
            .file("o/config.toml", "[data]\nk_core = 5\n")
            .copy(&best, "ck")
            .edit(|d| truncate(&d.join("ck/model.bpk"), 0.9))
            .args(&again)
            .expect(&["model.bpk", "truncated or changed"]),
    );
    run_cases("checkpoint", cases);
}

/// A small BERT config for the `embed` cases.
const BERT_CONFIG: &str = r#"{"hidden_size":8,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":16,"vocab_size":5,"max_position_embeddings":512,"type_vocab_size":2,"layer_norm_eps":1e-12,"hidden_act":"gelu"}"#;

/// A valid WordPiece `tokenizer.json` of five tokens.
const WORDPIECE: &str = r###"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{"[UNK]":0,"[CLS]":1,"[SEP]":2,"[PAD]":3,"a":4}}}"###;

/// `embed`'s model folder (`--model m`): config, tokenizer and weights, each broken in turn.
#[test]
fn embed_model_folders() {
    let embed = ["embed", "synthetic", "--device", "cpu", "--model", "m", "--out", "o", "--set", "synthetic.users=200"];
    let config = |edit: &str, value: &str| {
        let mut v: serde_json::Value = serde_json::from_str(BERT_CONFIG).unwrap();
        v[edit] = serde_json::from_str(value).unwrap();
        v.to_string()
    };
    let folder = |name: &str, config: &str, tokenizer: &str, weights: &[u8]| {
        case(name).file("m/config.json", config).file("m/tokenizer.json", tokenizer).file("m/model.safetensors", weights).args(&embed)
    };
    let one_tensor = safetensors(r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &[0; 8]);
    let narrow = safetensors(r#"{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[5,4],"data_offsets":[0,80]}}"#, &[0; 80]);
    let cases = vec![
        case("no model folder").args(&embed).expect(&["m: model folder not found"]),
        case("empty model folder").file("m/README", "").args(&embed).expect(&["m: not a model folder: config.json is missing"]),
        case("no weights").file("m/config.json", BERT_CONFIG).file("m/tokenizer.json", WORDPIECE).args(&embed).expect(&["model.safetensors is missing"]),
        folder("config not JSON", "{\"hidden_size\": ", WORDPIECE, &one_tensor).expect(&["m/config.json", "not a BERT config"]),
        folder("config with a wrong type", &config("hidden_size", "\"eight\""), WORDPIECE, &one_tensor).expect(&["m/config.json", "expected usize"]),
        folder("config with a zero width", &config("hidden_size", "0"), WORDPIECE, &one_tensor).expect(&["m/config.json", "hidden_size must be at least 1"]),
        folder("config with no vocabulary", &config("vocab_size", "0"), WORDPIECE, &one_tensor).expect(&["m/config.json", "vocab_size must be at least 1"]),
        folder("config with heads that do not divide", &config("num_attention_heads", "3"), WORDPIECE, &one_tensor).expect(&["m/config.json", "not divisible by num_attention_heads 3"]),
        folder("config with another activation", &config("hidden_act", "\"relu\""), WORDPIECE, &one_tensor).expect(&["m/config.json", "hidden_act \"relu\" is not supported"]),
        folder("config with a negative epsilon", &config("layer_norm_eps", "-1.0"), WORDPIECE, &one_tensor).expect(&["m/config.json", "layer_norm_eps -1 must be a positive number"]),
        folder("tokenizer not JSON", BERT_CONFIG, "{", &one_tensor).expect(&["m/tokenizer.json"]),
        folder("weights not safetensors", BERT_CONFIG, WORDPIECE, b"not a safetensors file at all, just text").expect(&["m/model.safetensors", "not a valid safetensors file"]),
        folder("weights without BERT's tensors", BERT_CONFIG, WORDPIECE, &one_tensor).expect(&["m/model.safetensors", "\"embeddings.word_embeddings.weight\"", "missing"]),
        folder("weights of another width", BERT_CONFIG, WORDPIECE, &narrow).expect(&["m/model.safetensors", "embeddings.word_embeddings.weight"]),
    ];
    run_cases("embed model folder", cases);
}

/// `train` refuses before it writes anything: a bad `model.index`, or a run folder that holds
/// another model kind or was trained on other IDs. A new `--out` is not created; an existing
/// run folder keeps every byte (its config.toml and id maps too).
#[test]
fn train_run_folders() {
    let t = trained();
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec!["train", "synthetic", "--device", "cpu", "--out", out];
        args.extend_from_slice(TINY);
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let bad_index = r#"{"1": ["<a_1>", "b_2"]}"#;
    let swapped = |d: &Path| {
        // The run's own IDs with two items' IDs exchanged: valid, but not the run's.
        edit_json(&d.join("other.index.json"), |v| {
            let m = v.as_object_mut().unwrap();
            let keys: Vec<String> = m.keys().take(2).cloned().collect();
            let (a, b) = (m[&keys[0]].clone(), m[&keys[1]].clone());
            m.insert(keys[0].clone(), b);
            m.insert(keys[1].clone(), a);
        })
    };
    let index_of_run = std::fs::read(t.tiger.join("checkpoints/best/items.index.json")).unwrap();
    let cases = vec![
        case("train --index with a bad index, new --out")
            .file("t.index.json", bad_index)
            .args(&train("o", &["--set", "model.index=\"t.index.json\""]))
            .expect(&["t.index.json", "token \"b_2\" is not of the form"]),
        case("train --index with a bad index, existing run folder")
            .copy(&t.tiger, "run")
            .file("t.index.json", bad_index)
            .args(&train("run", &["--set", "model.index=\"t.index.json\""]))
            .expect(&["t.index.json", "token \"b_2\" is not of the form"]),
        case("train sasrec on a TIGER run folder")
            .copy(&t.tiger, "run")
            .args(&train("run", &["--set", "model.kind=\"sasrec\""]))
            .expect(&["run/checkpoints/last", "holds a tiger model, this config trains sasrec", "--restart"]),
        case("train tiger on a SASRec run folder")
            .copy(&t.sasrec, "run")
            .args(&train("run", &[]))
            .expect(&["run/checkpoints/last", "holds a sasrec model, this config trains tiger"]),
        case("resume with an index of other IDs")
            .copy(&t.tiger, "run")
            .file("other.index.json", &index_of_run)
            .edit(swapped)
            .args(&train("run", &["--set", "train.epochs=2", "--set", "model.index=\"other.index.json\""]))
            .expect(&["other.index.json", "holds other IDs", "a resumed run keeps its IDs"]),
        case("train on the other catalogue of a run folder")
            .copy(&t.tiger, "run")
            .args(&train("run", &["--set", "train.epochs=2", "--set", "synthetic.items=100"]))
            .expect(&["run/checkpoints/last", "trained on other items"]),
    ];
    run_cases("train run folder", cases);
}

#[test]
fn recommend_history_files() {
    let t = trained();
    let best = t.tiger.join("checkpoints/best");
    let ck = best.to_str().unwrap();
    let rec = |name: &str, file: &[u8], expect: &[&str]| {
        case(name).file("h.txt", file).args(&["recommend", "--device", "cpu", "--checkpoint", ck, "--histories", "h.txt"]).expect(expect)
    };
    let (a, b) = (t.items[0].as_str(), t.items[1].as_str());
    let cases = vec![
        rec("unknown id", format!("{a} {b}\n{a} no-such-item\n").as_bytes(), &["h.txt line 2", "unknown item id \"no-such-item\""]),
        rec("unknown id after a tab", format!("{a}\t{b}\t\n{a}\tx y\n").as_bytes(), &["h.txt line 2", "unknown item id \"x y\""]),
        rec("a line of separators", format!("{a} {b}\n , ,\n").as_bytes(), &["h.txt line 2", "an empty history"]),
        rec("empty lines only", b"\n\n   \n", &["h.txt", "no histories"]),
        rec("comments only", b"# a\n# b\n", &["h.txt", "no histories"]),
        rec("empty file", b"", &["h.txt", "no histories"]),
        rec("invalid UTF-8", b"\xff\xfe1 2\n", &["h.txt", "cannot read"]),
        case("missing file").args(&["recommend", "--device", "cpu", "--checkpoint", ck, "--histories", "none.txt"]).expect(&["none.txt", "cannot read"]),
        case("unknown id in --history").args(&["recommend", "--device", "cpu", "--checkpoint", ck, "--history", a, "nope"]).expect(&["--history", "unknown item id \"nope\""]),
        case("--history and --histories").file("h.txt", a.as_bytes()).args(&["recommend", "--device", "cpu", "--checkpoint", ck, "--histories", "h.txt", "--history", a]).expect(&["not both"]),
        case("top-k of 0").args(&["recommend", "--device", "cpu", "--checkpoint", ck, "--history", a, "--top-k", "0"]).expect(&["--top-k must be at least 1"]),
    ];
    run_cases("recommend", cases);
}
