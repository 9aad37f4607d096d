//! Work shared between requests changes no result: continuous batching (requests joining a
//! batch that is decoding), the k samples of a prompt sharing one pre-fill, a few-shot prefix
//! computed once for every request of a call, and the incremental stop-string scan.

mod common;

use common::{gguf, ids, root};
use std::sync::OnceLock;

use harness::lm::stops::StopScan;
use harness::lm::{GenRequest, Generation, Lm, TokenGenRequest};
use harness::sampling::Sampling;
use model::{AttentionSpec, LoadedModel, load_model};
use serde_json::Value;

fn model() -> &'static LoadedModel {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    MODEL.get_or_init(|| load_model(&gguf(), &AttentionSpec::default(), &burn::tensor::Device::flex()).unwrap())
}

fn lm(batch: usize) -> Lm<'static> {
    Lm::of(model(), batch).unwrap()
}

const SAMPLED: Sampling = Sampling {
    temperature: 0.8,
    top_k: 50,
    top_p: 0.95,
};

/// The greedy fixture's prompts, `copies` requests each (seeds differ), rows ending at
/// different steps.
fn fixture_requests(sampling: Sampling, copies: usize) -> Vec<TokenGenRequest> {
    let text = std::fs::read_to_string(root().join("../shared/fixtures/smollm2/greedy.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let limits = [10, 4, 8, 6, 10];
    let mut requests = Vec::new();
    for (i, item) in json["items"].as_array().unwrap().iter().enumerate() {
        for copy in 0..copies {
            requests.push(TokenGenRequest {
                prompt: ids(&item["prompt_ids"]),
                truncated: false,
                until: vec![],
                max_new_tokens: limits[i % limits.len()],
                sampling,
                seed: (100 * i + copy) as u64,
            });
        }
    }
    requests
}

/// Each request generated alone, in a call of its own.
fn one_at_a_time(requests: &[TokenGenRequest]) -> Vec<Generation> {
    let lm = lm(1).with_prefix_sharing(false);
    requests
        .iter()
        .map(|r| lm.generate_tokens(std::slice::from_ref(r)).unwrap().remove(0))
        .collect()
}

#[test]
fn rows_joining_a_running_batch_generate_as_alone() {
    let requests = fixture_requests(Sampling::GREEDY, 1);
    let alone = one_at_a_time(&requests);
    // Batch 2 for 5 requests: three of them join while other rows are decoding.
    assert_eq!(lm(2).generate_tokens(&requests).unwrap(), alone, "batch 2");
}

#[test]
fn rows_freed_at_their_first_token_generate_as_alone() {
    // Requests of one new token end at their first, freeing their row before it decodes: in
    // the first batch (whose pre-fill becomes the running cache) and in rows refilled later.
    let mut requests = fixture_requests(Sampling::GREEDY, 1);
    for i in [0, 3] {
        requests[i].max_new_tokens = 1;
    }
    let alone = one_at_a_time(&requests);
    for batch in [2, 5] {
        assert_eq!(lm(batch).generate_tokens(&requests).unwrap(), alone, "batch {batch}");
    }
}

#[test]
fn samples_of_one_prompt_keep_their_own_draws() {
    // Two samples per prompt share one pre-fill; each keeps the draws of its seed, whether
    // they decode side by side (batch 6) or the second joins later (batch 1).
    let requests = fixture_requests(SAMPLED, 2);
    let alone = one_at_a_time(&requests);
    for batch in [1, 6] {
        assert_eq!(lm(batch).generate_tokens(&requests).unwrap(), alone, "batch {batch}");
    }
    let draws: Vec<&Vec<u32>> = alone.iter().map(|g| &g.ids).collect();
    assert!(
        draws[0] != draws[1] || draws[1] != draws[2],
        "the samples of a prompt differ"
    );
}

/// A few-shot context of ~250 tokens, shared by every question.
fn few_shot(question: &str) -> String {
    let shots = [
        ("What is 3 plus 4?", "7"),
        ("What is the capital of France?", "Paris"),
        ("How many legs does a spider have?", "8"),
        ("What colour is a clear daytime sky?", "Blue"),
        ("Which planet is known as the red planet?", "Mars"),
        ("What is 10 minus 6?", "4"),
        ("What do bees make?", "Honey"),
        ("How many days are in a week?", "7"),
    ];
    let mut text = String::from("The following are questions with short answers.\n\n");
    for (q, a) in shots {
        text.push_str(&format!(
            "Question: {q} Think about it carefully before answering.\nAnswer: {a}\n\n"
        ));
    }
    text.push_str(&format!("Question: {question}\nAnswer:"));
    text
}

const QUESTIONS: [&str; 4] = [
    "What is 2 plus 2?",
    "What is the largest ocean on Earth?",
    "How many wheels does a bicycle have?",
    "What is frozen water called?",
];

#[test]
fn a_shared_few_shot_prefix_scores_like_fresh_contexts() {
    let contexts: Vec<String> = QUESTIONS.iter().map(|q| few_shot(q)).collect();
    let choices = [" 4", " The Pacific", " 2", " Ice", " Paris"];
    let pairs: Vec<(&str, &str)> = contexts
        .iter()
        .flat_map(|c| choices.iter().map(move |x| (c.as_str(), *x)))
        .collect();
    let fresh = lm(3).with_prefix_sharing(false).loglikelihood(&pairs).unwrap();
    assert!(fresh[0].context_tokens > 200, "a long shared context");
    for batch in [1, 3, 32] {
        let shared = lm(batch).loglikelihood(&pairs).unwrap();
        for (i, (s, f)) in shared.iter().zip(&fresh).enumerate() {
            assert!(
                (s.logprob - f.logprob).abs() <= 1e-4,
                "batch {batch} request {i}: {s:?} vs {f:?}"
            );
            assert_eq!((s.is_greedy, s.tokens), (f.is_greedy, f.tokens), "request {i}");
        }
    }
}

#[test]
fn a_shared_few_shot_prefix_generates_like_fresh_contexts() {
    let requests: Vec<GenRequest> = QUESTIONS
        .iter()
        .map(|q| GenRequest {
            context: few_shot(q),
            until: vec!["\n\n".into(), "Question:".into()],
            max_gen_toks: 12,
            sampling: Sampling::GREEDY,
            seed: 0,
        })
        .collect();
    let fresh = lm(1).with_prefix_sharing(false).generate_until(&requests).unwrap();
    let shared = lm(2).generate_until(&requests).unwrap();
    assert_eq!(shared, fresh);
    // Twice: the second call continues the prefix kept from the first.
    let lm = lm(4);
    assert_eq!(lm.generate_until(&requests).unwrap(), fresh);
    assert_eq!(lm.generate_until(&requests[1..]).unwrap(), fresh[1..]);
}

#[test]
fn the_stop_scan_agrees_with_decoding_the_whole_text() {
    let tokenizer = model().tokenizer.as_ref().unwrap();
    let text = "Naïve café owners said: «déjà vu!»\n\nQuestion: 12 × 3 = 36? 日本語のテキスト 🙂 ok.\n\nAnswer: yes";
    let ids = tokenizer.encode(text, false).unwrap();
    let stops: Vec<Vec<String>> = [
        vec!["\n\n"],
        vec!["vu!»"],
        vec!["Question:", "日本"],
        vec!["🙂"],
        vec!["t 🙂 o"],
        vec!["never there"],
    ]
    .iter()
    .map(|s| s.iter().map(|x| x.to_string()).collect())
    .collect();
    for until in &stops {
        let mut scan = StopScan::default();
        for n in 1..=ids.len() {
            let full = tokenizer.decode(&ids[..n], true).unwrap();
            let want = until.iter().any(|s| full.contains(s.as_str()));
            assert_eq!(
                scan.push(tokenizer, &ids[..n], until).unwrap(),
                want,
                "{until:?} at {n} tokens"
            );
            if want {
                break;
            }
        }
    }
}
