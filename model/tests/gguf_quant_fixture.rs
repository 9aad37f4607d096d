//! Every quantized ggml type the loader dequantizes, bit for bit against gguf-py 0.19.0 (the
//! reference transformers uses), on `tests/data/quant_blocks.gguf`. That file is written by
//! `scripts/gen_quant_fixture.py`: for each type, blocks of random bytes with random finite f16
//! scales (and, where gguf-py can quantize the type, quantized normal rows), each tensor beside
//! a `NAME.expected` F32 tensor holding `gguf.quants.dequantize` of its bytes.

use std::path::PathBuf;

use model::load::gguf::GgufFile;
use model::load::quant::{GgmlType, dequantize};

const QUANTIZED_TYPES: [GgmlType; 10] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

fn fixture() -> GgufFile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/quant_blocks.gguf");
    GgufFile::open(&path).expect("tests/data/quant_blocks.gguf (scripts/gen_quant_fixture.py)")
}

fn f32_bits_of(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The first element whose bits differ, with both values, or `None` when all agree.
fn first_difference(got: &[f32], expected: &[u32]) -> Option<String> {
    if got.len() != expected.len() {
        return Some(format!("{} values, expected {}", got.len(), expected.len()));
    }
    let at = got.iter().zip(expected).position(|(g, &e)| g.to_bits() != e)?;
    Some(format!(
        "element {at}: {} ({:#010x}), gguf-py {} ({:#010x})",
        got[at],
        got[at].to_bits(),
        f32::from_bits(expected[at]),
        expected[at]
    ))
}

/// (quantized tensor name, its type, gguf-py's values as f32 bits) for every pair in the file.
fn pairs(gguf: &GgufFile) -> Vec<(String, GgmlType, Vec<u32>)> {
    let quantized = gguf.tensors.iter().filter(|t| t.ggml_type != GgmlType::F32);
    quantized
        .map(|info| {
            let (expected_info, expected) = gguf.tensor_bytes(&format!("{}.expected", info.name)).unwrap();
            assert_eq!(expected_info.ggml_type, GgmlType::F32, "{}", info.name);
            assert_eq!(expected_info.ne, info.ne, "{}: shapes differ", info.name);
            (info.name.clone(), info.ggml_type, f32_bits_of(expected))
        })
        .collect()
}

#[test]
fn every_quantized_type_matches_gguf_py_bit_exactly() {
    let gguf = fixture();
    let pairs = pairs(&gguf);
    let mut misses = Vec::new();
    for (name, ty, expected) in &pairs {
        let (_, bytes) = gguf.tensor_bytes(name).unwrap();
        let got = dequantize(*ty, bytes, expected.len()).unwrap();
        if let Some(difference) = first_difference(&got, expected) {
            misses.push(format!("{name} ({ty}): {difference}"));
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n"));
    for ty in QUANTIZED_TYPES {
        let random = pairs.iter().any(|(name, t, _)| *t == ty && name.ends_with(".random"));
        assert!(random, "the fixture has no random-block tensor of {ty}");
    }
    let quantized = pairs.iter().filter(|(name, ..)| name.ends_with(".quantized"));
    assert_eq!(
        quantized.count(),
        5,
        "Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 quantized by gguf-py"
    );
}

#[test]
fn the_gguf_reader_dequantizes_every_type_with_its_shape() {
    let gguf = fixture();
    for (name, ty, expected) in pairs(&gguf) {
        let (shape, values) = gguf.tensor_f32(&name).unwrap();
        let block = ty.block_size().unwrap() as usize;
        assert_eq!(shape, [2, 4 * block], "{name}: torch shape is ne reversed");
        assert_eq!(first_difference(&values, &expected), None, "{name}");
    }
}
