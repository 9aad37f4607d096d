//! `--chat` on both task families against lm-eval 0.4.12's own request building under
//! `--apply_chat_template` (and `--system_instruction`), for the user task files of
//! tasks/tests/fixtures/user_tasks and SmolLM2's chat template: the same contexts and
//! continuations, character for character (reference/chat_requests.json, made by
//! reference/lm_eval_chat_requests.py).

mod common;

use common::root;

use harness::chat::{ChatPrompt, ChatTemplate};
use harness::run_task::generate::prompt_of;
use harness::run_task::multiple_choice::requests_of;
use serde_json::Value;
use tasks::{LoadOptions, Registry, Request};

#[test]
fn chat_wrapped_requests_equal_lm_evals() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("harness/tests/reference/chat_requests.json")).unwrap(),
    )
    .unwrap();
    let template = std::fs::read_to_string(root().join("../shared/fixtures/smollm2/chat_template.jinja")).unwrap();
    let registry = Registry::new(&[root().join("tasks/tests/fixtures/user_tasks")]).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["task"].as_str().unwrap();
        let system = case["system_instruction"].as_str();
        let chat = ChatPrompt::new(
            ChatTemplate::new(&template, "<|im_start|>", "<|im_end|>").unwrap(),
            system,
        );
        let task = registry.load(name, &LoadOptions::default()).unwrap();
        let mut ours: Vec<(u64, String, Option<String>)> = Vec::new();
        for item in &task.items {
            match &item.request {
                Request::Choice(mc) => {
                    for r in requests_of(Some(&chat), &task, &item.description, mc).unwrap() {
                        ours.push((item.doc_id as u64, r.context, Some(r.continuation)));
                    }
                }
                Request::Generate(g) => ours.push((item.doc_id as u64, prompt_of(Some(&chat), g).unwrap(), None)),
            }
        }
        let theirs: Vec<(u64, String, Option<String>)> = case["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["doc_id"].as_u64().unwrap(),
                    r["context"].as_str().unwrap().to_string(),
                    r["continuation"].as_str().map(str::to_string),
                )
            })
            .collect();
        assert_eq!(ours, theirs, "{name}, system instruction {system:?}");
    }
}
