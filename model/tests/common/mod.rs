//! Fixture helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Device, Tensor};
use safetensors::{Dtype, SafeTensors};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// The default model; CI fetches it with scripts/fetch-model.sh before the tests.
pub fn smollm2_gguf() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-model.sh first",
        path.display()
    );
    path
}

/// The backend under test: flex by default, or `MODEL_TEST_BACKEND` (e.g. `ndarray` or `wgpu`,
/// with the matching cargo feature) to run the fidelity suite on another backend.
pub fn device() -> Device {
    let name = backend_name();
    let kind: model::backend::BackendKind = name.parse().expect("MODEL_TEST_BACKEND");
    kind.device()
        .unwrap_or_else(|e| panic!("MODEL_TEST_BACKEND={name}: {e}"))
}

/// A tensor read from a golden safetensors file, converted to f64 for comparison.
pub struct Golden {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

pub struct GoldenFile {
    bytes: Vec<u8>,
}

impl GoldenFile {
    pub fn open(path: PathBuf) -> Self {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self { bytes }
    }

    pub fn get(&self, name: &str) -> Golden {
        let st = SafeTensors::deserialize(&self.bytes).expect("valid safetensors");
        let view = st.tensor(name).unwrap_or_else(|_| panic!("no tensor {name}"));
        let b = view.data();
        let values: Vec<f64> = match view.dtype() {
            Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            Dtype::F64 => b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Dtype::I64 => b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            Dtype::I8 => b.iter().map(|&v| v as i8 as f64).collect(),
            other => panic!("unexpected dtype {other:?}"),
        };
        Golden {
            shape: view.shape().to_vec(),
            values,
        }
    }

    pub fn ids(&self, name: &str) -> Vec<u32> {
        self.get(name).values.iter().map(|&v| v as u32).collect()
    }
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .expect("f32 tensor")
        .into_iter()
        .map(|v| v as f64)
        .collect()
}

/// Largest |a - b| over the positions where `keep(i)` holds (i indexes the flat arrays).
pub fn max_diff_where(a: &[f64], b: &[f64], keep: impl Fn(usize) -> bool) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, (x, y))| (x - y).abs())
        .fold(0.0, f64::max)
}

pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    max_diff_where(a, b, |_| true)
}

/// Feeds `ids` through the cache in chunks of the given sizes; returns all logits.
pub fn cached_logits(model: &model::LoadedModel, ids: &[u32], chunks: &[usize]) -> Vec<f64> {
    let mut cache = model.decoder.new_cache(1);
    let mut out = Vec::new();
    let mut start = 0;
    for &len in chunks {
        let step = model::StepInput::single(&ids[start..start + len], start);
        out.extend(to_vec(model.decoder.forward(&step, Some(&mut cache)).unwrap()));
        start += len;
    }
    assert_eq!(start, ids.len());
    out
}

fn backend_name() -> String {
    std::env::var("MODEL_TEST_BACKEND").unwrap_or_else(|_| "flex".into())
}

/// Whether the backend under test is flex, whose f32 products the tests may hold to the bit.
pub fn backend_is_flex() -> bool {
    backend_name() == "flex"
}
