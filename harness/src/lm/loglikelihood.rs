//! `loglikelihood` requests: lm-eval's request semantics on our decoder.
//!
//! - `loglikelihood(context, continuation)` → (sum of continuation log-probs, is_greedy), with
//!   tokenisation exactly as lm-eval's `TemplateLM._encode_pair` / `HFLM` (fixtures README §2.7).
//! - `loglikelihood_rolling(text)` → total log-likelihood over max-length windows, as
//!   lm-eval's `get_rolling_token_windows` + `make_disjoint_window` (lm_eval/utils.py).
//!
//! Requests sharing a context are packed into one row: the context once, then each
//! continuation in its own segment (it sees the context and itself only), so a multiple-choice
//! question computes its context once and every continuation token is still scored exactly.
//! Rows are sorted by length, padded and run in batches; results come back in request order.

use std::collections::HashMap;

use anyhow::Context as _;
use model::{KvCache, StepInput, TokenQuery};

use super::prefix::{MIN_SHARED_TOKENS, common_prefix_of};
use super::{Lm, PREFIX_COPIES_BYTES, rows_within};

/// The result of one log-likelihood request, as lm-eval reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Loglikelihood {
    pub logprob: f64,
    pub is_greedy: bool,
    /// Continuation tokens scored.
    pub tokens: usize,
    /// Context tokens (after lm-eval's encoding, before any truncation to the model's length).
    pub context_tokens: usize,
    /// Whether context + continuation exceeded the model's length and the context was cut on the
    /// left (as lm-eval does, and warns about).
    pub truncated: bool,
}

/// A request in token space: score `continuation` after `context`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub context: Vec<u32>,
    pub continuation: Vec<u32>,
}

impl Lm<'_> {
    /// `HFLM.tok_encode`: the tokenizer's default special tokens, except for a string that
    /// already starts with the prefix token's text.
    pub fn tok_encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let add_special = self.prefix_text.is_empty() || !text.starts_with(&self.prefix_text);
        Ok(self.tokenizer.encode(text, add_special)?)
    }

    /// `TemplateLM.loglikelihood` + `_encode_pair`: (context ids, continuation ids).
    pub fn encode_pair(&self, context: &str, continuation: &str) -> anyhow::Result<TokenRequest> {
        self.encode_pair_with(context, continuation, &mut HashMap::new())
    }

    /// `encode_pair`, reusing context encodings across the requests of one call: the choices of
    /// a multiple-choice item share one (often few-shot, long) context.
    fn encode_pair_with(
        &self,
        context: &str,
        continuation: &str,
        contexts: &mut HashMap<String, Vec<u32>>,
    ) -> anyhow::Result<TokenRequest> {
        if context.is_empty() {
            let prefix = self.prefix_token;
            let cont = self.tokenizer.encode(continuation, false)?;
            return Ok(match cont.first() {
                Some(&first) if first == prefix => TokenRequest {
                    context: cont[..1].to_vec(),
                    continuation: cont[1..].to_vec(),
                },
                _ => TokenRequest {
                    context: vec![prefix],
                    continuation: cont,
                },
            });
        }
        // Trailing whitespace (Python's str.rstrip: any Unicode whitespace) moves to the continuation.
        let kept = context.trim_end_matches(python_isspace);
        let (context, continuation) = (kept, format!("{}{continuation}", &context[kept.len()..]));
        let whole = self.tok_encode(&format!("{context}{continuation}"))?;
        let context_ids = match contexts.get(context) {
            Some(ids) => ids.clone(),
            None => {
                let ids = self.tok_encode(context)?;
                contexts.insert(context.to_string(), ids.clone());
                ids
            }
        };
        // The continuation is the suffix of the joint tokenisation past the context's length.
        let continuation_ids = whole.get(context_ids.len()..).unwrap_or_default().to_vec();
        Ok(TokenRequest {
            context: context_ids,
            continuation: continuation_ids,
        })
    }

    pub fn loglikelihood(&self, pairs: &[(&str, &str)]) -> anyhow::Result<Vec<Loglikelihood>> {
        let mut contexts = HashMap::new();
        let requests = pairs
            .iter()
            .map(|(c, x)| self.encode_pair_with(c, x, &mut contexts))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut results = self.score(&requests)?;
        for (result, request) in results.iter_mut().zip(&requests) {
            result.context_tokens = request.context.len();
            result.truncated = request.context.len() + request.continuation.len() > self.max_len + 1;
        }
        Ok(results)
    }

    /// Total log-likelihood of `text` and its token count, over disjoint windows of `max_len`.
    pub fn loglikelihood_rolling(&self, text: &str) -> anyhow::Result<(f64, usize)> {
        let tokens = self.tok_encode(text)?;
        let windows = rolling_windows(&tokens, self.prefix_token, self.max_len);
        let scores = self.score(&windows)?;
        Ok((scores.iter().map(|s| s.logprob).sum(), tokens.len()))
    }

    /// Scores token-level requests; results in request order. The prefix that every request's
    /// context starts with (few-shot exemplars) is computed once and continued by every row
    /// ([`super::prefix`]).
    pub fn score(&self, requests: &[TokenRequest]) -> anyhow::Result<Vec<Loglikelihood>> {
        let shared = self.shared_context(requests)?;
        let skip = shared.as_ref().map_or(0, |(n, _)| *n);
        let (mut after_prefix, mut alone): (Vec<Row>, Vec<Row>) = plan_rows(requests, self.max_len, skip)
            .into_iter()
            .partition(|r| r.after_prefix);
        // Longest first, as lm-eval sorts: padding stays small and memory peaks early.
        for rows in [&mut after_prefix, &mut alone] {
            rows.sort_by(|a, b| {
                b.ids
                    .len()
                    .cmp(&a.ids.len())
                    .then(a.first_request.cmp(&b.first_request))
            });
        }
        let mut results: Vec<Option<Loglikelihood>> = vec![None; requests.len()];
        for request in requests.iter().enumerate().filter(|(_, r)| r.continuation.is_empty()) {
            results[request.0] = Some(Loglikelihood {
                logprob: 0.0,
                is_greedy: true,
                tokens: 0,
                context_tokens: 0,
                truncated: false,
            });
        }
        let prefix = shared.map(|(_, cache)| cache);
        let rows = prefix.as_ref().map_or(self.batch_size, |p| {
            rows_within(self.batch_size, p.bytes(), PREFIX_COPIES_BYTES)
        });
        for batch in pack_after_prefix(after_prefix).chunks(rows) {
            self.run_batch(batch, prefix.as_ref(), &mut results)?;
        }
        for batch in alone.chunks(self.batch_size) {
            self.run_batch(batch, None, &mut results)?;
        }
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.with_context(|| format!("request {i} was never scored (engine bug)")))
            .collect()
    }

    /// The prefix all contexts that fit the model share, with its cache, when it is long enough
    /// to share. It stops one token short of the shortest context, whose last token's logits
    /// score the first continuation token.
    fn shared_context(&self, requests: &[TokenRequest]) -> anyhow::Result<Option<(usize, KvCache)>> {
        let contexts = requests
            .iter()
            .filter(|r| fits_whole(r, self.max_len))
            .map(|r| r.context.as_slice());
        let shortest = contexts.clone().map(<[u32]>::len).min().unwrap_or(0);
        let n = common_prefix_of(contexts.clone()).min(shortest.saturating_sub(1));
        let Some(first) = contexts.clone().next().filter(|_| n >= MIN_SHARED_TOKENS) else {
            return Ok(None);
        };
        Ok(self
            .prefixes
            .cache_of(self.decoder, &first[..n])?
            .map(|cache| (n, cache)))
    }

    /// Scores one batch of rows; rows planned after the shared prefix continue `prefix`.
    fn run_batch(
        &self,
        batch: &[Row],
        prefix: Option<&KvCache>,
        results: &mut [Option<Loglikelihood>],
    ) -> anyhow::Result<()> {
        let seq = batch.iter().map(|r| r.ids.len()).max().unwrap_or(0);
        let n = batch.len() * seq;
        let (mut ids, mut positions, mut valid, mut segments) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut queries = Vec::new();
        let mut owners = Vec::new();
        for (r, row) in batch.iter().enumerate() {
            for t in 0..seq {
                let real = t < row.ids.len();
                ids.push(if real { row.ids[t] } else { 0 });
                positions.push(if real { row.positions[t] } else { 0 });
                valid.push(real);
                segments.push(if real { row.segments[t] } else { 0 });
            }
            for scored in &row.scored {
                for &(pos, target) in &scored.tokens {
                    queries.push(TokenQuery { row: r, pos, target });
                    owners.push(scored.request);
                }
            }
        }
        let input = StepInput::from_parts(batch.len(), seq, ids, positions, valid)?.with_segments(segments)?;
        let scores = match prefix {
            Some(prefix) => {
                // Copies without the prefix's spare slots, with room for the rows at once:
                // doubling would leave up to half of them spare.
                let mut cache = prefix
                    .select_rows(&vec![0; batch.len()])?
                    .with_room_for(prefix.len() + seq);
                self.decoder.score_tokens_after(&mut cache, &input, &queries)?
            }
            None => self.decoder.score_tokens(&input, &queries)?,
        };
        // lm-eval sums the f32 log-probs of a continuation in f32, then widens.
        let mut sums: HashMap<usize, (f32, bool, usize)> = HashMap::new();
        for (owner, score) in owners.into_iter().zip(scores) {
            let entry = sums.entry(owner).or_insert((0.0, true, 0));
            entry.0 += score.logprob;
            entry.1 &= score.is_argmax;
            entry.2 += 1;
        }
        for (request, (sum, greedy, tokens)) in sums {
            results[request] = Some(Loglikelihood {
                logprob: sum as f64,
                is_greedy: greedy,
                tokens,
                context_tokens: 0,
                truncated: false,
            });
        }
        Ok(())
    }
}

/// One row of a batch: token ids with positions and segments, and what to score in it.
struct Row {
    ids: Vec<u32>,
    positions: Vec<i64>,
    segments: Vec<u32>,
    scored: Vec<Scored>,
    first_request: usize,
    /// Whether the row continues the shared prefix (its ids start after it).
    after_prefix: bool,
}

/// The (position whose logits predict, target token) pairs of one request.
struct Scored {
    request: usize,
    tokens: Vec<(usize, u32)>,
}

/// Whether context + continuation fit the model whole (lm-eval truncates the others).
fn fits_whole(request: &TokenRequest, max_len: usize) -> bool {
    !request.continuation.is_empty() && request.context.len() + request.continuation.len() <= max_len + 1
}

/// Packs requests that share a context into rows (context once, then one segment per
/// continuation), never longer than `max_len`; the first `skip` context tokens (a prefix every
/// fitting context shares, computed once) are left out of the rows. A request whose context +
/// continuation exceeds `max_len + 1` tokens gets a row of its own, truncated on the left as
/// lm-eval does.
fn plan_rows(requests: &[TokenRequest], max_len: usize, skip: usize) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut open: HashMap<&[u32], usize> = HashMap::new();
    for (i, request) in requests.iter().enumerate() {
        let (ctx, cont) = (&request.context, &request.continuation);
        if cont.is_empty() {
            continue;
        }
        if !fits_whole(request, max_len) {
            rows.push(truncated_row(i, ctx, cont, max_len));
            continue;
        }
        // The continuation's input tokens: all but its last (whose prediction is the last score).
        let extra = cont.len() - 1;
        // A row is full at max_len tokens, or at the last part id a sequence has (one-token
        // continuations take a part but no token).
        let room = |row: &Row| skip + row.ids.len() + extra <= max_len && row.parts_fit(0, 1);
        let row_index = match open.get(ctx.as_slice()) {
            Some(&r) if room(&rows[r]) => r,
            _ => {
                rows.push(Row {
                    ids: ctx[skip..].to_vec(),
                    positions: (skip as i64..ctx.len() as i64).collect(),
                    segments: vec![0; ctx.len() - skip],
                    scored: Vec::new(),
                    first_request: i,
                    after_prefix: skip > 0,
                });
                open.insert(ctx.as_slice(), rows.len() - 1);
                rows.len() - 1
            }
        };
        let row = &mut rows[row_index];
        let segment = row.scored.len() as u32 + 1;
        let start = row.ids.len();
        let mut tokens = vec![(ctx.len() - 1 - skip, cont[0])];
        for j in 0..extra {
            row.ids.push(cont[j]);
            row.positions.push((ctx.len() + j) as i64);
            row.segments.push(segment);
            tokens.push((start + j, cont[j + 1]));
        }
        row.scored.push(Scored { request: i, tokens });
    }
    rows
}

/// Rows that continue the shared prefix, several to a row: first fit, longest first, up to the
/// longest row's length. Each keeps its positions and becomes a sequence of its own in the
/// row's segments, so it is scored as if alone (it sees the prefix and itself only), while
/// padding and the copies of the prefix's keys and values into every row shrink: 5-shot MMLU
/// items are ~50 tokens after a ~430-token prefix, and range from 23 to 250. `rows` come
/// sorted longest first. (Rows without a shared prefix stay one to a row: packed, each would
/// attend over its neighbours' keys, masked, at a cost that grows with the row's square.)
fn pack_after_prefix(rows: Vec<Row>) -> Vec<Row> {
    let Some(width) = rows.first().map(|r| r.ids.len()) else {
        return rows;
    };
    let mut packed: Vec<(Row, u32)> = Vec::new();
    for row in rows {
        let fits = packed
            .iter()
            .position(|(p, sequences)| p.ids.len() + row.ids.len() <= width && row.parts_fit(*sequences, 0));
        match fits {
            Some(i) => {
                let (target, sequences) = &mut packed[i];
                target.append_sequence(row, *sequences);
                *sequences += 1;
            }
            None => packed.push((row, 1)),
        }
    }
    packed.into_iter().map(|(row, _)| row).collect()
}

impl Row {
    /// Whether every segment of this row, with `added` more continuations, has an id as part of
    /// packed sequence `sequence`: its parts are 0 (the context) and one per scored
    /// continuation, the last the largest.
    fn parts_fit(&self, sequence: u32, added: u32) -> bool {
        StepInput::segment(sequence, self.scored.len() as u32 + added).is_some()
    }

    /// Appends `row` (whose segments are parts of one sequence) as packed sequence `sequence`.
    fn append_sequence(&mut self, row: Row, sequence: u32) {
        let offset = self.ids.len();
        self.ids.extend(row.ids);
        self.positions.extend(row.positions);
        self.segments.extend(
            row.segments
                .iter()
                .map(|&part| StepInput::segment(sequence, part).expect("checked by parts_fit")),
        );
        self.scored.extend(row.scored.into_iter().map(|scored| {
            Scored {
                request: scored.request,
                tokens: scored
                    .tokens
                    .iter()
                    .map(|&(pos, target)| (pos + offset, target))
                    .collect(),
            }
        }));
        self.first_request = self.first_request.min(row.first_request);
    }
}

/// lm-eval's model input for one request: (context + continuation)[-(max_len + 1):][:-1], the
/// last len(continuation) positions scored.
fn truncated_row(request: usize, ctx: &[u32], cont: &[u32], max_len: usize) -> Row {
    let whole: Vec<u32> = ctx.iter().chain(cont).copied().collect();
    let start = whole.len().saturating_sub(max_len + 1);
    let input = &whole[start..whole.len() - 1];
    let scored_from = input.len() + 1 - cont.len().min(input.len());
    let tokens = (0..cont.len().min(input.len()))
        .map(|j| (scored_from - 1 + j, whole[start + scored_from + j]))
        .collect();
    Row {
        ids: input.to_vec(),
        positions: (0..input.len() as i64).collect(),
        segments: vec![0; input.len()],
        scored: vec![Scored { request, tokens }],
        first_request: request,
        after_prefix: false,
    }
}

/// lm-eval's `get_rolling_token_windows(tokens, prefix, max_len, context_len=1)` followed by
/// `make_disjoint_window`: every token is predicted exactly once.
pub fn rolling_windows(tokens: &[u32], prefix: u32, max_len: usize) -> Vec<TokenRequest> {
    let mut windows = Vec::new();
    if tokens.is_empty() || max_len == 0 {
        return windows;
    }
    let first = max_len.min(tokens.len());
    windows.push(TokenRequest {
        context: vec![prefix],
        continuation: tokens[..first].to_vec(),
    });
    let mut predicted = first;
    while predicted < tokens.len() {
        let pred_len = (tokens.len() - predicted).min(max_len);
        let end = predicted + pred_len;
        let input = &tokens[end.saturating_sub(max_len + 1)..end - 1];
        let target = &tokens[end - pred_len..end];
        // make_disjoint_window: the context is the input minus the part that is predicted.
        let context = input[..input.len() - (target.len() - 1)].to_vec();
        windows.push(TokenRequest {
            context,
            continuation: target.to_vec(),
        });
        predicted = end;
    }
    windows
}

/// Python's `str.isspace` for one character: Unicode White_Space plus the ASCII separators
/// U+001C..U+001F, which Python also counts.
fn python_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(context: &[u32], continuation: &[u32]) -> TokenRequest {
        TokenRequest {
            context: context.to_vec(),
            continuation: continuation.to_vec(),
        }
    }

    #[test]
    fn rolling_windows_predict_every_token_once() {
        let tokens: Vec<u32> = (10..20).collect();
        let windows = rolling_windows(&tokens, 1, 4);
        let predicted: Vec<u32> = windows.iter().flat_map(|w| w.continuation.clone()).collect();
        assert_eq!(predicted, tokens);
        assert_eq!(windows[0].context, vec![1]);
        // Second window: predicts 14..17 from the 4 tokens before 17, context = input minus the overlap.
        assert_eq!(windows[1].continuation, vec![14, 15, 16, 17]);
        assert_eq!(windows[1].context, vec![13]);
        for w in &windows {
            assert!(w.context.len() + w.continuation.len() - 1 <= 4);
        }
    }

    #[test]
    fn packing_shares_the_context_and_truncation_keeps_the_tail() {
        let requests = vec![req(&[1, 2, 3], &[4, 5]), req(&[1, 2, 3], &[6]), req(&[9], &[7, 8])];
        let rows = plan_rows(&requests, 100, 0);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].ids, vec![1, 2, 3, 4]);
        assert_eq!(rows[0].positions, vec![0, 1, 2, 3]);
        assert_eq!(rows[0].segments, vec![0, 0, 0, 1]);
        assert_eq!(rows[0].scored[0].tokens, vec![(2, 4), (3, 5)]);
        assert_eq!(rows[0].scored[1].tokens, vec![(2, 6)]);
        // max_len 3: [1,2,3,4,5] keeps the last 4 tokens as [2,3,4] + predicts 4,5.
        // More continuations than a sequence has part ids: the rest go to a second row.
        let many: Vec<TokenRequest> = (0..70_000).map(|_| req(&[1, 2, 3], &[4])).collect();
        let rows = plan_rows(&many, 100, 0);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].scored.len(), 65_535);
        assert!(rows.iter().all(|r| r.parts_fit(0, 0)));
        let rows = plan_rows(&requests[..1], 3, 0);
        assert_eq!(rows[0].ids, vec![2, 3, 4]);
        assert_eq!(rows[0].scored[0].tokens, vec![(1, 4), (2, 5)]);
    }

    #[test]
    fn rows_after_a_prefix_pack_into_the_longest_ones_length_as_sequences_of_their_own() {
        // After the prefix [1, 2]: rows of 5, 3 (two continuations), 2 and 2 tokens.
        let requests = vec![
            req(&[1, 2, 3, 4, 5, 6, 7], &[8]),
            req(&[1, 2, 10, 11], &[12, 13]),
            req(&[1, 2, 10, 11], &[14]),
            req(&[1, 2, 20, 21], &[22]),
            req(&[1, 2, 30], &[31, 32]),
        ];
        let mut rows = plan_rows(&requests, 100, 2);
        rows.sort_by(|a, b| b.ids.len().cmp(&a.ids.len()));
        let packed = pack_after_prefix(rows);
        // First fit into 5 slots: [5], [3 + 2], [2].
        assert_eq!(packed.len(), 3);
        assert_eq!(packed[1].ids, vec![10, 11, 12, 20, 21]);
        assert_eq!(packed[1].positions, vec![2, 3, 4, 2, 3]);
        let second = StepInput::segment(1, 0).unwrap();
        assert_eq!(packed[1].segments, vec![0, 0, 1, second, second]);
        // Scored positions follow their sequence: request 3's last context token is now at 4.
        let tokens: Vec<(usize, Vec<(usize, u32)>)> =
            packed[1].scored.iter().map(|s| (s.request, s.tokens.clone())).collect();
        assert_eq!(
            tokens,
            vec![(1, vec![(1, 12), (2, 13)]), (2, vec![(1, 14)]), (3, vec![(4, 22)])]
        );
        assert_eq!(packed[2].ids, vec![30, 31]);
        assert_eq!(packed[2].segments, vec![0, 1]);
    }

    #[test]
    fn rows_after_a_shared_prefix_leave_it_out() {
        let requests = vec![
            req(&[1, 2, 3, 4], &[5, 6]),
            req(&[1, 2, 3, 7], &[8]),
            req(&[1, 2], &[9; 9]),
        ];
        // max_len 6: the third request (2 + 9 tokens) is truncated and keeps its own whole row.
        let rows = plan_rows(&requests, 6, 2);
        assert_eq!(rows[0].ids, vec![3, 4, 5]);
        assert_eq!(rows[0].positions, vec![2, 3, 4]);
        assert_eq!(rows[0].scored[0].tokens, vec![(1, 5), (2, 6)]);
        assert_eq!(
            (rows[1].ids.clone(), rows[1].scored[0].tokens.clone()),
            (vec![3, 7], vec![(1, 8)])
        );
        assert!(rows[0].after_prefix && rows[1].after_prefix && !rows[2].after_prefix);
        assert_eq!(rows[2].positions[0], 0);
    }

    #[test]
    fn python_whitespace_includes_ascii_separators() {
        assert!(python_isspace('\n') && python_isspace('\u{1f}') && python_isspace('\u{a0}'));
        assert!(!python_isspace('x') && !python_isspace('\u{200b}'));
    }
}
