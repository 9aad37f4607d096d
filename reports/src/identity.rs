//! What makes two runs the same run: `identity.json` in every run folder.
//!
//! `harness eval` writes it; `merge` checks that shards share it (but for `shard`), `regress`
//! checks that a candidate and its baseline share it (but for the model path and backend), and
//! a rerun into a folder resumes only when it is equal. Fields added later get a serde default
//! equal to the behaviour before they existed, so older identities keep comparing equal; fields
//! this version does not know are kept in `other` and compared too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::merge::Shard;
use crate::run_dir::write_json;

/// Sampling settings of generative tasks (temperature 0: greedy).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingIdentity {
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
}

impl Default for SamplingIdentity {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
        }
    }
}

/// The identity of a run: everything that changes what is computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The model as given (a path or a hub id); compared by `model_sha256`.
    pub model: String,
    pub model_sha256: String,
    /// The tasks, groups expanded.
    pub tasks: Vec<String>,
    /// None: each task's default.
    pub shots: Option<usize>,
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub task_limits: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "shard_text")]
    pub shard: Option<Shard>,
    pub attention: String,
    pub backend: String,
    /// The compute precision; absent (f32) in runs made before it could be chosen.
    #[serde(default = "f32_dtype", skip_serializing_if = "is_f32")]
    pub dtype: String,
    /// Decode steps multiplied straight from the stored weights (`--weights direct`), which
    /// sums in another order than the materialized weights' GEMM; absent otherwise.
    #[serde(default, skip_serializing_if = "is_false")]
    pub direct_weights: bool,
    pub seed: u64,
    /// `task/file` → sha256 of every data file (and task definition file) read.
    pub data_sha256: BTreeMap<String, String>,
    #[serde(default = "one")]
    pub samples: usize,
    #[serde(default)]
    pub sampling: SamplingIdentity,
    #[serde(default)]
    pub max_gen_toks: Option<usize>,
    #[serde(default)]
    pub chat: bool,
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Fields of a newer harness, kept so that they are compared too.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn one() -> usize {
    1
}

fn f32_dtype() -> String {
    "f32".into()
}

fn is_f32(dtype: &str) -> bool {
    dtype == "f32"
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The fields that may differ between runs `regress` still compares (noted, not blocking).
pub const NOT_BLOCKING: [&str; 2] = ["model", "backend"];

/// One field on which two identities differ: (field, this value, the other value).
pub type Difference = (String, Value, Value);

impl RunIdentity {
    pub const FILE: &'static str = "identity.json";

    /// `dir/identity.json`, or None when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(Self::FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        let identity = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: line {}: not a run identity: {e}", path.display(), e.line()))?;
        Ok(Some(identity))
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        write_json(&dir.join(Self::FILE), &self.to_value())
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("an identity is plain data")
    }

    /// The identity as JSON with every object's keys sorted: a stable text to hash (run folder
    /// names are derived from it).
    pub fn canonical_text(&self) -> String {
        sorted(self.to_value()).to_string()
    }

    /// Every field on which `self` and `other` differ, in field-name order (`data_sha256` per file).
    pub fn differences(&self, other: &RunIdentity) -> Vec<Difference> {
        let (a, b) = (object(self), object(other));
        let mut out = Vec::new();
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            let (x, y) = (field(&a, key), field(&b, key));
            if x == y {
                continue;
            }
            if key == "data_sha256" {
                let (x, y) = (object_of(&x), object_of(&y));
                let files: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                out.extend(
                    files
                        .into_iter()
                        .filter(|f| x.get(f.as_str()) != y.get(f.as_str()))
                        .map(|f| (format!("data_sha256[{f}]"), field(&x, f), field(&y, f))),
                );
            } else {
                out.push((key.clone(), x, y));
            }
        }
        out
    }
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn object(identity: &RunIdentity) -> Map<String, Value> {
    object_of(&identity.to_value())
}

fn object_of(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn field(map: &Map<String, Value>, key: &str) -> Value {
    map.get(key).cloned().unwrap_or(Value::Null)
}

/// A shard as its `i/n` text in JSON.
pub mod shard_text {
    use crate::merge::Shard;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(shard: &Option<Shard>, s: S) -> Result<S::Ok, S::Error> {
        match shard {
            Some(shard) => s.serialize_str(&shard.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Shard>, D::Error> {
        let value = Option::<serde_json::Value>::deserialize(d)?;
        value
            .map(|v| Shard::from_json(&v).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> RunIdentity {
        serde_json::from_value(serde_json::json!({
            "model": "m.gguf", "model_sha256": "aaa", "tasks": ["arc_easy"], "shots": null, "limit": 10,
            "attention": "native", "backend": "flex", "seed": 1234, "data_sha256": {"arc_easy/test.jsonl": "x"},
        }))
        .unwrap()
    }

    #[test]
    fn older_identities_read_with_the_defaults_and_write_back_unchanged() {
        let id = identity();
        assert_eq!((id.samples, id.chat, id.dtype.as_str()), (1, false, "f32"));
        let value = id.to_value();
        assert!(value.get("dtype").is_none() && value.get("shard").is_none() && value.get("task_limits").is_none());
        assert!(!id.direct_weights && value.get("direct_weights").is_none());
        let back: RunIdentity = serde_json::from_value(value).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn the_canonical_text_is_the_sorted_compact_json_older_runs_hashed() {
        // The nightly baseline's identity.json was written (sorted, by an earlier version) from the
        // same Value whose compact text named its run folder.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/baselines/nightly-smollm2");
        let identity = RunIdentity::read(&path).unwrap().unwrap();
        let text = std::fs::read_to_string(path.join(RunIdentity::FILE)).unwrap();
        let as_written: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(identity.canonical_text(), as_written.to_string());
    }

    #[test]
    fn differences_name_each_field_and_data_file() {
        let a = identity();
        let mut b = identity();
        b.limit = Some(20);
        b.data_sha256.insert("arc_easy/test.jsonl".into(), "y".into());
        b.shard = Some("1/2".parse().unwrap());
        b.other.insert("future".into(), Value::Bool(true));
        let keys: Vec<String> = a.differences(&b).into_iter().map(|d| d.0).collect();
        assert_eq!(keys, ["data_sha256[arc_easy/test.jsonl]", "future", "limit", "shard"]);
        assert!(a.differences(&a.clone()).is_empty());
    }
}
