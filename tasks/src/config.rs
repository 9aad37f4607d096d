//! A task file → a typed definition: the subset of lm-eval's `TaskConfig` (lm_eval/config/task.py)
//! that this crate implements. Every key is either understood, accepted as bookkeeping that
//! cannot change a result (listed in [`BOOKKEEPING_KEYS`]), or refused with an error naming the
//! file and line: a task file never runs differently from what it says.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value as Json;

use crate::error::TaskError;
use crate::hooks::{DocsHook, ResultsHook};
use crate::scoring::{ExactMatch, FilterPipeline, FilterStep, Metric, Metrics, RegexFilter};
use crate::template::Templates;
use crate::yaml::{Entry, Loc, Node, Yaml};

/// Keys lm-eval uses for naming and bookkeeping only; accepted and not used for requests or
/// scores (`metadata.version` is reported as the task's version).
pub const BOOKKEEPING_KEYS: [&str; 6] = [
    "dataset_name",
    "metadata",
    "should_decontaminate",
    "doc_to_decontamination_query",
    "task_alias",
    "unsafe_code",
];

/// `output_type` (the two this crate runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    MultipleChoice,
    GenerateUntil,
}

impl OutputType {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::MultipleChoice => "multiple_choice",
            OutputType::GenerateUntil => "generate_until",
        }
    }
}

/// How `doc_to_text`, `doc_to_target`, `doc_to_choice` or `description` is written.
#[derive(Debug, Clone)]
pub(crate) enum FieldSpec {
    /// A YAML integer.
    Int(i64),
    /// A string: a document field's name if the document has it, else a Jinja template
    /// (compiled under `template`).
    Text { source: String, template: String },
    /// A YAML list (`doc_to_choice: ["no", "yes"]`).
    List(Vec<Json>),
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub spec: FieldSpec,
    /// `doc_to_text`, … as the error messages name it.
    pub role: String,
    pub loc: Loc,
}

/// `fewshot_config.sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sampler {
    /// lm-eval's `ContextSampler`: `Random(seed).sample(pool, n)` per evaluated document.
    Default,
    /// `FirstNSampler`: the first n documents of the pool.
    FirstN,
}

/// A document written in the task file (`fewshot_config.samples`).
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub value: Json,
    pub loc: Loc,
}

/// The formatting of few-shot examples (`fewshot_config`, with the task's values where it sets
/// none: `FewshotConfig.from_dict`).
#[derive(Debug, Clone)]
pub(crate) struct FewshotDef {
    pub sampler: Sampler,
    pub samples: Option<Vec<Sample>>,
    pub doc_to_text: Field,
    pub doc_to_target: Field,
    pub doc_to_choice: Option<Field>,
    pub target_delimiter: String,
    pub fewshot_delimiter: String,
}

/// Where the documents are: local JSON/CSV files, one list per split.
#[derive(Debug, Clone)]
pub(crate) struct DatasetDef {
    pub format: Option<Format>,
    /// `dataset_path` when it is a local folder (data files are relative to it).
    pub folder: Option<PathBuf>,
    /// Split name → file names as written, with where they were written.
    pub data_files: BTreeMap<String, Vec<(String, Loc)>>,
    /// JSON: the top-level key that holds the records (HF's json builder `field`).
    pub field: Option<String>,
    /// CSV: the column names of a file without a header row.
    pub column_names: Option<Vec<String>>,
    /// CSV: `dtype: str` keeps every cell as text (pandas `read_csv(dtype=str)`).
    pub text_only: bool,
    pub loc: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Csv,
}

/// `generation_kwargs`, with lm-eval's defaults (`default_gen_kwargs`, `normalize_gen_kwargs`).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationKwargs {
    pub until: Vec<String>,
    pub max_gen_toks: usize,
    pub do_sample: bool,
    pub temperature: f64,
}

/// lm-eval's default `max_gen_toks` (lm_eval/defaults.py `DEFAULT_MAX_GEN_TOKS`).
pub const DEFAULT_MAX_GEN_TOKS: usize = 256;

#[derive(Debug, Clone, Default)]
pub(crate) struct Splits {
    pub test: Option<String>,
    pub validation: Option<String>,
    pub training: Option<String>,
    pub fewshot: Option<String>,
}

/// One task, as its file defines it.
#[derive(Debug)]
pub struct TaskDef {
    pub name: String,
    pub tags: Vec<String>,
    pub output_type: OutputType,
    /// `num_fewshot` (used when the run sets no shot count).
    pub num_fewshot: Option<usize>,
    /// The files this definition was read from (the file, then its includes).
    pub files: Vec<PathBuf>,
    pub(crate) dataset: DatasetDef,
    pub(crate) splits: Splits,
    pub(crate) doc_to_text: Field,
    pub(crate) doc_to_target: Field,
    pub(crate) doc_to_choice: Option<Field>,
    pub(crate) description: Option<Field>,
    pub(crate) target_delimiter: String,
    pub(crate) fewshot: FewshotDef,
    pub(crate) generation: Option<GenerationKwargs>,
    pub(crate) metrics: Metrics,
    pub(crate) process_docs: Option<(DocsHook, Loc)>,
    pub(crate) templates: Templates,
    /// A user file's folder: relative data paths resolve against it first.
    pub(crate) data_folder: Option<PathBuf>,
    /// The definition as lm-eval's results file shows it (`configs.<task>`).
    pub(crate) config: Json,
    pub(crate) loc: Loc,
}

/// A group file: `group`, its `task` list and how its score aggregates.
#[derive(Debug, Clone)]
pub struct GroupDef {
    pub name: String,
    pub alias: Option<String>,
    /// Tasks, groups or tags, as written.
    pub members: Vec<String>,
    /// `aggregate_metric_list`; empty for a group that only selects tasks.
    pub aggregate: Vec<AggregateMetric>,
    pub files: Vec<PathBuf>,
    pub(crate) loc: Loc,
}

/// One `aggregate_metric_list` entry (lm_eval/config/group.py `AggMetricConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateMetric {
    pub metric: String,
    /// Filter names; `None` = every filter the members report.
    pub filter_list: Option<Vec<String>>,
    /// A mean weighted by member size (else each member counts once).
    pub weight_by_size: bool,
}

/// What a task file defines.
#[derive(Debug)]
pub(crate) enum Definition {
    Task(Box<TaskDef>),
    Group(GroupDef),
}

/// Reads a merged task file (its `include`s resolved). lm-eval's rule: a `group` key makes it a
/// group file, else it is a task file.
/// `data_folder` is a user file's folder (`None` for built-in definitions).
pub(crate) fn definition(
    entries: Vec<Entry>,
    files: Vec<PathBuf>,
    file_loc: Loc,
    data_folder: Option<PathBuf>,
) -> Result<Definition, TaskError> {
    let mut keys = Keys::new(entries, file_loc);
    if keys.has("group") {
        return group(&mut keys, files).map(Definition::Group);
    }
    task(&mut keys, files, data_folder).map(|t| Definition::Task(Box::new(t)))
}

fn group(keys: &mut Keys, files: Vec<PathBuf>) -> Result<GroupDef, TaskError> {
    let name_node = keys.take("group").expect("checked");
    let name = string(&name_node)?;
    let alias = keys.take("group_alias").map(|n| string(&n)).transpose()?;
    let members = match keys.take("task") {
        None => return Err(keys.file_loc.error("a group needs a `task` list")),
        Some(n) => match string_list(&n)? {
            members if members.is_empty() => return Err(n.loc.error("a group's `task` list is empty")),
            members => members,
        },
    };
    let aggregate = match keys.take("aggregate_metric_list") {
        None => Vec::new(),
        Some(n) => list_or_one(&n).iter().map(aggregate_metric).collect::<Result<_, _>>()?,
    };
    keys.take("metadata");
    keys.reject_rest()?;
    Ok(GroupDef {
        name,
        alias,
        members,
        aggregate,
        files,
        loc: name_node.loc,
    })
}

fn aggregate_metric(node: &Node) -> Result<AggregateMetric, TaskError> {
    let mut k = Keys::of(node)?;
    let metric = string(&k.require("metric")?)?;
    let filter_list = k.take("filter_list").map(|n| string_list(&n)).transpose()?;
    if let Some(agg) = k.take("aggregation")
        && string(&agg)? != "mean"
    {
        return Err(agg.loc.error("`aggregation`: only `mean` is supported (as in lm-eval)"));
    }
    let weight_by_size = k
        .take("weight_by_size")
        .map(|n| boolean(&n))
        .transpose()?
        .unwrap_or(true);
    k.reject_rest()?;
    Ok(AggregateMetric {
        metric,
        filter_list,
        weight_by_size,
    })
}

fn task(keys: &mut Keys, files: Vec<PathBuf>, data_folder: Option<PathBuf>) -> Result<TaskDef, TaskError> {
    let name_node = keys.take("task").ok_or_else(|| {
        keys.file_loc
            .error("a task file needs `task` (or `group` for a group file)")
    })?;
    let name = string(&name_node)?;
    let config = lm_eval_config(keys.as_json(), &name, &keys.file_loc);
    for key in BOOKKEEPING_KEYS {
        keys.take(key);
    }
    let tags = keys
        .take("tag")
        .map(|n| string_list(&n))
        .transpose()?
        .unwrap_or_default();
    refuse_unsupported(keys)?;
    let output_type = output_type(keys)?;
    let dataset = dataset(keys)?;
    let splits = Splits {
        test: optional_string(keys.take("test_split"))?,
        validation: optional_string(keys.take("validation_split"))?,
        training: optional_string(keys.take("training_split"))?,
        fewshot: optional_string(keys.take("fewshot_split"))?,
    };
    let mut templates = Templates::new();
    let prompt = prompt(keys, &mut templates)?;
    if output_type == OutputType::MultipleChoice && prompt.doc_to_choice.is_none() {
        return Err(name_node.loc.error("a multiple_choice task needs `doc_to_choice`"));
    }
    let generation = generation_kwargs(
        keys.take("generation_kwargs"),
        output_type,
        &prompt.fewshot.fewshot_delimiter,
    )?;
    let (metrics, process_docs) = scoring(keys, output_type)?;
    keys.reject_rest()?;
    Ok(TaskDef {
        name,
        tags,
        output_type,
        num_fewshot: prompt.num_fewshot,
        files,
        dataset,
        splits,
        doc_to_text: prompt.doc_to_text,
        doc_to_target: prompt.doc_to_target,
        doc_to_choice: prompt.doc_to_choice,
        description: prompt.description,
        target_delimiter: prompt.target_delimiter,
        fewshot: prompt.fewshot,
        generation,
        metrics,
        process_docs,
        templates,
        data_folder,
        config,
        loc: name_node.loc,
    })
}

fn output_type(keys: &mut Keys) -> Result<OutputType, TaskError> {
    let Some(n) = keys.take("output_type") else {
        // TaskConfig's default.
        return Ok(OutputType::GenerateUntil);
    };
    match string(&n)?.as_str() {
        "multiple_choice" => Ok(OutputType::MultipleChoice),
        "generate_until" => Ok(OutputType::GenerateUntil),
        other => Err(n.loc.error(format!(
            "output_type `{other}` is not supported (multiple_choice, generate_until)"
        ))),
    }
}

/// The keys that shape the prompt.
struct Prompt {
    doc_to_text: Field,
    doc_to_target: Field,
    doc_to_choice: Option<Field>,
    description: Option<Field>,
    target_delimiter: String,
    num_fewshot: Option<usize>,
    fewshot: FewshotDef,
}

fn prompt(keys: &mut Keys, templates: &mut Templates) -> Result<Prompt, TaskError> {
    let mut field = |keys: &mut Keys, key: &str| -> Result<Option<Field>, TaskError> {
        keys.take(key).map(|n| field_spec(&n, key, templates)).transpose()
    };
    let doc_to_text = field(keys, "doc_to_text")?.ok_or_else(|| keys.file_loc.error("`doc_to_text` is required"))?;
    let doc_to_target =
        field(keys, "doc_to_target")?.ok_or_else(|| keys.file_loc.error("`doc_to_target` is required"))?;
    let doc_to_choice = field(keys, "doc_to_choice")?;
    let description = field(keys, "description")?;
    let target_delimiter = optional_string(keys.take("target_delimiter"))?.unwrap_or_else(|| " ".into());
    let fewshot_delimiter = optional_string(keys.take("fewshot_delimiter"))?.unwrap_or_else(|| "\n\n".into());
    let num_fewshot = keys.take("num_fewshot").map(|n| count(&n)).transpose()?;
    let defaults = FewshotDef {
        sampler: Sampler::Default,
        samples: None,
        doc_to_text: doc_to_text.clone(),
        doc_to_target: doc_to_target.clone(),
        doc_to_choice: doc_to_choice.clone(),
        target_delimiter: target_delimiter.clone(),
        fewshot_delimiter,
    };
    let fewshot = match keys.take("fewshot_config") {
        None => defaults,
        Some(n) => fewshot_config(&n, defaults, templates)?,
    };
    Ok(Prompt {
        doc_to_text,
        doc_to_target,
        doc_to_choice,
        description,
        target_delimiter,
        num_fewshot,
        fewshot,
    })
}

/// `repeats`, `filter_list`, `metric_list` and the hooks.
fn scoring(keys: &mut Keys, output_type: OutputType) -> Result<(Metrics, Option<(DocsHook, Loc)>), TaskError> {
    if let Some(r) = keys.take("repeats")
        && count(&r)? != 1
    {
        return Err(r
            .loc
            .error("`repeats` other than 1 is not supported; the harness's --samples draws several"));
    }
    let filters = match keys.take("filter_list") {
        None => vec![FilterPipeline::none()],
        Some(n) => list_of(&n, "filter_list")?
            .iter()
            .map(filter_pipeline)
            .collect::<Result<_, _>>()?,
    };
    let process_docs = keys
        .take("process_docs")
        .map(|n| hook(&n, DocsHook::from_name))
        .transpose()?;
    let process_results = keys
        .take("process_results")
        .map(|n| hook(&n, ResultsHook::from_name))
        .transpose()?;
    let metrics = metric_list(keys.take("metric_list"), output_type, filters, process_results)?;
    Ok((metrics, process_docs))
}

/// The task's config as lm-eval's results file shows it (`TaskConfig.to_dict` after
/// `__post_init__`): the file's keys, TaskConfig's defaults for those it does not set, the full
/// `fewshot_config` (`FewshotConfig.from_dict`), greedy `generation_kwargs` by default, and
/// `metadata.config_source`.
fn lm_eval_config(mut map: serde_json::Map<String, Json>, name: &str, file: &Loc) -> Json {
    map.insert("task".into(), Json::from(name));
    for (key, value) in [
        ("output_type", Json::from("generate_until")),
        ("description", Json::from("")),
        ("target_delimiter", Json::from(" ")),
        ("fewshot_delimiter", Json::from("\n\n")),
        ("repeats", Json::from(1)),
        ("should_decontaminate", Json::from(false)),
        ("unsafe_code", Json::from(false)),
    ] {
        map.entry(key).or_insert(value);
    }
    let get = |k: &str| map.get(k).cloned().unwrap_or(Json::Null);
    let mut fewshot = serde_json::json!({
        "sampler": "default", "split": get("fewshot_split"), "process_docs": get("process_docs"),
        "fewshot_indices": null, "samples": null, "doc_to_text": get("doc_to_text"),
        "doc_to_choice": get("doc_to_choice"), "doc_to_target": get("doc_to_target"), "gen_prefix": null,
        "fewshot_delimiter": get("fewshot_delimiter"), "target_delimiter": get("target_delimiter"),
    });
    if let (Some(Json::Object(given)), Some(out)) = (map.get("fewshot_config"), fewshot.as_object_mut()) {
        out.extend(
            given
                .iter()
                .filter(|(k, _)| *k != "split")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    let delimiter = get("fewshot_delimiter");
    map.insert("fewshot_config".into(), fewshot);
    if map["output_type"] == "generate_until" {
        let kwargs = map.entry("generation_kwargs").or_insert_with(
            || serde_json::json!({"temperature": 0.0, "do_sample": false, "max_gen_toks": DEFAULT_MAX_GEN_TOKS}),
        );
        if let Some(kw) = kwargs.as_object_mut() {
            kw.entry("until").or_insert_with(|| Json::Array(vec![delimiter]));
            if let Some(t) = kw.get("temperature").and_then(Json::as_f64) {
                kw.insert(
                    "temperature".into(),
                    serde_json::Number::from_f64(t).map_or(Json::Null, Json::Number),
                );
            }
        }
    }
    let metadata = map.entry("metadata").or_insert_with(|| serde_json::json!({}));
    if let Some(m) = metadata.as_object_mut() {
        m.insert("config_source".into(), Json::from(file.file.display().to_string()));
    }
    Json::Object(map)
}

/// Keys of lm-eval's TaskConfig that change results and that this crate does not implement.
fn refuse_unsupported(keys: &mut Keys) -> Result<(), TaskError> {
    for (key, why) in [
        ("class", "Python task classes cannot run here"),
        ("custom_dataset", "a Python data loader cannot run here"),
        ("use_prompt", "promptsource prompts are not supported"),
        ("doc_to_image", "multimodal tasks are not supported"),
        ("doc_to_audio", "multimodal tasks are not supported"),
        ("gen_prefix", "`gen_prefix` is not supported"),
        ("task_list", "`task_list` is not supported; write one file per task"),
    ] {
        if let Some(n) = keys.take(key) {
            return Err(n.loc.error(format!("`{key}`: {why}")));
        }
    }
    Ok(())
}

fn dataset(keys: &mut Keys) -> Result<DatasetDef, TaskError> {
    let path = keys.take("dataset_path").ok_or_else(|| {
        keys.file_loc
            .error("`dataset_path` is required (`json` or `csv` with `dataset_kwargs.data_files`)")
    })?;
    let loc = path.loc.clone();
    let (format, folder) = match string(&path)?.as_str() {
        "json" => (Some(Format::Json), None),
        "csv" => (Some(Format::Csv), None),
        other if other.starts_with('.') || other.starts_with('/') => (None, Some(PathBuf::from(other))),
        other => {
            return Err(loc.error(format!(
                "dataset_path `{other}` looks like a remote (Hugging Face Hub) data set; only local data is \
                 supported: `dataset_path: json` or `csv` with `dataset_kwargs.data_files`, or a local folder \
                 written as a path (`./data`)"
            )));
        }
    };
    let mut data = DatasetDef {
        format,
        folder,
        data_files: BTreeMap::new(),
        field: None,
        column_names: None,
        text_only: false,
        loc: loc.clone(),
    };
    let Some(kwargs) = keys.take("dataset_kwargs") else {
        return Err(loc.error("`dataset_kwargs.data_files` is required: which file holds each split"));
    };
    let mut k = Keys::of(&kwargs)?;
    let files = k.take("data_files").ok_or_else(|| {
        kwargs
            .loc
            .error("`dataset_kwargs.data_files` is required: which file holds each split")
    })?;
    data.data_files = data_files(&files)?;
    data.field = optional_string(k.take("field"))?;
    data.column_names = k.take("column_names").map(|n| string_list(&n)).transpose()?;
    if let Some(n) = k.take("dtype") {
        match string(&n)?.as_str() {
            "str" | "object" => data.text_only = true,
            other => return Err(n.loc.error(format!("dtype `{other}` is not supported (str)"))),
        }
    }
    // Only matters to HF data set scripts, which local json/csv files are not.
    k.take("trust_remote_code");
    k.reject_rest()?;
    Ok(data)
}

/// `data_files` as HF's `load_dataset` takes it: a file, a list (split "train"), or a split →
/// file(s) mapping.
fn data_files(node: &Node) -> Result<BTreeMap<String, Vec<(String, Loc)>>, TaskError> {
    let files = |n: &Node| -> Result<Vec<(String, Loc)>, TaskError> {
        match &n.value {
            Yaml::Str(s) => Ok(vec![(s.clone(), n.loc.clone())]),
            Yaml::Seq(items) => items.iter().map(|i| Ok((string(i)?, i.loc.clone()))).collect(),
            _ => Err(n
                .loc
                .error(format!("a data file name or a list of them, not {}", n.kind()))),
        }
    };
    match &node.value {
        Yaml::Map(entries) => entries.iter().map(|e| Ok((e.key.clone(), files(&e.value)?))).collect(),
        _ => Ok(BTreeMap::from([("train".to_string(), files(node)?)])),
    }
}

fn field_spec(node: &Node, role: &str, templates: &mut Templates) -> Result<Field, TaskError> {
    let spec = match &node.value {
        Yaml::Int(i) => FieldSpec::Int(*i),
        Yaml::Str(s) => {
            let name = format!("{role}@{}", node.loc);
            templates
                .add(&name, s)
                .map_err(|e| node.loc.error(format!("{role}: {e}")))?;
            FieldSpec::Text {
                source: s.clone(),
                template: name,
            }
        }
        Yaml::Seq(_) => match node.to_json() {
            Json::Array(items) => FieldSpec::List(items),
            _ => unreachable!("a sequence is an array"),
        },
        Yaml::Map(_) if role.ends_with("doc_to_choice") => match node.to_json() {
            // doc_to_choice as a mapping: its values (api/task.py `doc_to_choice`).
            Json::Object(map) => FieldSpec::List(map.into_iter().map(|(_, v)| v).collect()),
            _ => unreachable!("a mapping is an object"),
        },
        Yaml::Function(f) => return Err(function_error(node, f)),
        _ => {
            return Err(node.loc.error(format!(
                "`{role}` must be a template, a field name, an integer or a list, not {}",
                node.kind()
            )));
        }
    };
    Ok(Field {
        spec,
        role: role.to_string(),
        loc: node.loc.clone(),
    })
}

fn function_error(node: &Node, f: &str) -> TaskError {
    node.loc.error(format!(
        "`!function {f}`: Python functions cannot run here; write it as a Jinja template, or name one of the \
         built-in hooks ({}) where the code is in this crate",
        crate::hooks::hook_names()
    ))
}

fn hook<T>(node: &Node, from_name: fn(&str) -> Option<T>) -> Result<(T, Loc), TaskError> {
    match &node.value {
        Yaml::Function(f) => Err(function_error(node, f)),
        Yaml::Str(s) => from_name(s).map(|h| (h, node.loc.clone())).ok_or_else(|| {
            node.loc.error(format!(
                "unknown hook `{s}`; built-in hooks: {}",
                crate::hooks::hook_names()
            ))
        }),
        _ => Err(node.loc.error("a hook is named by a string")),
    }
}

fn fewshot_config(node: &Node, mut def: FewshotDef, templates: &mut Templates) -> Result<FewshotDef, TaskError> {
    let mut k = Keys::of(node)?;
    if let Some(s) = k.take("sampler") {
        def.sampler = match string(&s)?.as_str() {
            "default" => Sampler::Default,
            "first_n" => Sampler::FirstN,
            other => {
                return Err(s
                    .loc
                    .error(format!("sampler `{other}` is not supported (default, first_n)")));
            }
        };
    }
    if let Some(s) = k.take("samples") {
        if let Yaml::Function(f) = &s.value {
            return Err(function_error(&s, f));
        }
        let samples = list_of(&s, "samples")?
            .iter()
            .map(|n| match n.to_json() {
                Json::Object(_) => Ok(Sample {
                    value: n.to_json(),
                    loc: n.loc.clone(),
                }),
                _ => Err(n.loc.error("each few-shot sample is a mapping of document fields")),
            })
            .collect::<Result<_, _>>()?;
        def.samples = Some(samples);
    }
    for (key, slot) in [
        ("doc_to_text", &mut def.doc_to_text),
        ("doc_to_target", &mut def.doc_to_target),
    ] {
        if let Some(n) = k.take(key) {
            *slot = field_spec(&n, &format!("fewshot_config.{key}"), templates)?;
        }
    }
    if let Some(n) = k.take("doc_to_choice") {
        def.doc_to_choice = Some(field_spec(&n, "fewshot_config.doc_to_choice", templates)?);
    }
    if let Some(n) = k.take("target_delimiter") {
        def.target_delimiter = string(&n)?;
    }
    if let Some(n) = k.take("fewshot_delimiter") {
        def.fewshot_delimiter = string(&n)?;
    }
    if let Some(n) = k.take("split") {
        return Err(n.loc.error(
            "`fewshot_config.split` has no effect in lm-eval (it is overridden by `fewshot_split`); write `fewshot_split`",
        ));
    }
    k.reject_rest()?;
    Ok(def)
}

fn generation_kwargs(
    node: Option<Node>,
    output: OutputType,
    fewshot_delimiter: &str,
) -> Result<Option<GenerationKwargs>, TaskError> {
    if output != OutputType::GenerateUntil {
        return match node {
            Some(n) => Err(n.loc.error("`generation_kwargs` belongs to generate_until tasks")),
            None => Ok(None),
        };
    }
    // TaskConfig.__post_init__: no kwargs → greedy, until the few-shot delimiter.
    let mut kw = GenerationKwargs {
        until: vec![fewshot_delimiter.to_string()],
        max_gen_toks: DEFAULT_MAX_GEN_TOKS,
        do_sample: false,
        temperature: 0.0,
    };
    let Some(node) = node else { return Ok(Some(kw)) };
    let mut k = Keys::of(&node)?;
    if let Some(u) = k.take("until") {
        kw.until = match &u.value {
            Yaml::Str(s) => vec![s.clone()],
            _ => string_list(&u)?,
        };
    }
    // normalize_gen_kwargs: max_gen_toks > max_new_tokens > max_tokens > max_completion_tokens.
    let mut max = None;
    for key in ["max_completion_tokens", "max_tokens", "max_new_tokens", "max_gen_toks"] {
        if let Some(n) = k.take(key) {
            let tokens = count(&n)?;
            if tokens == 0 {
                return Err(n.loc.error(format!("`{key}` must be at least 1, got 0")));
            }
            max = Some(tokens);
        }
    }
    kw.max_gen_toks = max.unwrap_or(DEFAULT_MAX_GEN_TOKS);
    if let Some(n) = k.take("do_sample") {
        kw.do_sample = boolean(&n)?;
    }
    if let Some(n) = k.take("temperature") {
        kw.temperature = number(&n)?;
        if !(kw.temperature >= 0.0 && kw.temperature.is_finite()) {
            return Err(n
                .loc
                .error(format!("`temperature` must be ≥ 0, got {}", kw.temperature)));
        }
    }
    // normalize_gen_kwargs: greedy decoding has temperature 0.
    if !kw.do_sample {
        kw.temperature = 0.0;
    }
    k.reject_rest()?;
    Ok(Some(kw))
}

fn filter_pipeline(node: &Node) -> Result<FilterPipeline, TaskError> {
    let mut k = Keys::of(node)?;
    let name = string(&k.require("name")?)?;
    let steps = list_of(&k.require("filter")?, "filter")?
        .iter()
        .map(filter_step)
        .collect::<Result<Vec<_>, _>>()?;
    k.reject_rest()?;
    Ok(FilterPipeline { name, steps })
}

fn filter_step(node: &Node) -> Result<FilterStep, TaskError> {
    let mut k = Keys::of(node)?;
    let function = k.require("function")?;
    let step = match string(&function)?.as_str() {
        "regex" => {
            let pattern = optional_string(k.take("regex_pattern"))?.unwrap_or_else(|| r"#### (\-?[0-9\.\,]+)".into());
            let group_select = k.take("group_select").map(|n| int(&n)).transpose()?.unwrap_or(0);
            let fallback = optional_string(k.take("fallback"))?.unwrap_or_else(|| crate::scoring::INVALID.into());
            FilterStep::Regex(
                RegexFilter::new(&pattern, group_select as isize, fallback).map_err(|e| function.loc.error(e))?,
            )
        }
        "take_first" => FilterStep::TakeFirst,
        "majority_vote" => FilterStep::MajorityVote,
        "remove_whitespace" => FilterStep::RemoveWhitespace,
        other => {
            return Err(function.loc.error(format!(
                "filter function `{other}` is not supported (regex, take_first, majority_vote, remove_whitespace)"
            )));
        }
    };
    k.reject_rest()?;
    Ok(step)
}

fn metric_list(
    node: Option<Node>,
    output: OutputType,
    filters: Vec<FilterPipeline>,
    hook: Option<(ResultsHook, Loc)>,
) -> Result<Metrics, TaskError> {
    let entries: Vec<Node> = match &node {
        Some(n) => list_of(n, "metric_list")?.to_vec(),
        None => Vec::new(),
    };
    if let Some((hook, loc)) = hook {
        return hook.metrics(&entries, &loc);
    }
    if node.is_some() && entries.is_empty() {
        return Err(node
            .as_ref()
            .map_or_else(|| unreachable!(), |n| n.loc.error("`metric_list` is empty")));
    }
    match output {
        OutputType::MultipleChoice => {
            let mut metrics = Vec::new();
            for entry in &entries {
                let (metric, loc) = mc_metric(entry)?;
                if metrics.contains(&metric) {
                    return Err(loc.error(format!("metric `{}` is listed twice", metric.name())));
                }
                metrics.push(metric);
            }
            if node.is_none() {
                // DEFAULT_METRIC_REGISTRY["multiple_choice"]
                metrics = vec![Metric::Acc, Metric::AccNorm];
            }
            Ok(Metrics::Choice(metrics))
        }
        OutputType::GenerateUntil => {
            // lm-eval keeps one function per metric name: exact_match is the only one here.
            let exact_match = match entries.as_slice() {
                [] => ExactMatch::default(),
                [one] => gen_metric(one)?,
                [_, second, ..] => {
                    return Err(second
                        .loc
                        .error("generate_until tasks report one metric here: exact_match"));
                }
            };
            Ok(Metrics::Generation { filters, exact_match })
        }
    }
}

/// `aggregation` (mean only) and `higher_is_better` (true: the only kind here) of a metric entry.
fn common_metric_keys(k: &mut Keys) -> Result<(), TaskError> {
    if let Some(a) = k.take("aggregation")
        && string(&a)? != "mean"
    {
        return Err(a.loc.error("only `aggregation: mean` is supported"));
    }
    if let Some(h) = k.take("higher_is_better")
        && !boolean(&h)?
    {
        return Err(h
            .loc
            .error("these metrics are higher-is-better; `higher_is_better: false` would misreport them"));
    }
    Ok(())
}

pub(crate) fn metric_name(node: &Node) -> Result<(Keys, Node), TaskError> {
    let mut k = Keys::of(node)?;
    let metric = k.require("metric")?;
    if let Yaml::Function(f) = &metric.value {
        return Err(function_error(&metric, f));
    }
    common_metric_keys(&mut k)?;
    Ok((k, metric))
}

fn mc_metric(node: &Node) -> Result<(Metric, Loc), TaskError> {
    let (mut k, metric) = metric_name(node)?;
    let m = match string(&metric)?.as_str() {
        "acc" => Metric::Acc,
        "acc_norm" => Metric::AccNorm,
        other => {
            return Err(metric.loc.error(format!(
                "metric `{other}` is not supported for multiple_choice (acc, acc_norm)"
            )));
        }
    };
    k.reject_rest()?;
    Ok((m, metric.loc))
}

fn gen_metric(node: &Node) -> Result<ExactMatch, TaskError> {
    let (mut k, metric) = metric_name(node)?;
    let name = string(&metric)?;
    if name != "exact_match" {
        return Err(metric.loc.error(format!(
            "metric `{name}` is not supported for generate_until (exact_match; code and LaTeX scoring are hooks)"
        )));
    }
    let mut em = ExactMatch::default();
    if let Some(n) = k.take("ignore_case") {
        em.ignore_case = boolean(&n)?;
    }
    if let Some(n) = k.take("ignore_punctuation") {
        em.ignore_punctuation = boolean(&n)?;
    }
    if let Some(n) = k.take("ignore_numbers") {
        em.ignore_numbers = boolean(&n)?;
    }
    if let Some(n) = k.take("regexes_to_ignore") {
        for (pattern, loc) in string_list(&n)?
            .iter()
            .zip(list_of(&n, "regexes_to_ignore")?.iter().map(|i| i.loc.clone()))
        {
            em.regexes_to_ignore
                .push(crate::pyregex::compile(pattern).map_err(|e| loc.error(e))?);
        }
    }
    k.reject_rest()?;
    Ok(em)
}

// ---------------------------------------------------------------------------------------------
// Reading values

/// The keys of one mapping, taken one by one; what is left is unknown.
pub(crate) struct Keys {
    entries: Vec<Entry>,
    file_loc: Loc,
}

impl Keys {
    fn new(entries: Vec<Entry>, file_loc: Loc) -> Self {
        Keys { entries, file_loc }
    }

    pub(crate) fn of(node: &Node) -> Result<Self, TaskError> {
        match node.as_map() {
            Some(m) => Ok(Keys::new(m.to_vec(), node.loc.clone())),
            None => Err(node.loc.error(format!("expected a mapping, found {}", node.kind()))),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    pub(crate) fn take(&mut self, key: &str) -> Option<Node> {
        let at = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(at).value)
    }

    pub(crate) fn require(&mut self, key: &str) -> Result<Node, TaskError> {
        let loc = self.file_loc.clone();
        self.take(key)
            .ok_or_else(|| loc.error(format!("`{key}` is required here")))
    }

    /// The file's keys as JSON, without `tag` (lm-eval drops it before building the task).
    fn as_json(&self) -> serde_json::Map<String, Json> {
        self.entries
            .iter()
            .filter(|e| e.key != "tag")
            .map(|e| (e.key.clone(), e.value.to_json()))
            .collect()
    }

    pub(crate) fn reject_rest(&mut self) -> Result<(), TaskError> {
        match self.entries.first() {
            None => Ok(()),
            Some(e) => Err(e.loc.error(format!("unknown key `{}`", e.key))),
        }
    }
}

pub(crate) fn string(node: &Node) -> Result<String, TaskError> {
    match &node.value {
        Yaml::Str(s) => Ok(s.clone()),
        Yaml::Function(f) => Err(function_error(node, f)),
        _ => Err(node.loc.error(format!("expected a string, found {}", node.kind()))),
    }
}

fn optional_string(node: Option<Node>) -> Result<Option<String>, TaskError> {
    match node {
        None => Ok(None),
        Some(Node { value: Yaml::Null, .. }) => Ok(None),
        Some(n) => string(&n).map(Some),
    }
}

fn string_list(node: &Node) -> Result<Vec<String>, TaskError> {
    list_or_one(node).iter().map(string).collect()
}

/// A list, or a single value standing for a list of one.
fn list_or_one(node: &Node) -> Vec<Node> {
    match &node.value {
        Yaml::Seq(items) => items.clone(),
        _ => vec![node.clone()],
    }
}

fn list_of<'a>(node: &'a Node, what: &str) -> Result<&'a [Node], TaskError> {
    match &node.value {
        Yaml::Seq(items) => Ok(items),
        Yaml::Function(f) => Err(function_error(node, f)),
        _ => Err(node.loc.error(format!("`{what}` must be a list, not {}", node.kind()))),
    }
}

pub(crate) fn boolean(node: &Node) -> Result<bool, TaskError> {
    match node.value {
        Yaml::Bool(b) => Ok(b),
        _ => Err(node.loc.error(format!("expected true or false, found {}", node.kind()))),
    }
}

fn int(node: &Node) -> Result<i64, TaskError> {
    match node.value {
        Yaml::Int(i) => Ok(i),
        _ => Err(node.loc.error(format!("expected an integer, found {}", node.kind()))),
    }
}

pub(crate) fn count(node: &Node) -> Result<usize, TaskError> {
    usize::try_from(int(node)?).map_err(|_| node.loc.error("expected a count (an integer ≥ 0)"))
}

fn number(node: &Node) -> Result<f64, TaskError> {
    match node.value {
        Yaml::Int(i) => Ok(i as f64),
        Yaml::Float(f) => Ok(f),
        _ => Err(node.loc.error(format!("expected a number, found {}", node.kind()))),
    }
}
