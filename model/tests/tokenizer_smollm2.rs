//! SmolLM2's tokenizer through both loaders, against the transformers fixture (README §2.6):
//! `tokenizer.json` as transformers converts it, and the real GGUF it was converted from.

use std::path::PathBuf;

use model::load::gguf::GgufFile;
use model::load::tokenizer::TextTokenizer;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/smollm2")
}

fn from_file() -> TextTokenizer {
    TextTokenizer::from_file(&fixtures().join("tokenizer.json")).expect("fixture tokenizer.json")
}

fn from_gguf() -> TextTokenizer {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-model.sh",
        path.display()
    );
    let gguf = GgufFile::open(&path).expect("open the SmolLM2 GGUF");
    TextTokenizer::from_gguf(&gguf).expect("tokenizer from the SmolLM2 GGUF")
}

fn fixture_items() -> Vec<Value> {
    let path = fixtures().join("tokenization.json");
    let text = std::fs::read_to_string(&path).expect("tokenization.json");
    let json: Value = serde_json::from_str(&text).expect("tokenization.json is JSON");
    json["items"].as_array().expect("items").clone()
}

fn ids(value: &Value) -> Vec<u32> {
    let ids = value.as_array().expect("an id list");
    ids.iter().map(|id| id.as_u64().expect("an id") as u32).collect()
}

/// Every fixture string: both id lists, the token spellings and the decode. Reports all misses.
fn check_fixture(tokenizer: &TextTokenizer, loader: &str) {
    let items = fixture_items();
    assert_eq!(items.len(), 36);
    let mut misses = Vec::new();
    for item in &items {
        let text = item["text"].as_str().expect("text");
        let with = tokenizer.encode(text, true).expect("encode");
        let without = tokenizer.encode(text, false).expect("encode");
        let tokens: Vec<String> = without.iter().map(|&id| tokenizer.id_to_token(id).unwrap()).collect();
        let decoded = tokenizer.decode(&without, false).expect("decode");
        let expected_tokens: Vec<&str> = item["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        if with != ids(&item["ids_add_special_tokens_true"]) {
            misses.push(format!("{text:?}: add_special_tokens=true gave {with:?}"));
        }
        if without != ids(&item["ids_add_special_tokens_false"]) {
            misses.push(format!("{text:?}: add_special_tokens=false gave {without:?}"));
        }
        if tokens != expected_tokens {
            misses.push(format!("{text:?}: tokens {tokens:?}"));
        }
        if decoded != item["decode"].as_str().unwrap() {
            misses.push(format!("{text:?}: decoded to {decoded:?}"));
        }
    }
    assert!(
        misses.is_empty(),
        "{loader}: {} misses:\n{}",
        misses.len(),
        misses.join("\n")
    );
}

#[test]
fn tokenizer_json_matches_all_fixture_strings() {
    check_fixture(&from_file(), "from_file");
}

#[test]
fn gguf_matches_all_fixture_strings() {
    check_fixture(&from_gguf(), "from_gguf");
}

fn assert_smollm2_specials(tokenizer: &TextTokenizer) {
    assert_eq!(tokenizer.bos_id(), Some(1));
    assert_eq!(tokenizer.eos_id(), Some(2));
    assert_eq!(tokenizer.pad_id(), Some(2));
    assert_eq!(tokenizer.unk_id(), Some(0));
    assert_eq!(tokenizer.vocab_size(), 49152);
    assert_eq!(tokenizer.id_to_token(1).as_deref(), Some("<|im_start|>"));
    assert_eq!(tokenizer.id_to_token(49152), None);
}

#[test]
fn special_ids_and_chat_template() {
    let jinja = std::fs::read_to_string(fixtures().join("chat_template.jinja")).unwrap();
    let file = from_file();
    assert_smollm2_specials(&file);
    assert_eq!(file.chat_template(), Some(jinja.as_str()));

    let gguf = from_gguf();
    assert_smollm2_specials(&gguf);
    let template = gguf.chat_template().expect("the GGUF has tokenizer.chat_template");
    assert!(template.starts_with("{% for message in messages %}"), "{template}");
    assert_eq!(template, jinja);
}

#[test]
fn gguf_and_tokenizer_json_have_the_same_vocabulary() {
    let (file, gguf) = (from_file(), from_gguf());
    let differ: Vec<u32> = (0..49152)
        .filter(|&id| file.id_to_token(id) != gguf.id_to_token(id))
        .collect();
    assert!(
        differ.is_empty(),
        "{} ids differ, first {:?}",
        differ.len(),
        &differ[..differ.len().min(10)]
    );
}

#[test]
fn control_tokens_are_special() {
    for tokenizer in [from_file(), from_gguf()] {
        let text = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
        let ids = tokenizer.encode(text, false).unwrap();
        assert_eq!(tokenizer.decode(&ids, true).unwrap(), "user\nWhat is 2+2?\nassistant\n");
        // A control token's text inside a word is still cut out whole.
        let ids = tokenizer.encode("a<|im_end|>b", false).unwrap();
        assert!(ids.contains(&2), "{ids:?}");
    }
}

#[test]
fn decoding_an_unknown_id_is_an_error_naming_the_file() {
    let error = from_file().decode(&[19556, 49152], false).unwrap_err().to_string();
    assert!(error.contains("tokenizer.json") && error.contains("49152"), "{error}");
    let error = from_gguf().decode(&[u32::MAX], false).unwrap_err().to_string();
    assert!(error.contains("SmolLM2-135M-Instruct.Q4_1.gguf"), "{error}");
}

/// A folder holding the fixture tokenizer.json and the given tokenizer_config.json.
fn folder_with_config(name: &str, config: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokenizer-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixtures().join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    std::fs::write(dir.join("tokenizer_config.json"), config).unwrap();
    dir
}

#[test]
fn tokenizer_config_flags_are_honoured() {
    let config = r#"{
        "bos_token": {"content": "<|im_start|>", "special": true},
        "eos_token": "<|im_end|>",
        "add_bos_token": true,
        "add_eos_token": true,
        "clean_up_tokenization_spaces": true,
        "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]
    }"#;
    let dir = folder_with_config("flags", config);
    let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    assert_eq!(tokenizer.encode("Hello world", true).unwrap(), [1, 19556, 905, 2]);
    assert_eq!(tokenizer.encode("Hello world", false).unwrap(), [19556, 905]);
    assert_eq!((tokenizer.pad_id(), tokenizer.unk_id()), (None, None));
    assert_eq!(tokenizer.chat_template(), Some("D"));
    let ids = tokenizer.encode("it 's ok .", false).unwrap();
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), "it's ok.");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_tokenizer_config_is_an_error_naming_it() {
    let dir = folder_with_config("bad-config", r#"{"add_bos_token": "yes"}"#);
    let error = TextTokenizer::from_file(&dir.join("tokenizer.json"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("tokenizer_config.json") && error.contains("add_bos_token"),
        "{error}"
    );
    std::fs::write(dir.join("tokenizer_config.json"), "[").unwrap();
    let error = TextTokenizer::from_file(&dir.join("tokenizer.json"))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("tokenizer_config.json"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A BOS or EOS that tokenizer_config.json names and tokenizer.json lacks is an error: a run
/// without it would change every prompt (lm-eval's prefix token) or never stop.
#[test]
fn special_tokens_named_but_absent_are_an_error() {
    for (key, config) in [
        ("bos_token", r#"{"bos_token": "<nope>", "eos_token": "<|im_end|>"}"#),
        (
            "eos_token",
            r#"{"bos_token": "<|im_start|>", "eos_token": {"content": "<nope>"}}"#,
        ),
    ] {
        let dir = folder_with_config(&format!("absent-{key}"), config);
        let error = TextTokenizer::from_file(&dir.join("tokenizer.json"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("tokenizer_config.json") && error.contains(&format!("`{key}` `<nope>` is not a token of")),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
