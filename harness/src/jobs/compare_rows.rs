//! compare.csv: one row per variant × task × metric, with costs and the paired test against the
//! reference variant (see [`super::compare`]).

use std::collections::BTreeMap;
use std::path::Path;

use reports::run_dir::{RunDir, ScoreRow};
use reports::stats::{PairedTest, paired_test};
use serde_json::Value;

use super::compare::{LONG_CONTEXT, VariantRun};

/// One row of compare.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareRow {
    pub variant: String,
    pub score: ScoreRow,
    pub tokens_per_s: Option<f64>,
    pub mean_tokens: Option<f64>,
    /// True when token counts were estimated from text length (journals without token counts).
    pub tokens_estimated: bool,
    pub kv_bytes: Option<u64>,
    pub kv_bytes_32k: u64,
    pub peak_bytes: Option<u64>,
    pub delta_vs_native: Option<f64>,
    pub p_value: Option<f64>,
    /// Which paired test gave `p_value` (e.g. `McNemar b=3 c=1`).
    pub test: Option<String>,
}

pub const CSV_HEADER: &str = "model,attention,backend,task,shots,n,metric,value,stderr,seconds,items_per_s,\
tokens_per_s,mean_tokens,kv_bytes,kv_bytes_32k,peak_bytes,delta_vs_native,p_value";

/// The compare.csv rows: every scores.csv row of every variant, with costs, and the delta and
/// paired test against `runs[reference]`.
pub fn assemble(
    runs: &[VariantRun],
    reference: usize,
    group_members: &dyn Fn(&str) -> Option<Vec<String>>,
) -> anyhow::Result<Vec<CompareRow>> {
    let base = &runs[reference];
    let mut rows = Vec::new();
    for (index, variant) in runs.iter().enumerate() {
        for score in &variant.run.rows {
            let tokens = token_stats(&variant.run, &score.task, group_members)?;
            let mean_tokens = tokens.mean();
            let mut row = CompareRow {
                variant: variant.label.clone(),
                score: score.clone(),
                tokens_per_s: tokens.per_second(),
                mean_tokens,
                tokens_estimated: tokens.estimated,
                kv_bytes: mean_tokens.map(|m| variant.kv.bytes(m.round() as usize)),
                kv_bytes_32k: variant.kv.bytes(LONG_CONTEXT),
                peak_bytes: variant.peak_bytes,
                delta_vs_native: None,
                p_value: None,
                test: None,
            };
            if index != reference
                && let Some(theirs) = base.run.row(&score.task, &score.metric)
            {
                row.delta_vs_native = Some(score.value - theirs.value);
                let ours = per_item(&variant.run, &score.task, &score.metric, group_members)?;
                let reference_items = per_item(&base.run, &score.task, &score.metric, group_members)?;
                if let (Some(a), Some(b)) = (reference_items, ours)
                    && !a.is_empty()
                    && a.keys().eq(b.keys())
                {
                    let a: Vec<f64> = a.into_values().collect();
                    let b: Vec<f64> = b.into_values().collect();
                    let result = paired_test(&a, &b);
                    if !result.p_value.is_nan() {
                        row.p_value = Some(result.p_value);
                        row.test = Some(match result.test {
                            PairedTest::McNemar { b, c } => format!("McNemar b={b} c={c}"),
                            PairedTest::PairedT { df, .. } => format!("paired t df={df}"),
                        });
                    }
                }
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The tasks whose samples make up `task`'s row: itself, or a group's members that have samples.
fn leaves(run: &RunDir, task: &str, group_members: &dyn Fn(&str) -> Option<Vec<String>>) -> Vec<String> {
    if run.samples.contains_key(task) {
        return vec![task.to_string()];
    }
    group_members(task)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| run.samples.contains_key(m))
        .collect()
}

/// Per-item values keyed by (task, doc_id); None when any leaf lacks them.
fn per_item(
    run: &RunDir,
    task: &str,
    metric: &str,
    group_members: &dyn Fn(&str) -> Option<Vec<String>>,
) -> anyhow::Result<Option<BTreeMap<(String, usize), f64>>> {
    let mut all = BTreeMap::new();
    for leaf in leaves(run, task, group_members) {
        let Some(values) = run.per_item(&leaf, metric)? else {
            return Ok(None);
        };
        all.extend(values.into_iter().map(|(doc, v)| ((leaf.clone(), doc), v)));
    }
    Ok((!all.is_empty()).then_some(all))
}

#[derive(Default)]
struct TokenStats {
    sequence_tokens: f64,
    sequences: usize,
    processed: f64,
    seconds: f64,
    estimated: bool,
}

impl TokenStats {
    fn mean(&self) -> Option<f64> {
        (self.sequences > 0).then(|| self.sequence_tokens / self.sequences as f64)
    }

    fn per_second(&self) -> Option<f64> {
        (self.seconds > 0.0 && self.processed > 0.0).then(|| self.processed / self.seconds)
    }

    fn add_sequence(&mut self, tokens: f64) {
        self.sequence_tokens += tokens;
        self.sequences += 1;
    }
}

/// Token counts from the journals; from text length / 4 where a journal has none.
fn token_stats(
    run: &RunDir,
    task: &str,
    group_members: &dyn Fn(&str) -> Option<Vec<String>>,
) -> anyhow::Result<TokenStats> {
    let mut stats = TokenStats::default();
    let counts = |v: &Value, key: &str| -> Vec<f64> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let chars = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map_or(0.0, |s| (s.chars().count() as f64 / 4.0).ceil())
    };
    for leaf in leaves(run, task, group_members) {
        for item in run.samples[&leaf].items.values() {
            let v = &item.value;
            stats.seconds += v.get("seconds").and_then(Value::as_f64).unwrap_or(0.0);
            if let Some(choices) = v.get("choices").and_then(Value::as_array) {
                // Multiple choice: one sequence per choice; a shared context is computed once.
                let shared = v.get("contexts").is_none_or(Value::is_null);
                let (mut context, mut continuation) = (counts(v, "context_tokens"), counts(v, "continuation_tokens"));
                if context.len() != choices.len() || continuation.len() != choices.len() {
                    stats.estimated = true;
                    let contexts = v.get("contexts").and_then(Value::as_array);
                    context = (0..choices.len())
                        .map(|i| chars(contexts.and_then(|c| c.get(i)).or(v.get("prompt"))))
                        .collect();
                    continuation = choices.iter().map(|c| chars(Some(c)).max(1.0)).collect();
                }
                for (c, x) in context.iter().zip(&continuation) {
                    stats.add_sequence(c + x);
                }
                stats.processed += if shared {
                    context.first().copied().unwrap_or(0.0) + continuation.iter().sum::<f64>()
                } else {
                    context.iter().sum::<f64>() + continuation.iter().sum::<f64>()
                };
            } else {
                // Generative: per sample, the prompt and its generation.
                let mut prompt = v.get("prompt_tokens").and_then(Value::as_f64).unwrap_or(0.0);
                if prompt == 0.0 {
                    stats.estimated = true;
                    prompt = chars(v.get("prompt"));
                }
                for generated in counts(v, "generated_tokens") {
                    stats.add_sequence(prompt + generated);
                    stats.processed += prompt + generated;
                }
            }
        }
    }
    Ok(stats)
}

pub fn write_csv(path: &Path, rows: &[CompareRow]) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_HEADER.split(','))?;
    let number = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let count = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    for row in rows {
        let s = &row.score;
        writer.write_record([
            s.model.clone(),
            s.attention.clone(),
            s.backend.clone(),
            s.task.clone(),
            s.shots.to_string(),
            s.n.to_string(),
            s.metric.clone(),
            s.value.to_string(),
            s.stderr.to_string(),
            s.seconds.to_string(),
            s.items_per_s.to_string(),
            number(row.tokens_per_s),
            number(row.mean_tokens),
            count(row.kv_bytes),
            row.kv_bytes_32k.to_string(),
            count(row.peak_bytes),
            number(row.delta_vs_native),
            number(row.p_value),
        ])?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    crate::journal::write_atomic(path, &bytes)
}
