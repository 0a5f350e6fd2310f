//! Property tests of every reader (issue 17): random bytes, random text and random mutations
//! (bit flips, overwrites, truncation, insertion, deletion) of valid files go into each parser,
//! called as a library function. None may panic, and none may allocate more than a small
//! multiple of its input: a counting allocator records the largest single allocation of the
//! test's thread while a parser runs. `crafted_headers_that_claim_gigabytes_fail_fast` checks
//! the sizes read from headers directly with ~100-byte files.
//!
//! `SIDREC_PROPTEST_CASES` scales the number of cases of each property (default below).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sidrec::cli::config::RunConfig;
use sidrec::data::formats::{delimited, lcrec, recbole};
use sidrec::data::{Dataset, DatasetOptions, Embeddings, IdMap, InteractionLog, SemanticIndex, Split};

/// Counts the largest single allocation made on the current thread.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| {
        if size > c.get() {
            c.set(size)
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the largest single allocation it made on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|c| c.set(0));
    let out = f();
    (out, LARGEST.with(|c| c.get()))
}

/// The most a parser may ask for at once: the readers read the whole file (once or twice) and
/// keep small buffers; nothing may scale with a size the file merely claims.
fn allowance(input_len: usize) -> usize {
    (1 << 20) + 16 * input_len
}

fn cases(default: u32) -> u32 {
    std::env::var("SIDREC_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn runner(n: u32) -> TestRunner {
    TestRunner::new(Config { cases: n, failure_persistence: None, max_shrink_iters: 2000, ..Config::default() })
}

/// One edit of a file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Repeat(usize, usize),
}

/// Bytes that matter to the formats: structure, quotes, separators, digits, signs.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"\x00\xff\x93{}[](),:;\"'\\\t\n\r -+.0123456789eEnNaiIfF<>_abcAB=#\xef\xbb\xbf".to_vec()),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::Flip(p, 1 << b)),
        (any::<usize>(), interesting_byte()).prop_map(|(p, b)| Mutation::Set(p, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(interesting_byte(), 1..8)).prop_map(|(p, b)| Mutation::Insert(p, b)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Mutation::Remove(p, n)),
        (any::<usize>(), 1usize..32).prop_map(|(p, n)| Mutation::Repeat(p, n)),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % len };
        match m {
            Mutation::Flip(p, bit) if !b.is_empty() => {
                let i = at(*p, b.len());
                b[i] ^= bit;
            }
            Mutation::Set(p, v) if !b.is_empty() => {
                let i = at(*p, b.len());
                b[i] = *v;
            }
            Mutation::Truncate(p) => b.truncate(at(*p, b.len() + 1)),
            Mutation::Insert(p, bytes) => {
                let i = at(*p, b.len() + 1);
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove(p, n) if !b.is_empty() => {
                let i = at(*p, b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Mutation::Repeat(p, n) if !b.is_empty() => {
                // A stretch of the file repeated: lengthens lists, rows, headers.
                let i = at(*p, b.len());
                let end = (i + n).min(b.len());
                let chunk = b[i..end].to_vec();
                b.splice(end..end, chunk);
            }
            _ => {}
        }
    }
    b
}

/// Inputs for a parser: random bytes, random text over the format's characters, and mutated
/// seeds (each of several mutations).
fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let text = prop::collection::vec(interesting_byte(), 0..400);
    let mutated = (prop::sample::select(seeds), prop::collection::vec(mutation(), 1..6)).prop_map(|(s, m)| apply(&s, &m));
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => text,
        6 => mutated,
    ]
}

/// Checks property "no panic, bounded allocation" of `parse` over `n` inputs; returns how many
/// ran and how long they took.
fn check(name: &str, n: u32, strategy: impl Strategy<Value = Vec<u8>>, parse: impl Fn(&[u8])) -> (u32, Duration) {
    let started = Instant::now();
    runner(n)
        .run(&strategy, |bytes| {
            let ((), largest) = largest_allocation(|| parse(&bytes));
            if largest > allowance(bytes.len()) {
                return Err(TestCaseError::fail(format!(
                    "{name}: a {}-byte input made an allocation of {largest} bytes",
                    bytes.len()
                )));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let took = started.elapsed();
    eprintln!("{name}: {n} cases in {:.2}s", took.as_secs_f64());
    (n, took)
}

/// A scratch file that the parsers read, rewritten for every case.
struct Scratch {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn scratch(name: &str) -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    Scratch { _dir: dir, path }
}

impl Scratch {
    fn write(&self, bytes: &[u8]) -> &Path {
        std::fs::write(&self.path, bytes).unwrap();
        &self.path
    }
}

/// What happens to a log that a reader accepted: the dataset, the split, the statistics.
fn downstream(log: InteractionLog) {
    if let Ok(ds) = Dataset::from_log(log, &DatasetOptions { k_core: 0, min_rating: None }) {
        let split = Split::leave_one_out(&ds, 5);
        let pop = sidrec::data::Popularity::from_training(&ds, 0.2);
        let _ = sidrec::data::DatasetStats::compute(&ds, &split, &pop);
    }
}

// ---- seeds -------------------------------------------------------------------------------

fn npy_file(descr: &str, fortran: bool, shape: &str, data: &[u8], version: u8) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}", if fortran { "True" } else { "False" });
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((h.len() as u16).to_le_bytes());
    } else {
        out.extend((h.len() as u32).to_le_bytes());
    }
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

fn npy_seeds() -> Vec<Vec<u8>> {
    let f4: Vec<u8> = [0.5f32, -1.0, 2.0, 3.5, 0.0, 1e-3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let f8: Vec<u8> = [0.5f64, -1.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    vec![
        npy_file("<f4", false, "(3, 2)", &f4, 1),
        npy_file(">f8", false, "(1, 2)", &f8, 2),
        npy_file("<f4", false, "(6,)", &f4, 3),
        npy_file("<f4", true, "(2, 3)", &f4, 1),
    ]
}

fn safetensors_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn safetensors_seeds() -> Vec<Vec<u8>> {
    let data: Vec<u8> = [0.5f32, -1.0, 2.0, 3.5, 0.0, 1e-3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut two = data.clone();
    two.extend(&data);
    vec![
        safetensors_file(r#"{"emb":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]}}"#, &data),
        safetensors_file(r#"{"__metadata__":{"a":"b"},"emb":{"dtype":"F64","shape":[3,1],"data_offsets":[0,24]}}"#, &data),
        safetensors_file(r#"{"a":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]},"emb":{"dtype":"F32","shape":[2,3],"data_offsets":[24,48]}}"#, &two),
    ]
}

fn text_seeds(texts: &[&str]) -> Vec<Vec<u8>> {
    texts.iter().map(|t| t.as_bytes().to_vec()).collect()
}

// ---- properties --------------------------------------------------------------------------

#[test]
fn npy_never_panics_nor_overallocates() {
    let n = cases(3000);
    let parse = |b: &[u8]| {
        let _ = Embeddings::from_bytes(Path::new("x.npy"), b, None);
    };
    check("npy", n, inputs(npy_seeds()), parse);
    // Headers built from parts: any shape (huge ones included), dtype, order and data length.
    let dims = prop::collection::vec(prop_oneof![0u64..5, any::<u64>(), Just(1u64 << 40)], 0..4);
    let descr = prop::sample::select(vec!["<f4", ">f4", "=f4", "<f8", ">f8", "|f4", "<i8", "<f2", "f4", "<c8", "|u1"]);
    let built = (dims, descr, any::<bool>(), 0usize..64, 1u8..4).prop_map(|(dims, descr, fortran, len, version)| {
        let shape = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
        };
        npy_file(descr, fortran, &shape, &vec![0x3f; len], version)
    });
    check("npy (built headers)", n, built, parse);
}

#[test]
fn safetensors_never_panics_nor_overallocates() {
    let n = cases(3000);
    check("safetensors", n, inputs(safetensors_seeds()), |b| {
        let _ = Embeddings::from_bytes(Path::new("x.safetensors"), b, None);
        let _ = Embeddings::from_bytes(Path::new("x.safetensors"), b, Some("emb"));
    });
    let dim = prop_oneof![0u64..5, any::<u64>(), Just(1u64 << 40)];
    let built = (
        prop::collection::vec(dim, 0..4),
        prop::sample::select(vec!["F32", "F64", "F16", "BF16", "I64", "U8", "BOOL", "X"]),
        (any::<u64>(), 0u64..64),
        0usize..64,
    )
        .prop_map(|(shape, dtype, (a, b), len)| {
            let shape = shape.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
            let header = format!(r#"{{"emb":{{"dtype":"{dtype}","shape":[{shape}],"data_offsets":[{},{}]}}}}"#, a % 64, b);
            safetensors_file(&header, &vec![0x3f; len])
        });
    check("safetensors (built headers)", n, built, |b| {
        let _ = Embeddings::from_bytes(Path::new("x.safetensors"), b, None);
    });
}

#[test]
fn lcrec_json_never_panics_nor_overallocates() {
    let n = cases(3000);
    let inter = scratch("x.inter.json");
    let seeds = text_seeds(&[
        r#"{"0": [3, 1, 2], "1": ["2", 3, 1], "2": [1, 2, 3, 4]}"#,
        "{\n  \"u1\": [\"a\", \"b\", \"c\"],\n  \"u2\": [\"b\", \"c\", \"a\"]\n}\n",
    ]);
    check("LC-Rec inter.json", n, inputs(seeds), |b| {
        if let Ok(log) = lcrec::load(inter.write(b)) {
            downstream(log);
        }
    });
    let item = scratch("x.item.json");
    let seeds = text_seeds(&[r#"{"3": {"title": "Lipstick", "categories": ["Beauty", "Makeup"], "price": null, "rank": 3}}"#]);
    check("LC-Rec item.json", n, inputs(seeds), |b| {
        let _ = lcrec::load_item_text(item.write(b));
    });
}

#[test]
fn recbole_never_panics_nor_overallocates() {
    let n = cases(3000);
    let inter = scratch("x.inter");
    let seeds = text_seeds(&[
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t\"Heat\" (1995)\t4\t20\n1\t2\t3\t10\n2\t2\t5\t7\n2\t3\t1\t8\n",
        "item_id:token\tuser_id:token\n1\t2\n2\t2\n",
    ]);
    check("RecBole .inter", n, inputs(seeds), |b| {
        if let Ok(log) = recbole::load(inter.write(b)) {
            downstream(log);
        }
    });
    let item = scratch("x.item");
    let seeds = text_seeds(&["item_id:token\tmovie_title:token_seq\tgenre:token\n2\tToy Story\tAnimation Comedy\n3\tHeat\tAction\n"]);
    check("RecBole .item", n, inputs(seeds), |b| {
        let _ = recbole::load_item_text(item.write(b));
    });
}

#[test]
fn csv_and_tsv_never_panic_nor_overallocate() {
    let n = cases(2000);
    let seeds = text_seeds(&[
        "user_id,item_id,timestamp,rating\nu1,\"x, y\",5,4.5\nu1,z,3,1\nu2,z,4,2\n",
        "u1\ti1\t10\n\nu1\ti2\t11\nu2\ti1\t12\n",
        "item,user\n1,2\n3,2\n",
        "\u{feff}user,item\na,b\na,c\n",
    ]);
    for name in ["x.csv", "x.tsv", "x.txt"] {
        let file = scratch(name);
        check(&format!("delimited {name}"), n, inputs(seeds.clone()), |b| {
            if let Ok(log) = delimited::load(file.write(b)) {
                downstream(log);
            }
        });
    }
}

#[test]
fn index_json_never_panics_nor_overallocates() {
    let n = cases(3000);
    let file = scratch("x.index.json");
    let items = IdMap::from_first_appearance(["0", "1", "2", "3"]);
    let seeds = text_seeds(&[
        r#"{"0": ["<a_1>", "<b_2>"], "1": ["<a_1>", "<b_2>"], "2": ["<a_0>", "<b_0>"], "3": ["<a_3>", "<b_9>"], "9": ["<a_3>"]}"#,
        r#"{"0": ["<A_1>", "<a_2>", "<b_0>"], "1": ["<a_1>", "<A_2>", "<B_0>"], "2": ["<A_3>", "<B_1>", "<C_0>"], "3": ["<z_7>"]}"#,
    ]);
    check("index.json", n, inputs(seeds), |b| {
        if let Ok((mut index, _)) = SemanticIndex::read(file.write(b), &items) {
            let _ = index.add_disambiguation_level();
            let _ = index.collisions();
        }
    });
}

#[test]
fn config_toml_never_panics_nor_overallocates() {
    let n = cases(2000);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    seeds.push(b"[data]\nk_core = 3\nmax_len = 20\n[eval]\nks = [5, 10]\nbeam_size = 20\n[model]\nd_model = 64\n".to_vec());
    check("config TOML", n, inputs(seeds), |b| {
        let _ = RunConfig::load_str(&String::from_utf8_lossy(b), "fuzz.toml", &[]);
    });
    // `--set` overrides: any key path and value.
    let sets = (
        prop::sample::select(vec!["data.k_core", "eval.ks", "model.d_model", "train.lr", "tokenizer.levels", "run.device", "x", "data..k", "a.b.c.d"]),
        prop::collection::vec(interesting_byte(), 0..24),
    )
        .prop_map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(&v)).into_bytes());
    check("config --set", n, sets, |b| {
        let _ = RunConfig::load_str("", "defaults", &[String::from_utf8_lossy(b).into_owned()]);
    });
}

#[test]
fn history_files_and_id_maps_never_panic_nor_overallocate() {
    let n = cases(2000);
    let file = scratch("h.txt");
    let seeds = text_seeds(&["# users\n1 2 3\n\n4,5 6\nTitanic (1997)\tHeat, The (1995)\n"]);
    check("recommend history file", n, inputs(seeds), |b| {
        let _ = sidrec::cli::recommend_cmd::read_histories(file.write(b));
    });
    let file = scratch("items.json");
    check("items.json", n, inputs(text_seeds(&[r#"["10", "2", "x y", "0"]"#])), |b| {
        let _ = IdMap::load(file.write(b));
    });
}

/// The counter the properties rely on sees a large request (so a bound that passes means
/// something).
#[test]
fn the_allocation_counter_sees_large_requests() {
    let (v, largest) = largest_allocation(|| vec![1u8; 10 << 20]);
    assert_eq!(v.len(), 10 << 20);
    assert!(largest >= 10 << 20, "{largest}");
    let ((), small) = largest_allocation(|| drop(std::hint::black_box(vec![1u8; 100])));
    assert!(small < 4096, "{small}");
}

/// ~100-byte files whose headers claim gigabytes: each must fail at once, naming the claim,
/// without allocating for it.
#[test]
fn crafted_headers_that_claim_gigabytes_fail_fast() {
    let npy_data = [0u8; 16];
    let nested_claim = format!("{{\"0\": {}", "[1, ".repeat(20));
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("npy 10^12 rows", "x.npy", npy_file("<f4", false, "(1000000000000, 1000)", &npy_data, 1), "needs 4000000000000000 bytes"),
        ("npy 2^64 elements", "x.npy", npy_file("<f8", false, "(4294967296, 4294967296)", &npy_data, 1), "too large to address"),
        ("npy v2 header of 4 GiB", "x.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }".to_vec(), "the header claims 4294967295 bytes"),
        ("npy v3 header of 2 GiB", "x.npy", b"\x93NUMPY\x03\x00\xff\xff\xff\x7f{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }".to_vec(), "the header claims 2147483647 bytes"),
        ("safetensors header of 1 TiB", "x.safetensors", {
            let mut b = safetensors_file(r#"{"emb":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#, &npy_data);
            b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
            b
        }, "not a valid safetensors file"),
        ("safetensors header of 99 MB", "x.safetensors", {
            let mut b = safetensors_file(r#"{"emb":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#, &npy_data);
            b[..8].copy_from_slice(&99_000_000u64.to_le_bytes());
            b
        }, "not a valid safetensors file"),
        ("safetensors tensor of 4 TiB", "x.safetensors", safetensors_file(r#"{"emb":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}"#, &npy_data), "not a valid safetensors file"),
        ("JSON list cut short", "x.inter.json", nested_claim.into_bytes(), "malformed JSON"),
    ];
    for (name, file, bytes, want) in cases {
        assert!(bytes.len() < 200, "{name}: {} bytes", bytes.len());
        let started = Instant::now();
        let (result, largest) = largest_allocation(|| {
            if file.ends_with(".inter.json") {
                let s = scratch(file);
                lcrec::load(s.write(&bytes)).map(|_| ()).map_err(|e| e.to_string())
            } else {
                Embeddings::from_bytes(Path::new(file), &bytes, None).map(|_| ()).map_err(|e| e.to_string())
            }
        });
        let took = started.elapsed();
        let err = result.expect_err(name);
        assert!(err.contains(file) && err.contains(want), "{name}: {err:?} should name {file} and say {want:?}");
        assert!(largest < 64 << 10, "{name}: allocated {largest} bytes at once for a {}-byte file", bytes.len());
        assert!(took < Duration::from_millis(500), "{name}: took {took:?}");
    }
}
