"""Generative (generate_until) tasks: builds requests and scores responses with the real
lm-evaluation-harness 0.4.12 on this crate's bundled data, and writes gen_expected.json, which
tests/lm_eval_gen_reference.rs compares with.

    python3 -m venv /tmp/lmvenv && /tmp/lmvenv/bin/pip install lm-eval==0.4.12
    # minerva_math's utils.py imports sympy, math_verify and antlr4 4.11 (lm-eval[math]); kept
    # out of the main venv here:
    /tmp/lmvenv/bin/pip install --target /tmp/mathdeps --no-deps "antlr4-python3-runtime==4.11.0" \
        math-verify latex2sympy2_extended            # (sympy comes with lm-eval's deps / torch)
    PYTHONPATH=/tmp/mathdeps /tmp/lmvenv/bin/python tasks/tests/reference/lm_eval_gen_reference.py

As in lm_eval_reference.py, the data goes into lm-eval's own ConfigurableTask through
`custom_dataset`, in the schema of the Hugging Face data sets the YAMLs name (openai/gsm8k,
EleutherAI/hendrycks_math, openai/openai_humaneval, google-research-datasets/mbpp,
google-research-datasets/nq_open, SaylorTwift/bbh); templates, process_docs, fixed few-shot
samples, samplers, seeding, generation kwargs, filters and metrics are lm-eval's code.

humaneval/mbpp: their utils.py load HF `evaluate`'s `code_eval` metric from the Hub at import
(unreachable here, and it would execute code); a stub `evaluate` module stands in for it. The
program code_eval runs is `candidate + "\n" + test_case` (huggingface/evaluate
metrics/code_eval/code_eval.py `_compute`), candidate = the task's filtered prediction, test_case =
doc_to_target; that string is what is digested here.
"""

import gzip
import hashlib
import json
import logging
import sys
import types
from pathlib import Path

import datasets

# Stub for HF evaluate's code_eval (see the module docstring); must precede the YAML loading.
_stub = types.ModuleType("evaluate")


class _NoCodeEval:
    def compute(self, references, predictions, k=None, **kw):
        return [{f"pass@{x}": 0.0 for x in (k or [1])}, {}]


_stub.load = lambda *a, **k: _NoCodeEval()
sys.modules["evaluate"] = _stub

import lm_eval  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.api.task import ConfigurableTask  # noqa: E402
from lm_eval.filters import build_filter_ensemble  # noqa: E402
from lm_eval.models.utils import normalize_gen_kwargs  # noqa: E402
from lm_eval.tasks._yaml_loader import load_yaml  # noqa: E402

logging.disable(logging.WARNING)
datasets.disable_progress_bars()

DATA = Path(__file__).resolve().parents[2] / "data"
TASKS = Path(lm_eval.__file__).parent / "tasks"


def jsonl(path):
    with gzip.open(DATA / path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


MATH_SUBJECTS = {
    # lm-eval task suffix: hendrycks_math config (= our data file)
    "algebra": "algebra",
    "counting_and_prob": "counting_and_probability",
    "geometry": "geometry",
    "intermediate_algebra": "intermediate_algebra",
    "num_theory": "number_theory",
    "prealgebra": "prealgebra",
    "precalc": "precalculus",
}
BBH = sorted(p.stem for p in (TASKS / "bbh/cot_fewshot").glob("*.yaml") if not p.stem.startswith("_"))


def yaml_path(task):
    if task == "gsm8k":
        return "gsm8k/gsm8k.yaml"
    if task == "gsm8k_cot":
        return "gsm8k/gsm8k-cot.yaml"
    if task.startswith("minerva_math_"):
        return f"minerva_math/{task}.yaml"
    if task == "humaneval":
        return "humaneval/humaneval.yaml"
    if task == "mbpp":
        return "mbpp/mbpp.yaml"
    if task == "nq_open":
        return "nq_open/nq_open.yaml"
    if task.startswith("bbh_cot_fewshot_"):
        return f"bbh/cot_fewshot/{task[len('bbh_cot_fewshot_'):]}.yaml"
    raise KeyError(task)


def splits(task):
    if task in ("gsm8k", "gsm8k_cot"):
        return {"test": jsonl("gsm8k/test.jsonl.gz"), "train": jsonl("gsm8k/train.jsonl.gz")}
    if task.startswith("minerva_math_"):
        subject = MATH_SUBJECTS[task[len("minerva_math_"):]]
        test = [{k: r[k] for k in ("problem", "level", "type", "solution")} for r in jsonl(f"math/test/{subject}.jsonl.gz")]
        # training_split: train is only consulted for has_training_docs(); the shots are fixed.
        return {"test": test, "train": test[:4]}
    if task == "humaneval":
        return {"test": jsonl("humaneval/HumanEval.jsonl.gz")}
    if task == "mbpp":
        recs = jsonl("mbpp/mbpp.jsonl.gz")
        # HF google-research-datasets/mbpp "full": test = task_id 11..510 (file order).
        return {"test": [r for r in recs if 11 <= r["task_id"] <= 510], "prompt": [r for r in recs if r["task_id"] <= 10]}
    if task == "nq_open":
        val = jsonl("nq_open/NQ-open.dev.jsonl.gz")
        return {"validation": val, "train": val[:8]}  # train unused at 0 shots (not bundled)
    if task.startswith("bbh_cot_fewshot_"):
        name = task[len("bbh_cot_fewshot_"):]
        with gzip.open(DATA / f"bbh/bbh/{name}.json.gz", "rt", encoding="utf-8") as f:
            return {"test": json.load(f)["examples"]}
    raise KeyError(task)


_cache = {}


def make(task, shots, seed=1234):
    cfg = load_yaml(TASKS / yaml_path(task))
    for k in ("tag", "group", "task_list"):
        cfg.pop(k, None)
    if task not in _cache:
        _cache[task] = datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits(task).items()})
    data = _cache[task]
    cfg["custom_dataset"] = lambda **_: data
    t = ConfigurableTask(config=cfg)
    # evaluator.simple_evaluate: num_fewshot=None keeps the YAML's value.
    if shots is not None:
        t.set_config(key="num_fewshot", value=shots)
    t.set_fewshot_seed(seed=seed)
    return t


def target_text(task, t, doc):
    if task.startswith("minerva_math_"):
        # doc_to_target renders `answer`, then ast.literal_eval's list-looking ones ("[-3,2]" →
        # [-3, 2]); scoring uses doc["answer"] itself, which is what the crate keeps.
        return doc["answer"]
    return str(t.doc_to_target(doc))


def build(task, shots, limit):
    t = make(task, shots)
    t.build_all_requests(limit=limit, rank=0, world_size=1)
    items = []
    for inst in sorted(t.instances, key=lambda i: i.doc_id):
        ctx, gen_kwargs = inst.arguments
        kw = normalize_gen_kwargs(gen_kwargs, 256)
        doc = inst.doc
        item = {
            "doc_id": inst.doc_id,
            "context": ctx,
            "until": list(kw["until"]),
            "max_gen_toks": kw["max_gen_toks"],
            "target": target_text(task, t, doc),
        }
        if task == "humaneval":
            # create_test filter (utils.build_predictions) on the canonical solution, then code_eval.
            probe = Instance(request_type="generate_until", doc=doc, arguments=("", {}), idx=0,
                             resps=[doc["canonical_solution"]])
            t._filters[0].apply([probe])
            (pred,) = probe.filtered_resps["create_test"]
            item["program"] = pred + "\n" + t.doc_to_target(doc)
        if task == "mbpp":
            # No filter_list: the prediction is the response itself.
            item["program"] = doc["code"] + "\n" + t.doc_to_target(doc)
        items.append(item)
    return t, items


def digest(items):
    """Must match `digest` in tests/lm_eval_gen_reference.rs."""
    h = hashlib.sha256()
    for it in items:
        s = "\x1f".join([str(it["doc_id"]), it["context"], "\x1e".join(it["until"]), str(it["max_gen_toks"]), it["target"]])
        if "program" in it:
            s += "\x1f" + it["program"]
        h.update((s + "\n").encode("utf-8"))
    return h.hexdigest()


GEN = ["gsm8k", "gsm8k_cot", "humaneval", "mbpp", "nq_open"] + [f"minerva_math_{s}" for s in MATH_SUBJECTS] + [
    f"bbh_cot_fewshot_{b}" for b in BBH
]

REQUEST_CASES = (
    # (task, shots (None = the YAML's default), limit)
    [("gsm8k", None, None), ("gsm8k", 0, 20), ("gsm8k", 8, 20), ("gsm8k_cot", None, None), ("gsm8k_cot", 0, 20),
     ("gsm8k_cot", 3, 20), ("humaneval", None, None), ("mbpp", None, None), ("mbpp", 0, 20), ("mbpp", 1, 20),
     ("nq_open", None, None)]
    + [(f"minerva_math_{s}", None, None) for s in MATH_SUBJECTS]
    + [(f"minerva_math_{s}", 0, 5) for s in MATH_SUBJECTS]
    + [(f"bbh_cot_fewshot_{b}", None, None) for b in BBH]
    + [(f"bbh_cot_fewshot_{b}", 0, 5) for b in BBH]
)

# ----------------------------------------------------------------------------------------------
# Scoring: responses → lm-eval's filters (the task's filter_list) → process_results (metrics).

GSM_RESPONSES = [
    " Natalia sold 48/2 = 24 clips in May.\n#### 72",
    " She makes 9 * 2 = $18 every day.\n#### 18",
    " The total is #### $18.",
    " #### 18.00",
    " The answer is 18.",
    " The answer is $18.",
    " The answer is 1,800.",
    " So 16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars. The answer is 18.\n\n",
    " blah 3 blah 18",
    " Result: -18",
    " It costs $1,234.50 in total",
    " #### -3\n#### 18",
    " no numbers here",
    "",
    " 18.",
    " The answer is 18",
    " The answer is 18.\nQ: next",
    " 5 apples and 7 pears so 12.5",
    " $18",
    " The answer is  18.",
    " #### 18\n",
    " 18\n",
    " The answer is 18.0.",
    " It is 3.14.15",
]
MATH_RESPONSES = [
    " We have $x=2$.\nFinal Answer: The final answer is $2$. I hope it is correct.",
    " Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.",
    " Final Answer: The final answer is $\\frac12$. I hope it is correct.",
    " Final Answer: The final answer is $\\dfrac{1}{2}$. I hope it is correct.",
    " Final Answer: The final answer is $0.5$. I hope it is correct.",
    " Final Answer: The final answer is $\\boxed{\\frac{\\sqrt{3}}{2}}$. I hope it is correct.",
    " Final Answer: The final answer is $x = 5$. I hope it is correct.",
    " Final Answer: The final answer is 10 inches. I hope it is correct.",
    " Final Answer: The final answer is $1,\\!000$. I hope it is correct.",
    " Final Answer: The final answer is $\\text{(A)}$. I hope it is correct.",
    " Final Answer: The final answer is $90^\\circ$. I hope it is correct.",
    " Final Answer: The final answer is $(1,2)$. I hope it is correct.",
    " Final Answer: The final answer is $[2,5)$. I hope it is correct.",
    " Final Answer: The final answer is $\\$18.50$. I hope it is correct.",
    " Final Answer: The final answer is 3",
    " The answer is \\boxed{3}.",
    " Final Answer: The final answer is $2\\sqrt{2}$. I hope it is correct.",
    " Final Answer: The final answer is $\\sqrt{8}$. I hope it is correct.",
    " Final Answer: The final answer is $\\frac{\\pi}{4}$. I hope it is correct.",
    " Final Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct.",
    " Final Answer: The final answer is $\\text{Monday}$. I hope it is correct.",
    " Final Answer: The final answer is $x^2+1$. I hope it is correct.",
    " Final Answer: The final answer is $1+x^2$. I hope it is correct.",
    " Final Answer: The final answer is $5\\%$. I hope it is correct.",
    "",
]
BBH_RESPONSES = [
    " Let's see. So the answer is (A).",
    " So the answer is (B).",
    " So the answer is False.",
    " So the answer is True.\n\n",
    " So the answer is True",
    " the answer is valid.",
    " So the answer is yes. And also the answer is no.",
    " The answer is (A).",
    " So the answer is 24.",
    " so the answer is ) ] }.",
    " so the answer is x",
    " so the answer is  (C) .",
    " I don't know.",
    "",
]
NQ_RESPONSES = [
    " December 1972",
    " the December 1972",
    " December, 1972",
    "  14 December 1972 UTC ",
    " The Beatles",
    " Beatles",
    " an apple",
    " An Apple!",
    " 1972",
    "",
    " Théâtre de l'Odéon",
    " other",
]
CODE_RESPONSES = [
    "    return 1\n",
    "    pass",
    "",
]


def score_cases():
    out = []

    def run(task, doc_ids, responses, per_doc_gold=None):
        t = make(task, None)
        docs = list(t.eval_docs)
        for doc_id in doc_ids:
            doc = docs[doc_id]
            for resp in responses:
                inst = Instance(request_type="generate_until", doc=doc, arguments=("", {}), idx=0,
                                metadata=(task, doc_id, 1), resps=[resp])
                t._instances = [inst]
                t.apply_filters()
                metrics = {}
                extracted = {}
                for key, val in inst.filtered_resps.items():
                    extracted[key] = val if isinstance(val, str) else list(val)
                    for m, v in t.process_results(doc, [val]).items():
                        metrics[f"{m},{key}"] = float(v)
                out.append({"task": task, "doc_id": doc_id, "responses": [resp], "metrics": metrics,
                            "extracted": extracted})

    run("gsm8k", [0, 1, 2], GSM_RESPONSES)
    run("gsm8k_cot", [0, 1], GSM_RESPONSES)
    for s in MATH_SUBJECTS:
        run(f"minerva_math_{s}", [0], MATH_RESPONSES[:3])
    run("minerva_math_algebra", [0, 1], MATH_RESPONSES)
    # Responses built around the gold answers of docs with answers of different kinds.
    for task, doc_id, gold in minerva_gold_docs():
        run(task, [doc_id], minerva_responses(gold))
    for b in ["boolean_expressions", "date_understanding", "dyck_languages", "formal_fallacies",
              "multistep_arithmetic_two", "object_counting", "sports_understanding", "word_sorting"]:
        run(f"bbh_cot_fewshot_{b}", [0, 1], BBH_RESPONSES)
    run("nq_open", [0, 1, 2, 3, 4], NQ_RESPONSES)
    return out


MATH_KINDS = [
    r"^\d+$", r"^-\d+$", r"^\d+\.\d+$", r"^\\frac\{\d+\}\{\d+\}$", r"^-\\frac", r"\\sqrt\{", r"\\pi",
    r"^\(.*,.*\)$", r"^\[.*,.*[\]\)]$", r"\\%", r"^\\text\{", r"^[a-zA-Z]$", r"x", r"\\begin\{pmatrix\}", r"\^",
    r"\\infty", r"\\dfrac", r",", r"^\d{4,}$", r"i$", r"\\le", r"\\cup",
]


def minerva_gold_docs():
    """The first doc (per subject order) whose gold answer matches each of MATH_KINDS."""
    import re

    out, seen = [], set()
    for kind in MATH_KINDS:
        for s in MATH_SUBJECTS:
            t = make(f"minerva_math_{s}", None)
            hit = next(((i, d["answer"]) for i, d in enumerate(t.eval_docs) if re.search(kind, d["answer"])), None)
            if hit and (s, hit[0]) not in seen:
                seen.add((s, hit[0]))
                out.append((f"minerva_math_{s}", hit[0], hit[1]))
                break
    return out


def minerva_responses(gold):
    fa = "Final Answer: The final answer is {}. I hope it is correct."
    out = [
        fa.format(f"${gold}$"),
        fa.format(f"$\\boxed{{{gold}}}$"),
        fa.format(f"{gold} units"),
        fa.format(f"$x = {gold}$"),
        fa.format(f"$ {gold} $"),
        fa.format(f"${gold}+1$"),
        fa.format(f"$-{gold}$"),
        fa.format(f"$\\dfrac{{{gold}}}{{1}}$"),
        fa.format(f"${gold}.0$"),
        fa.format(f"$({gold})$"),
        f"The answer is ${gold}$.",
        f"So $\\boxed{{{gold}}}$.\n" + fa.format(f"${gold}$") + "\n\nProblem: more",
    ]
    try:
        from fractions import Fraction

        v = Fraction(gold.replace("\\frac{", "").replace("}{", "/").replace("}", ""))
        out.append(fa.format(f"${float(v)}$"))
        out.append(fa.format(f"$\\frac{{{v.numerator * 2}}}{{{v.denominator * 2}}}$"))
    except (ValueError, ZeroDivisionError):
        pass
    return out


def majority_cases():
    """maj@k: the task's regex, then lm-eval's majority_vote and take_first filters (as in
    gsm8k-cot-self-consistency.yaml), then the task's metric."""
    out = []
    sets = [
        ("gsm8k", 0, [" #### 72", " #### 70", " #### 72", " #### 70"]),
        ("gsm8k", 0, [" #### 70", " #### 72", " #### 72", " #### 70"]),
        ("gsm8k", 0, [" nothing", " #### 72", " nope"]),
        ("gsm8k", 0, [" #### 1,000", " #### 1000", " #### 1000"]),
        ("gsm8k_cot", 1, [" The answer is 10.", " The answer is 12.", " The answer is 12."]),
        ("bbh_cot_fewshot_date_understanding", 0, [" So the answer is (A).", " So the answer is (B).",
                                                    " So the answer is (B).", " So the answer is (A)."]),
        ("nq_open", 0, [" December 1972", "December 1972 ", " other"]),
        ("nq_open", 1, [" a", " b", " b", " a", " c"]),
    ]
    for task, doc_id, resps in sets:
        t = make(task, None)
        doc = list(t.eval_docs)[doc_id]
        metrics = {}
        extracted = {}
        for fcfg in t.config.filter_list:
            steps = [(f["function"], {k: v for k, v in f.items() if k != "function"}) for f in fcfg["filter"]]
            steps = [s for s in steps if s[0] != "take_first"] + [("majority_vote", {}), ("take_first", {})]
            ens = build_filter_ensemble(fcfg["name"], steps)
            inst = Instance(request_type="generate_until", doc=doc, arguments=("", {}), idx=0,
                            metadata=(task, doc_id, len(resps)), resps=list(resps))
            ens.apply([inst])
            val = inst.filtered_resps[fcfg["name"]]
            extracted[fcfg["name"]] = val
            for m, v in t.process_results(doc, [val]).items():
                metrics[f"{m},{fcfg['name']}"] = float(v)
        out.append({"task": task, "doc_id": doc_id, "responses": resps, "metrics": metrics, "extracted": extracted})
    return out


def minerva_equiv_cases():
    """lm-eval's minerva is_equiv (sympy) on pairs, for documenting where ours differs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("minerva_utils", TASKS / "minerva_math/utils.py")
    mu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mu)
    golds = []
    for subject in MATH_SUBJECTS.values():
        for r in jsonl(f"math/test/{subject}.jsonl.gz"):
            golds.append(mu.normalize_final_answer(mu.remove_boxed(mu.last_boxed_only_string(r["solution"]))))
    self_equal = [mu.is_equiv(g, g) for g in golds]
    pairs = [
        ("\\frac{1}{2}", "0.5"), ("0.5", "\\frac{1}{2}"), ("\\dfrac{1}{2}", "\\frac{1}{2}"), ("\\tfrac{3}{4}", "0.75"),
        ("2\\sqrt{2}", "\\sqrt{8}"), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"), ("-\\frac{2}{3}", "\\frac{-2}{3}"),
        ("0.333", "\\frac{1}{3}"), ("10", "10.0"), ("1000", "1{,}000"), ("3\\pi", "\\pi3"), ("\\pi", "3.14159"),
        ("x^2+1", "1+x^2"), ("(1,2)", "(1,2)"), ("[2,5)", "[2,5)"), ("\\text{(A)}", "(A)"), ("5\\%", "5"),
        ("2^{10}", "1024"), ("\\frac{7}{4}", "1.75"), ("12", "12"), ("", ""), ("[invalidanswer]", "5"),
        ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"), ("4\\cdot3", "12"), ("3\\times4", "12"), ("\\left(3\\right)", "3"),
        ("-5", "5"), ("1/3", "\\frac{1}{3}"), ("3!", "6"), ("\\sqrt[3]{8}", "2"), ("2^{-1}", "0.5"),
        ("a", "a"), ("\\infty", "\\infty"), ("1,2", "1,2"), ("x", "y"), ("\\frac{1}{0}", "5"),
        # Exact integers and rationals against sympy's Float arithmetic; symbols over the complex plane.
        ("1000000001", "1000000000"), ("11111111110", "11111111100"), ("276399135171", "276399135170"),
        ("0.3333333333333", "\\frac{1}{3}"), ("0.1+0.2", "0.3"), ("1.0000000001", "1"),
        ("2^{60}", "1152921504606846976"), ("2^{60}+1", "1152921504606846976"), ("\\frac{6}{4}", "1.5"),
        ("10!", "3628800"), ("\\binom{10}{3}", "120"), ("\\frac{1}{3}+\\frac{1}{6}", "0.5"),
        ("|x|", "x"), ("\\sqrt{x^2}", "x"), ("\\log(x^2)", "2\\log(x)"), ("\\sqrt{x}^2", "x"),
        ("\\frac{x^2-1}{x-1}", "x+1"), ("2.5x", "\\frac{5x}{2}"),
    ]
    return {
        "gold_count": len(golds),
        "gold_self_unequal": [g for g, ok in zip(golds, self_equal) if not ok],
        "pairs": [{"a": a, "b": b, "lm_eval": bool(mu.is_equiv(a, b))} for a, b in pairs],
    }


if __name__ == "__main__":
    out = {"lm_eval_version": "0.4.12", "python": sys.version.split()[0], "requests": [], "firsts": {}}
    for task, shots, limit in REQUEST_CASES:
        t, items = build(task, shots, limit)
        out["requests"].append({"task": task, "shots": shots, "limit": limit, "default_shots": t.config.num_fewshot
                                if shots is None else shots, "items": len(items), "sha256": digest(items)})
        print(task, shots, limit, len(items), file=sys.stderr)
        if shots is None:
            out["firsts"][task] = items[0]
    out["scores"] = score_cases()
    out["majority"] = majority_cases()
    here = Path(__file__).parent
    firsts = out.pop("firsts")
    equiv = minerva_equiv_cases()
    out["minerva_equiv"] = equiv
    (here / "gen_expected.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    # Full first items, for reading by eye and debugging (not used by the tests).
    with open("/tmp/lm_eval_gen_first_items.json", "w") as f:
        json.dump(firsts, f, indent=1, ensure_ascii=False)
