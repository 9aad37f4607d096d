//! The task definitions: lm-evaluation-harness 0.4.x YAML/utils (checked at tag v0.4.12, and
//! unchanged in substance since v0.4.0) rewritten as Rust. Each loader cites its lm-eval file.
//!
//! A document is reduced to what lm-eval's multiple-choice machinery needs:
//! `doc_to_text` (or, for winogrande, one context per choice), `doc_to_choice`, the gold index,
//! and the answer text a few-shot example shows after the target delimiter.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Metric;
use crate::data;
use crate::error::TaskError;
use crate::pytext::{py_capitalize, py_lstrip, py_strip};

/// What `doc_to_text` gives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Query {
    /// A string: the context; each choice is a continuation.
    Text(String),
    /// An integer (lm-eval's "multiple input" case, winogrande): every choice is a context and
    /// the answer text is the shared continuation.
    PerChoice,
}

#[derive(Debug, Clone)]
pub(crate) struct Doc {
    /// The whole source record: lm-eval compares few-shot candidates with the evaluated doc by
    /// dict equality (`x != doc`), i.e. by content.
    pub ident: String,
    pub query: Query,
    pub choices: Vec<String>,
    pub gold: usize,
    /// `doc_to_target` as a few-shot example writes it: `choices[gold]` when the target is an
    /// index (or, for commonsense_qa, the letter itself, which equals `choices[gold]`); for
    /// winogrande the text after the blank.
    pub answer: String,
}

pub(crate) struct Loaded {
    pub docs: Vec<Doc>,
    pub files: Vec<PathBuf>,
}

/// Which sampler lm-eval uses for few-shot examples (`fewshot_config.sampler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SamplerKind {
    /// `ContextSampler`: `Random(seed).sample(docs, n)`.
    Default,
    /// `FirstNSampler`: the first n docs in order.
    FirstN,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Hellaswag,
    ArcEasy,
    ArcChallenge,
    Piqa,
    Winogrande,
    Siqa,
    OpenbookQa,
    CommonsenseQa,
    Boolq,
    Mmlu(usize),
}

/// MMLU subjects with their lm-eval category group
/// (`lm_eval/tasks/mmlu/default/mmlu_<subject>.yaml`, key `tag: mmlu_<category>_tasks`).
pub(crate) const MMLU_SUBJECTS: [(&str, &str); 57] = [
    ("abstract_algebra", "stem"),
    ("anatomy", "stem"),
    ("astronomy", "stem"),
    ("business_ethics", "other"),
    ("clinical_knowledge", "other"),
    ("college_biology", "stem"),
    ("college_chemistry", "stem"),
    ("college_computer_science", "stem"),
    ("college_mathematics", "stem"),
    ("college_medicine", "other"),
    ("college_physics", "stem"),
    ("computer_security", "stem"),
    ("conceptual_physics", "stem"),
    ("econometrics", "social_sciences"),
    ("electrical_engineering", "stem"),
    ("elementary_mathematics", "stem"),
    ("formal_logic", "humanities"),
    ("global_facts", "other"),
    ("high_school_biology", "stem"),
    ("high_school_chemistry", "stem"),
    ("high_school_computer_science", "stem"),
    ("high_school_european_history", "humanities"),
    ("high_school_geography", "social_sciences"),
    ("high_school_government_and_politics", "social_sciences"),
    ("high_school_macroeconomics", "social_sciences"),
    ("high_school_mathematics", "stem"),
    ("high_school_microeconomics", "social_sciences"),
    ("high_school_physics", "stem"),
    ("high_school_psychology", "social_sciences"),
    ("high_school_statistics", "stem"),
    ("high_school_us_history", "humanities"),
    ("high_school_world_history", "humanities"),
    ("human_aging", "other"),
    ("human_sexuality", "social_sciences"),
    ("international_law", "humanities"),
    ("jurisprudence", "humanities"),
    ("logical_fallacies", "humanities"),
    ("machine_learning", "stem"),
    ("management", "other"),
    ("marketing", "other"),
    ("medical_genetics", "other"),
    ("miscellaneous", "other"),
    ("moral_disputes", "humanities"),
    ("moral_scenarios", "humanities"),
    ("nutrition", "other"),
    ("philosophy", "humanities"),
    ("prehistory", "humanities"),
    ("professional_accounting", "other"),
    ("professional_law", "humanities"),
    ("professional_medicine", "other"),
    ("professional_psychology", "social_sciences"),
    ("public_relations", "social_sciences"),
    ("security_studies", "social_sciences"),
    ("sociology", "social_sciences"),
    ("us_foreign_policy", "social_sciences"),
    ("virology", "other"),
    ("world_religions", "humanities"),
];

impl Kind {
    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "hellaswag" => Kind::Hellaswag,
            "arc_easy" => Kind::ArcEasy,
            "arc_challenge" => Kind::ArcChallenge,
            "piqa" => Kind::Piqa,
            "winogrande" => Kind::Winogrande,
            "siqa" => Kind::Siqa,
            "openbookqa" => Kind::OpenbookQa,
            "commonsense_qa" => Kind::CommonsenseQa,
            "boolq" => Kind::Boolq,
            _ => {
                let subject = name.strip_prefix("mmlu_")?;
                Kind::Mmlu(MMLU_SUBJECTS.iter().position(|(s, _)| *s == subject)?)
            }
        })
    }

    /// `metric_list` of the task's YAML (all multiple-choice metrics are means).
    pub(crate) fn metrics(self) -> Vec<Metric> {
        match self {
            // hellaswag.yaml, arc_easy.yaml, piqa.yaml, openbookqa.yaml: acc, acc_norm.
            Kind::Hellaswag | Kind::ArcEasy | Kind::ArcChallenge | Kind::Piqa | Kind::OpenbookQa => {
                vec![Metric::Acc, Metric::AccNorm]
            }
            // winogrande/default.yaml, siqa/siqa.yaml, commonsense_qa/default.yaml,
            // super_glue/boolq/default.yaml, mmlu/default/_default_template_yaml: acc.
            Kind::Winogrande | Kind::Siqa | Kind::CommonsenseQa | Kind::Boolq | Kind::Mmlu(_) => {
                vec![Metric::Acc]
            }
        }
    }

    /// `description` (prepended once, before the few-shot examples; also at 0 shots).
    pub(crate) fn description(self) -> String {
        match self {
            // mmlu/default/mmlu_<subject>.yaml: "The following are multiple choice questions
            // (with answers) about <subject with _ as space>.\n\n"
            Kind::Mmlu(i) => format!(
                "The following are multiple choice questions (with answers) about {}.\n\n",
                MMLU_SUBJECTS[i].0.replace('_', " ")
            ),
            _ => String::new(),
        }
    }

    /// `fewshot_config.sampler`.
    pub(crate) fn sampler(self) -> SamplerKind {
        match self {
            // mmlu/default/_default_template_yaml: fewshot_config: sampler: first_n
            Kind::Mmlu(_) => SamplerKind::FirstN,
            _ => SamplerKind::Default,
        }
    }

    /// lm-eval passes the evaluated doc to the sampler (which then draws n + 1 and drops the doc
    /// if drawn) when `fewshot_split == test_split` (api/task.py `fewshot_context`; v0.4.0–0.4.9:
    /// samplers.py `get_context`). Both are unset (None == None) for the tasks evaluated on their
    /// validation split, so they draw n + 1 even though the few-shot docs come from `train`.
    pub(crate) fn draws_extra(self) -> bool {
        match self {
            // test_split: test, fewshot_split unset / dev.
            Kind::ArcEasy | Kind::ArcChallenge | Kind::OpenbookQa | Kind::Mmlu(_) => false,
            // test_split and fewshot_split both unset.
            Kind::Hellaswag | Kind::Piqa | Kind::Winogrande | Kind::Siqa | Kind::CommonsenseQa | Kind::Boolq => true,
        }
    }

    /// The evaluation split: `test_split` if set, else `validation_split`.
    pub(crate) fn eval_docs(self, dir: &Path) -> Result<Loaded, TaskError> {
        match self {
            Kind::Hellaswag => hellaswag(&dir.join("hellaswag/hellaswag_val.jsonl.gz")),
            Kind::ArcEasy => arc(&dir.join("arc_easy/ARC-Easy-Test.jsonl.gz")),
            Kind::ArcChallenge => arc(&dir.join("arc_challenge/ARC-Challenge-Test.jsonl.gz")),
            Kind::Piqa => piqa(&dir.join("piqa/valid.jsonl.gz"), &dir.join("piqa/valid-labels.lst.gz")),
            Kind::Winogrande => winogrande(&dir.join("winogrande/dev.jsonl.gz")),
            Kind::Siqa => siqa(&dir.join("siqa/dev.jsonl.gz"), &dir.join("siqa/dev-labels.lst.gz")),
            Kind::OpenbookQa => openbookqa(&dir.join("openbookqa/test.jsonl.gz")),
            Kind::CommonsenseQa => commonsense_qa(&dir.join("commonsense_qa/dev_rand_split.jsonl.gz")),
            Kind::Boolq => boolq(&dir.join("boolq/val.jsonl.gz")),
            Kind::Mmlu(i) => mmlu(&dir.join(format!("mmlu/test/{}_test.csv.gz", MMLU_SUBJECTS[i].0))),
        }
    }

    /// The few-shot docs: `fewshot_split` if set, else `training_split`, else `validation_split`
    /// (api/task.py `ConfigurableTask.fewshot_docs` → `Task.fewshot_docs`). `Err(split name)`
    /// when that split is not bundled.
    pub(crate) fn fewshot_docs(self, dir: &Path) -> Result<Result<Loaded, &'static str>, TaskError> {
        Ok(Ok(match self {
            // training_split: train
            Kind::ArcEasy => arc(&dir.join("arc_easy/ARC-Easy-Train.jsonl.gz"))?,
            Kind::ArcChallenge => arc(&dir.join("arc_challenge/ARC-Challenge-Train.jsonl.gz"))?,
            Kind::OpenbookQa => openbookqa(&dir.join("openbookqa/train.jsonl.gz"))?,
            Kind::CommonsenseQa => commonsense_qa(&dir.join("commonsense_qa/train_rand_split.jsonl.gz"))?,
            // fewshot_split: dev
            Kind::Mmlu(i) => mmlu(&dir.join(format!("mmlu/dev/{}_dev.csv.gz", MMLU_SUBJECTS[i].0)))?,
            // training_split: train — not bundled (see data/*/SOURCE.md).
            Kind::Hellaswag | Kind::Piqa | Kind::Siqa | Kind::Boolq => return Ok(Err("train")),
            Kind::Winogrande => return Ok(Err("train (winogrande_xl)")),
        }))
    }
}

fn out_of_range(path: &Path, line: usize, what: &str) -> TaskError {
    TaskError::malformed(path, line, format!("label out of range: {what}"))
}

/// A label that may be stored as a JSON string or number.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum IntOrStr {
    Int(i64),
    Str(String),
}

impl IntOrStr {
    fn as_index(&self) -> Option<usize> {
        match self {
            IntOrStr::Int(i) => usize::try_from(*i).ok(),
            IntOrStr::Str(s) => py_strip(s).parse().ok(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// hellaswag — lm_eval/tasks/hellaswag/hellaswag.yaml + utils.py
//   process_docs: query = preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()),
//                 choices = [preprocess(e) for e in endings], gold = int(label)
//   doc_to_text: "{{query}}", doc_to_choice: "choices", doc_to_target: "{{label}}"
//   validation_split: validation (no test_split), training_split: train

#[derive(Deserialize)]
struct HellaswagRec {
    activity_label: String,
    ctx_a: String,
    ctx_b: String,
    endings: Vec<String>,
    label: IntOrStr,
}

/// hellaswag/utils.py `preprocess`: strip; " [title]" → ". "; drop `\[.*?\]`; "  " → " ".
pub(crate) fn hellaswag_preprocess(text: &str) -> String {
    let text = py_strip(text).replace(" [title]", ". ");
    remove_bracketed(&text).replace("  ", " ")
}

/// `re.sub("\\[.*?\\]", "", text)`: `.` does not cross a newline.
fn remove_bracketed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find([']', '\n']) {
            Some(close) if after.as_bytes()[close] == b']' => rest = &after[close + 1..],
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn hellaswag(path: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (line, raw, r) in data::jsonl::<HellaswagRec>(path)? {
        let gold = r.label.as_index().filter(|&g| g < r.endings.len());
        let gold = gold.ok_or_else(|| out_of_range(path, line, &format!("{:?}", r.label)))?;
        let query = hellaswag_preprocess(&format!(
            "{}: {} {}",
            r.activity_label,
            r.ctx_a,
            py_capitalize(&r.ctx_b)
        ));
        let choices: Vec<String> = r.endings.iter().map(|e| hellaswag_preprocess(e)).collect();
        docs.push(Doc {
            ident: raw,
            query: Query::Text(query),
            answer: choices[gold].clone(),
            choices,
            gold,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// arc_easy / arc_challenge — lm_eval/tasks/arc/arc_easy.yaml (arc_challenge.yaml includes it)
//   doc_to_text: "Question: {{question}}\nAnswer:"      (HF `question` = the stem)
//   doc_to_choice: "{{choices.text}}"
//   doc_to_target: "{{choices.label.index(answerKey)}}"
//   test_split: test, training_split: train (few-shot), metrics acc + acc_norm

#[derive(Deserialize)]
struct McChoice {
    text: String,
    label: String,
}

#[derive(Deserialize)]
struct McQuestion {
    stem: String,
    choices: Vec<McChoice>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct McRec {
    question: McQuestion,
    answer_key: String,
}

fn label_index(path: &Path, line: usize, q: &McQuestion, key: &str) -> Result<usize, TaskError> {
    q.choices
        .iter()
        .position(|c| c.label == key)
        .ok_or_else(|| out_of_range(path, line, &format!("answerKey {key:?} is not a choice label")))
}

fn arc(path: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (line, raw, r) in data::jsonl::<McRec>(path)? {
        let gold = label_index(path, line, &r.question, &r.answer_key)?;
        let choices: Vec<String> = r.question.choices.iter().map(|c| c.text.clone()).collect();
        docs.push(Doc {
            ident: raw,
            query: Query::Text(format!("Question: {}\nAnswer:", r.question.stem)),
            answer: choices[gold].clone(),
            choices,
            gold,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// openbookqa — lm_eval/tasks/openbookqa/openbookqa.yaml
//   doc_to_text: question_stem
//   doc_to_choice: "{{choices.text}}"
//   doc_to_target: "{{choices.label.index(answerKey.lstrip())}}"
//   test_split: test, training_split: train, metrics acc + acc_norm

fn openbookqa(path: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (line, raw, r) in data::jsonl::<McRec>(path)? {
        let gold = label_index(path, line, &r.question, py_lstrip(&r.answer_key))?;
        let choices: Vec<String> = r.question.choices.iter().map(|c| c.text.clone()).collect();
        docs.push(Doc {
            ident: raw,
            query: Query::Text(r.question.stem),
            answer: choices[gold].clone(),
            choices,
            gold,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// commonsense_qa — lm_eval/tasks/commonsense_qa/default.yaml
//   doc_to_text: "Question: {{ question.strip() }}\nA. {{choices['text'][0]}}\nB. …\nE. {{choices['text'][4]}}\nAnswer:"
//   doc_to_choice: ['A', 'B', 'C', 'D', 'E'], doc_to_target: answerKey (a letter; gold =
//   choices.index(answerKey)), validation_split: validation (evaluated), training_split: train

const LETTERS: [&str; 5] = ["A", "B", "C", "D", "E"];

fn commonsense_qa(path: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (line, raw, r) in data::jsonl::<McRec>(path)? {
        let t = &r.question.choices;
        if t.len() < 5 {
            return Err(TaskError::malformed(
                path,
                line,
                format!("expected 5 choices, found {}", t.len()),
            ));
        }
        let gold = LETTERS
            .iter()
            .position(|l| *l == r.answer_key)
            .ok_or_else(|| out_of_range(path, line, &format!("answerKey {:?}", r.answer_key)))?;
        let text = format!(
            "Question: {}\nA. {}\nB. {}\nC. {}\nD. {}\nE. {}\nAnswer:",
            py_strip(&r.question.stem),
            t[0].text,
            t[1].text,
            t[2].text,
            t[3].text,
            t[4].text
        );
        docs.push(Doc {
            ident: raw,
            query: Query::Text(text),
            choices: LETTERS.iter().map(|s| s.to_string()).collect(),
            answer: r.answer_key,
            gold,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// piqa — lm_eval/tasks/piqa/piqa.yaml
//   doc_to_text: "Question: {{goal}}\nAnswer:", doc_to_choice: "{{[sol1, sol2]}}",
//   doc_to_target: label, validation_split: validation, metrics acc + acc_norm

#[derive(Deserialize)]
struct PiqaRec {
    goal: String,
    sol1: String,
    sol2: String,
}

/// A JSONL record and the label on the same line of its label file.
struct Labeled<T> {
    raw: String,
    rec: T,
    label_line: usize,
    label: i64,
}

/// Pairs each record with the label on the same line of the label file.
fn with_labels<T>(records: Vec<(usize, String, T)>, labels_path: &Path) -> Result<Vec<Labeled<T>>, TaskError> {
    let labels = data::int_lines(labels_path)?;
    if labels.len() != records.len() {
        let line = labels.len().min(records.len()) + 1;
        return Err(TaskError::malformed(
            labels_path,
            line,
            format!("{} labels for {} records", labels.len(), records.len()),
        ));
    }
    Ok(records
        .into_iter()
        .zip(labels)
        .map(|((_, raw, rec), (label_line, label))| Labeled {
            raw,
            rec,
            label_line,
            label,
        })
        .collect())
}

fn piqa(path: &Path, labels: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for l in with_labels(data::jsonl::<PiqaRec>(path)?, labels)? {
        let (raw, r, label_line, label) = (l.raw, l.rec, l.label_line, l.label);
        let gold = usize::try_from(label)
            .ok()
            .filter(|&g| g < 2)
            .ok_or_else(|| out_of_range(labels, label_line, &label.to_string()))?;
        let choices = vec![r.sol1, r.sol2];
        docs.push(Doc {
            ident: format!("{raw}\n{label}"),
            query: Query::Text(format!("Question: {}\nAnswer:", r.goal)),
            answer: choices[gold].clone(),
            choices,
            gold,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf(), labels.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// siqa (lm-eval task name `social_iqa`) — lm_eval/tasks/siqa/siqa.yaml
//   doc_to_text: "Q: {{context}} {{question}}\nA:", target_delimiter: " "
//   doc_to_choice: "{{[answerA, answerB, answerC]}}", doc_to_target: "{{ (label|int) - 1 }}"
//   validation_split: validation, metric acc

#[derive(Deserialize)]
struct SiqaRec {
    context: String,
    question: String,
    #[serde(rename = "answerA")]
    answer_a: String,
    #[serde(rename = "answerB")]
    answer_b: String,
    #[serde(rename = "answerC")]
    answer_c: String,
}

fn siqa(path: &Path, labels: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for l in with_labels(data::jsonl::<SiqaRec>(path)?, labels)? {
        let (raw, r, label_line, label) = (l.raw, l.rec, l.label_line, l.label);
        let gold = usize::try_from(label - 1)
            .ok()
            .filter(|&g| g < 3)
            .ok_or_else(|| out_of_range(labels, label_line, &label.to_string()))?;
        let choices = vec![r.answer_a, r.answer_b, r.answer_c];
        docs.push(Doc {
            ident: format!("{raw}\n{label}"),
            query: Query::Text(format!("Q: {} {}\nA:", r.context, r.question)),
            answer: choices[gold].clone(),
            choices,
            gold,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf(), labels.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// winogrande — lm_eval/tasks/winogrande/default.yaml + preprocess_winogrande.py
//   doc_to_text:   {"1": 0, "2": 1}[answer]                 (an int: "multiple input")
//   doc_to_choice: [sentence[:idx] + option1, sentence[:idx] + option2], idx = sentence.index("_")
//   doc_to_target: sentence[idx + 1:].strip()
//   Each choice is a context; the continuation " " + target is shared (partial scoring).
//   validation_split: validation (winogrande_xl dev), training_split: train, metric acc

#[derive(Deserialize)]
struct WinograndeRec {
    sentence: String,
    option1: String,
    option2: String,
    answer: String,
}

fn winogrande(path: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (line, raw, r) in data::jsonl::<WinograndeRec>(path)? {
        let gold = match r.answer.as_str() {
            "1" => 0,
            "2" => 1,
            other => return Err(out_of_range(path, line, &format!("answer {other:?}"))),
        };
        let idx = r
            .sentence
            .find('_')
            .ok_or_else(|| TaskError::malformed(path, line, "sentence has no `_` blank"))?;
        let head = &r.sentence[..idx];
        docs.push(Doc {
            ident: raw,
            query: Query::PerChoice,
            choices: vec![format!("{head}{}", r.option1), format!("{head}{}", r.option2)],
            answer: py_strip(&r.sentence[idx + 1..]).to_string(),
            gold,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// boolq — lm_eval/tasks/super_glue/boolq/default.yaml
//   doc_to_text: "{{passage}}\nQuestion: {{question}}?\nAnswer:"
//   doc_to_choice: ["no", "yes"], doc_to_target: label (False = 0, True = 1)
//   validation_split: validation, metric acc

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolLabel {
    Bool(bool),
    Int(i64),
    Str(String),
}

#[derive(Deserialize)]
struct BoolqRec {
    question: String,
    passage: String,
    label: BoolLabel,
}

fn boolq(path: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (line, raw, r) in data::jsonl::<BoolqRec>(path)? {
        let gold = match &r.label {
            BoolLabel::Bool(b) => Some(usize::from(*b)),
            BoolLabel::Int(i @ 0..=1) => Some(*i as usize),
            BoolLabel::Int(_) => None,
            BoolLabel::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Some(1),
                "false" | "0" => Some(0),
                _ => None,
            },
        };
        let gold = gold.ok_or_else(|| out_of_range(path, line, "boolq label"))?;
        let choices = vec!["no".to_string(), "yes".to_string()];
        docs.push(Doc {
            ident: raw,
            query: Query::Text(format!("{}\nQuestion: {}?\nAnswer:", r.passage, r.question)),
            answer: choices[gold].clone(),
            choices,
            gold,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// mmlu_<subject> — lm_eval/tasks/mmlu/default/_default_template_yaml + mmlu_<subject>.yaml
//   doc_to_text: "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"
//   doc_to_choice: ["A", "B", "C", "D"], doc_to_target: answer (0–3)
//   test_split: test, fewshot_split: dev, fewshot_config.sampler: first_n, metric acc
//   CSV columns: question, A, B, C, D, answer letter (the hendrycks data.tar layout, which
//   cais/mmlu was built from).

fn mmlu(path: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (line, rec) in data::csv_records(path)? {
        if rec.len() != 6 {
            return Err(TaskError::malformed(
                path,
                line,
                format!("expected 6 CSV fields, found {}", rec.len()),
            ));
        }
        let gold = ["A", "B", "C", "D"]
            .iter()
            .position(|l| *l == rec[5])
            .ok_or_else(|| out_of_range(path, line, &format!("answer {:?}", rec[5])))?;
        let text = format!(
            "{}\nA. {}\nB. {}\nC. {}\nD. {}\nAnswer:",
            py_strip(&rec[0]),
            rec[1],
            rec[2],
            rec[3],
            rec[4]
        );
        let choices: Vec<String> = ["A", "B", "C", "D"].iter().map(|s| s.to_string()).collect();
        docs.push(Doc {
            ident: rec.join("\u{1f}"),
            query: Query::Text(text),
            answer: choices[gold].clone(),
            choices,
            gold,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellaswag_preprocess_is_lm_evals() {
        // Python: preprocess(" [header] How to x [title] Do y. [step] Z [a\nb] ")
        assert_eq!(
            hellaswag_preprocess(" [header] How to x [title] Do y. [step] Z [a\nb] "),
            " How to x. Do y. Z [a\nb]"
        );
        assert_eq!(hellaswag_preprocess("[step] Water"), " Water");
        assert_eq!(hellaswag_preprocess("a [b [c] d] e"), "a d] e");
        assert_eq!(hellaswag_preprocess("tap the \" [\" button"), "tap the \" [\" button");
    }
}
