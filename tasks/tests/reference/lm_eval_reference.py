"""Builds requests with the real lm-evaluation-harness (0.4.12) on this crate's bundled data and
writes their digests to expected_digests.json, which tests/lm_eval_reference.rs compares with.

    python3 -m venv /tmp/lmvenv && /tmp/lmvenv/bin/pip install lm-eval==0.4.12
    /tmp/lmvenv/bin/python tasks/tests/reference/lm_eval_reference.py

The data is handed to lm-eval's own ConfigurableTask through `custom_dataset`, in the schema of the
Hugging Face data sets the task YAMLs name (allenai/ai2_arc, Rowan/hellaswag, baber/piqa, ...),
so everything after loading (templates, process_docs, samplers, seeds, request construction)
is lm-eval's code. The evaluator's steps are mirrored: set_config(num_fewshot),
set_fewshot_seed(seed), build_all_requests(limit).
"""

import csv
import gzip
import hashlib
import io
import json
import logging
import sys
from pathlib import Path

import datasets
import lm_eval
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

logging.disable(logging.WARNING)
datasets.disable_progress_bars()

DATA = Path(__file__).resolve().parents[2] / "data"
TASKS = Path(lm_eval.__file__).parent / "tasks"


def jsonl(path):
    with gzip.open(DATA / path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def lst(path):
    with gzip.open(DATA / path, "rt", encoding="utf-8") as f:
        return [line.strip() for line in f]


def arc_like(rec, stem_key):
    q = rec["question"]
    return {
        "id": rec["id"],
        stem_key: q["stem"],
        "choices": {"text": [c["text"] for c in q["choices"]], "label": [c["label"] for c in q["choices"]]},
        "answerKey": rec["answerKey"],
    }


def csqa(rec):
    q = rec["question"]
    return {
        "id": rec["id"],
        "question": q["stem"],
        "question_concept": q["question_concept"],
        "choices": {"label": [c["label"] for c in q["choices"]], "text": [c["text"] for c in q["choices"]]},
        "answerKey": rec["answerKey"],
    }


def mmlu(subject, split):
    with gzip.open(DATA / f"mmlu/{split}/{subject}_{split}.csv.gz", "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return [{"question": r[0], "subject": subject, "choices": r[1:5], "answer": "ABCD".index(r[5])} for r in rows]


def splits(task):
    """{split name: list of HF-schema records}"""
    if task == "hellaswag":
        val = jsonl("hellaswag/hellaswag_val.jsonl.gz")
        return {"validation": val, "train": val[:8]}  # train unused at 0 shots (not bundled)
    if task in ("arc_easy", "arc_challenge"):
        p = "ARC-Easy" if task == "arc_easy" else "ARC-Challenge"
        return {
            "test": [arc_like(r, "question") for r in jsonl(f"{task}/{p}-Test.jsonl.gz")],
            "train": [arc_like(r, "question") for r in jsonl(f"{task}/{p}-Train.jsonl.gz")],
        }
    if task == "openbookqa":
        return {
            "test": [arc_like(r, "question_stem") for r in jsonl("openbookqa/test.jsonl.gz")],
            "train": [arc_like(r, "question_stem") for r in jsonl("openbookqa/train.jsonl.gz")],
        }
    if task == "commonsense_qa":
        return {
            "validation": [csqa(r) for r in jsonl("commonsense_qa/dev_rand_split.jsonl.gz")],
            "train": [csqa(r) for r in jsonl("commonsense_qa/train_rand_split.jsonl.gz")],
        }
    if task == "piqa":
        recs = jsonl("piqa/valid.jsonl.gz")
        labels = lst("piqa/valid-labels.lst.gz")
        val = [{**r, "label": int(l)} for r, l in zip(recs, labels, strict=True)]
        return {"validation": val, "train": val[:8]}
    if task == "social_iqa":
        recs = jsonl("siqa/dev.jsonl.gz")
        labels = lst("siqa/dev-labels.lst.gz")
        val = [{**r, "label": l} for r, l in zip(recs, labels, strict=True)]
        return {"validation": val, "train": val[:8]}
    if task == "winogrande":
        val = jsonl("winogrande/dev.jsonl.gz")
        val = [{k: r[k] for k in ("sentence", "option1", "option2", "answer")} for r in val]
        return {"validation": val, "train": val[:8]}
    if task == "boolq":
        val = [
            {"question": r["question"], "passage": r["passage"], "idx": r["idx"],
             "label": {"false": 0, "true": 1}[str(r["label"]).lower()]}
            for r in jsonl("boolq/val.jsonl.gz")
        ]
        return {"validation": val, "train": val[:8]}
    if task.startswith("mmlu_"):
        s = task[len("mmlu_"):]
        return {"test": mmlu(s, "test"), "dev": mmlu(s, "dev")}
    raise KeyError(task)


YAML = {
    "hellaswag": "hellaswag/hellaswag.yaml",
    "arc_easy": "arc/arc_easy.yaml",
    "arc_challenge": "arc/arc_challenge.yaml",
    "piqa": "piqa/piqa.yaml",
    "winogrande": "winogrande/default.yaml",
    "social_iqa": "siqa/siqa.yaml",
    "openbookqa": "openbookqa/openbookqa.yaml",
    "commonsense_qa": "commonsense_qa/default.yaml",
    "boolq": "super_glue/boolq/default.yaml",
}


def build(task, shots, seed, limit):
    path = YAML.get(task) or f"mmlu/default/{task}.yaml"
    cfg = load_yaml(TASKS / path)
    for k in ("tag", "group", "task_list"):
        cfg.pop(k, None)
    data = datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits(task).items()})
    cfg["custom_dataset"] = lambda **_: data
    t = ConfigurableTask(config=cfg)
    # evaluator.simple_evaluate
    t.set_config(key="num_fewshot", value=shots)
    t.set_fewshot_seed(seed=seed)
    # evaluator.evaluate
    t.build_all_requests(limit=limit, rank=0, world_size=1)
    by_doc = {}
    for inst in t.instances:
        by_doc.setdefault(inst.doc_id, []).append(inst)
    items = []
    for doc_id in sorted(by_doc):
        insts = sorted(by_doc[doc_id], key=lambda i: i.idx)
        doc = insts[0].doc
        choices = t.doc_to_choice(doc)
        gold = t.doc_to_text(doc) if t.multiple_input else t.doc_to_target(doc)
        if isinstance(gold, str):
            gold = choices.index(gold)
        items.append({
            "doc_id": doc_id,
            "gold": gold,
            "choice_chars": [len(c) for c in choices],
            "requests": [list(i.arguments) for i in insts],
        })
    return items


def digest(items):
    """Must match `digest` in tests/lm_eval_reference.rs."""
    h = hashlib.sha256()
    for it in items:
        s = f"{it['doc_id']}\x1f{it['gold']}\x1f{','.join(map(str, it['choice_chars']))}"
        for ctx, cont in it["requests"]:
            s += f"\x1e{ctx}\x1d{cont}"
        h.update((s + "\n").encode("utf-8"))
    return h.hexdigest()


SUBJECTS = sorted(p.stem for p in (TASKS / "mmlu/default").glob("mmlu_*.yaml"))

CASES = (
    # (lm-eval task, shots, seed, limit)
    [(t, 0, 1234, None) for t in YAML]
    + [(s, 0, 1234, None) for s in SUBJECTS]
    + [(s, 5, 1234, None) for s in SUBJECTS]
    + [
        ("arc_easy", 1, 1234, None),
        ("arc_easy", 5, 1234, None),
        ("arc_easy", 3, 42, None),
        ("arc_challenge", 25, 1234, None),
        ("openbookqa", 5, 1234, None),
        ("commonsense_qa", 5, 1234, None),
        ("commonsense_qa", 7, 1234, 100),
        ("mmlu_abstract_algebra", 2, 1234, None),
    ]
)

if __name__ == "__main__":
    out = {"lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "0.4.12",
           "python": sys.version.split()[0], "cases": []}
    firsts = {}
    for task, shots, seed, limit in CASES:
        items = build(task, shots, seed, limit)
        out["cases"].append({"task": task, "shots": shots, "seed": seed, "limit": limit,
                             "items": len(items), "sha256": digest(items)})
        firsts[f"{task}/{shots}/{seed}"] = items[0]
        print(task, shots, seed, limit, len(items), file=sys.stderr)
    here = Path(__file__).parent
    (here / "expected_digests.json").write_text(json.dumps(out, indent=1) + "\n")
    # First items, for reading by eye (not used by the tests).
    with open("/tmp/lm_eval_first_items.json", "w") as f:
        json.dump(firsts, f, indent=1, ensure_ascii=False)
