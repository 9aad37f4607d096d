//! Generation against ../shared/fixtures/smollm2/greedy.json (transformers, float32): greedy ids
//! equal HF `generate()` up to EOS, batched decoding equals unbatched token for token, sampled
//! decoding does not depend on batch size, and stop strings spanning tokens cut the text.

mod common;

use common::{gguf, ids, root};
use std::sync::OnceLock;

use harness::lm::{GenRequest, Generation, Lm, StopReason, TokenGenRequest};
use harness::sampling::Sampling;
use model::{AttentionSpec, LoadedModel, load_model};
use serde_json::Value;

fn model() -> &'static LoadedModel {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let gguf = gguf();
        load_model(&gguf, &AttentionSpec::default(), &burn::tensor::Device::flex()).unwrap()
    })
}

fn generator(batch: usize) -> Lm<'static> {
    Lm::of(model(), batch).unwrap()
}

/// Token limits per fixture item (HF generated up to 32): rows end at different steps (item 0
/// at its EOS after 8 tokens, items 2 and 3 at their limits), so the batched decoder drops
/// finished rows from its cache while items 1 and 4 go on to 32.
const MAX_NEW_TOKENS: [usize; 5] = [32, 32, 12, 20, 32];

fn fixture_requests(sampling: Sampling) -> (Vec<TokenGenRequest>, Vec<Vec<u32>>) {
    let text = std::fs::read_to_string(root().join("../shared/fixtures/smollm2/greedy.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), MAX_NEW_TOKENS.len());
    let requests = items
        .iter()
        .zip(MAX_NEW_TOKENS)
        .enumerate()
        .map(|(i, (it, max_new_tokens))| TokenGenRequest {
            prompt: ids(&it["prompt_ids"]),
            truncated: false,
            until: vec![],
            max_new_tokens,
            sampling,
            seed: 1000 + i as u64,
        })
        .collect();
    let expected = items
        .iter()
        .zip(MAX_NEW_TOKENS)
        .map(|(it, max_new_tokens)| {
            let mut want = ids(&it["hf_generate_ids (stops at eos)"]);
            want.truncate(max_new_tokens);
            want
        })
        .collect();
    (requests, expected)
}

fn run(batch: usize, requests: &[TokenGenRequest]) -> Vec<Generation> {
    generator(batch).generate_tokens(requests).unwrap()
}

#[test]
fn greedy_matches_hf_generate_batched_and_unbatched() {
    let (requests, expected) = fixture_requests(Sampling::GREEDY);
    let prompt_lengths: Vec<usize> = requests.iter().map(|r| r.prompt.len()).collect();
    assert!(
        prompt_lengths.iter().any(|&l| l != prompt_lengths[0]),
        "the batch must need padding"
    );
    let single = run(1, &requests);
    let batched = run(requests.len(), &requests);
    for ((one, many), want) in single.iter().zip(&batched).zip(&expected) {
        assert_eq!(&one.ids, want, "unbatched greedy ids differ from HF generate");
        assert_eq!(one.ids, many.ids, "batched greedy differs from unbatched");
        assert_eq!(one.text, many.text);
        let eos = model().tokenizer.as_ref().unwrap().eos_id();
        let reason = if want.last().copied() == eos {
            StopReason::Eos
        } else {
            StopReason::MaxTokens
        };
        assert_eq!(one.stop, reason);
    }
}

#[test]
fn sampling_is_reproducible_whatever_the_batch() {
    let sampling = Sampling {
        temperature: 0.8,
        top_k: 50,
        top_p: 0.95,
    };
    let (requests, greedy) = fixture_requests(sampling);
    let a = run(1, &requests);
    let b = run(3, &requests);
    assert_eq!(a, b);
    // And it really samples: some row leaves the greedy path.
    assert!(a.iter().zip(&greedy).any(|(g, want)| &g.ids != want));
    let mut reseeded = requests.clone();
    reseeded.iter_mut().for_each(|r| r.seed += 1);
    assert_ne!(run(5, &reseeded), a);
}

#[test]
fn stop_strings_spanning_tokens_cut_the_text() {
    let generator2 = generator(2);
    let tokenizer = model().tokenizer.as_ref().unwrap();
    let context = "Question: What is 12 plus 30?\nAnswer:".to_string();
    let free = generator2
        .generate_until(&[GenRequest {
            context: context.clone(),
            until: vec![],
            max_gen_toks: 24,
            sampling: Sampling::GREEDY,
            seed: 0,
        }])
        .unwrap()
        .remove(0);
    // A stop string made of the tail of one generated token and the head of the next.
    let pieces: Vec<String> = free
        .ids
        .iter()
        .map(|&t| tokenizer.decode(&[t], true).unwrap())
        .collect();
    let k = (1..pieces.len())
        .find(|&k| pieces[k - 1].chars().count() >= 2 && !pieces[k].is_empty())
        .unwrap();
    let tail: String = pieces[k - 1].chars().rev().take(1).collect();
    let head: String = pieces[k].chars().take(1).collect();
    let stop = format!("{tail}{head}");
    let at = free.text.find(&stop).unwrap();
    let cut = generator2
        .generate_until(&[GenRequest {
            context,
            until: vec![stop.clone()],
            max_gen_toks: 24,
            sampling: Sampling::GREEDY,
            seed: 0,
        }])
        .unwrap()
        .remove(0);
    assert_eq!(cut.stop, StopReason::StopSequence, "stop {stop:?} in {:?}", free.text);
    assert_eq!(cut.text, free.text[..at]);
    assert!(cut.ids.len() < free.ids.len() || free.stop != StopReason::MaxTokens);
    assert_eq!(cut.ids[..], free.ids[..cut.ids.len()]);
}
