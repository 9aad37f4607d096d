"""What lm-evaluation-harness 0.4.12 itself builds under `--apply_chat_template` (and
`--system_instruction`) for the user task files of tasks/tests/fixtures/user_tasks/, with
SmolLM2-135M-Instruct's chat template (../shared/fixtures/smollm2/chat_template.jinja), rendered
as transformers' `apply_chat_template` renders it (a sandboxed jinja2 environment with
trim_blocks and lstrip_blocks, `add_generation_prompt`). Writes chat_requests.json, which
tests/chat_requests.rs compares with the harness's requests:

    /var/tmp/lmvenv/bin/python harness/tests/reference/lm_eval_chat_requests.py

(the venv: python3 -m venv /var/tmp/lmvenv && /var/tmp/lmvenv/bin/pip install lm-eval==0.4.12)
"""

import json
import logging
import os
from pathlib import Path

import datasets
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from lm_eval.tasks import TaskManager, get_task_dict

logging.disable(logging.WARNING)
datasets.disable_progress_bars()

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
FIXTURE = ROOT / "tasks" / "tests" / "fixtures" / "user_tasks"
TEMPLATE = (ROOT.parent / "shared" / "fixtures" / "smollm2" / "chat_template.jinja").read_text()

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
template = env.from_string(TEMPLATE)


def chat_template(messages, add_generation_prompt=True):
    return template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                           bos_token="<|im_start|>", eos_token="<|im_end|>")


def requests(task, system_instruction):
    task.set_fewshot_seed(seed=1234)
    task.build_all_requests(limit=None, rank=0, world_size=1, system_instruction=system_instruction,
                            apply_chat_template=True, chat_template=chat_template)
    out = []
    for inst in sorted(task.instances, key=lambda i: (i.doc_id, i.idx)):
        args = list(inst.arguments)
        out.append({"doc_id": inst.doc_id, "context": args[0],
                    "continuation": args[1] if isinstance(args[1], str) else None})
    return out


def main():
    os.chdir(FIXTURE)
    manager = TaskManager(include_path=str(FIXTURE), include_defaults=False)
    cases = []
    for name in ["capitals", "capitals_gen"]:
        for system in [None, "Answer with the city only."]:
            task = get_task_dict([name], manager)[name]
            cases.append({"task": name, "system_instruction": system, "requests": requests(task, system)})
    (HERE / "chat_requests.json").write_text(json.dumps({"cases": cases}, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
