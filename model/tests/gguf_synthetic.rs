//! GGUF reader on synthetic files: a tiny GGUF writer builds valid v2/v3 files, which are read
//! back, and then corrupted in every way the reader must reject (truncation at every byte, lying
//! counts and lengths, bad types, misaligned or out-of-file tensor data, ...). Every rejection
//! must be an `Err` whose message names the file; nothing may panic.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use model::load::gguf::{GgufFile, GgufValue, hf_name, try_unpermute_qk_rows, unpermute_qk_rows};
use model::load::quant::{GgmlType, dequantize};

// ---------------------------------------------------------------------------------------------
// A minimal GGUF writer.

const T_U8: u32 = 0;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// The value's payload (without its type id). Arrays take their element type from the first
/// element, and are u8 arrays when empty.
fn encode(v: &GgufValue) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        GgufValue::U8(x) => out.extend(x.to_le_bytes()),
        GgufValue::I8(x) => out.extend(x.to_le_bytes()),
        GgufValue::U16(x) => out.extend(x.to_le_bytes()),
        GgufValue::I16(x) => out.extend(x.to_le_bytes()),
        GgufValue::U32(x) => out.extend(x.to_le_bytes()),
        GgufValue::I32(x) => out.extend(x.to_le_bytes()),
        GgufValue::U64(x) => out.extend(x.to_le_bytes()),
        GgufValue::I64(x) => out.extend(x.to_le_bytes()),
        GgufValue::F32(x) => out.extend(x.to_le_bytes()),
        GgufValue::F64(x) => out.extend(x.to_le_bytes()),
        GgufValue::Bool(x) => out.push(*x as u8),
        GgufValue::String(s) => put_str(&mut out, s),
        GgufValue::Array(items) => {
            out.extend(items.first().map_or(T_U8, GgufValue::type_id).to_le_bytes());
            out.extend((items.len() as u64).to_le_bytes());
            for item in items {
                out.extend(encode(item));
            }
        }
    }
    out
}

struct Tensor {
    name: String,
    ne: Vec<u64>,
    ty: u32,
    data: Vec<u8>,
}

/// Where the writer put things, so tests can corrupt them.
struct Built {
    bytes: Vec<u8>,
    /// Byte position of each metadata entry's type id.
    kv_type_at: Vec<usize>,
    /// Byte position of each tensor info's n_dims, type and offset fields.
    n_dims_at: Vec<usize>,
    type_at: Vec<usize>,
    offset_at: Vec<usize>,
    data_start: usize,
}

struct Writer {
    version: u32,
    alignment: usize,
    kvs: Vec<(String, u32, Vec<u8>)>,
    tensors: Vec<Tensor>,
}

impl Writer {
    fn new() -> Self {
        Self {
            version: 3,
            alignment: 32,
            kvs: Vec::new(),
            tensors: Vec::new(),
        }
    }

    fn kv(mut self, key: &str, v: GgufValue) -> Self {
        self.kvs.push((key.to_string(), v.type_id(), encode(&v)));
        self
    }

    /// A key with a raw type id and payload, for values the enum cannot express.
    fn kv_raw(mut self, key: &str, ty: u32, payload: Vec<u8>) -> Self {
        self.kvs.push((key.to_string(), ty, payload));
        self
    }

    fn tensor(mut self, name: &str, ne: &[u64], ty: u32, data: Vec<u8>) -> Self {
        self.tensors.push(Tensor {
            name: name.to_string(),
            ne: ne.to_vec(),
            ty,
            data,
        });
        self
    }

    fn build(&self) -> Built {
        let align = |n: usize| n.div_ceil(self.alignment) * self.alignment;
        let mut b = b"GGUF".to_vec();
        b.extend(self.version.to_le_bytes());
        b.extend((self.tensors.len() as u64).to_le_bytes());
        b.extend((self.kvs.len() as u64).to_le_bytes());
        let mut kv_type_at = Vec::new();
        for (key, ty, payload) in &self.kvs {
            put_str(&mut b, key);
            kv_type_at.push(b.len());
            b.extend(ty.to_le_bytes());
            b.extend(payload);
        }
        let (mut n_dims_at, mut type_at, mut offset_at) = (Vec::new(), Vec::new(), Vec::new());
        let mut offset = 0usize;
        for t in &self.tensors {
            put_str(&mut b, &t.name);
            n_dims_at.push(b.len());
            b.extend((t.ne.len() as u32).to_le_bytes());
            for d in &t.ne {
                b.extend(d.to_le_bytes());
            }
            type_at.push(b.len());
            b.extend(t.ty.to_le_bytes());
            offset_at.push(b.len());
            b.extend((offset as u64).to_le_bytes());
            offset = align(offset + t.data.len());
        }
        let data_start = align(b.len());
        for t in &self.tensors {
            b.resize(align(b.len()), 0);
            b.extend(&t.data);
        }
        // The last tensor ends exactly at the end of the file, so any cut truncates it.
        Built {
            bytes: b,
            kv_type_at,
            n_dims_at,
            type_at,
            offset_at,
            data_start,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn temp_path(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gguf_synthetic");
    std::fs::create_dir_all(&dir).unwrap();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{tag}-{}-{n}.gguf", std::process::id()))
}

fn write_temp(tag: &str, bytes: &[u8]) -> PathBuf {
    let path = temp_path(tag);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Opens `bytes` as a file and expects an error naming the file and containing every `needle`.
fn expect_open_err(tag: &str, bytes: &[u8], needles: &[&str]) -> String {
    let path = write_temp(tag, bytes);
    let result = GgufFile::open(&path);
    let _ = std::fs::remove_file(&path);
    let msg = match result {
        Ok(_) => panic!("{tag}: opened a corrupt file"),
        Err(e) => e.to_string(),
    };
    assert!(
        msg.contains(&path.display().to_string()),
        "{tag}: message lacks the path: {msg}"
    );
    for needle in needles {
        assert!(msg.contains(needle), "{tag}: message lacks `{needle}`: {msg}");
    }
    msg
}

fn open_ok(tag: &str, bytes: &[u8]) -> (PathBuf, GgufFile) {
    let path = write_temp(tag, bytes);
    let gguf = GgufFile::open(&path).unwrap_or_else(|e| panic!("{tag}: {e}"));
    (path, gguf)
}

fn patch(bytes: &mut [u8], at: usize, new: &[u8]) {
    bytes[at..at + new.len()].copy_from_slice(new);
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Deterministic filler bytes.
fn filler(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

/// A quantized payload with sane f16 scales (0x3C00 = 1.0) at the given offsets of each block.
fn quant_data(ty: GgmlType, blocks: usize, f16_at: &[usize]) -> Vec<u8> {
    let size = ty.type_size().unwrap() as usize;
    let mut b = filler(ty.id() as u64, size * blocks);
    for block in b.chunks_exact_mut(size) {
        for &at in f16_at {
            block[at..at + 2].copy_from_slice(&0x3C00u16.to_le_bytes());
        }
    }
    b
}

fn all_value_types() -> Vec<(&'static str, GgufValue)> {
    use GgufValue::*;
    vec![
        ("general.architecture", String("llama".into())),
        ("t.u8", U8(200)),
        ("t.i8", I8(-5)),
        ("t.u16", U16(60000)),
        ("t.i16", I16(-30000)),
        ("t.u32", U32(4_000_000_000)),
        ("t.i32", I32(-2_000_000_000)),
        ("t.u64", U64(u64::MAX)),
        ("t.i64", I64(i64::MIN)),
        ("t.f32", F32(1e-5)),
        ("t.f64", F64(-2.5e300)),
        ("t.bool", Bool(true)),
        ("t.string", String("héllo ✓".into())),
        ("t.empty_string", String(std::string::String::new())),
        ("t.strings", Array(vec![String("a".into()), String("Ġ t".into())])),
        ("t.i32s", Array(vec![I32(1), I32(-2), I32(3)])),
        ("t.empty", Array(vec![])),
        ("t.nested", Array(vec![Array(vec![U8(1), U8(2)]), Array(vec![U8(3)])])),
    ]
}

/// One tensor of every supported type, plus a 0-dimensional scalar.
fn all_tensor_types(w: Writer) -> Writer {
    let f16: Vec<u8> = [0x3C00u16, 0xC000, 0x3800, 0x7BFF]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    let bf16: Vec<u8> = [0x3F80u16, 0xC049].iter().flat_map(|h| h.to_le_bytes()).collect();
    w.tensor("f32", &[3, 2], 0, f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]))
        .tensor("scalar", &[], 0, f32_bytes(&[7.5]))
        .tensor("f16", &[4], 1, f16)
        .tensor("bf16", &[2, 1], 30, bf16)
        .tensor("q4_0", &[32, 2], 2, quant_data(GgmlType::Q4_0, 2, &[0]))
        .tensor("q4_1", &[64], 3, quant_data(GgmlType::Q4_1, 2, &[0, 2]))
        .tensor("q8_0", &[32, 3], 8, quant_data(GgmlType::Q8_0, 3, &[0]))
        .tensor("q4_k", &[256, 1, 2], 12, quant_data(GgmlType::Q4_K, 2, &[0, 2]))
        .tensor("q6_k", &[256], 14, quant_data(GgmlType::Q6_K, 1, &[208]))
}

fn valid_file() -> Built {
    let mut w = Writer::new();
    for (k, v) in all_value_types() {
        w = w.kv(k, v);
    }
    all_tensor_types(w).build()
}

// ---------------------------------------------------------------------------------------------
// Valid files.

fn check_valid(gguf: &GgufFile, version: u32) {
    assert_eq!(gguf.version, version);
    for (k, v) in all_value_types() {
        assert_eq!(gguf.get(k), Some(&v), "{k}");
    }
    assert_eq!(gguf.metadata.len(), all_value_types().len());
    let names: Vec<&str> = gguf.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["f32", "scalar", "f16", "bf16", "q4_0", "q4_1", "q8_0", "q4_k", "q6_k"]
    );
    for t in &gguf.tensors {
        assert_eq!(t.offset % gguf.alignment(), 0);
    }

    let (shape, data) = gguf.tensor_f32("f32").unwrap();
    assert_eq!((shape, data), (vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
    assert_eq!(gguf.tensor_f32("scalar").unwrap(), (vec![], vec![7.5]));
    assert_eq!(
        gguf.tensor_f32("f16").unwrap(),
        (vec![4], vec![1.0, -2.0, 0.5, 65504.0])
    );
    assert_eq!(gguf.tensor_f32("bf16").unwrap(), (vec![1, 2], vec![1.0, -3.140625]));
    let shapes = [
        ("q4_0", vec![2, 32]),
        ("q4_1", vec![64]),
        ("q8_0", vec![3, 32]),
        ("q4_k", vec![2, 1, 256]),
        ("q6_k", vec![256]),
    ];
    for (name, want_shape) in shapes {
        let (info, raw) = gguf.tensor_bytes(name).unwrap();
        let n: usize = want_shape.iter().product();
        let want = dequantize(info.ggml_type, raw, n).unwrap();
        let (shape, data) = gguf.tensor_f32(name).unwrap();
        assert_eq!(shape, want_shape, "{name}");
        assert_eq!(data, want, "{name}");
        assert!(data.iter().all(|x| x.is_finite()), "{name}");
    }
    // Sums gguf-py 0.19 (GGUFReader + quants.dequantize) gives for this same file.
    let sums = [
        ("q4_0", -63.0),
        ("q4_1", 513.0),
        ("q8_0", 866.0),
        ("q4_k", 102151.0),
        ("q6_k", -4198.0),
    ];
    for (name, want) in sums {
        let sum: f64 = gguf.tensor_f32(name).unwrap().1.iter().map(|&x| x as f64).sum();
        assert_eq!(sum, want, "{name}");
    }
}

#[test]
fn reads_back_a_v3_file() {
    let built = valid_file();
    let (path, gguf) = open_ok("v3", &built.bytes);
    check_valid(&gguf, 3);
    assert_eq!(gguf.alignment(), 32);
    assert_eq!(gguf.data_start(), built.data_start as u64);
    assert_eq!(gguf.path, path);
    let _ = std::fs::remove_file(path);
}

#[test]
fn reads_back_a_v2_file() {
    let mut w = Writer::new();
    w.version = 2;
    for (k, v) in all_value_types() {
        w = w.kv(k, v);
    }
    let (path, gguf) = open_ok("v2", &all_tensor_types(w).build().bytes);
    check_valid(&gguf, 2);
    let _ = std::fs::remove_file(path);
}

#[test]
fn honours_general_alignment() {
    let mut w = Writer::new().kv("general.alignment", GgufValue::U32(64));
    w.alignment = 64;
    for (k, v) in all_value_types() {
        w = w.kv(k, v);
    }
    let built = all_tensor_types(w).build();
    assert_eq!(built.data_start % 64, 0);
    let (path, gguf) = open_ok("align64", &built.bytes);
    assert_eq!(gguf.alignment(), 64);
    assert_eq!(gguf.data_start(), built.data_start as u64);
    assert!(gguf.tensors.iter().all(|t| t.offset % 64 == 0));
    assert_eq!(gguf.tensor_f32("q6_k").unwrap().0, vec![256]);
    let _ = std::fs::remove_file(path);
}

#[test]
fn file_without_tensors_is_fine() {
    let bytes = Writer::new()
        .kv("general.architecture", GgufValue::String("llama".into()))
        .build()
        .bytes;
    let (path, gguf) = open_ok("no-tensors", &bytes);
    assert!(gguf.tensors.is_empty());
    assert_eq!(
        gguf.get("general.architecture").and_then(GgufValue::as_str),
        Some("llama")
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn missing_tensor_and_edited_directory_are_errors() {
    let (path, mut gguf) = open_ok("edited", &valid_file().bytes);
    let shown = path.display().to_string();
    let err = gguf.tensor_f32("nope").unwrap_err().to_string();
    assert!(err.contains(&shown) && err.contains("nope"), "{err}");
    // The directory is public; reads re-check it instead of trusting it.
    gguf.tensors[0].offset = 1 << 40;
    let err = gguf.tensor_f32("f32").unwrap_err().to_string();
    assert!(err.contains(&shown) && err.contains("past the end"), "{err}");
    gguf.tensors[0].offset = u64::MAX - 31;
    assert!(gguf.tensor_f32("f32").is_err());
    gguf.tensors[0].ne = vec![u64::MAX, 2];
    assert!(gguf.tensor_f32("f32").is_err());
    let _ = std::fs::remove_file(path);
}

#[test]
fn value_accessors() {
    use GgufValue::*;
    assert_eq!(U8(7).as_u64(), Some(7));
    assert_eq!(I32(7).as_u64(), Some(7));
    assert_eq!(I32(-7).as_u64(), None);
    assert_eq!(I64(-7).as_i64(), Some(-7));
    assert_eq!(U64(u64::MAX).as_u64(), Some(u64::MAX));
    assert_eq!(U64(u64::MAX).as_i64(), None);
    assert_eq!(F32(1.5).as_u64(), None);
    assert_eq!(F32(1e-5).as_f64(), Some(1e-5f32 as f64));
    assert_eq!(F64(0.25).as_f64(), Some(0.25));
    assert_eq!(U32(30).as_f64(), Some(30.0));
    assert_eq!(String("x".into()).as_str(), Some("x"));
    assert_eq!(String("x".into()).as_u64(), None);
    assert_eq!(Bool(true).as_bool(), Some(true));
    assert_eq!(U8(1).as_bool(), None);
    assert_eq!(Array(vec![U8(1)]).as_array(), Some(&[U8(1)][..]));
    assert_eq!(U8(1).as_array(), None);
    assert_eq!(Bool(true).as_str(), None);
}

// ---------------------------------------------------------------------------------------------
// Bad input.

#[test]
fn missing_file() {
    let path = temp_path("missing");
    let err = GgufFile::open(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
}

#[test]
fn empty_and_foreign_files() {
    expect_open_err("empty", b"", &["empty"]);
    expect_open_err("short", b"GG", &["not a GGUF file"]);
    expect_open_err("ggml", b"GGMLxxxxxxxxxxxxxxxxxxxxxxxx", &["not a GGUF file"]);
    expect_open_err("text", b"{\"not\": \"gguf\"}\n", &["not a GGUF file"]);
    expect_open_err("magic-only", b"GGUF", &["truncated", "version"]);
}

#[test]
fn unsupported_versions() {
    let bytes = valid_file().bytes;
    for (version, needle) in [(1u32, "version 1"), (0, "version 0"), (4, "version 4")] {
        let mut b = bytes.clone();
        patch(&mut b, 4, &version.to_le_bytes());
        expect_open_err("version", &b, &["unsupported", needle]);
    }
    let mut b = bytes.clone();
    patch(&mut b, 4, &3u32.to_be_bytes());
    expect_open_err("big-endian", &b, &["big-endian"]);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = valid_file().bytes;
    // One file, cut shorter and shorter in place, keeps this fast.
    let path = write_temp("truncated", &bytes);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for cut in (0..bytes.len()).rev() {
        file.set_len(cut as u64).unwrap();
        match GgufFile::open(&path) {
            Ok(_) => panic!("a file cut to {cut} of {} bytes opened", bytes.len()),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(&path.display().to_string()), "cut {cut}: {msg}");
            }
        }
    }
    drop(file);
    let _ = std::fs::remove_file(path);
}

#[test]
fn truncated_tensor_data_says_so() {
    let bytes = valid_file().bytes;
    expect_open_err("cut-data", &bytes[..bytes.len() - 1], &["q6_k", "past the end"]);
}

#[test]
fn absurd_counts_and_lengths() {
    let built = valid_file();
    let mut b = built.bytes.clone();
    patch(&mut b, 8, &u64::MAX.to_le_bytes());
    expect_open_err("tensor-count", &b, &["tensor count", "18446744073709551615"]);

    let mut b = built.bytes.clone();
    patch(&mut b, 16, &(1u64 << 40).to_le_bytes());
    expect_open_err("kv-count", &b, &["metadata count"]);

    // First key's length.
    let mut b = built.bytes.clone();
    patch(&mut b, 24, &(u64::MAX - 3).to_le_bytes());
    expect_open_err("key-length", &b, &["length of key of metadata entry 0"]);

    // The first value is the string "llama": its length follows the type id.
    let mut b = built.bytes.clone();
    patch(&mut b, built.kv_type_at[0] + 4, &(1u64 << 62).to_le_bytes());
    expect_open_err("string-length", &b, &["general.architecture"]);

    // An array claiming 2^60 strings.
    let bytes = Writer::new()
        .kv_raw(
            "arr",
            T_ARRAY,
            [T_STRING.to_le_bytes().to_vec(), (1u64 << 60).to_le_bytes().to_vec()].concat(),
        )
        .build()
        .bytes;
    expect_open_err("array-length", &bytes, &["array length", "`arr`"]);

    // An array of u64 whose count is just one too many for the bytes present.
    let payload = [T_U64.to_le_bytes().to_vec(), 3u64.to_le_bytes().to_vec(), vec![0u8; 16]].concat();
    let bytes = Writer::new().kv_raw("arr", T_ARRAY, payload).build().bytes;
    expect_open_err("array-short", &bytes, &["`arr`"]);
}

#[test]
fn bad_metadata_values() {
    let bytes = Writer::new().kv_raw("weird", 13, vec![0; 8]).build().bytes;
    expect_open_err("value-type", &bytes, &["`weird`", "unknown value type 13"]);

    let payload = [99u32.to_le_bytes().to_vec(), 1u64.to_le_bytes().to_vec(), vec![0; 8]].concat();
    let bytes = Writer::new().kv_raw("arr", T_ARRAY, payload).build().bytes;
    expect_open_err("elem-type", &bytes, &["`arr`", "element type 99"]);

    let bytes = Writer::new().kv_raw("flag", T_BOOL, vec![2]).build().bytes;
    expect_open_err("bool", &bytes, &["`flag`", "bool"]);

    let bytes = Writer::new()
        .kv_raw("s", T_STRING, [2u64.to_le_bytes().to_vec(), vec![0xC3, 0x28]].concat())
        .build()
        .bytes;
    expect_open_err("utf8", &bytes, &["`s`", "UTF-8"]);

    let bytes = Writer::new()
        .kv("k", GgufValue::U8(1))
        .kv("k", GgufValue::U8(2))
        .build()
        .bytes;
    expect_open_err("dup-key", &bytes, &["`k`", "twice"]);

    // Arrays nested deeper than any real file needs.
    let mut deep = GgufValue::U8(1);
    for _ in 0..20 {
        deep = GgufValue::Array(vec![deep]);
    }
    let bytes = Writer::new().kv("deep", deep).build().bytes;
    expect_open_err("deep", &bytes, &["`deep`", "nested"]);
}

#[test]
fn bad_alignment() {
    for (tag, value) in [
        ("zero", GgufValue::U32(0)),
        ("odd", GgufValue::U32(48)),
        ("u64", GgufValue::U64(32)),
    ] {
        let bytes = Writer::new().kv("general.alignment", value).build().bytes;
        expect_open_err(tag, &bytes, &["general.alignment"]);
    }
}

#[test]
fn bad_tensor_records() {
    let built = valid_file();

    let mut b = built.bytes.clone();
    patch(&mut b, built.n_dims_at[0], &5u32.to_le_bytes());
    expect_open_err("n-dims", &b, &["`f32`", "5 dimensions"]);

    let mut b = built.bytes.clone();
    patch(&mut b, built.n_dims_at[0], &u32::MAX.to_le_bytes());
    expect_open_err("n-dims-max", &b, &["`f32`", "dimensions"]);

    let mut b = built.bytes.clone();
    patch(&mut b, built.offset_at[1], &8u64.to_le_bytes());
    expect_open_err("misaligned", &b, &["`scalar`", "offset 8", "alignment 32"]);

    let mut b = built.bytes.clone();
    patch(&mut b, built.offset_at[0], &(1u64 << 40).to_le_bytes());
    expect_open_err("past-eof", &b, &["`f32`", "past the end"]);

    let mut b = built.bytes.clone();
    patch(&mut b, built.offset_at[0], &(u64::MAX - 31).to_le_bytes());
    expect_open_err("offset-overflow", &b, &["`f32`", "past the end"]);

    let mut b = built.bytes.clone();
    patch(&mut b, built.type_at[0], &99u32.to_le_bytes());
    expect_open_err("unknown-type", &b, &["`f32`", "unknown ggml type id 99"]);

    // Tensors sharing bytes, and a tensor relabelled with another type (Q8_0 as Q4_0: its
    // blocks would be read as garbage); llama.cpp refuses both by the same rule.
    let mut b = built.bytes.clone();
    patch(&mut b, built.offset_at[1], &0u64.to_le_bytes());
    expect_open_err(
        "shared-bytes",
        &b,
        &["`scalar`", "data offset 0 where the tensors before it end at 32"],
    );
    let mut b = built.bytes.clone();
    patch(&mut b, built.type_at[6], &2u32.to_le_bytes());
    expect_open_err("relabelled", &b, &["`q4_k`", "must follow the one before it"]);

    let bytes = Writer::new()
        .tensor("a", &[4], 0, vec![0; 16])
        .tensor("a", &[4], 0, vec![0; 16])
        .build()
        .bytes;
    expect_open_err("dup-tensor", &bytes, &["`a`", "twice"]);
}

#[test]
fn element_counts_that_do_not_fit() {
    // 33 elements of Q8_0 is not a whole number of 32-element blocks.
    let bytes = Writer::new().tensor("odd", &[33], 8, vec![0; 68]).build().bytes;
    expect_open_err("block", &bytes, &["`odd`", "block size 32", "Q8_0"]);
    let bytes = Writer::new()
        .tensor("odd", &[32, 3, 1, 1], 12, vec![0; 144])
        .build()
        .bytes;
    expect_open_err("block-k", &bytes, &["`odd`", "Q4_K"]);
    // An element count that overflows u64.
    let bytes = Writer::new()
        .tensor("huge", &[u64::MAX, 3], 0, vec![0; 16])
        .build()
        .bytes;
    expect_open_err("overflow", &bytes, &["`huge`"]);
    // Byte size that overflows u64.
    let bytes = Writer::new().tensor("huge", &[1 << 62], 0, vec![0; 16]).build().bytes;
    expect_open_err("overflow-bytes", &bytes, &["`huge`"]);
}

#[test]
fn unsupported_quantisation_fails_on_read() {
    // IQ2_XXS (id 16) has a known size, so the file opens; reading the tensor names it.
    let bytes = Writer::new()
        .tensor("ok", &[2], 0, f32_bytes(&[1.0, 2.0]))
        .tensor("blk.0.ffn_up.weight", &[256], 16, vec![0; 66])
        .build()
        .bytes;
    let (path, gguf) = open_ok("iq2xxs", &bytes);
    assert_eq!(
        gguf.tensor_info("blk.0.ffn_up.weight").unwrap().ggml_type,
        GgmlType::Other(16)
    );
    assert_eq!(gguf.tensor_f32("ok").unwrap().1, vec![1.0, 2.0]);
    let err = gguf.tensor_f32("blk.0.ffn_up.weight").unwrap_err().to_string();
    for needle in [
        path.display().to_string().as_str(),
        "blk.0.ffn_up.weight",
        "IQ2_XXS",
        "unsupported",
    ] {
        assert!(err.contains(needle), "lacks `{needle}`: {err}");
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn corrupted_bytes_never_panic() {
    // Overwrite each header byte (and a little data) in place with values that make lengths
    // and counts lie; every outcome is fine except a panic.
    let built = valid_file();
    let path = write_temp("fuzz", &built.bytes);
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let end = (built.data_start + 16).min(built.bytes.len());
    for at in 0..end {
        for v in [0xFFu8, 0x80, 0x01, 0x00] {
            file.seek(SeekFrom::Start(at as u64)).unwrap();
            file.write_all(&[v]).unwrap();
            if let Ok(gguf) = GgufFile::open(&path) {
                for t in &gguf.tensors {
                    let _ = gguf.tensor_f32(&t.name);
                }
            }
        }
        file.seek(SeekFrom::Start(at as u64)).unwrap();
        file.write_all(&built.bytes[at..at + 1]).unwrap();
    }
    drop(file);
    let _ = std::fs::remove_file(path);
}

// ---------------------------------------------------------------------------------------------
// Names and row order.

#[test]
fn hf_names() {
    let cases = [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
        ("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"),
        ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"),
        ("blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight"),
        ("blk.12.attn_v.weight", "model.layers.12.self_attn.v_proj.weight"),
        ("blk.29.attn_output.weight", "model.layers.29.self_attn.o_proj.weight"),
        (
            "blk.3.ffn_norm.weight",
            "model.layers.3.post_attention_layernorm.weight",
        ),
        ("blk.3.ffn_gate.weight", "model.layers.3.mlp.gate_proj.weight"),
        ("blk.3.ffn_up.weight", "model.layers.3.mlp.up_proj.weight"),
        ("blk.3.ffn_down.weight", "model.layers.3.mlp.down_proj.weight"),
        ("blk.3.attn_q.bias", "model.layers.3.self_attn.q_proj.bias"),
    ];
    for (gguf, hf) in cases {
        assert_eq!(hf_name(gguf).as_deref(), Some(hf), "{gguf}");
    }
    for unknown in [
        "",
        "token_embd",
        "rope_freqs.weight",
        "blk.0.attn_qkv.weight",
        "blk.x.attn_q.weight",
        "blk..attn_q.weight",
        "blk.01.attn_q.weight",
        "blk.+1.attn_q.weight",
        "blk.0.attn_q.scale",
        "blk.0.attn_q",
        "token_embd.weight.extra",
        "model.embed_tokens.weight",
    ] {
        assert_eq!(hf_name(unknown), None, "{unknown}");
    }
}

#[test]
fn unpermute_by_hand() {
    // 2 heads of D = 4 rows, 2 columns; row r holds [r, 10 + r]. Within a head, HF rows
    // (s = 0: i = 0, 1; s = 1: i = 0, 1) come from GGUF rows 2i + s = 0, 2, 1, 3.
    let data: Vec<f32> = (0..8).flat_map(|r| [r as f32, 10.0 + r as f32]).collect();
    let out = unpermute_qk_rows(&data, 8, 2, 2);
    let rows: Vec<f32> = out.chunks(2).map(|r| r[0]).collect();
    assert_eq!(rows, [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
    assert_eq!(out[1], 10.0);
    assert_eq!(out[3], 12.0);
    // One head of all rows: a pure even/odd split.
    let col: Vec<f32> = (0..6).map(|r| r as f32).collect();
    assert_eq!(unpermute_qk_rows(&col, 6, 1, 1), [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
}

#[test]
fn unpermute_rejects_inconsistent_arguments() {
    let data = vec![0.0f32; 12];
    assert!(try_unpermute_qk_rows(&data, 6, 2, 1).is_ok());
    assert!(try_unpermute_qk_rows(&data, 6, 2, 0).is_err()); // no heads
    assert!(try_unpermute_qk_rows(&data, 6, 2, 4).is_err()); // 6 rows / 4 heads
    assert!(try_unpermute_qk_rows(&data, 6, 2, 2).is_err()); // odd head size 3
    assert!(try_unpermute_qk_rows(&data, 5, 2, 1).is_err()); // wrong length
    assert!(try_unpermute_qk_rows(&data, usize::MAX, 2, 1).is_err()); // overflow
}

#[test]
#[should_panic(expected = "heads")]
fn unpermute_panics_on_inconsistent_arguments() {
    unpermute_qk_rows(&[0.0; 6], 6, 1, 4);
}
