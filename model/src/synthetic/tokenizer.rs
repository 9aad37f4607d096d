//! A synthetic Llama-style (SentencePiece BPE, byte fallback) vocabulary of any size from 400
//! up: `<unk>`, `<s>`, `</s>`, the 256 `<0xNN>` byte tokens, single characters, then word
//! pieces built letter by letter (`▁a`, `ab`, `▁ab`, `Ab`, `▁Ab`, `abc`, `▁abc`, ...), each with
//! the merge that makes it. It tokenizes any text (bytes it has no piece for fall back to byte
//! tokens); the ids mean nothing. Written as a `tokenizer.json` and as GGUF `tokenizer.ggml.*`
//! metadata, which tokenize identically.

use std::path::Path;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, DecoderWrapper, Tokenizer};

use crate::error::{ModelError, Result};
use crate::load::gguf::GgufValue;

const WORD: char = '\u{2581}';
/// llama.cpp token types.
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const BYTE: i32 = 6;
/// The special tokens, at ids 0, 1, 2 as in Llama 2 and Mistral.
pub const UNK: u32 = 0;
pub const BOS: u32 = 1;
pub const EOS: u32 = 2;

pub struct SyntheticVocab {
    pub tokens: Vec<String>,
    /// (left, right) for every token after the single characters, in id order.
    pub merges: Vec<(String, String)>,
    types: Vec<i32>,
}

impl SyntheticVocab {
    /// A vocabulary of exactly `size` tokens.
    pub fn new(size: usize) -> Result<Self> {
        let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
        let mut types = vec![UNKNOWN, CONTROL, CONTROL];
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        types.extend([BYTE; 256]);
        let lower: Vec<char> = ('a'..='z').collect();
        let upper: Vec<char> = ('A'..='Z').collect();
        let singles = std::iter::once(WORD)
            .chain(lower.iter().copied())
            .chain(upper.iter().copied())
            .chain('0'..='9')
            .chain(".,;:!?'\"()-".chars());
        tokens.extend(singles.map(String::from));
        types.resize(tokens.len(), NORMAL);
        let first_piece = tokens.len();
        let word = WORD.to_string();
        let mut pieces: Vec<(String, String)> = Vec::new();
        pieces.extend(
            lower
                .iter()
                .chain(&upper)
                .chain(&['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
                .map(|c| (word.clone(), c.to_string())),
        );
        for first in [&lower, &upper] {
            let pairs: Vec<(String, String)> = first
                .iter()
                .flat_map(|a| lower.iter().map(move |b| (a.to_string(), b.to_string())))
                .collect();
            pieces.extend(pairs.iter().cloned());
            pieces.extend(pairs.iter().map(|(a, b)| (format!("{WORD}{a}"), b.clone())));
        }
        let triples = |prefix: &str| -> Vec<(String, String)> {
            lower
                .iter()
                .flat_map(|a| lower.iter().map(move |b| format!("{a}{b}")))
                .flat_map(|ab| lower.iter().map(move |c| (format!("{prefix}{ab}"), c.to_string())))
                .collect()
        };
        pieces.extend(triples(""));
        pieces.extend(triples(&word));
        if size < first_piece || size > first_piece + pieces.len() {
            return Err(ModelError::Invalid(format!(
                "a synthetic vocabulary has between {first_piece} and {} tokens, not {size}",
                first_piece + pieces.len()
            )));
        }
        pieces.truncate(size - first_piece);
        tokens.extend(pieces.iter().map(|(a, b)| format!("{a}{b}")));
        types.resize(size, NORMAL);
        Ok(Self {
            tokens,
            merges: pieces,
            types,
        })
    }

    /// The HF tokenizer: BPE with byte fallback, spaces as `▁` with one put before the text.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        let vocab: Vocab = self
            .tokens
            .iter()
            .enumerate()
            .map(|(id, t)| (t.clone(), id as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, self.merges.clone())
            .unk_token("<unk>".into())
            .fuse_unk(true)
            .byte_fallback(true)
            .build()
            .map_err(|e| ModelError::Invalid(format!("synthetic BPE: {e}")))?;
        let replace = Replace::new(WORD.to_string(), " ").map_err(|e| ModelError::Invalid(format!("{e}")))?;
        let decoder: Vec<DecoderWrapper> = vec![
            replace.into(),
            ByteFallback::new().into(),
            Fuse::new().into(),
            Strip::new(' ', 1, 0).into(),
        ];
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer
            .with_pre_tokenizer(Some(Metaspace::new(WORD, PrependScheme::First, false)))
            .with_decoder(Some(Sequence::new(decoder)));
        tokenizer.add_special_tokens(&[
            AddedToken::from("<unk>", true),
            AddedToken::from("<s>", true),
            AddedToken::from("</s>", true),
        ]);
        Ok(tokenizer)
    }

    /// `tokenizer.json` and a `tokenizer_config.json` that adds BOS, as Llama's do.
    pub fn write_hf(&self, dir: &Path) -> Result<()> {
        let path = dir.join("tokenizer.json");
        let json = self
            .tokenizer()?
            .to_string(false)
            .map_err(|e| ModelError::Invalid(format!("serializing the tokenizer: {e}")))?;
        std::fs::write(&path, json).map_err(|e| ModelError::io(&path, e))?;
        let config = serde_json::json!({
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
            "add_bos_token": true, "add_eos_token": false, "tokenizer_class": "LlamaTokenizerFast",
        });
        let path = dir.join("tokenizer_config.json");
        std::fs::write(&path, config.to_string()).map_err(|e| ModelError::io(&path, e))
    }

    /// The `tokenizer.ggml.*` metadata of a llama GGUF file.
    pub fn gguf_metadata(&self) -> Vec<(String, GgufValue)> {
        let strings = |v: Vec<String>| GgufValue::Array(v.into_iter().map(GgufValue::String).collect());
        let merges = self.merges.iter().map(|(a, b)| format!("{a} {b}")).collect();
        // SentencePiece scores: earlier pieces merge first.
        let scores = (0..self.tokens.len()).map(|id| GgufValue::F32(-(id as f32))).collect();
        vec![
            ("tokenizer.ggml.model".into(), GgufValue::String("llama".into())),
            ("tokenizer.ggml.tokens".into(), strings(self.tokens.clone())),
            ("tokenizer.ggml.scores".into(), GgufValue::Array(scores)),
            (
                "tokenizer.ggml.token_type".into(),
                GgufValue::Array(self.types.iter().map(|&t| GgufValue::I32(t)).collect()),
            ),
            ("tokenizer.ggml.merges".into(), strings(merges)),
            ("tokenizer.ggml.bos_token_id".into(), GgufValue::U32(BOS)),
            ("tokenizer.ggml.eos_token_id".into(), GgufValue::U32(EOS)),
            ("tokenizer.ggml.unknown_token_id".into(), GgufValue::U32(UNK)),
            ("tokenizer.ggml.add_bos_token".into(), GgufValue::Bool(true)),
            ("tokenizer.ggml.add_eos_token".into(), GgufValue::Bool(false)),
        ]
    }
}
