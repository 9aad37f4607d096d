//! Sharding: `--shard i/n` runs a deterministic slice of every task, and [`merge_runs`] puts the
//! shards' run directories back together into one run directory.
//!
//! Slice: shard `i` of `n` (0 ≤ i < n) evaluates, in every task, the items whose position `p` in
//! the task's item list — after `--limit`, in data order — satisfies `p % n == i` ([`in_shard`],
//! [`shard_slice`]). Round-robin rather than contiguous blocks, so every shard gets a similar mix
//! of early and late (often easier and harder) items. The tasks crate numbers items by that
//! position (`doc_id` = index in the limited list), so shard `i` holds exactly the doc_ids with
//! `doc_id % n == i`, and the merged doc_ids are exactly `0..N`.
//!
//! Merging checks that the shards are one run split `n` ways (identity.json equal but for its
//! `shard` field; every index 0..n present once), that each shard finished (its samples file holds
//! as many items as its scores.csv row says), that no doc_id appears twice and none is missing,
//! and then recomputes scores.csv from the per-item values:
//! - task rows: mean and `stderr = sqrt(var_sample / n)` (ddof = 1) over all items
//!   ([`crate::aggregate::task_row`]), so a merged run equals the unsharded run exactly;
//! - group rows (rows without a samples file, described by the caller): recomputed from the merged
//!   member rows by [`crate::aggregate::group_rows`], as `harness eval` computes them;
//! - seconds: the sum over shards; items_per_s = n / seconds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::aggregate::{self, Group, RowLabels, task_row};
use crate::identity::RunIdentity;
use crate::run_dir::{RunDir, ScoreRow, write_atomic, write_json, write_scores_csv};

/// Shard `index` of `count`, written `index/count` (e.g. `0/4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let (i, n) = text
            .split_once('/')
            .with_context(|| format!("shard `{text}`: expected i/n, e.g. 0/4"))?;
        let index: usize = i.trim().parse().with_context(|| format!("shard `{text}`: bad index"))?;
        let count: usize = n.trim().parse().with_context(|| format!("shard `{text}`: bad count"))?;
        ensure!(index < count, "shard `{text}`: need 0 ≤ i < n");
        Ok(Self { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Reads the `shard` field of an identity: `"i/n"`, `{"index": i, "count": n}` or `[i, n]`.
    pub fn from_json(value: &Value) -> Result<Self> {
        match value {
            Value::String(text) => text.parse(),
            Value::Object(map) => {
                let get = |k: &str| map.get(k).and_then(Value::as_u64).map(|v| v as usize);
                match (get("index"), get("count")) {
                    (Some(index), Some(count)) => format!("{index}/{count}").parse(),
                    _ => bail!("shard {value}: expected {{\"index\": i, \"count\": n}}"),
                }
            }
            Value::Array(parts) => match parts.as_slice() {
                [i, n] => match (i.as_u64(), n.as_u64()) {
                    (Some(i), Some(n)) => format!("{i}/{n}").parse(),
                    _ => bail!("shard {value}: expected [i, n]"),
                },
                _ => bail!("shard {value}: expected [i, n]"),
            },
            _ => bail!("shard {value}: expected \"i/n\""),
        }
    }
}

/// Whether the item at `position` (in the task's limited item list) belongs to `shard`.
pub fn in_shard(position: usize, shard: Shard) -> bool {
    position % shard.count == shard.index
}

/// The items of `shard`, in order: positions `shard.index, shard.index + n, …`.
pub fn shard_slice<T>(items: &[T], shard: Shard) -> Vec<&T> {
    items.iter().skip(shard.index).step_by(shard.count.max(1)).collect()
}

/// What [`merge_runs`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeSummary {
    pub out: PathBuf,
    pub shards: Vec<(Shard, PathBuf)>,
    /// The rows written to scores.csv.
    pub rows: Vec<ScoreRow>,
    /// Items per task in the merged run.
    pub items: BTreeMap<String, usize>,
}

/// Merges shard run directories into `out` (scores.csv, samples/, identity.json without `shard`,
/// and run.json listing the shards); see the module docs for the checks and formulas.
/// `group_of` describes a group (None: not a group); rows without samples must be groups.
pub fn merge_runs(shards: &[PathBuf], out: &Path, group_of: &dyn Fn(&str) -> Option<Group>) -> Result<MergeSummary> {
    ensure!(!shards.is_empty(), "merge: no shard run directories given");
    let runs = shards.iter().map(|p| load_shard(p)).collect::<Result<Vec<RunDir>>>()?;
    let (identity, mut order) = check_same_run(&runs)?;
    let keys = common_row_keys(&runs)?;
    let tasks: Vec<String> = dedup(keys.iter().map(|(t, _)| t.clone()));
    let (leaf_tasks, group_names): (Vec<String>, Vec<String>) =
        tasks.into_iter().partition(|t| runs[0].samples.contains_key(t));
    let groups = group_names
        .iter()
        .map(|g| {
            group_of(g).with_context(|| {
                format!(
                    "{}: task `{g}` has no samples/{g}.jsonl and is not a group, so it cannot be recomputed",
                    runs[0].path.join("scores.csv").display()
                )
            })
        })
        .collect::<Result<Vec<Group>>>()?;
    let mut merged_lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for task in &leaf_tasks {
        merged_lines.insert(task.clone(), merge_task_samples(&runs, &order, task, &keys)?);
    }
    let rows = merged_rows(&runs, &keys, &leaf_tasks, &groups)?;
    order.sort();
    write_merged(
        out,
        &identity,
        &merged_lines,
        &rows,
        &merged_run_json(&runs, shards, &order),
    )?;
    Ok(MergeSummary {
        out: out.to_path_buf(),
        shards: order.iter().map(|(s, r)| (*s, shards[*r].clone())).collect(),
        rows,
        items: merged_lines.iter().map(|(t, l)| (t.clone(), l.len())).collect(),
    })
}

/// A shard's run folder; one without scores.csv did not finish (or never started).
fn load_shard(path: &Path) -> Result<RunDir> {
    if path.is_dir() && !path.join("scores.csv").exists() {
        let which = RunIdentity::read(path)
            .ok()
            .flatten()
            .and_then(|i| i.shard)
            .map_or(String::new(), |s| format!(" (shard {s})"));
        bail!(
            "{}{which} did not finish: it has no scores.csv yet; rerun its `harness eval --shard` command to complete it",
            path.display()
        );
    }
    RunDir::load(path)
}

/// The task × metric rows every shard reports (the first shard's order); they must agree.
fn common_row_keys(runs: &[RunDir]) -> Result<Vec<(String, String)>> {
    let keys_of = |run: &RunDir| -> Vec<(String, String)> {
        run.rows.iter().map(|r| (r.task.clone(), r.metric.clone())).collect()
    };
    let keys = keys_of(&runs[0]);
    for run in &runs[1..] {
        let theirs = keys_of(run);
        let (a, b): (BTreeSet<_>, BTreeSet<_>) = (keys.iter().collect(), theirs.iter().collect());
        if a != b {
            let show =
                |s: Vec<&&(String, String)>| s.iter().map(|(t, m)| format!("{t}/{m}")).collect::<Vec<_>>().join(", ");
            bail!(
                "{} and {}: scores.csv rows differ (only in the first: {}; only in the second: {})",
                runs[0].path.join("scores.csv").display(),
                run.path.join("scores.csv").display(),
                show(a.difference(&b).collect()),
                show(b.difference(&a).collect())
            );
        }
    }
    Ok(keys)
}

/// One task's sample lines from every shard, in doc_id order, after checking that each shard
/// finished, holds only its own doc_ids, and that together they cover 0..N once each.
fn merge_task_samples(
    runs: &[RunDir],
    order: &ShardOrder,
    task: &str,
    keys: &[(String, String)],
) -> Result<Vec<String>> {
    let mut owner: BTreeMap<usize, usize> = BTreeMap::new(); // doc_id → index into runs
    for (r, run) in runs.iter().enumerate() {
        let shard = order[r].0;
        let samples = run
            .samples
            .get(task)
            .with_context(|| format!("{}: missing samples/{task}.jsonl", run.path.display()))?;
        for metric in keys.iter().filter(|(t, _)| t == task).map(|(_, m)| m) {
            let row = run.row(task, metric).expect("every shard has every row");
            ensure!(
                row.n == samples.items.len(),
                "{}: {} items, but scores.csv says n = {} for {task}/{metric}: the shard did not finish",
                samples.path.display(),
                samples.items.len(),
                row.n
            );
        }
        for (&doc_id, item) in &samples.items {
            if let Some(&other) = owner.get(&doc_id) {
                bail!(
                    "{}: line {}: doc_id {doc_id} of {task} is also in {}",
                    samples.path.display(),
                    item.line,
                    runs[other].samples[task].path.display()
                );
            }
            ensure!(
                in_shard(doc_id, shard),
                "{}: line {}: doc_id {doc_id} does not belong to shard {shard} (doc_id % {} = {})",
                samples.path.display(),
                item.line,
                shard.count,
                doc_id % shard.count
            );
            owner.insert(doc_id, r);
        }
    }
    let missing: Vec<usize> = (0..owner.keys().next_back().map_or(0, |m| m + 1))
        .filter(|d| !owner.contains_key(d))
        .collect();
    if !missing.is_empty() {
        let listed: Vec<String> = missing.iter().take(10).map(|d| d.to_string()).collect();
        bail!(
            "{task}: {} doc_ids missing from every shard: {}{}",
            missing.len(),
            listed.join(", "),
            if missing.len() > 10 { ", …" } else { "" }
        );
    }
    Ok(owner
        .iter()
        .map(|(doc_id, &r)| runs[r].samples[task].items[doc_id].raw.clone())
        .collect())
}

/// scores.csv of the merged run, in the first shard's row order: task rows recomputed from the
/// per-item values of every shard, group rows from those (reports::aggregate), seconds summed.
fn merged_rows(
    runs: &[RunDir],
    keys: &[(String, String)],
    leaf_tasks: &[String],
    groups: &[Group],
) -> Result<Vec<ScoreRow>> {
    let mut task_rows = Vec::new();
    for (task, metric) in keys.iter().filter(|(t, _)| leaf_tasks.contains(t)) {
        let mut values: BTreeMap<usize, f64> = BTreeMap::new();
        for run in runs {
            let per_item = run.per_item(task, metric)?.with_context(|| {
                format!(
                    "{}: no per-item values for metric `{metric}`",
                    run.samples[task].path.display()
                )
            })?;
            values.extend(per_item);
        }
        let values: Vec<f64> = values.into_values().collect();
        let seconds: f64 = runs.iter().filter_map(|r| r.row(task, metric)).map(|r| r.seconds).sum();
        let template = runs[0].row(task, metric).expect("listed from this run");
        let labels = RowLabels {
            model: template.model.clone(),
            attention: template.attention.clone(),
            backend: template.backend.clone(),
        };
        task_rows.push(task_row(&labels, task, template.shots, metric, &values, seconds));
    }
    let group_rows = aggregate::group_rows(&task_rows, groups);
    keys.iter()
        .map(|(task, metric)| {
            let found = task_rows
                .iter()
                .chain(&group_rows)
                .find(|r| &r.task == task && &r.metric == metric);
            found
                .cloned()
                .with_context(|| format!("group `{task}` ({metric}): none of its members has merged results"))
        })
        .collect()
}

/// Writes the merged run; refuses to mix with a different run already in `out`.
fn write_merged(
    out: &Path,
    identity: &RunIdentity,
    lines: &BTreeMap<String, Vec<String>>,
    rows: &[ScoreRow],
    run_json: &Value,
) -> Result<()> {
    if let Some(existing) = RunIdentity::read(out)? {
        ensure!(
            &existing == identity,
            "{}: holds a different run; choose another output folder",
            out.join(RunIdentity::FILE).display()
        );
    }
    for (task, lines) in lines {
        let mut text = lines.join("\n");
        text.push('\n');
        write_atomic(&out.join("samples").join(format!("{task}.jsonl")), text.as_bytes())?;
    }
    write_scores_csv(&out.join("scores.csv"), rows)?;
    identity.write(out)?;
    write_json(&out.join("run.json"), run_json)
}

/// (shard, index into the loaded runs), one per run.
type ShardOrder = Vec<(Shard, usize)>;

/// Checks that the runs are the shards of one run: identity.json equal but for `shard`, one
/// shard count, every index once. Returns the shared identity (without `shard`) and (shard, run
/// index) pairs.
fn check_same_run(runs: &[RunDir]) -> Result<(RunIdentity, ShardOrder)> {
    let mut identities = Vec::new();
    let mut order = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        let path = run.path.join(RunIdentity::FILE);
        let mut identity = RunIdentity::read(&run.path)?.with_context(|| format!("{}: missing", path.display()))?;
        let shard = identity
            .shard
            .take()
            .with_context(|| format!("{}: no `shard` field: not a shard of a run", path.display()))?;
        identities.push(identity);
        order.push((shard, r));
    }
    for (r, identity) in identities.iter().enumerate().skip(1) {
        let differing: Vec<String> = identities[0].differences(identity).into_iter().map(|d| d.0).collect();
        if !differing.is_empty() {
            bail!(
                "{} and {}: not shards of the same run (identity differs in: {})",
                runs[0].path.join(RunIdentity::FILE).display(),
                runs[r].path.join(RunIdentity::FILE).display(),
                differing.join(", ")
            );
        }
    }
    let count = order[0].0.count;
    for (shard, r) in &order {
        ensure!(
            shard.count == count,
            "{}: shard {shard} of a {}-way split, but {} is a {count}-way split",
            runs[*r].path.display(),
            shard.count,
            runs[order[0].1].path.display()
        );
    }
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for (shard, r) in &order {
        if let Some(other) = seen.insert(shard.index, *r) {
            bail!(
                "{} and {}: both are shard {shard}",
                runs[other].path.display(),
                runs[*r].path.display()
            );
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    ensure!(missing.is_empty(), "missing shards: {}", missing.join(", "));
    Ok((identities.swap_remove(0), order))
}

/// run.json of the merged run: the first shard's, without `shard` in its config, plus the shards.
fn merged_run_json(runs: &[RunDir], paths: &[PathBuf], order: &[(Shard, usize)]) -> Value {
    let first = runs[order[0].1].run.clone().unwrap_or_else(|| json!({}));
    let mut merged = first.as_object().cloned().unwrap_or_default();
    if let Some(config) = merged.get_mut("config").and_then(Value::as_object_mut) {
        config.remove("shard");
        config.remove("out");
    }
    let gits: BTreeSet<String> = runs
        .iter()
        .map(|r| {
            let git = r
                .run
                .as_ref()
                .and_then(|v| v.get("harness_git"))
                .and_then(Value::as_str);
            git.unwrap_or("unknown").to_string()
        })
        .collect();
    if gits.len() > 1 {
        let list: Vec<String> = gits.into_iter().collect();
        merged.insert("harness_git".into(), json!(format!("mixed: {}", list.join(", "))));
    }
    let shards: Vec<Value> = order
        .iter()
        .map(|(shard, r)| {
            let run = runs[*r].run.as_ref();
            json!({
                "shard": shard.to_string(),
                "path": paths[*r],
                "harness_git": run.and_then(|v| v.get("harness_git")),
                "started": run.and_then(|v| v.get("started")),
                "finished": run.and_then(|v| v.get("finished")),
                "machine": run.and_then(|v| v.get("machine")),
            })
        })
        .collect();
    merged.insert("merged_from".into(), json!({"count": order.len(), "shards": shards}));
    merged.remove("seconds_this_invocation");
    Value::Object(merged)
}

fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-item (acc, acc_norm) of a synthetic task with `n` items, and generative pass@1 values.
    fn acc(doc: usize) -> (f64, f64) {
        (f64::from(doc * 7 % 5 < 3), f64::from(!(doc * 3).is_multiple_of(4)))
    }
    fn pass(doc: usize) -> f64 {
        (doc * 13 % 11) as f64 / 10.0
    }

    fn identity(shard: Option<Shard>) -> Value {
        let mut id = json!({"model": "m.gguf", "model_sha256": "aaa", "tasks": ["mmlu_a", "mmlu_b", "humaneval"],
                            "shots": 0, "limit": null, "attention": "native", "backend": "flex", "seed": 1234,
                            "data_sha256": {"mmlu_a/test.jsonl": "x"}});
        if let Some(shard) = shard {
            id["shard"] = json!(shard.to_string());
        }
        id
    }

    const SIZES: [(&str, usize); 2] = [("mmlu_a", 23), ("mmlu_b", 17)];
    const GEN_SIZE: usize = 10;

    /// Writes the run (or one shard of it) the way `harness eval` would, plus an `mmlu` group row.
    fn write_run(dir: &Path, shard: Option<Shard>) {
        let all = Shard { index: 0, count: 1 };
        let keep = |doc: usize| in_shard(doc, shard.unwrap_or(all));
        std::fs::create_dir_all(dir.join("samples")).unwrap();
        let mut rows = Vec::new();
        let row = |task: &str, metric: &str, values: &[f64], seconds: f64| {
            let (value, stderr) = crate::aggregate::mean_and_stderr(values);
            ScoreRow {
                model: "m".into(),
                attention: "native".into(),
                backend: "flex".into(),
                task: task.into(),
                shots: 0,
                n: values.len(),
                metric: metric.into(),
                value,
                stderr,
                seconds,
                items_per_s: values.len() as f64 / seconds,
            }
        };
        for (task, size) in SIZES {
            let docs: Vec<usize> = (0..size).filter(|&d| keep(d)).collect();
            let lines: String = docs
                .iter()
                .map(|&d| {
                    format!(
                        "{}\n",
                        json!({"doc_id": d, "prompt": format!("q{d}"), "acc": acc(d).0, "acc_norm": acc(d).1})
                    )
                })
                .collect();
            std::fs::write(dir.join(format!("samples/{task}.jsonl")), lines).unwrap();
            let seconds = docs.len() as f64 * 0.5;
            rows.push(row(
                task,
                "acc",
                &docs.iter().map(|&d| acc(d).0).collect::<Vec<_>>(),
                seconds,
            ));
            rows.push(row(
                task,
                "acc_norm",
                &docs.iter().map(|&d| acc(d).1).collect::<Vec<_>>(),
                seconds,
            ));
        }
        let docs: Vec<usize> = (0..GEN_SIZE).filter(|&d| keep(d)).collect();
        let lines: String = docs
            .iter()
            .map(|&d| format!("{}\n", json!({"doc_id": d, "scores": {"pass@1": pass(d)}})))
            .collect();
        std::fs::write(dir.join("samples/humaneval.jsonl"), lines).unwrap();
        let seconds = docs.len() as f64 * 0.25;
        rows.push(row(
            "humaneval",
            "pass@1",
            &docs.iter().map(|&d| pass(d)).collect::<Vec<_>>(),
            seconds,
        ));
        for metric in ["acc", "acc_norm"] {
            let parts: Vec<(f64, f64, usize)> = rows
                .iter()
                .filter(|r| r.metric == metric && r.task.starts_with("mmlu_"))
                .map(|r| (r.value, r.stderr, r.n))
                .collect();
            let (value, stderr) = crate::aggregate::group_value(&parts, true);
            let n: usize = parts.iter().map(|p| p.2).sum();
            let seconds = n as f64 * 0.5;
            rows.push(ScoreRow {
                task: "mmlu".into(),
                metric: metric.into(),
                n,
                value,
                stderr,
                seconds,
                items_per_s: n as f64 / seconds,
                ..rows[0].clone()
            });
        }
        write_scores_csv(&dir.join("scores.csv"), &rows).unwrap();
        std::fs::write(dir.join("identity.json"), identity(shard).to_string()).unwrap();
        let config = json!({"model": "m.gguf", "tasks": ["mmlu"], "shard": shard.map(|s| s.to_string()), "out": dir});
        std::fs::write(
            dir.join("run.json"),
            json!({"config": config, "harness_git": "abc", "model": {"sha256": "aaa"}}).to_string(),
        )
        .unwrap();
    }

    fn members(group: &str) -> Option<Group> {
        (group == "mmlu").then(|| Group {
            name: "mmlu".into(),
            members: vec!["mmlu_a".to_string(), "mmlu_b".to_string()],
            weight_by_size: true,
        })
    }

    fn three_shards(root: &Path) -> Vec<PathBuf> {
        (0..3)
            .map(|i| {
                let dir = root.join(format!("shard{i}"));
                write_run(&dir, Some(Shard { index: i, count: 3 }));
                dir
            })
            .collect()
    }

    #[test]
    fn shard_semantics() {
        let shard: Shard = "1/3".parse().unwrap();
        assert_eq!(shard, Shard { index: 1, count: 3 });
        assert_eq!(shard.to_string(), "1/3");
        assert!("3/3".parse::<Shard>().is_err() && "x".parse::<Shard>().is_err());
        let items: Vec<usize> = (0..10).collect();
        assert_eq!(shard_slice(&items, shard), vec![&1, &4, &7]);
        assert!(in_shard(7, shard) && !in_shard(8, shard));
        assert_eq!(
            Shard::from_json(&json!({"index": 2, "count": 4})).unwrap().to_string(),
            "2/4"
        );
        assert_eq!(Shard::from_json(&json!([0, 2])).unwrap().to_string(), "0/2");
    }

    #[test]
    fn three_shards_merge_to_the_unsharded_run_exactly() {
        let root = tempfile::tempdir().unwrap();
        let whole = root.path().join("whole");
        write_run(&whole, None);
        let shards = three_shards(root.path());
        let out = root.path().join("merged");
        let summary = merge_runs(&shards, &out, &members).unwrap();
        assert_eq!(summary.items["mmlu_a"], 23);

        let expected = RunDir::load(&whole).unwrap();
        let merged = RunDir::load(&out).unwrap();
        assert_eq!(merged.rows.len(), expected.rows.len());
        for (m, e) in merged.rows.iter().zip(&expected.rows) {
            assert_eq!((&m.task, &m.metric, m.n), (&e.task, &e.metric, e.n));
            // Bit-for-bit: the same values summed in the same (doc_id) order.
            assert_eq!(m.value.to_bits(), e.value.to_bits(), "{}/{}", m.task, m.metric);
            assert_eq!(m.stderr.to_bits(), e.stderr.to_bits(), "{}/{}", m.task, m.metric);
            assert!(
                (m.seconds - e.seconds).abs() < 1e-9,
                "{}: {} vs {}",
                m.task,
                m.seconds,
                e.seconds
            );
        }
        // Samples are the unsharded files, line for line.
        for task in ["mmlu_a", "mmlu_b", "humaneval"] {
            let file = format!("samples/{task}.jsonl");
            assert_eq!(
                std::fs::read_to_string(out.join(&file)).unwrap(),
                std::fs::read_to_string(whole.join(&file)).unwrap()
            );
        }
        // identity.json is the unsharded identity; run.json lists the shards.
        let unsharded: RunIdentity = serde_json::from_value(identity(None)).unwrap();
        assert_eq!(RunIdentity::read(&out).unwrap().unwrap(), unsharded);
        let run = merged.run.unwrap();
        assert_eq!(run["merged_from"]["count"], json!(3));
        assert_eq!(run["merged_from"]["shards"][2]["shard"], json!("2/3"));
        assert!(run["config"].get("shard").is_none());
        // Merging again into the same folder is allowed (same identity).
        merge_runs(&shards, &out, &members).unwrap();
    }

    #[test]
    fn merging_refuses_broken_shard_sets() {
        let root = tempfile::tempdir().unwrap();
        let shards = three_shards(root.path());
        let out = root.path().join("merged");
        let err = |dirs: &[PathBuf]| format!("{:#}", merge_runs(dirs, &out, &members).unwrap_err());

        // A shard left out.
        assert!(err(&shards[..2]).contains("missing shards: 2/3"));
        // The same shard twice.
        let twice = vec![shards[0].clone(), shards[1].clone(), shards[1].clone()];
        assert!(err(&twice).contains("both are shard 1/3"));
        // A shard of a different run.
        let mut other = identity(Some(Shard { index: 2, count: 3 }));
        other["seed"] = json!(7);
        std::fs::write(shards[2].join("identity.json"), other.to_string()).unwrap();
        assert!(err(&shards).contains("identity differs in: seed"));
        std::fs::write(
            shards[2].join("identity.json"),
            identity(Some(Shard { index: 2, count: 3 })).to_string(),
        )
        .unwrap();
        // Unfinished shard: fewer items than scores.csv says.
        let path = shards[1].join("samples/humaneval.jsonl");
        let original = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = original.lines().collect();
        std::fs::write(&path, format!("{}\n", lines[..lines.len() - 1].join("\n"))).unwrap();
        assert!(err(&shards).contains("the shard did not finish"));
        std::fs::write(&path, &original).unwrap();
        // A group the caller does not know.
        let none = |_: &str| None;
        let message = format!("{:#}", merge_runs(&shards, &out, &none).unwrap_err());
        assert!(
            message.contains("`mmlu` has no samples/mmlu.jsonl and is not a group"),
            "{message}"
        );
        // All fixed: merges.
        merge_runs(&shards, &out, &members).unwrap();
    }

    #[test]
    fn duplicated_and_missing_doc_ids_are_errors() {
        let root = tempfile::tempdir().unwrap();
        let shards = three_shards(root.path());
        let out = root.path().join("merged");
        // Move doc 3 (shard 0) into shard 1's file too, keeping counts consistent by dropping doc 4.
        let path = shards[1].join("samples/humaneval.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let replaced = text.replace("{\"doc_id\":4,", "{\"doc_id\":3,");
        std::fs::write(&path, replaced).unwrap();
        let message = format!("{:#}", merge_runs(&shards, &out, &members).unwrap_err());
        assert!(message.contains("doc_id 3 of humaneval is also in"), "{message}");
        // Drop doc 4 outright from shard 1 and fix its n: doc 4 is missing everywhere.
        let kept: String = text
            .lines()
            .filter(|l| !l.contains("\"doc_id\":4,"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, kept).unwrap();
        let scores = shards[1].join("scores.csv");
        let mut rows = crate::run_dir::read_scores_csv(&scores).unwrap();
        rows.iter_mut().filter(|r| r.task == "humaneval").for_each(|r| r.n -= 1);
        write_scores_csv(&scores, &rows).unwrap();
        let message = format!("{:#}", merge_runs(&shards, &out, &members).unwrap_err());
        assert!(
            message.contains("humaneval: 1 doc_ids missing from every shard: 4"),
            "{message}"
        );
    }
}
