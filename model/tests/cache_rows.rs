//! A cache whose rows are reused: a prefix computed once and continued in several rows
//! (`prefix`, `select_rows`), a pre-filled sequence joining a batch that is decoding
//! (`put_row`), rows of different lengths decoding together. Every logit must equal what a
//! fresh one-pass forward of the row's whole sequence computes, as for chunked pre-fill, with
//! full attention and with a rolling buffer that wraps (tiny-mistral-swa's window is 8).

mod common;

use common::{device, fixtures, max_diff, to_vec};
use model::{AttentionSpec, KvCache, LoadedModel, StepInput, TokenQuery, load_model};

const ATOL: f64 = 1e-4;

fn load(name: &str) -> LoadedModel {
    let spec: AttentionSpec = "native".parse().unwrap();
    load_model(&fixtures().join("tiny").join(name), &spec, &device()).unwrap()
}

/// A deterministic token sequence per seed.
fn sequence(seed: usize, len: usize) -> Vec<u32> {
    (0..len).map(|i| ((i * 37 + seed * 101 + 7) % 500) as u32).collect()
}

/// The logits of the last token of `ids`, from one uncached forward.
fn last_logits_fresh(model: &LoadedModel, ids: &[u32]) -> Vec<f64> {
    let all = to_vec(model.decoder.forward(&StepInput::single(ids, 0), None).unwrap());
    let vocab = model.decoder.config.vocab_size;
    all[(ids.len() - 1) * vocab..].to_vec()
}

/// Feeds one token per row (row r's next token of `seqs[r]`) and checks every row's logits
/// against a fresh forward of its sequence so far.
fn decode_step_matches(model: &LoadedModel, cache: &mut KvCache, seqs: &[Vec<u32>], what: &str) {
    let vocab = model.decoder.config.vocab_size;
    let lens: Vec<usize> = (0..seqs.len()).map(|r| cache.row_len(r)).collect();
    let ids = seqs.iter().zip(&lens).map(|(s, &n)| s[n]).collect();
    let positions = lens.iter().map(|&n| n as i64).collect();
    let input = StepInput::from_parts(seqs.len(), 1, ids, positions, vec![true; seqs.len()]).unwrap();
    let got = to_vec(model.decoder.forward(&input, Some(cache)).unwrap());
    for (r, (seq, &n)) in seqs.iter().zip(&lens).enumerate() {
        let want = last_logits_fresh(model, &seq[..n + 1]);
        let diff = max_diff(&got[r * vocab..(r + 1) * vocab], &want);
        assert!(diff < ATOL, "{what}: row {r} at {} tokens differs by {diff}", n + 1);
    }
}

#[test]
fn a_prefix_continued_in_several_rows_equals_fresh_prefill() {
    for name in ["tiny-llama-gqa", "tiny-mistral-swa"] {
        let model = load(name);
        let vocab = model.decoder.config.vocab_size;
        let shared = sequence(0, 5);
        // The prefix is computed in a longer row and cut (as the prefix store does).
        let mut long = model.decoder.new_cache(1);
        let longer: Vec<u32> = shared.iter().copied().chain([9, 9]).collect();
        model
            .decoder
            .forward(&StepInput::single(&longer, 0), Some(&mut long))
            .unwrap();
        let prefix = long.prefix(0, shared.len()).unwrap();
        let suffixes = [sequence(1, 5), sequence(2, 5), sequence(3, 5)];
        let mut rows = prefix.select_rows(&[0, 0, 0]).unwrap();
        let input = StepInput::right_padded(&suffixes, 0);
        let input = StepInput {
            positions: input.positions.iter().map(|p| p + shared.len() as i64).collect(),
            ..input
        };
        let got = to_vec(model.decoder.forward(&input, Some(&mut rows)).unwrap());
        for (r, suffix) in suffixes.iter().enumerate() {
            let whole: Vec<u32> = shared.iter().chain(suffix).copied().collect();
            let want = to_vec(model.decoder.forward(&StepInput::single(&whole, 0), None).unwrap());
            let row = &got[r * suffix.len() * vocab..(r + 1) * suffix.len() * vocab];
            let diff = max_diff(row, &want[shared.len() * vocab..]);
            assert!(diff < ATOL, "{name} row {r}: {diff}");
        }
        // The prefix itself is untouched by the rows that continued it.
        assert_eq!((prefix.batch(), prefix.len()), (1, shared.len()));
        // Rows continue decoding one token at a time past the window.
        let seqs: Vec<Vec<u32>> = suffixes
            .iter()
            .enumerate()
            .map(|(r, s)| shared.iter().chain(s).copied().chain(sequence(10 + r, 8)).collect())
            .collect();
        for step in 0..8 {
            decode_step_matches(&model, &mut rows, &seqs, &format!("{name} step {step}"));
        }
    }
}

#[test]
fn rows_joining_a_decoding_batch_score_like_their_own_forward() {
    for name in ["tiny-llama-gqa", "tiny-mistral-swa"] {
        let model = load(name);
        let mut seqs: Vec<Vec<u32>> = (0..3).map(|r| sequence(r, 40)).collect();
        let mut cache = model.decoder.new_cache(3);
        let prompts: Vec<Vec<u32>> = seqs.iter().map(|s| s[..6].to_vec()).collect();
        model
            .decoder
            .forward(&StepInput::right_padded(&prompts, 0), Some(&mut cache))
            .unwrap();
        for step in 0..14 {
            if step == 4 || step == 9 {
                // A new sequence, pre-filled alone (longer than the window at step 9), takes row 1.
                let row = step % 3;
                let joining = sequence(20 + step, 40);
                let prompt_len = if step == 9 { 13 } else { 3 };
                let mut alone = model.decoder.new_cache(1);
                model
                    .decoder
                    .forward(&StepInput::single(&joining[..prompt_len], 0), Some(&mut alone))
                    .unwrap();
                cache.put_row(row, &alone, 0).unwrap();
                seqs[row] = joining;
                assert_eq!(cache.row_len(row), prompt_len);
            }
            decode_step_matches(&model, &mut cache, &seqs, &format!("{name} step {step}"));
        }
        let other = load(name).decoder.new_cache(2);
        assert!(
            cache.put_row(5, &other, 0).is_err(),
            "a row outside the batch is refused"
        );
        assert!(cache.put_row(0, &other, 0).is_err(), "an empty source is refused");
    }
}

#[test]
fn a_cache_planned_for_its_rows_holds_no_spare_slot_and_decodes_the_same() {
    for name in ["tiny-llama-gqa", "tiny-mistral-swa"] {
        let model = load(name);
        let seqs: Vec<Vec<u32>> = (0..2).map(|r| sequence(r, 20)).collect();
        let prompts: Vec<Vec<u32>> = seqs.iter().map(|s| s[..6].to_vec()).collect();
        let mut planned = model.decoder.new_cache(2).with_room_for(20);
        let mut doubling = model.decoder.new_cache(2);
        for cache in [&mut planned, &mut doubling] {
            model
                .decoder
                .forward(&StepInput::right_padded(&prompts, 0), Some(&mut *cache))
                .unwrap();
            for step in 6..20 {
                decode_step_matches(&model, cache, &seqs, &format!("{name} step {step}"));
            }
        }
        // 20 tokens a row: the planned buffers hold exactly them (the window's 8 slots for the
        // rolling buffer), where doubling leaves spare room (64 slots) without a window.
        assert_eq!(planned.allocated_bytes(), planned.bytes(), "{name}: spare slots");
        if name == "tiny-llama-gqa" {
            assert_eq!(
                doubling.allocated_bytes(),
                doubling.bytes() * 64 / 20,
                "{name}: doubling"
            );
        }
    }
}

#[test]
fn copies_of_a_grown_cache_hold_no_spare_slot() {
    let model = load("tiny-llama-gqa");
    let seq = sequence(3, 31);
    let mut grown = model.decoder.new_cache(1);
    model
        .decoder
        .forward(&StepInput::single(&seq[..20], 0), Some(&mut grown))
        .unwrap();
    assert_eq!(
        grown.allocated_bytes(),
        grown.bytes() * 64 / 20,
        "doubling leaves spare slots"
    );
    // Two copies continued by 10 tokens each, planned for the 30: no slot spare at any point.
    let mut copies = grown.select_rows(&[0, 0]).unwrap().with_room_for(30);
    assert_eq!(copies.allocated_bytes(), copies.bytes());
    let ids = [&seq[20..30], &seq[20..30]].concat();
    let positions = (0..2).flat_map(|_| 20..30).collect();
    let input = StepInput::from_parts(2, 10, ids, positions, vec![true; 20]).unwrap();
    model.decoder.forward(&input, Some(&mut copies)).unwrap();
    assert_eq!(copies.allocated_bytes(), copies.bytes());
    decode_step_matches(&model, &mut copies, &[seq.clone(), seq.clone()], "after the copies");
}

#[test]
fn an_emptied_row_decodes_as_a_new_one() {
    for name in ["tiny-llama-gqa", "tiny-mistral-swa"] {
        let model = load(name);
        // Row 1's prompt is left-padded, so its slots 3-5 hold positions 0-2: a new sequence in
        // the row would see them if emptying left them visible.
        let mut seqs = vec![sequence(0, 30), sequence(1, 30)];
        let prompts = vec![seqs[0][..6].to_vec(), seqs[1][..3].to_vec()];
        let mut cache = model.decoder.new_cache(2);
        model
            .decoder
            .forward(&StepInput::left_padded(&prompts, 0), Some(&mut cache))
            .unwrap();
        cache.clear_row(1).unwrap();
        assert_eq!(cache.row_len(1), 0);
        // Row 1 starts another sequence from its first token (past the window of 8 for the
        // rolling buffer); row 0 goes on.
        seqs[1] = sequence(9, 30);
        for step in 0..12 {
            decode_step_matches(
                &model,
                &mut cache,
                &seqs,
                &format!("{name} after emptying, step {step}"),
            );
        }
        assert!(cache.clear_row(2).is_err(), "a row outside the batch is refused");
    }
}

#[test]
fn multi_token_steps_need_rows_of_one_length() {
    let model = load("tiny-llama-gqa");
    let mut cache = model.decoder.new_cache(2);
    let mut alone = model.decoder.new_cache(1);
    model
        .decoder
        .forward(&StepInput::single(&sequence(0, 5), 0), Some(&mut alone))
        .unwrap();
    cache.put_row(0, &alone, 0).unwrap();
    let input = StepInput::right_padded(&[sequence(1, 3), sequence(2, 3)], 0);
    let err = model.decoder.forward(&input, Some(&mut cache)).err().unwrap();
    assert!(err.to_string().contains("same length"), "{err}");
}

#[test]
fn scoring_after_a_shared_prefix_equals_scoring_the_whole_row() {
    let model = load("tiny-llama-gqa");
    let (shared, suffix) = (sequence(0, 9), sequence(1, 6));
    let whole: Vec<u32> = shared.iter().chain(&suffix).copied().collect();
    let queries = |offset: usize| -> Vec<TokenQuery> {
        (0..suffix.len() - 1)
            .map(|j| TokenQuery {
                row: 0,
                pos: offset + j,
                target: suffix[j + 1],
            })
            .collect()
    };
    let want = model
        .decoder
        .score_tokens(&StepInput::single(&whole, 0), &queries(shared.len()))
        .unwrap();
    let mut prefix = model.decoder.new_cache(1);
    model
        .decoder
        .forward(&StepInput::single(&shared, 0), Some(&mut prefix))
        .unwrap();
    let got = model
        .decoder
        .score_tokens_after(&mut prefix, &StepInput::single(&suffix, shared.len()), &queries(0))
        .unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!((g.logprob - w.logprob).abs() < 1e-5, "{g:?} vs {w:?}");
        assert_eq!(g.is_argmax, w.is_argmax);
    }
}
