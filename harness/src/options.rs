//! The options of an evaluation run, in one place: the same struct is the `eval` command line
//! (clap), the JSON run configuration (`--config configs/*.json`, flat keys of the same names)
//! and what run.json records. A flag overrides the file's value; a value neither gives takes the
//! default its accessor names. A new option is one field here (plus its accessor when it has a
//! default, and `RunPlan::identity` when it changes what is computed).
//!
//! lm-eval's spellings are accepted as aliases (`--num_fewshot`, `--batch_size`,
//! `--output_path`, `--apply_chat_template`, `--system_instruction`, `--include_path`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use clap::Args;
use model::backend::BackendKind;
use model::{AttentionSpec, ComputeDtype, LoadOptions, WeightsPolicy};
use reports::merge::Shard;
use serde::{Deserialize, Serialize};

use crate::sampling::Sampling;

#[derive(Args, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunOptions {
    /// An HF folder (config.json + safetensors + tokenizer.json), a .gguf file, or a hub id
    /// org/name[@revision] found offline in the HuggingFace cache; an existing local path wins.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Tasks and groups, comma-separated (e.g. arc_easy,hellaswag or commonsense, mmlu, gsm8k);
    /// `harness tasks` lists them.
    #[arg(long, value_delimiter = ',')]
    #[serde(deserialize_with = "task_list::deserialize")]
    pub tasks: Option<Vec<String>>,
    /// Few-shot examples per prompt (default: each task's lm-eval default: 0 for the
    /// multiple-choice tasks, e.g. 5 for gsm8k, 4 for math, 3 for mbpp and bbh).
    #[arg(long, alias = "num_fewshot")]
    pub shots: Option<usize>,
    /// Only the first N items of each task, in data order (as lm-eval's --limit).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Per-task limits overriding --limit, e.g. `gsm8k=5,arc_easy=100` (task names, not groups).
    #[arg(long, value_delimiter = ',', value_parser = parse_task_limit)]
    #[serde(with = "task_limits")]
    pub task_limits: Option<Vec<(String, usize)>>,
    /// Evaluate only shard i of n: in every task, the items at positions p (after --limit) with
    /// p % n == i; doc_ids keep their unsharded values. `harness merge` joins the shards.
    #[arg(long)]
    #[serde(with = "reports::identity::shard_text")]
    pub shard: Option<Shard>,
    /// Rows per forward pass (default 8). Results do not depend on it beyond float noise.
    #[arg(long, alias = "batch_size")]
    pub batch_size: Option<usize>,
    /// Attention variant: native, mha, mqa, gqa:G, swa:W (swa:W@even|@odd|@A-B: those layers
    /// only), full (comma-combinable).
    #[arg(long)]
    #[serde(with = "text")]
    pub attention: Option<AttentionSpec>,
    /// Compute backend: flex (CPU, default), ndarray (CPU) or wgpu (GPU), as compiled in.
    #[arg(long)]
    #[serde(with = "text")]
    pub backend: Option<BackendKind>,
    /// Compute precision: auto (f32 on CPU, f16 on a GPU), f32, f16 or bf16.
    #[arg(long)]
    #[serde(with = "text")]
    pub dtype: Option<ComputeDtype>,
    /// Weights: auto (materialized at load when they take at most half the available memory,
    /// else streamed per layer), load or stream: results do not depend on these three. direct
    /// (f32 on CPU): as stream, but decode steps multiply straight from the stored form (fast
    /// generation in little memory; sums in another order, so it is part of the run's identity).
    #[arg(long)]
    #[serde(with = "text")]
    pub weights: Option<WeightsPolicy>,
    /// Few-shot sampling seed (lm-eval's default is 1234).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder (default results/runs/<model>-<attention>-<config hash>/, which a rerun of
    /// the same command resumes).
    #[arg(long, alias = "output_path")]
    pub out: Option<PathBuf>,
    /// Where the bundled task data lives (default: the tasks crate's data/ folder, or
    /// $HARNESS_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Folders of task definitions (lm-eval task YAML) to add to the built-in ones.
    #[arg(long, alias = "include_path", value_delimiter = ',')]
    pub include_path: Option<Vec<PathBuf>>,
    /// Generative tasks: samples per item (k of maj@k for text tasks, n of pass@k for code).
    /// k > 1 needs --temperature > 0.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Generative tasks: sampling temperature (default 0: greedy, as lm-eval's YAMLs).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Generative tasks: nucleus sampling mass (default 1: off).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Generative tasks: keep the k most likely tokens (default 0: off).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Generative tasks: cap on new tokens per sample, overriding each task's max_gen_toks
    /// (lm-eval's `--gen_kwargs max_gen_toks=N`).
    #[arg(long)]
    pub max_gen_toks: Option<usize>,
    /// Wrap every prompt (multiple-choice and generative) in the model's chat template, as
    /// lm-eval's --apply_chat_template does.
    #[arg(long, alias = "apply_chat_template", num_args = 0, default_missing_value = "true")]
    pub chat: Option<bool>,
    /// With --chat: a system prompt, or `mistral-guardrail` for the Mistral 7B paper's (§5.1).
    #[arg(long, alias = "system_instruction")]
    pub system_prompt: Option<String>,
    /// Compute threads (default: all cores; RAYON_NUM_THREADS works too). Results do not depend
    /// on it beyond float noise.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress output (errors and the final table still print).
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub quiet: Option<bool>,
    /// Accepted for lm-eval users: per-sample results are always written (samples/, and
    /// lm-eval's samples_<task>_<time>.jsonl).
    #[arg(
        long = "log_samples",
        alias = "log-samples",
        num_args = 0,
        default_missing_value = "true"
    )]
    #[serde(skip)]
    pub log_samples: Option<bool>,
    /// A JSON run configuration (configs/*.json); flags given here override it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

impl RunOptions {
    /// The flags merged over their `--config` file (if any), checked.
    pub fn resolve(&self) -> anyhow::Result<RunOptions> {
        let merged = match &self.config {
            Some(path) => self.over(read_config(path)?)?,
            None => self.clone(),
        };
        if self.log_samples == Some(true) {
            eprintln!("note: --log_samples is implied: per-sample results are always written");
        }
        match &self.config {
            // The value may have come from the file: name it beside the flag.
            Some(path) => merged
                .validate()
                .with_context(|| format!("{} with the flags given", path.display()))?,
            None => merged.validate()?,
        }
        Ok(merged)
    }

    /// `self`'s values wherever set, else `file`'s.
    fn over(&self, file: RunOptions) -> anyhow::Result<RunOptions> {
        let mut merged = serde_json::to_value(file)?;
        let flags = serde_json::to_value(self)?;
        for (key, value) in flags.as_object().into_iter().flatten() {
            if !value.is_null() {
                merged[key] = value.clone();
            }
        }
        let mut merged: RunOptions = serde_json::from_value(merged)?;
        merged.config = self.config.clone();
        Ok(merged)
    }

    /// Every value in range; what is wrong is named as the flag (and config key) that set it.
    pub fn validate(&self) -> anyhow::Result<()> {
        let tasks = self.tasks.as_deref().unwrap_or_default();
        ensure!(
            tasks.iter().any(|t| !t.trim().is_empty()),
            "no tasks given: give --tasks (e.g. arc_easy,hellaswag; `harness tasks` lists them) or \"tasks\" in the config"
        );
        if let Some(empty) = tasks.iter().position(|t| t.trim().is_empty()) {
            bail!("--tasks: entry {} is empty", empty + 1);
        }
        ensure!(
            self.model.is_some(),
            "no model: give --model (an HF folder or a .gguf file) or \"model\" in the config"
        );
        positive("--limit", self.limit)?;
        positive("--batch-size", self.batch_size)?;
        positive("--samples", self.samples)?;
        positive("--max-gen-toks", self.max_gen_toks)?;
        positive("--threads", self.threads)?;
        // Far above any machine's cores; a larger value is a typo that would start that many
        // threads (each with its stack) before any work.
        if let Some(n) = self.threads.filter(|&n| n > MAX_THREADS) {
            bail!("--threads {n}: more than {MAX_THREADS} compute threads");
        }
        check_task_limits(self.task_limits.as_deref())?;
        self.sampling().validate()?;
        if self.samples() > 1 && self.sampling().is_greedy() {
            bail!(
                "{} samples per item with greedy decoding would all be the same: give --temperature > 0",
                self.samples()
            );
        }
        if self.system_prompt.is_some() && !self.chat() {
            bail!("--system-prompt needs --chat (lm-eval also puts it in the chat template's system turn)");
        }
        if let Some(dirs) = &self.include_path {
            for dir in dirs {
                ensure!(dir.is_dir(), "--include-path {}: no such folder", dir.display());
            }
        }
        Ok(())
    }

    pub fn model(&self) -> &Path {
        self.model.as_deref().unwrap_or(Path::new(""))
    }
    pub fn tasks(&self) -> &[String] {
        self.tasks.as_deref().unwrap_or_default()
    }
    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(8)
    }
    pub fn attention(&self) -> AttentionSpec {
        self.attention.unwrap_or_default()
    }
    pub fn backend(&self) -> BackendKind {
        self.backend.unwrap_or_default()
    }
    /// The compute precision resolved for the backend, and how weights are held.
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        let (dtype, weights) = (self.dtype.unwrap_or_default(), self.weights.unwrap_or_default());
        Ok(LoadOptions::new(dtype, weights, self.backend())?)
    }
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(tasks::DEFAULT_FEWSHOT_SEED)
    }
    /// The generation settings given that change something, as flags (`--temperature 0.7`):
    /// what a run without generative tasks would otherwise ignore in silence.
    pub fn generation_flags(&self) -> Vec<String> {
        let mut given = Vec::new();
        if let Some(n) = self.samples.filter(|&n| n > 1) {
            given.push(format!("--samples {n}"));
        }
        if let Some(t) = self.temperature.filter(|&t| t > 0.0) {
            given.push(format!("--temperature {t}"));
        }
        if let Some(p) = self.top_p.filter(|&p| p < 1.0) {
            given.push(format!("--top-p {p}"));
        }
        if let Some(k) = self.top_k.filter(|&k| k > 0) {
            given.push(format!("--top-k {k}"));
        }
        if let Some(n) = self.max_gen_toks {
            given.push(format!("--max-gen-toks {n}"));
        }
        given
    }

    pub fn samples(&self) -> usize {
        self.samples.unwrap_or(1)
    }
    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature.unwrap_or(0.0),
            top_p: self.top_p.unwrap_or(1.0),
            top_k: self.top_k.unwrap_or(0),
        }
    }
    pub fn chat(&self) -> bool {
        self.chat.unwrap_or(false)
    }
    pub fn quiet(&self) -> bool {
        self.quiet.unwrap_or(false)
    }
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(tasks::default_data_dir)
    }
    pub fn task_limits(&self) -> BTreeMap<String, usize> {
        self.task_limits.iter().flatten().cloned().collect()
    }
    /// The limit for one (expanded) task: its `task_limits` entry, else `limit`.
    pub fn limit_for(&self, task: &str) -> Option<usize> {
        self.task_limits().get(task).copied().or(self.limit)
    }
}

/// The most `--threads` accepts.
const MAX_THREADS: usize = 1024;

fn positive(flag: &str, value: Option<usize>) -> anyhow::Result<()> {
    ensure!(value != Some(0), "{flag} must be at least 1, got 0");
    Ok(())
}

/// `task=N` of `--task-limits`.
fn parse_task_limit(text: &str) -> Result<(String, usize), String> {
    let (task, n) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected task=N, e.g. gsm8k=5"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("`{text}`: `{n}` is not a count"))?;
    Ok((task.trim().to_string(), n))
}

fn read_config(path: &Path) -> anyhow::Result<RunOptions> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read config", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: line {}: not valid JSON: {e}", path.display(), e.line()))?;
    ensure!(
        value.is_object(),
        "{}: a run configuration is a JSON object of option names (e.g. {{\"model\": ..., \"tasks\": ...}}), not {}",
        path.display(),
        json_kind(&value)
    );
    // From the text, not the parsed value: a key given twice is then an error (serde's
    // `duplicate field`), where the value's map would keep the last silently.
    let options: RunOptions =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid run config", path.display()))?;
    // Before merging with the flags, which goes through a map that keeps a task's last limit.
    check_task_limits(options.task_limits.as_deref())
        .with_context(|| format!("{}: invalid run config", path.display()))?;
    Ok(options)
}

/// Every `--task-limits` entry positive, no task named twice.
fn check_task_limits(pairs: Option<&[(String, usize)]>) -> anyhow::Result<()> {
    let mut seen = BTreeMap::new();
    for (task, n) in pairs.into_iter().flatten() {
        ensure!(*n > 0, "--task-limits: the limit for {task} must be positive");
        if let Some(earlier) = seen.insert(task, n) {
            bail!("--task-limits names {task} twice ({earlier} and {n})");
        }
    }
    Ok(())
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Null => "null",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `"tasks": "a,b"` or `"tasks": ["a", "b"]`.
mod task_list {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        match Option::<serde_json::Value>::deserialize(d)? {
            None => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(text.split(',').map(|t| t.trim().to_string()).collect())),
            Some(serde_json::Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    serde_json::Value::String(name) => Ok(name),
                    other => Err(serde::de::Error::custom(format!(
                        "\"tasks\": expected task names, found {other}"
                    ))),
                })
                .collect::<Result<Vec<String>, D::Error>>()
                .map(Some),
            Some(other) => Err(serde::de::Error::custom(format!(
                "\"tasks\": expected a list of task names or a comma-separated string, found {other}"
            ))),
        }
    }
}

/// `--task-limits` pairs as a JSON object `{"task": N}` (a task given twice is an error).
mod task_limits {
    use std::collections::BTreeMap;

    use serde::de::{MapAccess, Visitor};
    use serde::{Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(pairs: &Option<Vec<(String, usize)>>, s: S) -> Result<S::Ok, S::Error> {
        match pairs {
            Some(pairs) => pairs.iter().cloned().collect::<BTreeMap<String, usize>>().serialize(s),
            None => s.serialize_none(),
        }
    }

    /// Every pair as written, a task named twice included, which `validate` refuses (a map
    /// would keep the last in silence).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<(String, usize)>>, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Option<Vec<(String, usize)>>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of task names and item counts")
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_map(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, usize>()? {
                    pairs.push(pair);
                }
                Ok(Some(pairs))
            }
        }
        d.deserialize_option(Pairs)
    }
}

/// A value by its text (`FromStr` / `Display`), e.g. `"gqa:2,swa:64"` for an attention spec.
mod text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        Option::<String>::deserialize(d)?
            .map(|t| t.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "run.json",
            r#"{"model": "m.gguf", "tasks": "arc_easy,piqa", "shots": 5, "batch_size": 4, "attention": "gqa:1"}"#,
        );
        let flags = RunOptions {
            config: Some(path),
            shots: Some(0),
            ..Default::default()
        };
        let options = flags.resolve().unwrap();
        assert_eq!(options.tasks(), ["arc_easy", "piqa"]);
        assert_eq!(
            (options.shots, options.batch_size(), options.seed()),
            (Some(0), 4, 1234)
        );
        assert_eq!(options.attention().to_string(), "gqa:1");
    }

    #[test]
    fn bad_configs_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let err = |text: &str| {
            let path = write(dir.path(), "bad.json", text);
            let flags = RunOptions {
                config: Some(path),
                ..Default::default()
            };
            format!("{:#}", flags.resolve().unwrap_err())
        };
        let e = err(r#"{"model": "m.gguf", "taks": "arc_easy"}"#);
        assert!(e.contains("bad.json") && e.contains("taks"), "{e}");
        let e = err(r#"["model"]"#);
        assert!(
            e.contains("bad.json") && e.contains("JSON object") && e.contains("an array"),
            "{e}"
        );
        let e = err(r#"{"model": "m.gguf", "tasks": 5}"#);
        assert!(e.contains("list of task names"), "{e}");
        let e = err(r#"{"model": "m.gguf", "tasks": "arc_easy", "shard": "3/3"}"#);
        assert!(e.contains("bad.json") && e.contains("0 ≤ i < n"), "{e}");
        let e = err(r#"{"model": "m.gguf", "tasks": "arc_easy", "attention": "gqa:x"}"#);
        assert!(e.contains("bad.json") && e.contains("gqa"), "{e}");
        let e = err(r#"{"model": "m.gguf", "tasks": "arc_easy", "limit": 5, "limit": 50}"#);
        assert!(e.contains("bad.json") && e.contains("duplicate field `limit`"), "{e}");
        let e = err(r#"{"model": "m.gguf", "tasks": "gsm8k", "task_limits": {"gsm8k": 5, "gsm8k": 50}}"#);
        assert!(e.contains("names gsm8k twice"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let base = RunOptions {
            model: Some("m".into()),
            tasks: Some(vec!["arc_easy".into()]),
            ..Default::default()
        };
        let err = |options: RunOptions| format!("{:#}", options.validate().unwrap_err());
        assert!(
            err(RunOptions {
                tasks: Some(vec![]),
                ..base.clone()
            })
            .contains("no tasks given")
        );
        assert!(
            err(RunOptions {
                tasks: Some(vec!["arc_easy".into(), "".into()]),
                ..base.clone()
            })
            .contains("empty")
        );
        assert!(
            err(RunOptions {
                limit: Some(0),
                ..base.clone()
            })
            .contains("--limit")
        );
        assert!(
            err(RunOptions {
                batch_size: Some(0),
                ..base.clone()
            })
            .contains("--batch-size")
        );
        assert!(
            err(RunOptions {
                max_gen_toks: Some(0),
                ..base.clone()
            })
            .contains("--max-gen-toks")
        );
        assert!(
            err(RunOptions {
                temperature: Some(f32::NAN),
                ..base.clone()
            })
            .contains("temperature")
        );
        assert!(
            err(RunOptions {
                top_p: Some(0.0),
                ..base.clone()
            })
            .contains("top_p")
        );
        let twice = Some(vec![("gsm8k".into(), 5), ("gsm8k".into(), 6)]);
        assert!(
            err(RunOptions {
                task_limits: twice,
                ..base.clone()
            })
            .contains("twice")
        );
        assert!(
            err(RunOptions {
                samples: Some(4),
                ..base.clone()
            })
            .contains("--temperature > 0")
        );
        base.validate().unwrap();
    }

    #[test]
    fn options_written_back_resolve_to_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let options = RunOptions {
            model: Some("m.gguf".into()),
            tasks: Some(vec!["arc_easy".into(), "gsm8k".into()]),
            limit: Some(20),
            task_limits: Some(vec![("gsm8k".into(), 5)]),
            shard: Some("1/4".parse().unwrap()),
            attention: Some("gqa:1,swa:64".parse().unwrap()),
            samples: Some(4),
            temperature: Some(0.6),
            max_gen_toks: Some(64),
            chat: Some(true),
            out: Some("o".into()),
            ..Default::default()
        };
        assert_eq!(
            (options.limit_for("gsm8k"), options.limit_for("arc_easy")),
            (Some(5), Some(20))
        );
        let path = write(dir.path(), "child.json", &serde_json::to_string(&options).unwrap());
        let back = RunOptions {
            config: Some(path.clone()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(RunOptions { config: None, ..back }, options);
        let json = serde_json::to_value(&options).unwrap();
        assert_eq!(
            (json["shard"].as_str(), json["task_limits"]["gsm8k"].as_u64()),
            (Some("1/4"), Some(5))
        );
    }
}
