//! Text tokenizers, from a HuggingFace `tokenizer.json` or from the vocabulary a GGUF file carries
//! under `tokenizer.ggml.*`. The GGUF path rebuilds the tokenizer the way transformers' GGUF
//! conversion (`integrations/gguf/gguf_tokenizer_mapping.py`) does, so both give the same ids,
//! except that a byte-level vocabulary is split by its `tokenizer.ggml.pre` rules as llama.cpp
//! splits it (see `pre_tokenizer`), where transformers uses GPT-2's pattern for every file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BPE, Merges, Vocab};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, DecoderWrapper, PostProcessorWrapper, Tokenizer};

use crate::error::{ModelError, Result};
use crate::load::gguf::{GgufFile, GgufValue};
use crate::load::pre_tokenizer::GgufPreTokenizer;

/// llama.cpp's `LLAMA_TOKEN_TYPE_CONTROL`: tokens like `<|im_start|>` that are matched whole.
const CONTROL_TOKEN: i64 = 3;
/// SentencePiece's word marker, standing for a space.
const SPIECE_UNDERLINE: char = '\u{2581}';

/// A tokenizer with the special ids and chat template that came with it.
pub struct TextTokenizer {
    inner: Tokenizer,
    /// The file it came from, named in every error.
    source: PathBuf,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
    pad_id: Option<u32>,
    unk_id: Option<u32>,
    /// Put before / after the ids when `add_special_tokens` is true (BOS / EOS when the
    /// checkpoint asks for them). A `tokenizer.json` post-processor may add others itself.
    prefix_id: Option<u32>,
    suffix_id: Option<u32>,
    vocab_size: usize,
    chat_template: Option<String>,
    /// transformers' `clean_up_tokenization_spaces` (" ." -> ".", ...), applied after decoding.
    clean_up_spaces: bool,
}

/// Token strings named as BOS / EOS / UNK / PAD.
#[derive(Default)]
struct NamedTokens {
    bos: Option<String>,
    eos: Option<String>,
    unk: Option<String>,
    pad: Option<String>,
}

impl NamedTokens {
    fn all(&self) -> impl Iterator<Item = &str> {
        [&self.bos, &self.eos, &self.unk, &self.pad]
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

impl TextTokenizer {
    /// Loads an HF folder's `tokenizer.json`. `tokenizer_config.json` beside it, when present,
    /// names the BOS/EOS/UNK/PAD tokens and may set `add_bos_token` / `add_eos_token`,
    /// `clean_up_tokenization_spaces` and `chat_template`; a `chat_template.jinja` beside it wins
    /// over the config's template, as in transformers.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let mut inner = Tokenizer::from_str(&text)
            .map_err(|e| ModelError::format(path, format!("not a valid tokenizer.json: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let config = HfTokenizerConfig::read(&dir.join("tokenizer_config.json"))?;

        let named = config.named_tokens()?;
        // transformers would add a missing BOS/EOS as a new token past the model's embedding;
        // running without it would change every prompt (lm-eval's prefix token) or never stop.
        for (key, name) in [("bos_token", &named.bos), ("eos_token", &named.eos)] {
            if let Some(name) = name.as_deref().filter(|t| inner.token_to_id(t).is_none()) {
                return Err(ModelError::config(
                    dir.join("tokenizer_config.json"),
                    format!("`{key}` `{name}` is not a token of {}", path.display()),
                ));
            }
        }
        add_named_special_tokens(&mut inner, &named);
        let id_of = |token: &Option<String>| token.as_deref().and_then(|t| inner.token_to_id(t));
        let (bos_id, eos_id) = (id_of(&named.bos), id_of(&named.eos));
        let (unk_id, pad_id) = (id_of(&named.unk), id_of(&named.pad));

        // Like transformers: an explicit add_bos_token / add_eos_token replaces the
        // post-processor of tokenizer.json; otherwise that post-processor decides alone.
        let (add_bos, add_eos) = (config.flag("add_bos_token")?, config.flag("add_eos_token")?);
        let explicit = add_bos.is_some() || add_eos.is_some();
        if explicit {
            inner.with_post_processor(None::<PostProcessorWrapper>);
        }
        let chat_template = match read_optional(&dir.join("chat_template.jinja"))? {
            Some(template) => Some(template),
            None => config.chat_template()?,
        };
        Ok(Self {
            vocab_size: inner.get_vocab_size(true),
            inner,
            source: path.to_path_buf(),
            bos_id,
            eos_id,
            pad_id,
            unk_id,
            prefix_id: bos_id.filter(|_| add_bos == Some(true)),
            suffix_id: eos_id.filter(|_| add_eos == Some(true)),
            chat_template,
            clean_up_spaces: config.flag("clean_up_tokenization_spaces")?.unwrap_or(false),
        })
    }

    /// Builds the tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        Self::from_gguf_metadata(&gguf.path, &gguf.metadata)
    }

    /// [`Self::from_gguf`] on bare metadata; `path` is only named in errors. Lets tests build
    /// small vocabularies without writing a GGUF file.
    pub fn from_gguf_metadata(path: &Path, metadata: &BTreeMap<String, GgufValue>) -> Result<Self> {
        let vocab = GgufVocab::read(path, metadata)?;
        let (mut inner, default_add_bos) = match vocab.model.as_str() {
            "gpt2" => {
                let pre = GgufPreTokenizer::from_name(vocab.pre.as_deref())
                    .map_err(|message| ModelError::unsupported(path, message))?;
                (vocab.byte_level_tokenizer(pre)?, pre.adds_bos())
            }
            "llama" => (vocab.sentencepiece_tokenizer()?, true),
            other => {
                return Err(ModelError::unsupported(
                    path,
                    format!("tokenizer.ggml.model `{other}` (supported: gpt2, llama)"),
                ));
            }
        };
        inner.add_special_tokens(&vocab.special_tokens());

        let add_bos = vocab.add_bos.unwrap_or(default_add_bos);
        let add_eos = vocab.add_eos.unwrap_or(false);
        Ok(Self {
            vocab_size: inner.get_vocab_size(true),
            inner,
            source: path.to_path_buf(),
            bos_id: vocab.bos_id,
            eos_id: vocab.eos_id,
            pad_id: vocab.pad_id,
            unk_id: vocab.unk_id,
            prefix_id: vocab.bos_id.filter(|_| add_bos),
            suffix_id: vocab.eos_id.filter(|_| add_eos),
            chat_template: vocab.chat_template,
            clean_up_spaces: false,
        })
    }

    /// Token ids of `text`. With `add_special_tokens`, BOS/EOS are added as the checkpoint asks;
    /// special tokens written inside `text` are matched whole either way.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, add_special_tokens)
            .map_err(|e| self.error(format!("cannot encode: {e}")))?;
        let mut ids = Vec::with_capacity(encoding.len() + 2);
        if add_special_tokens {
            ids.extend(self.prefix_id);
        }
        ids.extend_from_slice(encoding.get_ids());
        if add_special_tokens {
            ids.extend(self.suffix_id);
        }
        Ok(ids)
    }

    /// The text of `ids`; an id the vocabulary does not have is an error, not skipped.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        if let Some(bad) = ids.iter().find(|&&id| self.inner.id_to_token(id).is_none()) {
            return Err(self.error(format!("token id {bad} is not in the vocabulary")));
        }
        let text = self
            .inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| self.error(format!("cannot decode: {e}")))?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos_id
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad_id
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk_id
    }

    /// Number of distinct tokens, added tokens included (transformers' `len(tokenizer)`).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Refuses a tokenizer whose own vocabulary, or BOS/EOS, reaches past a model's `vocab`
    /// embedding rows: another model's tokenizer, which would fail at the first such token deep
    /// in a run. Added tokens past it are left alone: real checkpoints have them (CodeLlama-34b:
    /// 32,004 against 32,000), text never produces them, and transformers runs such models.
    pub fn check_fits(&self, vocab: usize) -> Result<()> {
        let own = self.inner.get_vocab_size(false);
        if own > vocab {
            return Err(ModelError::config(
                &self.source,
                format!(
                    "the tokenizer's vocabulary has {own} pieces, more than the model's {vocab}: they are not one model's"
                ),
            ));
        }
        // Ids need not be dense: a piece numbered past the model's vocabulary would fail only
        // when a text produced it.
        if let Some((piece, id)) = self
            .inner
            .get_vocab(false)
            .into_iter()
            .find(|&(_, id)| id as usize >= vocab)
        {
            return Err(ModelError::config(
                &self.source,
                format!("the tokenizer's piece `{piece}` is id {id}, past the model's vocabulary of {vocab}"),
            ));
        }
        for (name, id) in [("BOS", self.bos_id), ("EOS", self.eos_id)] {
            if let Some(id) = id.filter(|&id| id as usize >= vocab) {
                return Err(ModelError::config(
                    &self.source,
                    format!("the tokenizer's {name} token is id {id}, past the model's vocabulary of {vocab}"),
                ));
            }
        }
        Ok(())
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The file this tokenizer was read from (tokenizer.json, or the GGUF file), for messages.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The token as the vocabulary spells it (byte-level `Ġ`, SentencePiece `▁`, `<0x0A>`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    fn error(&self, message: String) -> ModelError {
        ModelError::Tokenizer(format!("{}: {message}", self.source.display()))
    }
}

/// transformers adds the named special tokens (BOS, EOS, ...) as special added tokens when they
/// are not added tokens already, so they are matched whole and skipped when decoding.
fn add_named_special_tokens(inner: &mut Tokenizer, named: &NamedTokens) {
    let added: HashSet<String> = inner
        .get_added_tokens_decoder()
        .into_values()
        .map(|t| t.content)
        .collect();
    let missing: Vec<AddedToken> = named
        .all()
        .filter(|token| !added.contains(*token))
        .map(|token| AddedToken::from(token, true))
        .collect();
    inner.add_special_tokens(&missing);
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ModelError::io(path, e)),
    }
}

/// transformers' `clean_up_tokenization`: drops the space before punctuation and contractions.
fn clean_up_tokenization(text: &str) -> String {
    const RULES: [(&str, &str); 10] = [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ];
    RULES
        .iter()
        .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
}

/// `tokenizer_config.json`, or an empty one when the folder has none.
struct HfTokenizerConfig {
    path: PathBuf,
    json: Value,
}

impl HfTokenizerConfig {
    fn read(path: &Path) -> Result<Self> {
        let json = match read_optional(path)? {
            Some(text) => {
                serde_json::from_str(&text).map_err(|e| ModelError::format(path, format!("not valid JSON: {e}")))?
            }
            None => Value::Object(Default::default()),
        };
        if !json.is_object() {
            return Err(ModelError::format(path, "expected a JSON object"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            json,
        })
    }

    fn flag(&self, key: &str) -> Result<Option<bool>> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.invalid(format!("`{key}` should be a boolean, found {other}"))),
        }
    }

    /// A special token is written as a string or as an AddedToken object with a `content`.
    fn token(&self, key: &str) -> Result<Option<String>> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Object(o)) => match o.get("content") {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                _ => Err(self.invalid(format!("`{key}` has no string `content`"))),
            },
            Some(other) => Err(self.invalid(format!("`{key}` should be a token, found {other}"))),
        }
    }

    fn named_tokens(&self) -> Result<NamedTokens> {
        Ok(NamedTokens {
            bos: self.token("bos_token")?,
            eos: self.token("eos_token")?,
            unk: self.token("unk_token")?,
            pad: self.token("pad_token")?,
        })
    }

    /// A string, or a list of `{name, template}` of which we take the one named "default".
    fn chat_template(&self) -> Result<Option<String>> {
        match self.json.get("chat_template") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Array(named)) => Ok(named
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .and_then(|t| t.get("template")?.as_str())
                .map(str::to_string)),
            Some(_) => Err(self.invalid("`chat_template` should be a string".to_string())),
        }
    }

    fn invalid(&self, message: String) -> ModelError {
        ModelError::config(&self.path, message)
    }
}

/// What `tokenizer.ggml.*` says, checked for consistency.
struct GgufVocab<'a> {
    path: &'a Path,
    model: String,
    /// `tokenizer.ggml.pre`: the split rules of a byte-level vocabulary.
    pre: Option<String>,
    tokens: Vec<String>,
    scores: Option<Vec<f32>>,
    token_types: Option<Vec<i64>>,
    merges: Option<Merges>,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
    unk_id: Option<u32>,
    pad_id: Option<u32>,
    add_bos: Option<bool>,
    add_eos: Option<bool>,
    add_space_prefix: Option<bool>,
    chat_template: Option<String>,
}

impl<'a> GgufVocab<'a> {
    fn read(path: &'a Path, meta: &BTreeMap<String, GgufValue>) -> Result<Self> {
        let reader = MetaReader { path, meta };
        let model = reader
            .string("tokenizer.ggml.model")?
            .ok_or_else(|| ModelError::format(path, "no tokenizer.ggml.model"))?;
        let tokens = reader
            .strings("tokenizer.ggml.tokens")?
            .ok_or_else(|| ModelError::format(path, "no tokenizer.ggml.tokens"))?;
        if tokens.is_empty() {
            return Err(ModelError::format(path, "tokenizer.ggml.tokens is empty"));
        }
        let n = tokens.len();
        let merges = match reader.strings("tokenizer.ggml.merges")? {
            Some(lines) => Some(parse_merges(path, &lines)?),
            None => None,
        };
        Ok(Self {
            model,
            pre: reader.string("tokenizer.ggml.pre")?,
            scores: reader.per_token("tokenizer.ggml.scores", n, |v| v.as_f64().map(|f| f as f32))?,
            token_types: reader.per_token("tokenizer.ggml.token_type", n, GgufValue::as_i64)?,
            merges,
            bos_id: reader.token_id("tokenizer.ggml.bos_token_id", n)?,
            eos_id: reader.token_id("tokenizer.ggml.eos_token_id", n)?,
            unk_id: reader.token_id("tokenizer.ggml.unknown_token_id", n)?,
            pad_id: reader.token_id("tokenizer.ggml.padding_token_id", n)?,
            add_bos: reader.bool("tokenizer.ggml.add_bos_token")?,
            add_eos: reader.bool("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: reader.bool("tokenizer.ggml.add_space_prefix")?,
            chat_template: reader.string("tokenizer.chat_template")?,
            tokens,
            path,
        })
    }

    fn token(&self, id: Option<u32>) -> Option<&str> {
        id.map(|id| self.tokens[id as usize].as_str())
    }

    fn named_tokens(&self) -> NamedTokens {
        let name = |id| self.token(id).map(str::to_string);
        NamedTokens {
            bos: name(self.bos_id),
            eos: name(self.eos_id),
            unk: name(self.unk_id),
            pad: name(self.pad_id),
        }
    }

    /// `tokenizer.ggml.model = "gpt2"`: byte-level BPE with the file's merges, split by the
    /// `tokenizer.ggml.pre` rules, no prefix space, no normalizer.
    fn byte_level_tokenizer(&self, pre: GgufPreTokenizer) -> Result<Tokenizer> {
        let merges = self
            .merges
            .clone()
            .ok_or_else(|| ModelError::format(self.path, "a gpt2 tokenizer needs tokenizer.ggml.merges"))?;
        let spelling = ByteSpelling::new();
        // The merges spell tokens byte-level; a token that is not (a mislabelled byte sequence)
        // is re-spelled from its UTF-8 bytes so it still matches them.
        let vocab: Vocab = self
            .tokens
            .iter()
            .enumerate()
            .map(|(id, token)| (spelling.respell(token), id as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(pre.ignores_merges())
            .build()
            .map_err(|e| ModelError::format(self.path, format!("bad byte-level BPE: {e}")))?;
        let pre_tokenizer = pre
            .pre_tokenizer()
            .map_err(|message| ModelError::format(self.path, message))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer
            .with_pre_tokenizer(Some(pre_tokenizer))
            .with_decoder(Some(ByteLevel::default()));
        Ok(tokenizer)
    }

    /// `tokenizer.ggml.model = "llama"`: SentencePiece-style BPE with byte fallback. Spaces become
    /// `▁`, one is put before the text (not after a special token), and merges come from the file
    /// or, when it has none, from the vocabulary and scores.
    fn sentencepiece_tokenizer(&self) -> Result<Tokenizer> {
        let merges = match (&self.merges, &self.scores) {
            (Some(merges), _) => merges.clone(),
            (None, Some(scores)) => generate_merges(&self.tokens, scores),
            (None, None) => {
                return Err(ModelError::format(
                    self.path,
                    "a llama tokenizer needs tokenizer.ggml.merges or tokenizer.ggml.scores",
                ));
            }
        };
        let vocab: Vocab = self
            .tokens
            .iter()
            .enumerate()
            .map(|(id, t)| (t.clone(), id as u32))
            .collect();
        let mut builder = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .fuse_unk(true)
            .byte_fallback(true);
        // With no `<0xNN>` token for a byte, an unknown piece becomes UNK instead of vanishing.
        if let Some(unk) = self.token(self.unk_id) {
            builder = builder.unk_token(unk.to_string());
        }
        let bpe = builder
            .build()
            .map_err(|e| ModelError::format(self.path, format!("bad SentencePiece BPE: {e}")))?;

        let add_prefix_space = self.add_space_prefix.unwrap_or(true);
        let scheme = if add_prefix_space {
            PrependScheme::First
        } else {
            PrependScheme::Never
        };
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer
            .with_pre_tokenizer(Some(Metaspace::new(SPIECE_UNDERLINE, scheme, false)))
            .with_decoder(Some(sentencepiece_decoder(add_prefix_space)?));
        Ok(tokenizer)
    }

    /// CONTROL tokens plus the named BOS/EOS/UNK/PAD. On a byte-level vocabulary a token not
    /// spelled byte-level is left out, as transformers does: adding it would grow the vocabulary.
    fn special_tokens(&self) -> Vec<AddedToken> {
        let spelling = (self.model == "gpt2").then(ByteSpelling::new);
        let control = self.tokens.iter().enumerate().filter(|(id, _)| {
            self.token_types
                .as_ref()
                .is_some_and(|types| types[*id] == CONTROL_TOKEN)
        });
        let control = control.map(|(_, token)| token.as_str());
        let named = self.named_tokens();
        let mut seen = HashSet::new();
        control
            .chain(named.all())
            .filter(|token| spelling.as_ref().is_none_or(|s| s.is_spelled(token)))
            .filter(|token| seen.insert(token.to_string()))
            .map(|token| AddedToken::from(token, true))
            .collect()
    }
}

/// `▁` back to spaces, `<0xNN>` back to bytes, and the prefix space taken off again.
fn sentencepiece_decoder(strip_prefix_space: bool) -> Result<DecoderWrapper> {
    let replace = Replace::new(SPIECE_UNDERLINE.to_string(), " ")
        .map_err(|e| ModelError::Invalid(format!("tokenizer decoder: {e}")))?;
    let mut steps: Vec<DecoderWrapper> = vec![replace.into(), ByteFallback::new().into(), Fuse::new().into()];
    if strip_prefix_space {
        steps.push(Strip::new(' ', 1, 0).into());
    }
    Ok(DecoderSequence::new(steps).into())
}

/// Typed access to GGUF metadata, with errors that name the file and the key.
struct MetaReader<'a> {
    path: &'a Path,
    meta: &'a BTreeMap<String, GgufValue>,
}

impl MetaReader<'_> {
    fn wrong_type(&self, key: &str, expected: &str) -> ModelError {
        ModelError::format(self.path, format!("{key} should be {expected}"))
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        self.meta
            .get(key)
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.wrong_type(key, "a string"))
            })
            .transpose()
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.meta
            .get(key)
            .map(|v| v.as_bool().ok_or_else(|| self.wrong_type(key, "a bool")))
            .transpose()
    }

    fn array(&self, key: &str) -> Result<Option<&[GgufValue]>> {
        self.meta
            .get(key)
            .map(|v| v.as_array().ok_or_else(|| self.wrong_type(key, "an array")))
            .transpose()
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        let strings: Option<Vec<String>> = items.iter().map(|v| v.as_str().map(str::to_string)).collect();
        strings
            .map(Some)
            .ok_or_else(|| self.wrong_type(key, "an array of strings"))
    }

    /// An array with one entry per token, each converted by `convert`.
    fn per_token<T>(
        &self,
        key: &str,
        n_tokens: usize,
        convert: impl Fn(&GgufValue) -> Option<T>,
    ) -> Result<Option<Vec<T>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        if items.len() != n_tokens {
            let message = format!("{key} has {} entries for {n_tokens} tokens", items.len());
            return Err(ModelError::format(self.path, message));
        }
        let values: Option<Vec<T>> = items.iter().map(convert).collect();
        values
            .map(Some)
            .ok_or_else(|| self.wrong_type(key, "an array of numbers"))
    }

    fn token_id(&self, key: &str, n_tokens: usize) -> Result<Option<u32>> {
        let Some(value) = self.meta.get(key) else {
            return Ok(None);
        };
        let id = value
            .as_u64()
            .ok_or_else(|| self.wrong_type(key, "an unsigned integer"))?;
        if id >= n_tokens as u64 {
            let message = format!("{key} = {id} is out of range for {n_tokens} tokens");
            return Err(ModelError::format(self.path, message));
        }
        Ok(Some(id as u32))
    }
}

/// `tokenizer.ggml.merges` lines are "left right", split on the one space.
fn parse_merges(path: &Path, lines: &[String]) -> Result<Merges> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| match line.split(' ').collect::<Vec<_>>()[..] {
            [left, right] => Ok((left.to_string(), right.to_string())),
            _ => Err(ModelError::format(
                path,
                format!("tokenizer.ggml.merges[{i}] = {line:?} is not two tokens and a space"),
            )),
        })
        .collect()
}

/// transformers' `generate_merges(vocab, scores)` for a vocabulary without merges: every split of
/// a token into two vocabulary tokens is a merge, ranked by the whole token's score (highest
/// first), then by longer left part, then longer right part; ties keep vocabulary order.
fn generate_merges(tokens: &[String], scores: &[f32]) -> Merges {
    // As in the Python dicts: a repeated token keeps its first position, but its last id/score.
    let id: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut seen = HashSet::new();
    let mut merges: Vec<(&str, &str, f32)> = Vec::new();
    for token in tokens.iter().filter(|t| seen.insert(t.as_str())) {
        // -0.0 and 0.0 tie in Python; total_cmp below would order them.
        let score = scores[id[token.as_str()]] + 0.0;
        let mut local: Vec<(usize, usize, &str, &str)> = token
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (left, right) = token.split_at(at);
                Some((*id.get(left)?, *id.get(right)?, left, right))
            })
            .collect();
        local.sort_by_key(|&(l, r, ..)| (l, r));
        merges.extend(local.into_iter().map(|(_, _, left, right)| (left, right, score)));
    }
    let chars = |s: &str| s.chars().count();
    // Stable, descending: equal keys keep their order, as Python's sorted(reverse=True).
    merges.sort_by(|a, b| {
        b.2.total_cmp(&a.2)
            .then_with(|| chars(b.0).cmp(&chars(a.0)))
            .then_with(|| chars(b.1).cmp(&chars(a.1)))
    });
    merges
        .into_iter()
        .map(|(l, r, _)| (l.to_string(), r.to_string()))
        .collect()
}

/// GPT-2's `bytes_to_unicode`: each byte spelled as a printable character.
struct ByteSpelling {
    chars: [char; 256],
    alphabet: HashSet<char>,
}

impl ByteSpelling {
    fn new() -> Self {
        let mut chars = ['\0'; 256];
        let mut next_extra = 256u32;
        for byte in 0..=255u8 {
            let printable = matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
            chars[byte as usize] = if printable {
                char::from(byte)
            } else {
                next_extra += 1;
                char::from_u32(next_extra - 1).expect("256..=323 are valid chars")
            };
        }
        Self {
            chars,
            alphabet: chars.iter().copied().collect(),
        }
    }

    fn is_spelled(&self, token: &str) -> bool {
        token.chars().all(|c| self.alphabet.contains(&c))
    }

    fn respell(&self, token: &str) -> String {
        if self.is_spelled(token) {
            token.to_string()
        } else {
            token.bytes().map(|b| self.chars[b as usize]).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_spelling_matches_gpt2() {
        let s = ByteSpelling::new();
        assert_eq!(s.chars[b' ' as usize], 'Ġ');
        assert_eq!(s.chars[b'\n' as usize], 'Ċ');
        assert_eq!(s.chars[b'A' as usize], 'A');
        assert_eq!(s.alphabet.len(), 256);
        assert_eq!(s.respell("a b"), "aĠb");
    }

    #[test]
    fn generated_merges_follow_score_then_length() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"].map(String::from).to_vec();
        let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -1.0];
        let merges = generate_merges(&tokens, &scores);
        let pairs: Vec<(&str, &str)> = merges.iter().map(|(l, r)| (l.as_str(), r.as_str())).collect();
        // Score -1: ab+c (longer left part), then a+bc (longer right part), then a+b. Then b+c.
        assert_eq!(pairs, [("ab", "c"), ("a", "bc"), ("a", "b"), ("b", "c")]);
    }

    #[test]
    fn clean_up_matches_transformers() {
        assert_eq!(
            clean_up_tokenization("I do n't know , it 's ok ."),
            "I don't know, it's ok."
        );
    }
}
