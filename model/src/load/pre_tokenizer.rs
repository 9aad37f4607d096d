//! The pre-tokenizers of byte-level BPE vocabularies in GGUF files, named by
//! `tokenizer.ggml.pre`, with the split patterns and flags llama.cpp gives each
//! (`src/llama-vocab.cpp`: the name -> `LLAMA_VOCAB_PRE_TYPE` table in `llama_vocab::impl::load`,
//! the patterns in `llm_tokenizer_bpe`).
//!
//! llama.cpp applies a pre-tokenizer's patterns one after the other, each to every piece the
//! previous one left, keeping the text between two matches as a piece of its own
//! (`unicode_regex_split`); that is tokenizers' `Split` with `Isolated` behaviour, chained.
//! The pieces are then spelled byte-level (GPT-2's `bytes_to_unicode`) for BPE.

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

/// GPT-2's pattern as llama.cpp writes it (without GPT-2's final `|\s+`, which cannot change a
/// split since unmatched text is kept as a piece anyway).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

/// Llama 3's pattern (tokenizer.json's `(?i:'s|...)` spelled without the inline flag, as
/// llama.cpp does): digits in groups of up to three, a letter run may take one leading symbol.
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's pattern: Llama 3's with every digit on its own.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A byte-level pre-tokenizer llama.cpp knows, for the `tokenizer.ggml.pre` values handled here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgufPreTokenizer {
    /// `default`, and what llama.cpp uses when the key is missing (with a warning that
    /// generation quality will be degraded): punctuation runs first, then GPT-2's pattern,
    /// then digit runs cut into threes.
    Default,
    /// `llama-bpe` (and its aliases `llama3`, `llama-v3`, `falcon3`, `pixtral`).
    Llama3,
    /// `qwen2` (and `deepseek-r1-qwen`).
    Qwen2,
    /// `smollm` (and `starcoder`, `refact`): every digit alone, then GPT-2's pattern.
    Smollm,
    /// `gpt-2` (and `phi-2`, `mpt`, `olmo`).
    Gpt2,
}

/// Every name accepted, with its pre-tokenizer: llama.cpp's aliases whose patterns and flags
/// (`ignore_merges`, `add_bos`) are the same as the five above.
const NAMES: &[(&str, GgufPreTokenizer)] = &[
    ("default", GgufPreTokenizer::Default),
    ("llama-bpe", GgufPreTokenizer::Llama3),
    ("llama3", GgufPreTokenizer::Llama3),
    ("llama-v3", GgufPreTokenizer::Llama3),
    ("falcon3", GgufPreTokenizer::Llama3),
    ("pixtral", GgufPreTokenizer::Llama3),
    ("qwen2", GgufPreTokenizer::Qwen2),
    ("deepseek-r1-qwen", GgufPreTokenizer::Qwen2),
    ("smollm", GgufPreTokenizer::Smollm),
    ("starcoder", GgufPreTokenizer::Smollm),
    ("refact", GgufPreTokenizer::Smollm),
    ("gpt-2", GgufPreTokenizer::Gpt2),
    ("phi-2", GgufPreTokenizer::Gpt2),
    ("mpt", GgufPreTokenizer::Gpt2),
    ("olmo", GgufPreTokenizer::Gpt2),
];

impl GgufPreTokenizer {
    /// The pre-tokenizer `tokenizer.ggml.pre` names; a missing key is `default`, as in
    /// llama.cpp. An unknown name is an error that names it and lists the known ones.
    pub fn from_name(name: Option<&str>) -> Result<Self, String> {
        let Some(name) = name else {
            return Ok(Self::Default);
        };
        match NAMES.iter().find(|(known, _)| *known == name) {
            Some((_, pre)) => Ok(*pre),
            None => {
                let known: Vec<&str> = NAMES.iter().map(|(known, _)| *known).collect();
                Err(format!(
                    "tokenizer.ggml.pre `{name}` is not supported (supported: {})",
                    known.join(", ")
                ))
            }
        }
    }

    /// The split patterns, applied in this order.
    pub fn patterns(self) -> &'static [&'static str] {
        match self {
            Self::Default => &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
            Self::Llama3 => &[LLAMA3],
            Self::Qwen2 => &[QWEN2],
            Self::Smollm => &[r"\p{N}", GPT2],
            Self::Gpt2 => &[GPT2],
        }
    }

    /// llama.cpp's `ignore_merges`: a piece that is a token of the vocabulary is taken whole,
    /// without running the merges (Llama 3's tokenizer.json says the same).
    pub fn ignores_merges(self) -> bool {
        self == Self::Llama3
    }

    /// llama.cpp's `add_bos` default for this pre-tokenizer, which `tokenizer.ggml.add_bos_token`
    /// overrides.
    pub fn adds_bos(self) -> bool {
        self == Self::Llama3
    }

    /// The patterns as tokenizers' `Split`s (isolated pieces), then the byte-level spelling
    /// without a prefix space.
    pub fn pre_tokenizer(self) -> Result<PreTokenizerWrapper, String> {
        let mut steps = Vec::with_capacity(self.patterns().len() + 1);
        for pattern in self.patterns() {
            let split = Split::new(
                SplitPattern::Regex(pattern.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| format!("pre-tokenizer pattern {pattern:?}: {e}"))?;
            steps.push(split.into());
        }
        steps.push(ByteLevel::new(false, true, false).into());
        Ok(Sequence::new(steps).into())
    }
}
