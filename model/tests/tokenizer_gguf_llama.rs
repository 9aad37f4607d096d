//! A hand-made SentencePiece-style ("llama") GGUF vocabulary, whose encodings can be derived by
//! hand, and the errors bad tokenizer metadata and files give.

use std::collections::BTreeMap;
use std::path::Path;

use model::load::gguf::GgufValue;
use model::load::tokenizer::TextTokenizer;

const FILE: &str = "synthetic-llama.gguf";

/// Ids: 0 `<unk>`, 1 `<s>`, 2 `</s>`, 3..=258 the bytes `<0x00>`..`<0xFF>`, then the pieces below.
/// Scores order the merges (higher first): ll, He, Hell, Hello, ▁Hello, or, ld, wor, world, ▁world.
const PIECES: [(&str, f32); 19] = [
    ("▁", -100.0),
    ("H", -101.0),
    ("e", -102.0),
    ("l", -103.0),
    ("o", -104.0),
    ("w", -105.0),
    ("r", -106.0),
    ("d", -107.0),
    ("ll", -1.0),
    ("He", -2.0),
    ("Hell", -3.0),
    ("Hello", -4.0),
    ("▁Hello", -5.0),
    ("or", -6.0),
    ("ld", -7.0),
    ("wor", -8.0),
    ("world", -9.0),
    ("▁world", -10.0),
    ("<ctrl>", 0.0),
];

fn string_array(items: Vec<String>) -> GgufValue {
    GgufValue::Array(items.into_iter().map(GgufValue::String).collect())
}

fn metadata() -> BTreeMap<String, GgufValue> {
    let mut tokens = vec!["<unk>".to_string(), "<s>".to_string(), "</s>".to_string()];
    let mut scores = vec![0.0f32; 3];
    let mut types = vec![2i32, 3, 3]; // UNKNOWN, CONTROL, CONTROL
    for byte in 0..=255u8 {
        tokens.push(format!("<0x{byte:02X}>"));
        scores.push(0.0);
        types.push(6); // BYTE
    }
    for (piece, score) in PIECES {
        tokens.push(piece.to_string());
        scores.push(score);
        types.push(if piece == "<ctrl>" { 3 } else { 1 });
    }
    let mut meta = BTreeMap::new();
    let mut set = |key: &str, value| meta.insert(key.to_string(), value);
    set("tokenizer.ggml.model", GgufValue::String("llama".into()));
    set("tokenizer.ggml.tokens", string_array(tokens));
    set(
        "tokenizer.ggml.scores",
        GgufValue::Array(scores.into_iter().map(GgufValue::F32).collect()),
    );
    set(
        "tokenizer.ggml.token_type",
        GgufValue::Array(types.into_iter().map(GgufValue::I32).collect()),
    );
    set("tokenizer.ggml.bos_token_id", GgufValue::U32(1));
    set("tokenizer.ggml.eos_token_id", GgufValue::U32(2));
    set("tokenizer.ggml.unknown_token_id", GgufValue::U32(0));
    set("tokenizer.chat_template", GgufValue::String("{{ messages }}".into()));
    meta
}

fn build(meta: &BTreeMap<String, GgufValue>) -> TextTokenizer {
    TextTokenizer::from_gguf_metadata(Path::new(FILE), meta).expect("synthetic llama tokenizer")
}

fn piece_id(piece: &str) -> u32 {
    259 + PIECES.iter().position(|(p, _)| *p == piece).unwrap() as u32
}

fn byte_id(byte: u8) -> u32 {
    3 + byte as u32
}

fn tokens(tokenizer: &TextTokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter().map(|&id| tokenizer.id_to_token(id).unwrap()).collect()
}

#[test]
fn words_merge_by_score_with_a_prefix_space_and_bos() {
    let tokenizer = build(&metadata());
    let ids = tokenizer.encode("Hello world", true).unwrap();
    assert_eq!(tokens(&tokenizer, &ids), ["<s>", "▁Hello", "▁world"]);
    assert_eq!(ids, [1, piece_id("▁Hello"), piece_id("▁world")]);
    assert_eq!(tokenizer.encode("Hello world", false).unwrap(), &ids[1..]);
    assert_eq!(tokenizer.decode(&ids, true).unwrap(), "Hello world");
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), "<s> Hello world");
}

#[test]
fn unknown_characters_fall_back_to_bytes() {
    let tokenizer = build(&metadata());
    // "i", "!" and "é" (0xC3 0xA9) are not pieces.
    let ids = tokenizer.encode("Hi! é", false).unwrap();
    let expected = [
        piece_id("▁"),
        piece_id("H"),
        byte_id(b'i'),
        byte_id(b'!'),
        piece_id("▁"),
        byte_id(0xC3),
        byte_id(0xA9),
    ];
    assert_eq!(ids, expected, "{:?}", tokens(&tokenizer, &ids));
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), "Hi! é");
}

#[test]
fn decode_round_trips() {
    let tokenizer = build(&metadata());
    for text in ["Hello world", "world Hello", "Hello\nworld", "a  b", "日本 ok"] {
        let ids = tokenizer.encode(text, true).unwrap();
        assert_eq!(
            tokenizer.decode(&ids, true).unwrap(),
            text,
            "{:?}",
            tokens(&tokenizer, &ids)
        );
    }
}

#[test]
fn control_tokens_are_matched_whole_and_only_the_text_start_gets_a_prefix() {
    let tokenizer = build(&metadata());
    // After a special token the text does not start, so "Hello" gets no `▁` (prepend "first").
    let ids = tokenizer.encode("<s>Hello<ctrl> world", false).unwrap();
    assert_eq!(tokens(&tokenizer, &ids), ["<s>", "Hello", "<ctrl>", "▁world"]);
    assert_eq!(tokenizer.decode(&ids, true).unwrap(), "Hello world");
    // A leading space is the prefix itself: no second `▁`.
    let ids = tokenizer.encode(" Hello", false).unwrap();
    assert_eq!(tokens(&tokenizer, &ids), ["▁Hello"]);
}

#[test]
fn special_ids_vocab_and_template() {
    let tokenizer = build(&metadata());
    assert_eq!(tokenizer.bos_id(), Some(1));
    assert_eq!(tokenizer.eos_id(), Some(2));
    assert_eq!(tokenizer.unk_id(), Some(0));
    assert_eq!(tokenizer.pad_id(), None);
    assert_eq!(tokenizer.vocab_size(), 3 + 256 + PIECES.len());
    assert_eq!(tokenizer.chat_template(), Some("{{ messages }}"));
    assert_eq!(tokenizer.encode("", true).unwrap(), [1]);
    assert_eq!(tokenizer.encode("", false).unwrap(), Vec::<u32>::new());
}

#[test]
fn add_bos_and_eos_flags_are_honoured() {
    let mut meta = metadata();
    meta.insert("tokenizer.ggml.add_bos_token".into(), GgufValue::Bool(false));
    meta.insert("tokenizer.ggml.add_eos_token".into(), GgufValue::Bool(true));
    let ids = build(&meta).encode("Hello", true).unwrap();
    assert_eq!(ids, [piece_id("▁Hello"), 2]);
}

#[test]
fn without_space_prefix_nothing_is_prepended_or_stripped() {
    let mut meta = metadata();
    meta.insert("tokenizer.ggml.add_space_prefix".into(), GgufValue::Bool(false));
    let tokenizer = build(&meta);
    let ids = tokenizer.encode("Hello world", false).unwrap();
    assert_eq!(tokens(&tokenizer, &ids), ["Hello", "▁world"]);
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), "Hello world");
}

#[test]
fn merges_in_the_file_are_used_as_given() {
    let mut meta = metadata();
    // No merge makes "ld", "world" or "▁w", so "▁world" stops at ▁ + wor + l + d.
    let merges = ["o r", "w or"].map(String::from).to_vec();
    meta.insert("tokenizer.ggml.merges".into(), string_array(merges));
    let tokenizer = build(&meta);
    let ids = tokenizer.encode("world", false).unwrap();
    assert_eq!(tokens(&tokenizer, &ids), ["▁", "wor", "l", "d"]);
}

fn error_of(meta: &BTreeMap<String, GgufValue>) -> String {
    match TextTokenizer::from_gguf_metadata(Path::new(FILE), meta) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_error(meta: BTreeMap<String, GgufValue>, needle: &str) {
    let error = error_of(&meta);
    assert!(error.contains(FILE) && error.contains(needle), "{error}");
}

#[test]
fn unknown_tokenizer_model_is_unsupported() {
    let mut meta = metadata();
    meta.insert("tokenizer.ggml.model".into(), GgufValue::String("bert".into()));
    assert_error(meta, "`bert`");
}

#[test]
fn missing_tokens_or_model_are_errors() {
    let mut meta = metadata();
    meta.remove("tokenizer.ggml.tokens");
    assert_error(meta, "tokenizer.ggml.tokens");
    let mut meta = metadata();
    meta.remove("tokenizer.ggml.model");
    assert_error(meta, "tokenizer.ggml.model");
    let mut meta = metadata();
    meta.insert("tokenizer.ggml.tokens".into(), GgufValue::U32(3));
    assert_error(meta, "tokenizer.ggml.tokens");
}

#[test]
fn mismatched_array_lengths_are_errors() {
    let mut meta = metadata();
    meta.insert(
        "tokenizer.ggml.scores".into(),
        GgufValue::Array(vec![GgufValue::F32(0.0); 5]),
    );
    assert_error(meta, "tokenizer.ggml.scores has 5 entries");
    let mut meta = metadata();
    meta.insert(
        "tokenizer.ggml.token_type".into(),
        GgufValue::Array(vec![GgufValue::I32(1); 7]),
    );
    assert_error(meta, "tokenizer.ggml.token_type has 7 entries");
}

#[test]
fn out_of_range_ids_are_errors() {
    let mut meta = metadata();
    meta.insert("tokenizer.ggml.bos_token_id".into(), GgufValue::U32(100_000));
    assert_error(meta, "bos_token_id = 100000 is out of range");
    let mut meta = metadata();
    meta.insert("tokenizer.ggml.eos_token_id".into(), GgufValue::I32(-1));
    assert_error(meta, "eos_token_id");
}

#[test]
fn a_llama_vocab_needs_scores_or_merges() {
    let mut meta = metadata();
    meta.remove("tokenizer.ggml.scores");
    assert_error(meta, "merges or tokenizer.ggml.scores");
}

#[test]
fn bad_merges_are_errors() {
    let mut meta = metadata();
    meta.insert("tokenizer.ggml.merges".into(), string_array(vec!["ll".into()]));
    assert_error(meta, "tokenizer.ggml.merges[0]");
    let mut meta = metadata();
    meta.insert("tokenizer.ggml.merges".into(), string_array(vec!["x y".into()]));
    assert_error(meta, "BPE");
}

#[test]
fn a_gpt2_vocab_needs_merges() {
    let mut meta = metadata();
    meta.insert("tokenizer.ggml.model".into(), GgufValue::String("gpt2".into()));
    assert_error(meta, "tokenizer.ggml.merges");
}

#[test]
fn bad_tokenizer_files_are_errors_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("tokenizer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("absent").join("tokenizer.json");
    let error = TextTokenizer::from_file(&missing).err().unwrap().to_string();
    assert!(error.contains("absent/tokenizer.json"), "{error}");

    let broken = dir.join("tokenizer.json");
    std::fs::write(&broken, "{ not json").unwrap();
    let error = TextTokenizer::from_file(&broken).err().unwrap().to_string();
    assert!(
        error.contains("tokenizer.json") && error.contains("not a valid"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
