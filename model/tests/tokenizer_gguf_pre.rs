//! `tokenizer.ggml.pre`: the split rules of byte-level GGUF vocabularies.
//!
//! The splits are checked against `tests/data/pretokenizer_splits.json`, which
//! `scripts/gen_pretokenizer_fixture.py` writes by running llama.cpp's patterns through Python's
//! `regex` module in llama.cpp's split loop; then the flags each pre-tokenizer carries
//! (`ignore_merges`, the BOS default) and the errors, on a small hand-made vocabulary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use model::load::gguf::GgufValue;
use model::load::pre_tokenizer::GgufPreTokenizer;
use model::load::tokenizer::TextTokenizer;
use serde_json::Value;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

const HANDLED: [&str; 5] = ["default", "llama-bpe", "qwen2", "smollm", "gpt-2"];

fn reference() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/pretokenizer_splits.json");
    let text = std::fs::read_to_string(&path).expect("pretokenizer_splits.json");
    serde_json::from_str(&text).expect("pretokenizer_splits.json is JSON")
}

fn strings(value: &Value) -> Vec<String> {
    let items = value.as_array().expect("an array");
    items
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

/// The pieces of `text`, as slices of the original (not byte-level spelled).
fn split(pre: GgufPreTokenizer, text: &str) -> Vec<String> {
    let mut pieces = PreTokenizedString::from(text);
    pre.pre_tokenizer().unwrap().pre_tokenize(&mut pieces).unwrap();
    let splits = pieces.get_splits(OffsetReferential::Original, OffsetType::Byte);
    splits
        .iter()
        .map(|(_, (start, end), _)| text[*start..*end].to_string())
        .collect()
}

fn named(name: &str) -> GgufPreTokenizer {
    GgufPreTokenizer::from_name(Some(name)).unwrap()
}

#[test]
fn the_reference_used_the_same_patterns() {
    let fixture = reference();
    for name in HANDLED {
        let patterns = strings(&fixture["patterns"][name]);
        assert_eq!(patterns, named(name).patterns(), "{name}");
    }
}

#[test]
fn splits_match_the_reference() {
    let fixture = reference();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5 * 17);
    let mut misses = Vec::new();
    for case in cases {
        let (pre, text) = (case["pre"].as_str().unwrap(), case["text"].as_str().unwrap());
        let got = split(named(pre), text);
        if got != strings(&case["pieces"]) {
            misses.push(format!("{pre} {text:?}: {got:?}"));
        }
    }
    assert!(misses.is_empty(), "{} misses:\n{}", misses.len(), misses.join("\n"));
}

#[test]
fn every_two_pre_tokenizers_split_some_fixture_text_differently() {
    let fixture = reference();
    let cases = fixture["cases"].as_array().unwrap();
    let pieces_of = |pre: &str| -> Vec<Vec<String>> {
        let of_pre = cases.iter().filter(|c| c["pre"] == pre);
        of_pre.map(|c| strings(&c["pieces"])).collect()
    };
    for (i, a) in HANDLED.iter().enumerate() {
        for b in &HANDLED[i + 1..] {
            assert_ne!(pieces_of(a), pieces_of(b), "{a} and {b} split every text alike");
        }
    }
}

#[test]
fn names_follow_llama_cpp() {
    assert_eq!(GgufPreTokenizer::from_name(None).unwrap(), GgufPreTokenizer::Default);
    let aliases = [
        ("llama3", GgufPreTokenizer::Llama3),
        ("falcon3", GgufPreTokenizer::Llama3),
        ("deepseek-r1-qwen", GgufPreTokenizer::Qwen2),
        ("starcoder", GgufPreTokenizer::Smollm),
        ("phi-2", GgufPreTokenizer::Gpt2),
    ];
    for (name, pre) in aliases {
        assert_eq!(named(name), pre, "{name}");
    }
    let error = GgufPreTokenizer::from_name(Some("tekken")).unwrap_err();
    assert!(error.contains("`tekken`") && error.contains("llama-bpe"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// A byte-level vocabulary: ids 0..94 the printable ASCII characters `!`..`~`, 94 `Ġ` (space),
// then the merged tokens below, and `<bos>`.

const FILE: &str = "synthetic-gpt2.gguf";
/// Highest priority first: a space takes the digit after it before digits pair up.
const MERGES: [&str; 5] = ["Ġ 1", "Ġ1 2", "1 2", "12 3", "4 5"];
const MERGED: [&str; 5] = ["12", "123", "45", "Ġ1", "Ġ12"];
/// In the vocabulary, but no merge builds it.
const WHOLE_WORD: &str = "hello";

fn tokens() -> Vec<String> {
    let mut tokens: Vec<String> = ('!'..='~').map(String::from).collect();
    tokens.push("Ġ".into());
    tokens.extend(MERGED.map(String::from));
    tokens.push(WHOLE_WORD.into());
    tokens.push("<bos>".into());
    tokens
}

fn id(token: &str) -> u32 {
    tokens().iter().position(|t| t == token).unwrap() as u32
}

fn metadata(pre: Option<&str>) -> BTreeMap<String, GgufValue> {
    let strings = |items: Vec<String>| GgufValue::Array(items.into_iter().map(GgufValue::String).collect());
    let mut meta = BTreeMap::new();
    meta.insert("tokenizer.ggml.model".into(), GgufValue::String("gpt2".into()));
    meta.insert("tokenizer.ggml.tokens".into(), strings(tokens()));
    meta.insert(
        "tokenizer.ggml.merges".into(),
        strings(MERGES.map(String::from).to_vec()),
    );
    meta.insert("tokenizer.ggml.bos_token_id".into(), GgufValue::U32(id("<bos>")));
    if let Some(pre) = pre {
        meta.insert("tokenizer.ggml.pre".into(), GgufValue::String(pre.into()));
    }
    meta
}

fn tokenizer(meta: BTreeMap<String, GgufValue>) -> TextTokenizer {
    TextTokenizer::from_gguf_metadata(Path::new(FILE), &meta).unwrap()
}

fn spelled(tokenizer: &TextTokenizer, text: &str) -> Vec<String> {
    let ids = tokenizer.encode(text, false).unwrap();
    ids.iter().map(|&id| tokenizer.id_to_token(id).unwrap()).collect()
}

#[test]
fn digits_group_as_each_pre_tokenizer_says() {
    // gpt-2 keeps a digit run (and its space) whole; llama-bpe cuts it into threes; smollm and
    // qwen2 split every digit; default cuts threes off a run (123|45) and detaches the space.
    let cases: [(&str, &[&str]); 5] = [
        ("gpt-2", &["123", "45", "Ġ12", "3"]),
        ("llama-bpe", &["123", "45", "Ġ", "123"]),
        ("smollm", &["1", "2", "3", "4", "5", "Ġ", "1", "2", "3"]),
        ("qwen2", &["1", "2", "3", "4", "5", "Ġ", "1", "2", "3"]),
        ("default", &["123", "45", "Ġ", "123"]),
    ];
    for (pre, want) in cases {
        assert_eq!(spelled(&tokenizer(metadata(Some(pre))), "12345 123"), want, "{pre}");
    }
}

#[test]
fn llama_bpe_takes_a_vocabulary_word_whole() {
    let letters: Vec<String> = WHOLE_WORD.chars().map(String::from).collect();
    assert_eq!(spelled(&tokenizer(metadata(Some("gpt-2"))), WHOLE_WORD), letters);
    assert_eq!(
        spelled(&tokenizer(metadata(Some("llama-bpe"))), WHOLE_WORD),
        [WHOLE_WORD]
    );
}

#[test]
fn llama_bpe_adds_bos_unless_the_file_says_not_to() {
    let bos = id("<bos>");
    assert_eq!(
        tokenizer(metadata(Some("llama-bpe"))).encode("1", true).unwrap(),
        [bos, id("1")]
    );
    assert_eq!(tokenizer(metadata(Some("gpt-2"))).encode("1", true).unwrap(), [id("1")]);
    let mut meta = metadata(Some("llama-bpe"));
    meta.insert("tokenizer.ggml.add_bos_token".into(), GgufValue::Bool(false));
    assert_eq!(tokenizer(meta).encode("1", true).unwrap(), [id("1")]);
}

#[test]
fn a_missing_pre_is_default_and_an_unknown_one_an_error_naming_it() {
    let missing = spelled(&tokenizer(metadata(None)), "12345 123");
    assert_eq!(missing, spelled(&tokenizer(metadata(Some("default"))), "12345 123"));

    let error = TextTokenizer::from_gguf_metadata(Path::new(FILE), &metadata(Some("tekken")))
        .err()
        .unwrap()
        .to_string();
    for needle in [FILE, "tokenizer.ggml.pre", "`tekken`", "smollm"] {
        assert!(error.contains(needle), "lacks {needle}: {error}");
    }
}
