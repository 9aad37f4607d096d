"""Runs the task files in tests/fixtures/user_tasks/ with lm-evaluation-harness 0.4.12 itself and
writes what it builds and scores to user_tasks_expected.json, which tests/user_tasks.rs compares
with:

    python3 -m venv /var/tmp/lmvenv && /var/tmp/lmvenv/bin/pip install lm-eval==0.4.12
    /var/tmp/lmvenv/bin/python tasks/tests/reference/lm_eval_user_tasks.py

Unlike lm_eval_reference.py, nothing is adapted: lm-eval's TaskManager indexes the folder
(`include_path`, no built-in tasks) and loads the files as they are, data included (run from that
folder, since the Hugging Face loader resolves relative `data_files` against the working
directory). Then the evaluator's steps: set_config(num_fewshot) is not called (the files' own
num_fewshot), set_fewshot_seed(1234), build_all_requests; scores go through the tasks' own
filters and process_results.
"""

import json
import logging
import os
import sys
from pathlib import Path

import datasets
from lm_eval.api.instance import Instance
from lm_eval.tasks import TaskManager, get_task_dict

logging.disable(logging.WARNING)
datasets.disable_progress_bars()

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "fixtures" / "user_tasks"

# Log-likelihoods per choice for the multiple-choice scores (one list per doc, cycled).
LLS = [[-3.0, -1.0, -2.5, -4.0], [-2.0, -2.0, -9.0, -1.5], [-1.0, -5.0, -0.5, -8.0]]
# Responses for the generative scores, each scored alone (with several, this harness votes
# (maj@k) where lm-eval's take_first keeps the first).
RESPONSES = [
    " The capital is Canberra.",
    " the capital is canberra",
    " Canberra.",
    "  The Canberra ",
    " I think the capital is Sydney",
    " Brasilia",
    " The capital is Nay Pyi Taw.",
    "",
]


def mc_case(task):
    task.set_fewshot_seed(seed=1234)
    task.build_all_requests(limit=None, rank=0, world_size=1)
    by_doc = {}
    for inst in task.instances:
        by_doc.setdefault(inst.doc_id, []).append(inst)
    items = []
    for doc_id in sorted(by_doc):
        insts = sorted(by_doc[doc_id], key=lambda i: i.idx)
        doc = insts[0].doc
        lls = LLS[doc_id % len(LLS)][: len(insts)]
        metrics = task.process_results(doc, [(ll, False) for ll in lls])
        items.append({
            "doc_id": doc_id,
            "doc": doc,
            "target": task.doc_to_target(doc),
            "requests": [list(i.arguments) for i in insts],
            "loglikelihoods": lls,
            "metrics": {k: float(v) for k, v in metrics.items()},
        })
    return items


def gen_case(task):
    task.set_fewshot_seed(seed=1234)
    task.build_all_requests(limit=None, rank=0, world_size=1)
    items = []
    for inst in sorted(task.instances, key=lambda i: i.doc_id):
        ctx, kwargs = inst.arguments
        doc = inst.doc
        scores = []
        for resps in [[r] for r in RESPONSES]:
            probe = Instance(request_type="generate_until", doc=doc, arguments=("", {}), idx=0,
                             metadata=(task.config.task, inst.doc_id, len(resps)), resps=list(resps))
            task._instances = [probe]
            task.apply_filters()
            metrics = {}
            for key, val in probe.filtered_resps.items():
                for m, v in task.process_results(doc, [val]).items():
                    metrics[f"{m},{key}"] = float(v)
            scores.append({"responses": resps, "filtered": dict(probe.filtered_resps), "metrics": metrics})
        items.append({
            "doc_id": inst.doc_id,
            "doc": doc,
            "target": task.doc_to_target(doc),
            "context": ctx,
            "until": list(kwargs["until"]),
            "max_gen_toks": kwargs.get("max_gen_toks"),
            "scores": scores,
        })
    return items


if __name__ == "__main__":
    os.chdir(FIXTURE)
    tm = TaskManager(include_path=str(FIXTURE), include_defaults=False)
    tasks = get_task_dict(["capitals", "capitals_gen"], tm)
    by_name = {}
    for key, task in tasks.items():
        name = key if isinstance(key, str) else key.group_name
        by_name[getattr(task, "config", None) and task.config.task or name] = task
    out = {
        "lm_eval_version": "0.4.12",
        "python": sys.version.split()[0],
        "responses": RESPONSES,
        "capitals": mc_case(by_name["capitals"]),
        "capitals_gen": gen_case(by_name["capitals_gen"]),
        # What the results file shows as `configs.<task>`.
        "configs": {name: json.loads(json.dumps(by_name[name].dump_config(), default=str)) for name in by_name},
    }
    (HERE / "user_tasks_expected.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
