#!/usr/bin/env python3
"""Writes model/tests/data/pretokenizer_splits.json: how llama.cpp's byte-level BPE pre-tokenizers
(`tokenizer.ggml.pre`) split text, for the values the harness honours.

The reference is the regex semantics themselves, evaluated with Python's `regex` module (an engine
independent of the Rust side's fancy-regex) in the loop llama.cpp's `unicode_regex_split` runs:
the patterns of a pre-tokenizer apply one after the other, each to every piece the previous one
left, and the text between two matches is kept as a piece of its own. The patterns are
llama.cpp's `llm_tokenizer_bpe` ones (src/llama-vocab.cpp), named by their `LLAMA_VOCAB_PRE_TYPE`.

Usage: python3 -m pip install regex && python3 scripts/gen_pretokenizer_fixture.py
"""

import json
from importlib.metadata import version
from pathlib import Path

import regex

OUT = Path(__file__).resolve().parent.parent / "model/tests/data/pretokenizer_splits.json"

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
LLAMA3 = (
    CONTRACTIONS
    + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2 = CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

# tokenizer.ggml.pre value -> llama.cpp's patterns for its pre-tokenizer type.
PATTERNS = {
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "llama-bpe": [LLAMA3],
    "qwen2": [QWEN2],
    "smollm": [r"\p{N}", GPT2],
    "gpt-2": [GPT2],
}

# Strings on which the patterns disagree: digit grouping, contractions in both cases, CJK and
# other scripts, runs of spaces, tabs and newlines, punctuation runs and symbols.
TEXTS = [
    "12345 678 9",
    "Year 2024: 1,234,567.89 and 3.14159",
    "x² ½ Ⅻ ١٢٣ 10000000",
    "can't WON'T I'm I'M you're YOU'RE it's they'll we'd She'D",
    "'s 'tis rock'n'roll",
    "日本語のテキスト 中文分词测试 한국어 텍스트",
    "Привет, мир! مرحبا بالعالم",
    "a  b   c\t\td\n\n e  \n  f   ",
    "   leading and trailing   ",
    "line1\r\nline2\n\n\nline3\r\n",
    "Hello, world!!! (test) $100 + <tag> ^~| a==b",
    "#hashtag @user _under __init__ x.y.z",
    "end.\n\nNext: foo:\r\n bar",
    "naïve café résumé Straße",
    "emoji 😀👍🏽 and 🇺🇸 flag",
    "def f(x):\n\treturn x + 1\n",
    "\u00a0non-breaking\u00a0space and zero\u200bwidth",
]


def split(text: str, patterns: list[str]) -> list[str]:
    pieces = [text]
    for pattern in patterns:
        out = []
        for piece in pieces:
            at = 0
            for match in regex.finditer(pattern, piece):
                if match.start() > at:
                    out.append(piece[at : match.start()])
                out.append(match.group())
                at = match.end()
            if at < len(piece):
                out.append(piece[at:])
        pieces = out
    return pieces


def main() -> None:
    cases = [{"pre": pre, "text": text, "pieces": split(text, patterns)} for pre, patterns in PATTERNS.items() for text in TEXTS]
    for case in cases:
        assert "".join(case["pieces"]) == case["text"], case
    fixture = {
        "made_by": f"scripts/gen_pretokenizer_fixture.py, Python regex {version('regex')}",
        "patterns": PATTERNS,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(cases)} cases, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
