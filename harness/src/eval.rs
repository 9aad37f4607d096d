//! `harness eval`: run multiple-choice suites over a model and write scores.csv,
//! samples/<task>.jsonl and run.json. A rerun of the same command resumes from the journal.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use model::backend::BackendKind;
use model::{AttentionSpec, ComputeDtype, LoadOptions, WeightsPolicy, load_model_with};
use reports::merge::Shard;
use serde_json::json;
use sha2::{Digest, Sha256};
use tasks::{GenMetric, GenOptions, GenTaskInstance, McItem, Metric, TaskInstance, TaskOptions};

use crate::engine::Engine;
use crate::gen_eval::{GenSample, GenSettings, metric_name, run_gen_task};
use crate::generate::Generator;
use crate::journal::{Journal, McSample};
use crate::metrics::{aggregate_weighted, mean_and_stderr};
use crate::report::{ScoreRow, machine_info, summary_table, utc_now, write_json, write_scores_csv};
use crate::run_config::{EvalFlags, RunConfig};

/// Items scored between two journal writes, per row of the batch.
const ITEMS_PER_CHUNK_PER_ROW: usize = 4;

pub fn run(flags: &EvalFlags) -> anyhow::Result<()> {
    let config = RunConfig::resolve(flags)?;
    let outcome = evaluate(&config)?;
    print!("{}", summary_table(&outcome.rows));
    println!("wrote {}", outcome.out_dir.join("scores.csv").display());
    Ok(())
}

pub struct Outcome {
    pub out_dir: PathBuf,
    pub rows: Vec<ScoreRow>,
}

pub fn evaluate(config: &RunConfig) -> anyhow::Result<Outcome> {
    let started = utc_now();
    let clock = Instant::now();
    let spec: AttentionSpec = config.attention.parse()?;
    let backend: BackendKind = config.backend.parse()?;
    let dtype: ComputeDtype = config.dtype.parse()?;
    let weights: WeightsPolicy = config.weights.parse()?;
    let load_options = LoadOptions::new(dtype, weights, backend)?;
    let data_dir = config.data_dir.clone().unwrap_or_else(tasks::default_data_dir);
    let task_names = tasks::expand_task_names(&config.tasks)?;
    let (gen_names, mc_names): (Vec<&String>, Vec<&String>) = task_names.iter().partition(|n| tasks::is_generative(n));
    if let Some(unknown) = config.task_limits.keys().find(|t| !task_names.contains(t)) {
        bail!(
            "task_limits names `{unknown}`, which is not one of this run's tasks ({})",
            task_names.join(", ")
        );
    }
    let options = |name: &str| TaskOptions {
        shots: config.shots.unwrap_or(0),
        seed: config.seed,
        limit: config.limit_for(name),
    };
    let loaded_tasks = mc_names
        .iter()
        .map(|name| {
            let mut task = tasks::load_task(name, &data_dir, &options(name))?;
            task.items = in_shard(task.items, config.shard);
            Ok(task)
        })
        .collect::<anyhow::Result<Vec<TaskInstance>>>()?;
    let gen_tasks = gen_names
        .iter()
        .map(|name| {
            let gen_options = GenOptions {
                shots: config.shots,
                seed: config.seed,
                limit: config.limit_for(name),
            };
            let mut task = tasks::load_gen_task(name, &data_dir, &gen_options)?;
            task.items = in_shard(task.items, config.shard);
            with_pass_at_k(&mut task, config.samples);
            Ok(task)
        })
        .collect::<anyhow::Result<Vec<GenTaskInstance>>>()?;

    let model_hash = hash_model(&config.model)?;
    let data_files = loaded_tasks
        .iter()
        .map(|t| (&t.name, &t.data_files))
        .chain(gen_tasks.iter().map(|t| (&t.name, &t.data_files)));
    let data_hashes = hash_data(data_files)?;
    let mut identity = json!({
        "model": config.model, "model_sha256": model_hash, "tasks": task_names, "shots": config.shots,
        "limit": config.limit, "attention": spec.to_string(), "backend": backend.to_string(), "seed": config.seed,
        "data_sha256": data_hashes, "samples": config.samples, "sampling": config.sampling, "max_gen_toks": config.max_gen_toks, "chat": config.chat,
        "system_prompt": config.system_prompt,
    });
    // Only when set, so that identities of runs without them stay as they were.
    if !config.task_limits.is_empty() {
        identity["task_limits"] = json!(config.task_limits);
    }
    if let Some(shard) = config.shard {
        identity["shard"] = json!(shard.to_string());
    }
    if load_options.dtype != burn::tensor::FloatDType::F32 {
        identity["dtype"] = json!(model::precision::dtype_name(load_options.dtype));
    }
    let model_name = model_name(&config.model);
    let out_dir = match &config.out {
        Some(dir) => dir.clone(),
        None => {
            let shard = config
                .shard
                .map_or(String::new(), |s| format!("shard{}of{}-", s.index, s.count));
            PathBuf::from("results/runs").join(format!(
                "{model_name}-{spec}-{shard}{}",
                &sha256_hex(identity.to_string().as_bytes())[..10]
            ))
        }
    };
    claim_out_dir(&out_dir, &identity)?;

    let device = backend.device()?;
    let loaded = load_model_with(&config.model, &spec, &device, &load_options)?;
    eprintln!("{}: {}", config.model.display(), loaded.memory);
    let tokenizer = loaded.tokenizer.as_ref().with_context(|| {
        format!(
            "{}: the model has no tokenizer (tokenizer.json)",
            config.model.display()
        )
    })?;
    let engine = Engine::new(&loaded.decoder, tokenizer, config.batch_size)?;
    let chat = if config.chat {
        Some(crate::chat::from_tokenizer(tokenizer)?)
    } else {
        None
    };

    let mut rows = Vec::new();
    let row = |task: &str, shots: usize, metric: String, values: &[f64], seconds: f64| {
        let (value, stderr) = mean_and_stderr(values);
        ScoreRow {
            model: model_name.clone(),
            attention: spec.to_string(),
            backend: backend.to_string(),
            task: task.to_string(),
            shots,
            n: values.len(),
            metric,
            value,
            stderr,
            seconds,
            items_per_s: if seconds > 0.0 {
                values.len() as f64 / seconds
            } else {
                0.0
            },
        }
    };
    for task in &loaded_tasks {
        let samples = run_task(&engine, task, &out_dir, config.batch_size)?;
        let seconds: f64 = samples.iter().map(|s| s.seconds).sum();
        for metric in &task.metrics {
            let values: Vec<f64> = samples
                .iter()
                .map(|s| match metric {
                    Metric::Acc => s.acc,
                    Metric::AccNorm => s.acc_norm,
                })
                .collect();
            rows.push(row(
                &task.name,
                config.shots.unwrap_or(0),
                metric.name().to_string(),
                &values,
                seconds,
            ));
        }
    }
    if !gen_tasks.is_empty() {
        let generator = Generator::new(&loaded.decoder, tokenizer, config.batch_size)?;
        let settings = GenSettings {
            samples: config.samples,
            sampling: config.sampling,
            run_seed: config.seed,
            max_gen_toks: config.max_gen_toks,
            chat: chat.as_ref(),
            system_prompt: config.system_prompt.clone(),
        };
        for task in &gen_tasks {
            let bar = task_bar(&task.name, task.items.len());
            let samples = run_gen_task(&generator, task, &settings, &out_dir, &bar)?;
            bar.finish_and_clear();
            let seconds: f64 = samples.iter().map(|s| s.seconds).sum();
            for metric in &task.metrics {
                let name = metric_name(*metric, config.samples);
                let values = gen_values(&task.name, &samples, &name)?;
                rows.push(row(&task.name, task.shots, name, &values, seconds));
            }
        }
    }
    rows.extend(group_rows(&config.tasks, &rows));
    write_scores_csv(&out_dir.join("scores.csv"), &rows)?;
    let attention = loaded.decoder.attention;
    let decoder_config = &loaded.decoder.config;
    let run = json!({
        "config": config, "resolved_tasks": task_names, "attention": spec.to_string(), "backend": backend.to_string(),
        "model": {"path": config.model, "sha256": model_hash, "config": format!("{:?}", loaded.decoder.config)},
        "data_sha256": data_hashes, "harness_version": env!("CARGO_PKG_VERSION"), "harness_git": env!("HARNESS_GIT_HASH"),
        "machine": machine_info(), "started": started, "finished": utc_now(),
        "seconds_this_invocation": clock.elapsed().as_secs_f64(),
        "attention_resolved": {
            "num_layers": decoder_config.num_layers, "num_heads": attention.num_heads,
            "native_kv_heads": attention.native_kv_heads, "kv_heads": attention.kv_heads,
            "head_dim": decoder_config.head_dim, "window": attention.window,
        },
        "weights": loaded.memory.to_string(),
        "peak_rss_bytes": peak_rss_bytes(&out_dir.join("run.json")),
    });
    write_json(&out_dir.join("run.json"), &run)?;
    Ok(Outcome { out_dir, rows })
}

/// Scores a task's missing items, journaling as it goes; returns all samples in doc order.
fn run_task(engine: &Engine, task: &TaskInstance, out_dir: &Path, batch_size: usize) -> anyhow::Result<Vec<McSample>> {
    let mut journal = Journal::open(&out_dir.join("samples").join(format!("{}.jsonl", task.name)))?;
    let pending: Vec<&McItem> = task
        .items
        .iter()
        .filter(|i| !journal.done().contains_key(&i.doc_id))
        .collect();
    let bar = task_bar(&task.name, task.items.len());
    bar.set_position((task.items.len() - pending.len()) as u64);
    for chunk in pending.chunks(batch_size * ITEMS_PER_CHUNK_PER_ROW) {
        let clock = Instant::now();
        let pairs: Vec<(&str, &str)> = chunk
            .iter()
            .flat_map(|item| {
                item.requests
                    .iter()
                    .map(|r| (r.context.as_str(), r.continuation.as_str()))
            })
            .collect();
        let results = engine.loglikelihood(&pairs, &mut |_| {})?;
        let share = clock.elapsed().as_secs_f64() / chunk.len() as f64;
        let mut offset = 0;
        let mut samples = Vec::with_capacity(chunk.len());
        for item in chunk {
            let mine = &results[offset..offset + item.requests.len()];
            offset += item.requests.len();
            samples.push(sample_of(item, mine, share));
        }
        journal.append(samples)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    journal.finish()
}

/// The items of `shard` (all without one): positions p with p % n == i, doc_ids unchanged.
fn in_shard<T>(items: Vec<T>, shard: Option<Shard>) -> Vec<T> {
    match shard {
        None => items,
        Some(shard) => items
            .into_iter()
            .enumerate()
            .filter(|(p, _)| reports::merge::in_shard(*p, shard))
            .map(|(_, item)| item)
            .collect(),
    }
}

/// The peak resident memory of this process (Linux `VmHWM`), or of an earlier invocation of the
/// same run as recorded in its run.json, whichever is larger (a resumed run that had little left
/// to do still reports what the run needed). None where /proc is not available.
fn peak_rss_bytes(run_json: &Path) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let earlier = std::fs::read_to_string(run_json)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("peak_rss_bytes").and_then(serde_json::Value::as_u64))
        .unwrap_or(0);
    Some((kib * 1024).max(earlier))
}

fn sample_of(item: &McItem, results: &[crate::engine::Loglikelihood], seconds: f64) -> McSample {
    let lls: Vec<f64> = results.iter().map(|r| r.logprob).collect();
    let (prediction, prediction_norm) = item.predictions(&lls);
    let contexts: Vec<String> = item.requests.iter().map(|r| r.context.clone()).collect();
    let shared = contexts.iter().all(|c| c == &contexts[0]);
    McSample {
        doc_id: item.doc_id,
        prompt: contexts.first().cloned().unwrap_or_default(),
        contexts: (!shared).then_some(contexts),
        choices: item.requests.iter().map(|r| r.continuation.clone()).collect(),
        loglikelihoods: lls,
        is_greedy: results.iter().map(|r| r.is_greedy).collect(),
        prediction,
        prediction_norm,
        gold: item.gold,
        acc: f64::from(prediction == item.gold),
        acc_norm: f64::from(prediction_norm == item.gold),
        seconds,
        context_tokens: results.iter().map(|r| r.context_tokens).collect(),
        continuation_tokens: results.iter().map(|r| r.tokens).collect(),
    }
}

/// A per-task progress bar with items/s and ETA.
fn task_bar(name: &str, len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} items  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar
}

/// Code tasks report pass@k for the usual k (1, 10, 100) that `samples` allows.
fn with_pass_at_k(task: &mut GenTaskInstance, samples: usize) {
    if task.metrics.iter().any(|m| matches!(m, GenMetric::PassAt(_))) {
        task.metrics = [1, 10, 100]
            .into_iter()
            .filter(|&k| k <= samples)
            .map(GenMetric::PassAt)
            .collect();
    }
}

/// Per-item values of one metric; a journal without it (e.g. from another config) is an error.
fn gen_values(task: &str, samples: &[GenSample], metric: &str) -> anyhow::Result<Vec<f64>> {
    samples
        .iter()
        .map(|s| {
            s.scores
                .get(metric)
                .copied()
                .with_context(|| format!("{task}: doc {} has no `{metric}` score in its journal", s.doc_id))
        })
        .collect()
}

/// Group rows (size-weighted means, pooled stderr, per metric) for the groups the user named
/// (mmlu and its categories, math, bbh), and for "mmlu" its four categories too. "commonsense"
/// is only a way to name several tasks: lm-eval reports no aggregate for it.
fn group_rows(requested: &[String], rows: &[ScoreRow]) -> Vec<ScoreRow> {
    let mut groups: Vec<String> = Vec::new();
    for name in requested.iter().filter(|n| tasks::group_members(n).is_some()) {
        if name == "mmlu" {
            groups.extend(["mmlu_stem", "mmlu_humanities", "mmlu_social_sciences", "mmlu_other"].map(String::from));
        }
        groups.push(name.clone());
    }
    let mut out = Vec::new();
    let mut metrics: Vec<&String> = rows.iter().map(|r| &r.metric).collect();
    metrics.dedup();
    metrics.sort();
    metrics.dedup();
    for (group, metric) in groups.iter().flat_map(|g| metrics.iter().map(move |m| (g, *m))) {
        let members = tasks::group_members(group).unwrap_or_default();
        let mine: Vec<&ScoreRow> = rows
            .iter()
            .filter(|r| &r.metric == metric && members.contains(&r.task))
            .collect();
        let Some(first) = mine.first() else { continue };
        let parts: Vec<(f64, f64, usize)> = mine.iter().map(|r| (r.value, r.stderr, r.n)).collect();
        let (value, stderr) = aggregate_weighted(&parts);
        let (n, seconds) = (
            mine.iter().map(|r| r.n).sum::<usize>(),
            mine.iter().map(|r| r.seconds).sum::<f64>(),
        );
        out.push(ScoreRow {
            task: group.clone(),
            n,
            value,
            stderr,
            seconds,
            items_per_s: if seconds > 0.0 { n as f64 / seconds } else { 0.0 },
            ..(*first).clone()
        });
    }
    out
}

/// Refuses to mix two different runs in one folder; records this run's identity otherwise.
fn claim_out_dir(out_dir: &Path, identity: &serde_json::Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("{}: cannot create output folder", out_dir.display()))?;
    let path = out_dir.join("identity.json");
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        let existing: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
        if &existing != identity {
            bail!(
                "{} holds results of a different run (model, tasks, shots, limit, attention, backend, seed or data differ); \
                 choose another --out or remove it",
                out_dir.display()
            );
        }
        return Ok(());
    }
    write_json(&path, identity)
}

fn model_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    name.strip_suffix(".gguf").unwrap_or(&name).to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_file(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

/// The GGUF file, or an HF folder's config and weight files, hashed together.
fn hash_model(path: &Path) -> anyhow::Result<String> {
    if !path.is_dir() {
        return hash_file(path);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("{}: cannot list", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors" || e == "json"))
        .collect();
    files.sort();
    let mut combined = String::new();
    for file in files {
        combined.push_str(&hash_file(&file)?);
    }
    Ok(sha256_hex(combined.as_bytes()))
}

fn hash_data<'t>(
    tasks: impl Iterator<Item = (&'t String, &'t Vec<PathBuf>)>,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut out = serde_json::Map::new();
    for (name, files) in tasks {
        for file in files {
            let key = file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let key = format!("{name}/{key}");
            out.insert(key, json!(hash_file(file)?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(task: &str, value: f64, stderr: f64, n: usize) -> ScoreRow {
        ScoreRow {
            model: "m".into(),
            attention: "native".into(),
            backend: "flex".into(),
            task: task.into(),
            shots: 5,
            n,
            metric: "acc".into(),
            value,
            stderr,
            seconds: 1.0,
            items_per_s: n as f64,
        }
    }

    #[test]
    fn mmlu_groups_are_size_weighted_with_pooled_stderr() {
        // Two STEM subjects, one humanities subject.
        let rows = vec![
            row("mmlu_abstract_algebra", 0.5, 0.1, 100),
            row("mmlu_college_physics", 0.25, 0.05, 300),
            row("mmlu_philosophy", 0.8, 0.2, 100),
        ];
        let groups = group_rows(&["mmlu".to_string()], &rows);
        let find = |name: &str| groups.iter().find(|r| r.task == name).unwrap();
        // STEM: (0.5*100 + 0.25*300) / 400 = 0.3125;
        // pooled stderr: sqrt(((99*0.01*100) + (299*0.0025*300)) / (400-2) / 400).
        let stem = find("mmlu_stem");
        assert_eq!(stem.n, 400);
        assert!((stem.value - 0.3125).abs() < 1e-12);
        let expected = ((99.0 * 0.01 * 100.0 + 299.0 * 0.0025 * 300.0) / 398.0 / 400.0f64).sqrt();
        assert!((stem.stderr - expected).abs() < 1e-12);
        // mmlu: all 500 items, (50 + 75 + 80) / 500.
        let all = find("mmlu");
        assert_eq!((all.n, all.shots, all.metric.as_str()), (500, 5, "acc"));
        assert!((all.value - 0.41).abs() < 1e-12);
        // Categories without members get no row; "commonsense" gets no aggregate at all.
        assert!(groups.iter().all(|r| r.task != "mmlu_social_sciences"));
        assert!(group_rows(&["commonsense".to_string()], &rows).is_empty());
    }
}
