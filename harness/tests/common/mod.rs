//! Helpers shared by the integration tests: where the repository and the default model are.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::PathBuf;

use serde_json::Value;

/// The repository root (fixtures live in `../shared` beside it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The default model, with the command that fetches it when it is missing.
pub fn gguf() -> PathBuf {
    let path = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-model.sh",
        path.display()
    );
    path
}

/// A JSON array of token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}
