//! The tiny random Llama/Mistral models against HF transformers' float32 goldens
//! (../shared/fixtures/tiny, README §3): full forward, padded batches, cached decoding,
//! chunked pre-fill, the sliding-window rule and the attention conversions.

mod common;

use common::{GoldenFile, cached_logits, device, fixtures, max_diff, max_diff_where, to_vec};
use model::{AttentionSpec, LoadedModel, StepInput, load_model};

const ATOL: f64 = 1e-4;
const MODELS: [&str; 3] = ["tiny-llama-gqa", "tiny-llama-mha", "tiny-mistral-swa"];

fn load(name: &str, attention: &str) -> LoadedModel {
    let spec: AttentionSpec = attention.parse().unwrap();
    load_model(&fixtures().join("tiny").join(name), &spec, &device()).unwrap()
}

fn golden(name: &str) -> GoldenFile {
    GoldenFile::open(fixtures().join("tiny").join(name).join("golden.safetensors"))
}

fn logits(model: &LoadedModel, ids: &[u32]) -> Vec<f64> {
    to_vec(model.decoder.forward(&StepInput::single(ids, 0), None).unwrap())
}

#[test]
fn full_forward_matches_at_lengths_1_7_40() {
    for name in MODELS {
        let (model, gold) = (load(name, "native"), golden(name));
        for len in [1, 7, 40] {
            let ids = gold.ids(&format!("len{len}.input_ids"));
            let diff = max_diff(&logits(&model, &ids), &gold.get(&format!("len{len}.logits")).values);
            println!("{name} len{len}: max |Δlogit| = {diff:.2e}");
            assert!(diff < ATOL, "{name} len{len}: {diff}");
        }
    }
}

#[test]
fn final_hidden_state_matches() {
    for name in MODELS {
        let (model, gold) = (load(name, "native"), golden(name));
        let ids = gold.ids("len40.input_ids");
        let hidden = to_vec(model.decoder.hidden_states(&StepInput::single(&ids, 0), None).unwrap());
        let all = gold.get("len40.hidden_states");
        let per = 40 * 64;
        let last = &all.values[all.values.len() - per..];
        let diff = max_diff(&hidden, last);
        assert!(diff < ATOL, "{name}: {diff}");
    }
}

/// Padded batches: only real-token logits are compared (HF zeroes the padded ones).
#[test]
fn padded_batches_match_left_and_right() {
    for name in MODELS {
        let (model, gold) = (load(name, "native"), golden(name));
        for side in ["right", "left"] {
            let ids = gold.ids(&format!("batch_{side}.input_ids"));
            let mask: Vec<bool> = gold
                .get(&format!("batch_{side}.attention_mask"))
                .values
                .iter()
                .map(|&m| m > 0.5)
                .collect();
            let positions: Vec<i64> = if side == "left" {
                gold.get("batch_left.position_ids")
                    .values
                    .iter()
                    .map(|&p| p as i64)
                    .collect()
            } else {
                (0..3).flat_map(|_| 0..40i64).collect()
            };
            let input = StepInput::from_parts(3, 40, ids, positions, mask.clone()).unwrap();
            let ours = to_vec(model.decoder.forward(&input, None).unwrap());
            let diff = max_diff_where(&ours, &gold.get(&format!("batch_{side}.logits")).values, |i| {
                mask[i / 512]
            });
            println!("{name} batch_{side}: {diff:.2e}");
            assert!(diff < ATOL, "{name} batch_{side}: {diff}");
        }
    }
}

/// The StepInput padding helpers give the same real-token logits as unpadded rows.
#[test]
fn padding_helpers_agree_with_single_rows() {
    let model = load("tiny-mistral-swa", "native");
    let rows = vec![(1..30).collect::<Vec<u32>>(), (100..109).collect(), (7..27).collect()];
    for left in [false, true] {
        let input = if left {
            StepInput::left_padded(&rows, 0)
        } else {
            StepInput::right_padded(&rows, 0)
        };
        let batch = to_vec(model.decoder.forward(&input, None).unwrap());
        for (r, row) in rows.iter().enumerate() {
            let single = logits(&model, row);
            let offset = if left { input.seq - row.len() } else { 0 };
            for t in 0..row.len() {
                let at = (r * input.seq + offset + t) * 512;
                let diff = max_diff(&batch[at..at + 512], &single[t * 512..(t + 1) * 512]);
                assert!(diff < ATOL, "left={left} row {r} token {t}: {diff}");
            }
        }
    }
}

#[test]
fn mistral_decoding_with_rolling_buffer_matches_goldens() {
    let (model, gold) = (load("tiny-mistral-swa", "native"), golden("tiny-mistral-swa"));
    let ids = gold.ids("len40.input_ids");
    let steps = cached_logits(&model, &ids, &[1; 40]);
    let diff = max_diff(&steps, &gold.get("len40.decode_logits").values);
    assert!(diff < ATOL, "40 single steps: {diff}");
    let mut chunks = vec![16];
    chunks.extend([1; 24]);
    let diff = max_diff(
        &cached_logits(&model, &ids, &chunks),
        &gold.get("len40.prefill16_decode24_logits").values,
    );
    assert!(diff < ATOL, "prefill 16 + decode 24: {diff}");
    // The buffer never holds more than W = 8 slots.
    let mut cache = model.decoder.new_cache(1);
    model
        .decoder
        .forward(&StepInput::single(&ids, 0), Some(&mut cache))
        .unwrap();
    assert_eq!((cache.slots(), cache.len()), (8, 40));
    assert_eq!(cache.bytes(), model::cache::kv_cache_bytes(2, 1, 16, 1, 40, Some(8), 4));
    let mut full = load("tiny-mistral-swa", "full").decoder.new_cache(1);
    load("tiny-mistral-swa", "full")
        .decoder
        .forward(&StepInput::single(&ids, 0), Some(&mut full))
        .unwrap();
    assert_eq!(full.bytes(), model::cache::kv_cache_bytes(2, 1, 16, 1, 40, None, 4));
}

#[test]
fn chunked_prefill_equals_one_pass() {
    for name in MODELS {
        let (model, gold) = (load(name, "native"), golden(name));
        let ids = gold.ids("len40.input_ids");
        let full = logits(&model, &ids);
        for chunks in [vec![5; 8], vec![13, 13, 14], vec![3, 20, 1, 16]] {
            let diff = max_diff(&cached_logits(&model, &ids, &chunks), &full);
            assert!(diff < ATOL, "{name} chunks {chunks:?}: {diff}");
        }
    }
}

/// Negative control: the i − j ≤ W reading (a window of W + 1 keys) must not match.
#[test]
fn window_off_by_one_is_detected() {
    let gold = golden("tiny-mistral-swa");
    let ids = gold.ids("len40.input_ids");
    let wide = logits(&load("tiny-mistral-swa", "swa:9"), &ids);
    let diff = max_diff(&wide, &gold.get("len40.logits").values);
    assert!(
        diff > 0.1,
        "a 9-key window should differ from the golden, differs by {diff}"
    );
    let diff = max_diff(&wide, &gold.get("len40.logits_window_inclusive").values);
    assert!(diff < ATOL, "and should equal HF's inclusive-window logits: {diff}");
    let full = logits(&load("tiny-mistral-swa", "full"), &ids);
    assert!(max_diff(&full, &gold.get("len40.logits").values) > 0.1);
}

#[test]
fn mha_conversion_is_exact_and_mqa_is_an_approximation() {
    let gold = golden("tiny-llama-gqa");
    let ids = gold.ids("len40.input_ids");
    let native = logits(&load("tiny-llama-gqa", "native"), &ids);
    let mha = logits(&load("tiny-llama-gqa", "mha"), &ids);
    let diff = max_diff(&mha, &native);
    assert!(diff < 1e-5, "GQA → MHA must be exact: {diff}");
    let mqa = logits(&load("tiny-llama-gqa", "mqa"), &ids);
    assert!(max_diff(&mqa, &native) > 1e-2, "MQA pools heads and must differ");
    assert!(mqa.iter().all(|v| v.is_finite()));
    // gqa:1 is mqa; gqa:2 is this checkpoint's own layout.
    assert_eq!(logits(&load("tiny-llama-gqa", "gqa:1"), &ids), mqa);
    assert_eq!(logits(&load("tiny-llama-gqa", "gqa:2"), &ids), native);
}

#[test]
fn dropping_rows_from_the_cache_leaves_the_kept_rows_unchanged() {
    // Three left-padded rows decode together; rows leave the cache mid-way (as finished
    // generations do), and every remaining row must still score like its own full forward,
    // with the rolling buffer wrapping (tiny-mistral-swa's window is 8) and without.
    for name in ["tiny-llama-gqa", "tiny-mistral-swa"] {
        let model = load(name, "native");
        let vocab = model.decoder.config.vocab_size;
        let seqs: Vec<Vec<u32>> = (0..3)
            .map(|r| (0..30).map(|i| ((i * 37 + r * 101) % 500) as u32).collect())
            .collect();
        let prompt_lens = [10, 7, 10];
        let prompts: Vec<Vec<u32>> = seqs.iter().zip(prompt_lens).map(|(s, n)| s[..n].to_vec()).collect();
        let mut cache = model.decoder.new_cache(3);
        model
            .decoder
            .forward(&StepInput::left_padded(&prompts, 0), Some(&mut cache))
            .unwrap();
        let mut rows = vec![0usize, 1, 2];
        for step in 0..20 {
            if step == 5 {
                cache.retain_rows(&[0, 2]).unwrap();
                rows = vec![0, 2];
            }
            if step == 12 {
                cache.retain_rows(&[1]).unwrap();
                rows = vec![2];
            }
            let ids = rows.iter().map(|&r| seqs[r][prompt_lens[r] + step]).collect();
            let positions = rows.iter().map(|&r| (prompt_lens[r] + step) as i64).collect();
            let input = StepInput::from_parts(rows.len(), 1, ids, positions, vec![true; rows.len()]).unwrap();
            let got = to_vec(model.decoder.forward(&input, Some(&mut cache)).unwrap());
            for (k, &r) in rows.iter().enumerate() {
                let upto = prompt_lens[r] + step + 1;
                let want = logits(&model, &seqs[r][..upto]);
                let diff = max_diff(&got[k * vocab..(k + 1) * vocab], &want[(upto - 1) * vocab..]);
                assert!(diff < ATOL, "{name} step {step} row {r}: {diff}");
            }
        }
        assert_eq!(cache.batch(), 1);
        assert!(
            cache.retain_rows(&[1]).is_err(),
            "a row index beyond the batch is refused"
        );
    }
}

#[test]
fn sliding_window_decoding_past_the_window_equals_windowed_forward() {
    // A window imposed on a model without one, with a GQA checkpoint.
    let model = load("tiny-llama-gqa", "swa:6");
    let ids: Vec<u32> = (0..40).map(|i| (i * 37 % 500) as u32).collect();
    let full = logits(&model, &ids);
    let mut chunks = vec![10];
    chunks.extend([1; 30]);
    let diff = max_diff(&cached_logits(&model, &ids, &chunks), &full);
    assert!(diff < ATOL, "{diff}");
}

#[test]
fn out_of_vocabulary_ids_are_an_error() {
    let model = load("tiny-llama-gqa", "native");
    let err = model
        .decoder
        .forward(&StepInput::single(&[1, 512], 0), None)
        .err()
        .unwrap();
    assert!(err.to_string().contains("512"), "{err}");
}

/// Queries scoring `cont` in row 0 when its context's last token sits at `last_context`.
fn continuation_queries(last_context: usize, cont: &[u32]) -> Vec<model::TokenQuery> {
    (0..cont.len())
        .map(|j| model::TokenQuery {
            row: 0,
            pos: last_context + j,
            target: cont[j],
        })
        .collect()
}

/// Two sequences packed in one row (each a context and a continuation in its own part), after
/// a cached prefix that both continue, score as each sequence alone after the prefix: neither
/// sees the other's context or continuation.
#[test]
fn packed_sequences_after_a_cached_prefix_score_like_separate_rows() {
    let model = load("tiny-llama-gqa", "native");
    let prefix: Vec<u32> = (1..20).collect();
    let p = prefix.len();
    let sequences: [(Vec<u32>, Vec<u32>); 2] = [(vec![50, 51, 52], vec![60, 61]), (vec![70, 71], vec![80, 81, 82])];
    let prefilled = || {
        let mut cache = model.decoder.new_cache(1);
        model
            .decoder
            .hidden_states(&StepInput::single(&prefix, 0), Some(&mut cache))
            .unwrap();
        cache
    };
    // Each alone: its context and its continuation's inputs after the prefix.
    let alone: Vec<_> = sequences
        .iter()
        .flat_map(|(ctx, cont)| {
            let ids: Vec<u32> = ctx.iter().chain(&cont[..cont.len() - 1]).copied().collect();
            let queries = continuation_queries(ctx.len() - 1, cont);
            model
                .decoder
                .score_tokens_after(&mut prefilled(), &StepInput::single(&ids, p), &queries)
                .unwrap()
        })
        .collect();
    // Packed: sequence 0 (ctx0 part 0, cont0 part 1) then sequence 1 (ctx1 part 0, cont1 part 1).
    let (mut ids, mut positions, mut segments, mut queries) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (sequence, (ctx, cont)) in sequences.iter().enumerate() {
        let offset = ids.len();
        let segment = |part| StepInput::segment(sequence as u32, part).unwrap();
        for (j, &id) in ctx.iter().chain(&cont[..cont.len() - 1]).enumerate() {
            ids.push(id);
            positions.push((p + j) as i64);
            segments.push(segment(if j < ctx.len() { 0 } else { 1 }));
        }
        queries.extend(continuation_queries(offset + ctx.len() - 1, cont));
    }
    let n = ids.len();
    let input = StepInput::from_parts(1, n, ids, positions, vec![true; n])
        .unwrap()
        .with_segments(segments)
        .unwrap();
    let packed = model
        .decoder
        .score_tokens_after(&mut prefilled(), &input, &queries)
        .unwrap();
    assert_eq!(packed.len(), alone.len());
    for (p, a) in packed.iter().zip(&alone) {
        assert!((p.logprob - a.logprob).abs() < 1e-5, "{p:?} vs {a:?}");
        assert_eq!(p.is_argmax, a.is_argmax);
    }
    assert!(
        StepInput::segment(1, 1 << 16).is_none(),
        "a part past the limit has no id"
    );
}

/// One packed row (context, then two continuations in their own segments) scores each
/// continuation as its own unpadded sequence would.
#[test]
fn packed_segments_score_like_separate_rows() {
    use model::TokenQuery;
    let model = load("tiny-llama-gqa", "native");
    let (ctx, a, b): (Vec<u32>, Vec<u32>, Vec<u32>) = ((1..12).collect(), vec![40, 41, 42], vec![300, 301]);
    let separate = |cont: &[u32]| {
        let row: Vec<u32> = ctx.iter().chain(cont).copied().collect();
        let queries = continuation_queries(ctx.len() - 1, cont);
        let input = StepInput::single(&row[..row.len() - 1], 0);
        model.decoder.score_tokens(&input, &queries).unwrap()
    };
    // Packed: ctx | a[..2] (segment 1) | b[..1] (segment 2).
    let mut ids = ctx.clone();
    ids.extend(&a[..2]);
    ids.extend(&b[..1]);
    let c = ctx.len() as i64;
    let mut positions: Vec<i64> = (0..c).collect();
    positions.extend([c, c + 1, c]);
    let mut segments = vec![0u32; ctx.len()];
    segments.extend([1, 1, 2]);
    let n = ids.len();
    let input = StepInput::from_parts(1, n, ids, positions, vec![true; n])
        .unwrap()
        .with_segments(segments)
        .unwrap();
    let last = ctx.len() - 1;
    let queries = [
        TokenQuery {
            row: 0,
            pos: last,
            target: a[0],
        },
        TokenQuery {
            row: 0,
            pos: last + 1,
            target: a[1],
        },
        TokenQuery {
            row: 0,
            pos: last + 2,
            target: a[2],
        },
        TokenQuery {
            row: 0,
            pos: last,
            target: b[0],
        },
        TokenQuery {
            row: 0,
            pos: last + 3,
            target: b[1],
        },
    ];
    let packed = model.decoder.score_tokens(&input, &queries).unwrap();
    let expected: Vec<_> = separate(&a).into_iter().chain(separate(&b)).collect();
    for (p, e) in packed.iter().zip(&expected) {
        assert!((p.logprob - e.logprob).abs() < 1e-5, "{p:?} vs {e:?}");
        assert_eq!(p.is_argmax, e.is_argmax);
    }
    // And score_tokens agrees with a full log-softmax.
    let full = to_vec(burn::tensor::activation::log_softmax(
        model.decoder.forward(&StepInput::single(&ctx, 0), None).unwrap(),
        2,
    ));
    let lp = full[(ctx.len() - 1) * 512 + a[0] as usize];
    assert!((packed[0].logprob as f64 - lp).abs() < 1e-5);
}
