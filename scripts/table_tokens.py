#!/usr/bin/env python3
"""Tokens that `harness table --paper mistral-7b` computes, per column, from the prompts the
harness renders (`harness tasks --show TASK --n ALL`), counted with a tokenizer.json:

    python3 scripts/table_tokens.py HARNESS_BINARY TOKENIZER_JSON [LIMIT]

Prompt tokens count a prefix shared by every prompt of a task (fixed few-shot exemplars) once,
as the harness computes it once; a multiple-choice item is its context plus each choice.
Generated tokens cannot be known before a model writes them: the estimate assumes the lengths
in GEN_TOKENS per sample (typical answers, not the caps). Needs `pip install tokenizers`.
"""
import json
import os
import re
import subprocess
import sys

from tokenizers import Tokenizer

# column -> (tasks, shots, samples per prompt, assumed generated tokens per sample)
COLUMNS = {
    "mmlu": ("mmlu_*", 5, 1, 0),
    "hellaswag": ("hellaswag", 0, 1, 0),
    "winogrande": ("winogrande", 0, 1, 0),
    "piqa": ("piqa", 0, 1, 0),
    "siqa": ("siqa", 0, 1, 0),
    "openbookqa": ("openbookqa", 0, 1, 0),
    "arc_easy": ("arc_easy", 0, 1, 0),
    "arc_challenge": ("arc_challenge", 0, 1, 0),
    "commonsense_qa": ("commonsense_qa", 0, 1, 0),
    "boolq": ("boolq", 0, 1, 0),
    "nq_open": ("nq_open", 0, 1, 10),
    "humaneval": ("humaneval", 0, 1, 150),
    "mbpp": ("mbpp", 3, 1, 100),
    "math": ("minerva_math_*", 4, 4, 200),
    "gsm8k": ("gsm8k_cot", 8, 8, 150),
    "bbh": ("bbh_cot_fewshot_*", 3, 1, 150),
}


def task_names(harness, pattern):
    if not pattern.endswith("*"):
        return [pattern]
    listing = subprocess.run([harness, "tasks"], capture_output=True, text=True, check=True).stdout
    prefix = pattern[:-1]
    return [l.split()[0] for l in listing.splitlines()[1:]
            if l.startswith(prefix) and l.split()[1] in ("multiple_choice", "generate_until")]


def items(harness, task, shots, limit):
    """Yields (prompt, [choice texts]) per item of `harness tasks --show`."""
    out = subprocess.run([harness, "tasks", "--show", task, "--n", str(limit), "--shots", str(shots)],
                         capture_output=True, text=True, check=True).stdout
    for doc in out.split("\n--- doc ")[1:]:
        body = doc.split("\n", 1)[1] if "\n" in doc else ""
        choices = re.findall(r'^[ *] choice \d+: (.*)$', body, flags=re.M)
        if choices:
            prompt = body[:body.index(re.search(r'^[ *] choice', body, flags=re.M).group(0))]
            parts = [[json.loads(p) for p in re.findall(r'"(?:[^"\\]|\\.)*"', c)] for c in choices]
            yield prompt, ["".join(p) for p in parts]
        else:
            yield body.rsplit("\n(until ", 1)[0], []


def common_prefix(texts):
    if len(texts) < 2:
        return ""
    return os.path.commonprefix(texts)


def main():
    harness, tokenizer_json = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    tok = Tokenizer.from_file(tokenizer_json)
    count = lambda s: len(tok.encode(s, add_special_tokens=False).ids) if s else 0
    total_prompt, total_gen = 0, 0
    print("| column | items | prompt tokens | generated tokens (assumed) |")
    print("|---|---|---|---|")
    for column, (pattern, shots, samples, gen) in COLUMNS.items():
        n_items, prompt_tokens = 0, 0
        for task in task_names(harness, pattern):
            docs = list(items(harness, task, shots, limit))
            shared = common_prefix([p for p, _ in docs])
            prompt_tokens += count(shared)
            for prompt, choices in docs:
                rest = prompt[len(shared):]
                prompt_tokens += count(rest) + sum(count(c) for c in choices)
            n_items += len(docs)
        gen_tokens = n_items * samples * gen
        total_prompt += prompt_tokens
        total_gen += gen_tokens
        print(f"| {column} | {n_items} | {prompt_tokens:,} | {gen_tokens:,} |")
    print(f"| all | | {total_prompt:,} | {total_gen:,} |")


if __name__ == "__main__":
    main()
