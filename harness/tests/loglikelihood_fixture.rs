//! The 20 (context, continuation) pairs of ../shared/fixtures/smollm2/loglikelihood.json, scored
//! exactly as lm-eval 0.4.13's HFLM scores them: same token ids, log-probs within the model's
//! fidelity tolerance (1e-3 per token), the same is_greedy.

mod common;

use common::{gguf, ids, root};

use harness::lm::Lm;
use model::{AttentionSpec, load_model};
use serde_json::Value;

#[test]
fn pairs_match_lm_eval_at_every_batch_size() {
    let gguf = gguf();
    let model = load_model(&gguf, &AttentionSpec::default(), &burn::tensor::Device::flex()).unwrap();
    let tokenizer = model.tokenizer.as_ref().unwrap();
    let text = std::fs::read_to_string(root().join("../shared/fixtures/smollm2/loglikelihood.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let items = json["items"].as_array().unwrap();
    let pairs: Vec<(&str, &str)> = items
        .iter()
        .map(|it| (it["context"].as_str().unwrap(), it["continuation"].as_str().unwrap()))
        .collect();
    let mut first: Option<Vec<f64>> = None;
    for batch_size in [1, 7, 32] {
        let engine = Lm::new(&model.decoder, tokenizer, batch_size).unwrap();
        assert_eq!(
            engine.prefix_token_id(),
            json["prefix_token_id"].as_u64().unwrap() as u32
        );
        let results = engine.loglikelihood(&pairs).unwrap();
        let mut worst: f64 = 0.0;
        for (i, (item, result)) in items.iter().zip(&results).enumerate() {
            let encoded = engine.encode_pair(pairs[i].0, pairs[i].1).unwrap();
            assert_eq!(encoded.context, ids(&item["context_enc"]), "pair {i}: context ids");
            assert_eq!(
                encoded.continuation,
                ids(&item["continuation_enc"]),
                "pair {i}: continuation ids"
            );
            let expected = item["logprob"].as_f64().unwrap();
            let tolerance = 1e-3 * encoded.continuation.len().max(1) as f64;
            let diff = (result.logprob - expected).abs();
            worst = worst.max(diff);
            assert!(diff < tolerance, "pair {i}: logprob {} vs {expected}", result.logprob);
            assert_eq!(
                result.is_greedy,
                item["is_greedy"].as_bool().unwrap(),
                "pair {i}: is_greedy"
            );
        }
        println!("batch size {batch_size}: max |Δ logprob| = {worst:.2e}");
        let logprobs: Vec<f64> = results.iter().map(|r| r.logprob).collect();
        match &first {
            None => first = Some(logprobs),
            Some(reference) => {
                for (a, b) in reference.iter().zip(&logprobs) {
                    assert!(
                        (a - b).abs() <= 1e-4,
                        "batch size {batch_size} changes a result: {a} vs {b}"
                    );
                }
            }
        }
    }
}

/// `loglikelihood_rolling` against an independent computation: one forward pass over the prefix
/// token and the text, summing each token's log-probability. Short windows still predict every
/// token exactly once.
#[test]
fn rolling_loglikelihood_sums_every_token_once() {
    use burn::tensor::activation::log_softmax;
    use model::StepInput;

    let gguf = gguf();
    let model = load_model(&gguf, &AttentionSpec::default(), &burn::tensor::Device::flex()).unwrap();
    let mut engine = Lm::of(&model, 4).unwrap();
    let text = "The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times.";
    let (total, count) = engine.loglikelihood_rolling(text).unwrap();

    let tokens = engine.tok_encode(text).unwrap();
    assert_eq!(count, tokens.len());
    let mut input = vec![engine.prefix_token_id()];
    input.extend(&tokens);
    let logits = model.decoder.forward(&StepInput::single(&input, 0), None).unwrap();
    let vocab = model.decoder.config.vocab_size;
    let lp = log_softmax(logits, 2).try_into_vec_as::<f32>().unwrap();
    let expected: f64 = tokens
        .iter()
        .enumerate()
        .map(|(i, &t)| lp[i * vocab + t as usize] as f64)
        .sum();
    assert!(
        (total - expected).abs() < 1e-3 * tokens.len() as f64,
        "{total} vs {expected}"
    );

    // Windows of 8 tokens: each token is still scored once, with less context (lower likelihood).
    engine.max_len = 8;
    let (short, short_count) = engine.loglikelihood_rolling(text).unwrap();
    assert_eq!(short_count, tokens.len());
    assert!(
        short < total,
        "shorter context should not explain the text better: {short} vs {total}"
    );
}
