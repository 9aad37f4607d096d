//! The resolved configuration of an evaluation run: a JSON file in configs/ can say everything
//! the flags say, and flags override it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use reports::merge::Shard;
use serde::{Deserialize, Serialize};

use crate::sampling::Sampling;

#[derive(Args, Clone, Debug, Default)]
pub struct EvalFlags {
    /// An HF folder or a .gguf file.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Tasks and groups, comma-separated (e.g. arc_easy,hellaswag or commonsense, mmlu).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// Few-shot examples per prompt (default: each task's lm-eval default: 0 for the
    /// multiple-choice tasks, e.g. 5 for gsm8k, 4 for math, 3 for mbpp and bbh).
    #[arg(long)]
    pub shots: Option<usize>,
    /// Only the first N items of each task, in data order (as lm-eval's --limit).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Per-task limits overriding --limit, e.g. `gsm8k=5,arc_easy=100` (task names, not groups).
    #[arg(long, value_delimiter = ',', value_parser = parse_task_limit)]
    pub task_limits: Option<Vec<(String, usize)>>,
    /// Evaluate only shard i of n: in every task, the items at positions p (after --limit) with
    /// p % n == i; doc_ids keep their unsharded values. `harness merge` joins the shards.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Rows per forward pass (default 8). Results do not depend on it beyond float noise.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Attention variant: native, mha, mqa, gqa:G, swa:W, full (comma-combinable).
    #[arg(long)]
    pub attention: Option<String>,
    /// Compute backend: flex (CPU, default), ndarray, wgpu (as compiled in).
    #[arg(long)]
    pub backend: Option<String>,
    /// Compute precision: auto (f32 on CPU, f16 on a GPU), f32, f16 or bf16.
    #[arg(long)]
    pub dtype: Option<String>,
    /// Weights: auto (materialized at load when they take at most half the available memory,
    /// else streamed per layer), load or stream. Results do not depend on it.
    #[arg(long)]
    pub weights: Option<String>,
    /// Few-shot sampling seed (lm-eval's default is 1234).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder (default results/runs/<model>-<attention>-<config hash>/, which a rerun of
    /// the same command resumes).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the task data lives (default: the tasks crate's data/ folder, or $HARNESS_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A JSON run configuration (configs/*.json); flags given here override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
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
    /// Wrap prompts in the model's chat template (lm-eval's --apply_chat_template).
    #[arg(long)]
    pub chat: bool,
    /// With --chat: a system prompt, or `mistral-guardrail` for the Mistral 7B paper's (§5.1).
    #[arg(long)]
    pub system_prompt: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub model: PathBuf,
    pub tasks: Vec<String>,
    /// None: each task's default.
    #[serde(default)]
    pub shots: Option<usize>,
    #[serde(default)]
    pub limit: Option<usize>,
    /// Per-task limits that override `limit` (task name → N).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub task_limits: BTreeMap<String, usize>,
    /// Only this shard of every task's items (see reports::merge).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "shard_text")]
    pub shard: Option<Shard>,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_attention")]
    pub attention: String,
    #[serde(default = "default_backend")]
    pub backend: String,
    #[serde(default = "default_auto")]
    pub dtype: String,
    #[serde(default = "default_auto")]
    pub weights: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub out: Option<PathBuf>,
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    #[serde(default = "default_samples")]
    pub samples: usize,
    #[serde(default)]
    pub sampling: Sampling,
    #[serde(default)]
    pub max_gen_toks: Option<usize>,
    #[serde(default)]
    pub chat: bool,
    #[serde(default)]
    pub system_prompt: Option<String>,
}

fn default_samples() -> usize {
    1
}

fn default_batch_size() -> usize {
    8
}
fn default_attention() -> String {
    "native".into()
}
fn default_backend() -> String {
    "flex".into()
}
fn default_auto() -> String {
    "auto".into()
}
fn default_seed() -> u64 {
    1234
}

/// A config file's fields, all optional so that flags can fill the gaps.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PartialConfig {
    model: Option<PathBuf>,
    tasks: Option<TaskList>,
    shots: Option<usize>,
    limit: Option<usize>,
    task_limits: Option<BTreeMap<String, usize>>,
    shard: Option<String>,
    batch_size: Option<usize>,
    attention: Option<String>,
    backend: Option<String>,
    dtype: Option<String>,
    weights: Option<String>,
    seed: Option<u64>,
    out: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    samples: Option<usize>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<usize>,
    max_gen_toks: Option<usize>,
    chat: Option<bool>,
    system_prompt: Option<String>,
}

/// `"tasks": "a,b"` or `"tasks": ["a", "b"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum TaskList {
    Text(String),
    List(Vec<String>),
}

impl RunConfig {
    pub fn resolve(flags: &EvalFlags) -> anyhow::Result<Self> {
        let file = match &flags.config {
            Some(path) => read_config(path)?,
            None => PartialConfig::default(),
        };
        let tasks = flags.tasks.clone().or(file.tasks.map(|t| match t {
            TaskList::Text(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
            TaskList::List(l) => l,
        }));
        let config = RunConfig {
            model: flags
                .model
                .clone()
                .or(file.model)
                .context("no model: give --model or \"model\" in the config")?,
            tasks: tasks
                .filter(|t| !t.is_empty())
                .context("no tasks: give --tasks or \"tasks\" in the config")?,
            shots: flags.shots.or(file.shots),
            limit: flags.limit.or(file.limit),
            task_limits: match &flags.task_limits {
                Some(pairs) => pairs.iter().cloned().collect(),
                None => file.task_limits.unwrap_or_default(),
            },
            shard: match (flags.shard, &file.shard) {
                (Some(shard), _) => Some(shard),
                (None, Some(text)) => {
                    let file = flags.config.as_deref().unwrap_or(Path::new("config"));
                    Some(
                        text.parse()
                            .with_context(|| format!("{}: invalid \"shard\"", file.display()))?,
                    )
                }
                (None, None) => None,
            },
            batch_size: flags.batch_size.or(file.batch_size).unwrap_or_else(default_batch_size),
            attention: flags
                .attention
                .clone()
                .or(file.attention)
                .unwrap_or_else(default_attention),
            backend: flags.backend.clone().or(file.backend).unwrap_or_else(default_backend),
            dtype: flags.dtype.clone().or(file.dtype).unwrap_or_else(default_auto),
            weights: flags.weights.clone().or(file.weights).unwrap_or_else(default_auto),
            seed: flags.seed.or(file.seed).unwrap_or_else(default_seed),
            out: flags.out.clone().or(file.out),
            data_dir: flags.data_dir.clone().or(file.data_dir),
            samples: flags.samples.or(file.samples).unwrap_or_else(default_samples),
            sampling: Sampling {
                temperature: flags.temperature.or(file.temperature).unwrap_or(0.0),
                top_p: flags.top_p.or(file.top_p).unwrap_or(1.0),
                top_k: flags.top_k.or(file.top_k).unwrap_or(0),
            },
            max_gen_toks: flags.max_gen_toks.or(file.max_gen_toks),
            chat: flags.chat || file.chat.unwrap_or(false),
            system_prompt: flags.system_prompt.clone().or(file.system_prompt),
        };
        if config.batch_size == 0 {
            bail!("batch_size must be positive");
        }
        if config.samples == 0 {
            bail!("samples must be positive");
        }
        config.sampling.validate()?;
        if config.samples > 1 && config.sampling.is_greedy() {
            bail!(
                "{} samples per item with greedy decoding would all be the same: give --temperature > 0",
                config.samples
            );
        }
        if let Some(zero) = config.task_limits.iter().find(|(_, n)| **n == 0) {
            bail!("task limit for {} must be positive", zero.0);
        }
        if config.system_prompt.is_some() && !config.chat {
            bail!("--system-prompt needs --chat (lm-eval also puts it in the chat template's system turn)");
        }
        Ok(config)
    }
}

impl RunConfig {
    /// The limit for one (expanded) task: its `task_limits` entry, else `limit`.
    pub fn limit_for(&self, task: &str) -> Option<usize> {
        self.task_limits.get(task).copied().or(self.limit)
    }

    /// This configuration as a config file (the flat keys `--config` reads), so that a child
    /// `harness eval --config FILE` runs exactly it.
    pub fn to_config_json(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.model, "tasks": self.tasks, "shots": self.shots, "limit": self.limit,
            "task_limits": self.task_limits, "shard": self.shard.map(|s| s.to_string()),
            "batch_size": self.batch_size, "attention": self.attention, "backend": self.backend,
            "dtype": self.dtype, "weights": self.weights,
            "seed": self.seed, "out": self.out, "data_dir": self.data_dir, "samples": self.samples,
            "temperature": self.sampling.temperature, "top_p": self.sampling.top_p, "top_k": self.sampling.top_k,
            "max_gen_toks": self.max_gen_toks, "chat": self.chat, "system_prompt": self.system_prompt,
        })
    }
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

/// A shard as its `i/n` text in JSON.
mod shard_text {
    use reports::merge::Shard;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(shard: &Option<Shard>, s: S) -> Result<S::Ok, S::Error> {
        match shard {
            Some(shard) => s.serialize_str(&shard.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Shard>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| t.parse().map_err(serde::de::Error::custom)).transpose()
    }
}

fn read_config(path: &Path) -> anyhow::Result<PartialConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read config", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid run config", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        std::fs::write(
            &path,
            r#"{"model": "m.gguf", "tasks": "arc_easy,piqa", "shots": 5, "batch_size": 4}"#,
        )
        .unwrap();
        let flags = EvalFlags {
            config: Some(path.clone()),
            shots: Some(0),
            ..Default::default()
        };
        let config = RunConfig::resolve(&flags).unwrap();
        assert_eq!(config.tasks, vec!["arc_easy", "piqa"]);
        assert_eq!((config.shots, config.batch_size, config.seed), (Some(0), 4, 1234));
    }

    #[test]
    fn bad_configs_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, r#"{"model": "m.gguf", "taks": "arc_easy"}"#).unwrap();
        let flags = EvalFlags {
            config: Some(path.clone()),
            ..Default::default()
        };
        let err = format!("{:#}", RunConfig::resolve(&flags).unwrap_err());
        assert!(err.contains("bad.json") && err.contains("taks"), "{err}");
        let err = format!(
            "{:#}",
            RunConfig::resolve(&EvalFlags {
                model: Some("m".into()),
                ..Default::default()
            })
            .unwrap_err()
        );
        assert!(err.contains("no tasks"), "{err}");
        std::fs::write(&path, r#"{"model": "m.gguf", "tasks": "arc_easy", "shard": "3/3"}"#).unwrap();
        let flags = EvalFlags {
            config: Some(path),
            ..Default::default()
        };
        let err = format!("{:#}", RunConfig::resolve(&flags).unwrap_err());
        assert!(
            err.contains("bad.json: invalid \"shard\"") && err.contains("0 ≤ i < n"),
            "{err}"
        );
    }

    #[test]
    fn a_config_written_back_resolves_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("child.json");
        let flags = EvalFlags {
            model: Some("m.gguf".into()),
            tasks: Some(vec!["arc_easy".into(), "gsm8k".into()]),
            limit: Some(20),
            task_limits: Some(vec![("gsm8k".into(), 5)]),
            shard: Some("1/4".parse().unwrap()),
            attention: Some("gqa:1,swa:64".into()),
            samples: Some(4),
            temperature: Some(0.6),
            max_gen_toks: Some(64),
            out: Some("o".into()),
            ..Default::default()
        };
        let config = RunConfig::resolve(&flags).unwrap();
        assert_eq!(
            (config.limit_for("gsm8k"), config.limit_for("arc_easy")),
            (Some(5), Some(20))
        );
        std::fs::write(&path, config.to_config_json().to_string()).unwrap();
        let back = RunConfig::resolve(&EvalFlags {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(back, config);
        // run.json's copy records the shard as text and leaves out what is unset.
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["shard"], "1/4");
        let plain = RunConfig {
            shard: None,
            task_limits: BTreeMap::new(),
            ..config
        };
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("shard").is_none() && json.get("task_limits").is_none());
    }
}
