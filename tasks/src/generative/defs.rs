//! The generative task definitions: lm-evaluation-harness 0.4.12 YAMLs and utils.py rewritten as
//! Rust. Each loader cites its lm-eval file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::CodeCheck;
use super::extract::minerva_gold_answer;
use crate::data;
use crate::error::TaskError;
use crate::pytext::{py_repr_str_list, py_strip};

/// minerva_math subjects: (lm-eval task suffix `minerva_math_<suffix>`, hendrycks_math config =
/// our data file name).
pub(crate) const MATH_SUBJECTS: [(&str, &str); 7] = [
    ("algebra", "algebra"),
    ("counting_and_prob", "counting_and_probability"),
    ("geometry", "geometry"),
    ("intermediate_algebra", "intermediate_algebra"),
    ("num_theory", "number_theory"),
    ("prealgebra", "prealgebra"),
    ("precalc", "precalculus"),
];

/// BIG-Bench Hard tasks (`bbh/cot_fewshot/_bbh.yaml`, in its order).
pub(crate) const BBH_TASKS: [&str; 27] = [
    "boolean_expressions",
    "causal_judgement",
    "date_understanding",
    "disambiguation_qa",
    "dyck_languages",
    "formal_fallacies",
    "geometric_shapes",
    "hyperbaton",
    "logical_deduction_five_objects",
    "logical_deduction_seven_objects",
    "logical_deduction_three_objects",
    "movie_recommendation",
    "multistep_arithmetic_two",
    "navigate",
    "object_counting",
    "penguins_in_a_table",
    "reasoning_about_colored_objects",
    "ruin_names",
    "salient_translation_error_detection",
    "snarks",
    "sports_understanding",
    "temporal_sequences",
    "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects",
    "tracking_shuffled_objects_three_objects",
    "web_of_lies",
    "word_sorting",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GenKind {
    Gsm8k,
    Gsm8kCot,
    Minerva(usize),
    Humaneval,
    Mbpp,
    NqOpen,
    Bbh(usize),
    Triviaqa,
}

/// How lm-eval picks few-shot examples for the task.
pub(crate) enum Shots {
    /// `ContextSampler` (`Random(seed).sample(pool, n)` per evaluated doc) over a data split.
    Random(Vec<GenDoc>),
    /// `first_n` over fixed examples (`fewshot_config.samples` or the YAML's fixed list).
    FirstN(Vec<GenDoc>),
    /// Not available here (with the reason).
    Unavailable(String),
}

/// A document as the generate_until machinery sees it.
#[derive(Debug, Clone)]
pub(crate) struct GenDoc {
    /// `doc_to_text`.
    pub text: String,
    /// `doc_to_target` as a few-shot example writes it.
    pub fewshot_target: String,
    /// `doc_to_target` for an evaluated doc, as a string (a list as Python's `str(list)`).
    pub target: String,
    /// What `exact_match` compares with (several for nq_open), or the minerva gold answer.
    pub references: Vec<String>,
    pub code: Option<CodeCheck>,
}

pub(crate) struct Loaded {
    pub docs: Vec<GenDoc>,
    pub files: Vec<PathBuf>,
}

/// The per-task settings of a YAML that shape requests.
pub(crate) struct Settings {
    pub description: String,
    pub target_delimiter: &'static str,
    pub fewshot_delimiter: &'static str,
    pub until: Vec<String>,
    pub max_gen_toks: usize,
    /// `num_fewshot` (0 where the YAML sets none).
    pub default_shots: usize,
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

impl GenKind {
    pub(crate) fn from_name(name: &str) -> Option<GenKind> {
        Some(match name {
            "gsm8k" => GenKind::Gsm8k,
            "gsm8k_cot" => GenKind::Gsm8kCot,
            "humaneval" => GenKind::Humaneval,
            "mbpp" => GenKind::Mbpp,
            "nq_open" => GenKind::NqOpen,
            "triviaqa" => GenKind::Triviaqa,
            _ => {
                if let Some(s) = name.strip_prefix("minerva_math_") {
                    GenKind::Minerva(MATH_SUBJECTS.iter().position(|(n, _)| *n == s)?)
                } else {
                    let t = name.strip_prefix("bbh_cot_fewshot_")?;
                    GenKind::Bbh(BBH_TASKS.iter().position(|n| *n == t)?)
                }
            }
        })
    }

    /// Request settings (YAML `description`, delimiters, `generation_kwargs`, `num_fewshot`).
    /// `max_gen_toks` is the YAML's, else lm-eval's default 256 (models/utils.py
    /// `normalize_gen_kwargs`). The bbh description comes from the data (see `bbh_prompt`).
    pub(crate) fn settings(self) -> Settings {
        let s = |until: &[&str], max_gen_toks, default_shots| Settings {
            description: String::new(),
            target_delimiter: " ",
            fewshot_delimiter: "\n\n",
            until: strings(until),
            max_gen_toks,
            default_shots,
        };
        match self {
            // gsm8k/gsm8k.yaml
            GenKind::Gsm8k => s(&["Question:", "</s>", "<|im_end|>"], 256, 5),
            // gsm8k/gsm8k-cot.yaml
            GenKind::Gsm8kCot => s(&["Q:", "</s>", "<|im_end|>"], 256, 8),
            // minerva_math/minerva_math_algebra.yaml (the others include it)
            GenKind::Minerva(_) => s(&["Problem:"], 256, 4),
            // humaneval/humaneval.yaml
            GenKind::Humaneval => s(&["\nclass", "\ndef", "\n#", "\nif", "\nprint"], 1024, 0),
            // mbpp/mbpp.yaml: target_delimiter ""
            GenKind::Mbpp => Settings {
                target_delimiter: "",
                ..s(&["[DONE]"], 256, 3)
            },
            // nq_open/nq_open.yaml: description, fewshot_delimiter "\n", no num_fewshot
            GenKind::NqOpen => Settings {
                description: "Answer these questions:\n\n".into(),
                fewshot_delimiter: "\n",
                ..s(&["\n", ".", ","], 256, 0)
            },
            // bbh/cot_fewshot/_cot_fewshot_template_yaml: target_delimiter ""
            GenKind::Bbh(_) => Settings {
                target_delimiter: "",
                ..s(&["</s>", "Q", "\n\n"], 1024, 3)
            },
            // triviaqa/default.yaml (never loaded: the data is not bundled)
            GenKind::Triviaqa => s(&["\n", ".", ","], 256, 0),
        }
    }

    /// The evaluation split (`test_split`, else `validation_split`), in the order of the HF data
    /// set lm-eval loads.
    pub(crate) fn eval_docs(self, dir: &Path) -> Result<Loaded, TaskError> {
        match self {
            GenKind::Gsm8k => gsm8k(&dir.join("gsm8k/test.jsonl.gz"), false),
            GenKind::Gsm8kCot => gsm8k(&dir.join("gsm8k/test.jsonl.gz"), true),
            GenKind::Minerva(i) => minerva(&dir.join(format!("math/test/{}.jsonl.gz", MATH_SUBJECTS[i].1))),
            GenKind::Humaneval => humaneval(&dir.join("humaneval/HumanEval.jsonl.gz")),
            GenKind::Mbpp => mbpp(&dir.join("mbpp/mbpp.jsonl.gz"), |id| (11..=510).contains(&id)),
            GenKind::NqOpen => nq_open(&dir.join("nq_open/NQ-open.dev.jsonl.gz")),
            GenKind::Bbh(i) => bbh(&dir.join(format!("bbh/bbh/{}.json.gz", BBH_TASKS[i]))),
            GenKind::Triviaqa => Err(TaskError::NotBundled {
                task: "triviaqa".into(),
                message: "the TriviaQA data is not bundled with this crate. lm-eval's `triviaqa` task reads \
                          the Hugging Face data set `mandarjoshi/trivia_qa` (config `rc.nocontext`, \
                          validation split, 17,944 questions; few-shot from train); get it from \
                          https://huggingface.co/datasets/mandarjoshi/trivia_qa or \
                          http://nlp.cs.washington.edu/triviaqa/"
                    .into(),
            }),
        }
    }

    /// The few-shot examples.
    pub(crate) fn shots(self, dir: &Path) -> Result<(Shots, Vec<PathBuf>), TaskError> {
        Ok(match self {
            // gsm8k.yaml: fewshot_split: train, default sampler. fewshot_split != test_split,
            // so the evaluated doc is not passed to the sampler (exactly n are drawn).
            GenKind::Gsm8k => {
                let l = gsm8k(&dir.join("gsm8k/train.jsonl.gz"), false)?;
                (Shots::Random(l.docs), l.files)
            }
            GenKind::Gsm8kCot => (Shots::FirstN(gsm8k_cot_samples()), vec![]),
            GenKind::Minerva(_) => (Shots::FirstN(minerva_samples()), vec![]),
            // mbpp/utils.py list_fewshot_samples: tasks 2, 3, 4 (identical to those records of
            // the data file, from which they are read), `is_fewshot` → target code + "\n[DONE]".
            GenKind::Mbpp => {
                let l = mbpp(&dir.join("mbpp/mbpp.jsonl.gz"), |id| (2..=4).contains(&id))?;
                (Shots::FirstN(l.docs), l.files)
            }
            GenKind::Bbh(i) => {
                let path = dir.join(format!("bbh/cot-prompts/{}.txt.gz", BBH_TASKS[i]));
                let (_, docs) = bbh_prompt(&path)?;
                (Shots::FirstN(docs), vec![path])
            }
            GenKind::Humaneval => (
                Shots::Unavailable(
                    "humaneval has only a test split (lm-eval would draw examples from the evaluated split \
                     itself); only 0-shot is available"
                        .into(),
                ),
                vec![],
            ),
            GenKind::NqOpen => (
                Shots::Unavailable(
                    "lm-eval takes few-shot examples from the `train` split (training_split: train), which \
                     is not bundled (see data/nq_open/SOURCE.md); only 0-shot is available"
                        .into(),
                ),
                vec![],
            ),
            GenKind::Triviaqa => (Shots::Unavailable("not bundled".into()), vec![]),
        })
    }

    /// The description, where it comes from the data (bbh: the prompt file's head).
    pub(crate) fn data_description(self, dir: &Path) -> Result<Option<(String, PathBuf)>, TaskError> {
        match self {
            GenKind::Bbh(i) => {
                let path = dir.join(format!("bbh/cot-prompts/{}.txt.gz", BBH_TASKS[i]));
                let (description, _) = bbh_prompt(&path)?;
                Ok(Some((description, path)))
            }
            _ => Ok(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// gsm8k — gsm8k/gsm8k.yaml
//   doc_to_text: "Question: {{question}}\nAnswer:", doc_to_target: "{{answer}}"
//   test_split: test, fewshot_split: train, num_fewshot: 5
// gsm8k_cot — gsm8k/gsm8k-cot.yaml
//   doc_to_text: "Q: {{question}}\nA:"
//   doc_to_target: "{{answer.split('####')[-1].strip() if answer is defined else target}}"
//   fewshot_config: sampler first_n, 8 fixed samples (question/target); num_fewshot: 8

#[derive(Deserialize)]
struct Gsm8kRec {
    question: String,
    answer: String,
}

fn gsm8k(path: &Path, cot: bool) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (_, _, r) in data::jsonl::<Gsm8kRec>(path)? {
        let doc = if cot {
            let target = py_strip(r.answer.rsplit("####").next().unwrap_or("")).to_string();
            GenDoc {
                text: format!("Q: {}\nA:", r.question),
                fewshot_target: target.clone(),
                references: vec![target.clone()],
                target,
                code: None,
            }
        } else {
            GenDoc {
                text: format!("Question: {}\nAnswer:", r.question),
                fewshot_target: r.answer.clone(),
                references: vec![r.answer.clone()],
                target: r.answer,
                code: None,
            }
        };
        docs.push(doc);
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

/// gsm8k-cot.yaml `fewshot_config.samples` (question, target), verbatim.
const GSM8K_COT_SAMPLES: [(&str, &str); 8] = [
    (
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, \
         there will be 21 trees. How many trees did the grove workers plant today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have \
         been 21 - 15 = 6. The answer is 6.",
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, \
         they had 74 - 35 = 39. The answer is 39.",
    ),
    (
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did \
         Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. \
         The answer is 8.",
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have \
         now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. \
         The answer is 9.",
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each day, from monday to \
         thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 \
         computers were added. 9 + 20 is 29. The answer is 29.",
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf \
         balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, \
         he had 35 - 2 = 33 golf balls. The answer is 33.",
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars \
         left. 23 - 15 is 8. The answer is 8.",
    ),
];

fn gsm8k_cot_samples() -> Vec<GenDoc> {
    GSM8K_COT_SAMPLES
        .iter()
        .map(|(q, t)| GenDoc {
            text: format!("Q: {q}\nA:"),
            fewshot_target: t.to_string(),
            target: t.to_string(),
            references: vec![],
            code: None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// minerva_math_<subject> — minerva_math/minerva_math_algebra.yaml + utils.py
//   dataset: EleutherAI/hendrycks_math <config>, test_split: test
//   process_docs: answer = normalize_final_answer(remove_boxed(last_boxed_only_string(solution)))
//   doc_to_text: "Problem:" + "\n" + problem + "\n\n" + "Solution:"
//   doc_to_target: "{{answer if few_shot is undefined else solution}}"
//   fewshot_config: sampler first_n, samples: utils.list_fewshot_samples (4 fixed), num_fewshot: 4
//   Data order: the hendrycks_math builder reads `sorted(Path(dir).iterdir())`, i.e. file names in
//   lexicographic order ("1.json", "10.json", "100.json", …); our JSONL keeps that order.

#[derive(Deserialize)]
struct MathRec {
    problem: String,
    solution: String,
}

fn minerva_text(problem: &str) -> String {
    format!("Problem:\n{problem}\n\nSolution:")
}

fn minerva(path: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (line, _, r) in data::jsonl::<MathRec>(path)? {
        let answer = minerva_gold_answer(&r.solution).ok_or_else(|| {
            TaskError::malformed(
                path,
                line,
                "solution has no \\boxed{...} answer (lm-eval's process_docs fails)",
            )
        })?;
        docs.push(GenDoc {
            text: minerva_text(&r.problem),
            fewshot_target: r.solution,
            references: vec![answer.clone()],
            target: answer,
            code: None,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

/// minerva_math/utils.py `list_fewshot_samples` (problem, solution), verbatim.
const MINERVA_SAMPLES: [(&str, &str); 4] = [
    (
        "Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}",
        "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and $5 - \
         x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$. \
         Therefore, the domain of the expression is $\\boxed{[2,5)}$.\nFinal Answer: The final answer is $[2,5)$. I \
         hope it is correct.",
    ),
    (
        "If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
        "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = \
         \\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct.",
    ),
    (
        "Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many times \
         must Terrell lift them in order to lift the same total weight?",
        "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of \
         weight.  If he lifts two 15-pound weights instead for $n$ times, he will lift a total of $2\\cdot15\\cdot \
         n=30n$ pounds of weight.  Equating this to 480 pounds, we can solve for $n$:\n\\begin{align*}\n30n&=480\\\n\
         \\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\nFinal Answer: The final answer is $16$. I hope it \
         is correct.",
    ),
    (
        "If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\n6y-9x &=b.\n\\end{align*}has a solution $(x, y)$ \
         where $x$ and $y$ are both nonzero,\nfind $\\frac{a}{b},$ assuming $b$ is nonzero.",
        "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$Since we also \
         know that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$\nFinal \
         Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct.",
    ),
];

fn minerva_samples() -> Vec<GenDoc> {
    MINERVA_SAMPLES
        .iter()
        .map(|(p, s)| GenDoc {
            text: minerva_text(p),
            fewshot_target: s.to_string(),
            target: s.to_string(),
            references: vec![],
            code: None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// humaneval — humaneval/humaneval.yaml + utils.py
//   doc_to_text: "{{prompt}}", doc_to_target: "{{test}}\ncheck({{entry_point}})", num_fewshot: 0
//   filter create_test (utils.build_predictions): prediction = prompt + response
//   metric utils.pass_at_k → HF evaluate code_eval: program = prediction + "\n" + target,
//   run with timeout 3.0 s; pass@1 (k: [1]).

#[derive(Deserialize)]
struct HumanevalRec {
    task_id: String,
    prompt: String,
    canonical_solution: String,
    test: String,
    entry_point: String,
}

/// code_eval's default per-program timeout (`_compute(..., timeout=3.0)`).
pub(crate) const CODE_EVAL_TIMEOUT_S: f64 = 3.0;

/// What a code task's document needs beyond its prompt (see [`CodeCheck`]).
struct CodeSource {
    task_id: String,
    prefix: String,
    test: String,
    canonical_solution: String,
}

/// A code task's document: its target (lm-eval's `doc_to_target`) is the test program that
/// code_eval runs after the completion, with code_eval's default timeout.
fn code_doc(text: String, fewshot_target: String, source: CodeSource) -> GenDoc {
    GenDoc {
        text,
        fewshot_target,
        target: source.test.clone(),
        references: vec![],
        code: Some(CodeCheck {
            task_id: source.task_id,
            prefix: source.prefix,
            test: source.test,
            canonical_solution: source.canonical_solution,
            timeout_s: CODE_EVAL_TIMEOUT_S,
        }),
    }
}

fn humaneval(path: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (_, _, r) in data::jsonl::<HumanevalRec>(path)? {
        let target = format!("{}\ncheck({})", r.test, r.entry_point);
        docs.push(code_doc(
            r.prompt.clone(),
            target.clone(),
            CodeSource {
                task_id: r.task_id,
                prefix: r.prompt,
                test: target,
                canonical_solution: r.canonical_solution,
            },
        ));
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// mbpp — mbpp/mbpp.yaml + utils.py
//   dataset google-research-datasets/mbpp "full", test_split: test (task_id 11–510)
//   doc_to_text: "You are an expert Python programmer, and here is your task: {{text}} Your code
//     should pass these tests:\n\n{{test_list[0]}}\n{{test_list[1]}}\n{{test_list[2]}}\n[BEGIN]\n"
//   doc_to_target: few-shot: "{{code}}\n[DONE]"; else "{{test_list[0]}}\n{{test_list[1]}}\n{{test_list[2]}}"
//   target_delimiter: "", num_fewshot: 3 (first_n over tasks 2, 3, 4)
//   metric utils.pass_at_1 → code_eval: program = response + "\n" + target (no filter;
//   `test_setup_code` is not used).

#[derive(Deserialize)]
struct MbppRec {
    task_id: i64,
    text: String,
    code: String,
    test_list: Vec<String>,
}

fn mbpp(path: &Path, keep: impl Fn(i64) -> bool) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (line, _, r) in data::jsonl::<MbppRec>(path)? {
        if !keep(r.task_id) {
            continue;
        }
        let [t0, t1, t2] = match r.test_list.get(..3) {
            Some([a, b, c]) => [a, b, c],
            _ => return Err(TaskError::malformed(path, line, "test_list has fewer than 3 tests")),
        };
        let text = format!(
            "You are an expert Python programmer, and here is your task: {} Your code should pass these tests:\n\n\
             {t0}\n{t1}\n{t2}\n[BEGIN]\n",
            r.text
        );
        docs.push(code_doc(
            text,
            format!("{}\n[DONE]", r.code),
            CodeSource {
                task_id: r.task_id.to_string(),
                prefix: String::new(),
                test: format!("{t0}\n{t1}\n{t2}"),
                canonical_solution: r.code,
            },
        ));
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// nq_open — nq_open/nq_open.yaml
//   validation_split: validation (NQ-open dev), training_split: train (not bundled)
//   description: "Answer these questions:\n\n", doc_to_text: "Q: {{question}}?\nA:"
//   doc_to_target: "{{answer}}" → the rendered list literal → ast.literal_eval → a list: several
//   targets, exact_match is 1 if any matches.

#[derive(Deserialize)]
struct NqRec {
    question: String,
    answer: Vec<String>,
}

fn nq_open(path: &Path) -> Result<Loaded, TaskError> {
    let mut docs = Vec::new();
    for (line, _, r) in data::jsonl::<NqRec>(path)? {
        if r.answer.is_empty() {
            return Err(TaskError::malformed(path, line, "no answers"));
        }
        docs.push(GenDoc {
            text: format!("Q: {}?\nA:", r.question),
            // build_qa_turn writes a[0] for a list target.
            fewshot_target: r.answer[0].clone(),
            target: py_repr_str_list(&r.answer),
            references: r.answer,
            code: None,
        });
    }
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

// ---------------------------------------------------------------------------------------------
// bbh_cot_fewshot_<task> — bbh/cot_fewshot/_cot_fewshot_template_yaml + <task>.yaml
//   dataset SaylorTwift/bbh <task>, test_split: test (= the `examples` of bbh/<task>.json)
//   description: the prompt's description + "\n\n"
//   doc_to_text: "Q: {{input}}\nA: Let's think step by step.\n", doc_to_target: "{{target}}"
//   target_delimiter: "", fewshot_config: first_n over 3 samples {input, target}, num_fewshot: 3
//   The YAML samples were generated from BIG-Bench-Hard's cot-prompts/<task>.txt: after the
//   "-----" line, blocks separated by "\n\n"; those not starting with "Q: " form the description
//   (snarks has two such paragraphs), each shot is "Q: <input>\nA: Let's think step by step.<sep>
//   <target>" with <sep> "\n" (sports_understanding: " "; lm-eval's YAML has "\n" there too).

#[derive(Deserialize)]
struct BbhFile {
    examples: Vec<BbhExample>,
}

#[derive(Deserialize)]
struct BbhExample {
    input: String,
    target: String,
}

const BBH_ANSWER_HEAD: &str = "\nA: Let's think step by step.";

fn bbh_text(input: &str) -> String {
    format!("Q: {input}{BBH_ANSWER_HEAD}\n")
}

fn bbh(path: &Path) -> Result<Loaded, TaskError> {
    let file: BbhFile = data::json_file(path)?;
    let docs = file
        .examples
        .into_iter()
        .map(|e| GenDoc {
            text: bbh_text(&e.input),
            fewshot_target: e.target.clone(),
            references: vec![e.target.clone()],
            target: e.target,
            code: None,
        })
        .collect();
    Ok(Loaded {
        docs,
        files: vec![path.to_path_buf()],
    })
}

/// (description + "\n\n", the few-shot examples) from a cot-prompts file.
fn bbh_prompt(path: &Path) -> Result<(String, Vec<GenDoc>), TaskError> {
    let text = data::read_text(path)?;
    let marker = "\n-----\n";
    let Some(at) = text.rfind(marker) else {
        return Err(TaskError::malformed(path, 1, "no `-----` line"));
    };
    let head_lines = 1 + text[..at + marker.len()].matches('\n').count();
    let body = &text[at + marker.len()..];
    let mut description = Vec::new();
    let mut shots = Vec::new();
    let mut line = head_lines;
    for block in body.split("\n\n") {
        match block.strip_prefix("Q: ") {
            None if shots.is_empty() => description.push(block),
            None => return Err(TaskError::malformed(path, line, "expected a `Q: ` example")),
            Some(rest) => {
                let Some(split) = rest.find(BBH_ANSWER_HEAD) else {
                    return Err(TaskError::malformed(
                        path,
                        line,
                        "example without `A: Let's think step by step.`",
                    ));
                };
                let input = &rest[..split];
                let after = &rest[split + BBH_ANSWER_HEAD.len()..];
                let target = after.strip_prefix(['\n', ' ']).unwrap_or(after);
                shots.push(GenDoc {
                    text: bbh_text(input),
                    fewshot_target: target.to_string(),
                    target: target.to_string(),
                    references: vec![],
                    code: None,
                });
            }
        }
        line += block.matches('\n').count() + 2;
    }
    if description.is_empty() || shots.is_empty() {
        return Err(TaskError::malformed(path, head_lines, "no description or no examples"));
    }
    Ok((format!("{}\n\n", description.join("\n\n")), shots))
}
