//! The real SmolLM2-135M-Instruct (Q4_1 GGUF) against transformers' float32 outputs for the same
//! dequantized weights (../shared/fixtures/smollm2): log-probabilities and greedy decoding.

mod common;

use std::sync::OnceLock;

use burn::tensor::activation::log_softmax;
use common::{GoldenFile, device, fixtures, max_diff, smollm2_gguf, to_vec};
use model::{AttentionSpec, LoadedModel, StepInput, load_model};
use serde_json::Value;

const LOGPROB_ATOL: f64 = 1e-3;
const VOCAB: usize = 49152;

fn model() -> &'static LoadedModel {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    MODEL.get_or_init(|| load_model(&smollm2_gguf(), &AttentionSpec::default(), &device()).unwrap())
}

fn all_logprobs(ids: &[u32]) -> Vec<f64> {
    let logits = model().decoder.forward(&StepInput::single(ids, 0), None).unwrap();
    to_vec(log_softmax(logits, 2))
}

/// Ids of the k best entries of `row`, best first.
fn top_ids(row: &[f64], k: usize) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..row.len()).collect();
    ids.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    ids.truncate(k);
    ids
}

#[test]
fn prompts_match_last_logprobs_and_top20_everywhere() {
    let gold = GoldenFile::open(fixtures().join("smollm2/logprobs.safetensors"));
    for p in 0..5 {
        let ids = gold.ids(&format!("p{p}.input_ids"));
        let ours = all_logprobs(&ids);
        let t = ids.len();
        let last = &ours[(t - 1) * VOCAB..];
        let diff_last = max_diff(last, &gold.get(&format!("p{p}.last_logprobs")).values);
        let top_ids_gold = gold.get(&format!("p{p}.topk_ids")).values;
        let top_lp_gold = gold.get(&format!("p{p}.topk_logprobs")).values;
        let mut diff_top: f64 = 0.0;
        for pos in 0..t {
            let row = &ours[pos * VOCAB..(pos + 1) * VOCAB];
            for r in 0..20 {
                let id = top_ids_gold[pos * 20 + r] as usize;
                // Compare our log-prob of each golden top-20 id: robust to near-ties in ranking.
                diff_top = diff_top.max((row[id] - top_lp_gold[pos * 20 + r]).abs());
            }
            let ours_top1 = top_ids(row, 1)[0];
            assert_eq!(
                ours_top1 as f64,
                top_ids_gold[pos * 20],
                "prompt {p} position {pos}: top-1 differs"
            );
        }
        let next = gold.get(&format!("p{p}.next_token_logprobs")).values;
        let diff_next = (1..t)
            .map(|i| (ours[(i - 1) * VOCAB + ids[i] as usize] - next[i - 1]).abs())
            .fold(0.0, f64::max);
        println!(
            "prompt {p} ({t} tokens): last logprobs {diff_last:.2e}, top-20 {diff_top:.2e}, next-token {diff_next:.2e}"
        );
        assert!(
            diff_last < LOGPROB_ATOL,
            "prompt {p}: last-position log-probs differ by {diff_last}"
        );
        assert!(
            diff_top < LOGPROB_ATOL,
            "prompt {p}: top-20 log-probs differ by {diff_top}"
        );
        assert!(
            diff_next < LOGPROB_ATOL,
            "prompt {p}: next-token log-probs differ by {diff_next}"
        );
    }
}

#[test]
fn chunked_prefill_of_a_real_prompt_equals_one_pass() {
    let gold = GoldenFile::open(fixtures().join("smollm2/logprobs.safetensors"));
    let ids = gold.ids("p3.input_ids");
    let one = to_vec(model().decoder.forward(&StepInput::single(&ids, 0), None).unwrap());
    let mut cache = model().decoder.new_cache(1);
    let mut chunked = Vec::new();
    for (i, part) in ids.chunks(16).enumerate() {
        chunked.extend(to_vec(
            model()
                .decoder
                .forward(&StepInput::single(part, i * 16), Some(&mut cache))
                .unwrap(),
        ));
    }
    let diff = max_diff(&chunked, &one);
    assert!(diff < 1e-3, "chunked pre-fill differs by {diff}");
}

/// 32 pure argmax steps with the KV cache (EOS does not stop the loop), ids exactly.
#[test]
fn greedy_decoding_matches_exactly() {
    let text = std::fs::read_to_string(fixtures().join("smollm2/greedy.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let decoder = &model().decoder;
    for item in json["items"].as_array().unwrap() {
        let as_ids = |v: &Value| -> Vec<u32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        };
        let prompt = as_ids(&item["prompt_ids"]);
        let expected = as_ids(&item["generated_ids"]);
        let mut cache = decoder.new_cache(1);
        let mut step = StepInput::single(&prompt, 0);
        let mut generated = Vec::new();
        for _ in 0..expected.len() {
            let logits = decoder.forward(&step, Some(&mut cache)).unwrap();
            let [_, s, _] = logits.dims();
            let last = to_vec(logits.narrow(1, s - 1, 1));
            let next = top_ids(&last, 1)[0] as u32;
            generated.push(next);
            step = StepInput::single(&[next], cache.len());
        }
        assert_eq!(generated, expected, "prompt {:?}", item["prompt"].as_str());
    }
}

/// The LM head over the scored positions in chunks (`logits_chunk_rows`, which bounds the
/// logits buffer to about 64 MiB of f32) scores as one pass over all of them: on flex to the
/// bit, for resident and streamed weights, chunks of 2 included and a last chunk of one folded
/// into the one before (alone, one row would take the matrix-vector kernel); on another backend
/// within the fixtures' tolerance.
#[test]
fn chunked_scoring_gives_the_scores_of_one_pass() {
    use model::{LoadOptions, TokenQuery, WeightsPolicy, load_model_with};
    let rows: [Vec<u32>; 2] = [(1..51).collect(), (700..733).collect()];
    let input = StepInput::left_padded(&rows, 0);
    let seq = input.seq;
    let queries: Vec<TokenQuery> = rows
        .iter()
        .enumerate()
        .flat_map(|(row, ids)| {
            (seq - ids.len()..seq).map(move |pos| TokenQuery {
                row,
                pos,
                target: ((pos * 7919 + row * 104_729) % VOCAB) as u32,
            })
        })
        .collect();
    // Over 64 positions: one pass shares its rows between the cores, chunks of 31 do not.
    assert_eq!(queries.len(), 83);
    let chunks = |rows| model::decoder::query_chunks(queries.len(), rows).len();
    let one_pass = model().decoder.score_tokens(&input, &queries).unwrap();
    assert_eq!(chunks(model().decoder.logits_chunk_rows), 1);
    let flex = common::backend_is_flex();
    // Off flex (lavapipe in CI takes minutes per pass) one chunking shows the chunks' slicing.
    let (policies, chunkings): (&[WeightsPolicy], &[usize]) = if flex {
        (&[WeightsPolicy::Load, WeightsPolicy::Stream], &[2, 5, 31])
    } else {
        (&[WeightsPolicy::Load], &[31])
    };
    for &weights in policies {
        let options = LoadOptions {
            weights,
            ..LoadOptions::default()
        };
        let mut model = load_model_with(&smollm2_gguf(), &AttentionSpec::default(), &device(), &options).unwrap();
        for &rows in chunkings {
            assert!(chunks(rows) > 1);
            model.decoder.logits_chunk_rows = rows;
            let chunked = model.decoder.score_tokens(&input, &queries).unwrap();
            if flex {
                assert_eq!(chunked, one_pass, "{weights:?}, {rows} positions per chunk");
            } else {
                for (c, o) in chunked.iter().zip(&one_pass) {
                    assert!(
                        ((c.logprob - o.logprob) as f64).abs() < LOGPROB_ATOL && c.is_argmax == o.is_argmax,
                        "{rows}: {c:?} vs {o:?}"
                    );
                }
            }
        }
    }
}
