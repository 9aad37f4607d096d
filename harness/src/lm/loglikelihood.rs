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
use model::{StepInput, TokenQuery};

use super::Lm;

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

    /// Scores token-level requests; results in request order.
    pub fn score(&self, requests: &[TokenRequest]) -> anyhow::Result<Vec<Loglikelihood>> {
        let mut rows = plan_rows(requests, self.max_len);
        // Longest first, as lm-eval sorts: padding stays small and memory peaks early.
        rows.sort_by(|a, b| {
            b.ids
                .len()
                .cmp(&a.ids.len())
                .then(a.first_request.cmp(&b.first_request))
        });
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
        for batch in rows.chunks(self.batch_size) {
            self.run_batch(batch, &mut results)?;
        }
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.with_context(|| format!("request {i} was never scored (engine bug)")))
            .collect()
    }

    fn run_batch(&self, batch: &[Row], results: &mut [Option<Loglikelihood>]) -> anyhow::Result<()> {
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
        let scores = self.decoder.score_tokens(&input, &queries)?;
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
}

/// The (position whose logits predict, target token) pairs of one request.
struct Scored {
    request: usize,
    tokens: Vec<(usize, u32)>,
}

/// Packs requests that share a context into rows (context once, then one segment per
/// continuation), never longer than `max_len`. A request whose context + continuation exceeds
/// `max_len + 1` tokens gets a row of its own, truncated on the left as lm-eval does.
fn plan_rows(requests: &[TokenRequest], max_len: usize) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut open: HashMap<&[u32], usize> = HashMap::new();
    for (i, request) in requests.iter().enumerate() {
        let (ctx, cont) = (&request.context, &request.continuation);
        if cont.is_empty() {
            continue;
        }
        if ctx.len() + cont.len() > max_len + 1 {
            rows.push(truncated_row(i, ctx, cont, max_len));
            continue;
        }
        // The continuation's input tokens: all but its last (whose prediction is the last score).
        let extra = cont.len() - 1;
        let row_index = match open.get(ctx.as_slice()) {
            Some(&r) if rows[r].ids.len() + extra <= max_len => r,
            _ => {
                rows.push(Row {
                    ids: ctx.clone(),
                    positions: (0..ctx.len() as i64).collect(),
                    segments: vec![0; ctx.len()],
                    scored: Vec::new(),
                    first_request: i,
                });
                open.insert(ctx.as_slice(), rows.len() - 1);
                rows.len() - 1
            }
        };
        let row = &mut rows[row_index];
        let segment = row.scored.len() as u32 + 1;
        let start = row.ids.len();
        let mut tokens = vec![(ctx.len() - 1, cont[0])];
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
        let req = |c: &[u32], x: &[u32]| TokenRequest {
            context: c.to_vec(),
            continuation: x.to_vec(),
        };
        let requests = vec![req(&[1, 2, 3], &[4, 5]), req(&[1, 2, 3], &[6]), req(&[9], &[7, 8])];
        let rows = plan_rows(&requests, 100);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].ids, vec![1, 2, 3, 4]);
        assert_eq!(rows[0].positions, vec![0, 1, 2, 3]);
        assert_eq!(rows[0].segments, vec![0, 0, 0, 1]);
        assert_eq!(rows[0].scored[0].tokens, vec![(2, 4), (3, 5)]);
        assert_eq!(rows[0].scored[1].tokens, vec![(2, 6)]);
        // max_len 3: [1,2,3,4,5] keeps the last 4 tokens as [2,3,4] + predicts 4,5.
        let rows = plan_rows(&requests[..1], 3);
        assert_eq!(rows[0].ids, vec![2, 3, 4]);
        assert_eq!(rows[0].scored[0].tokens, vec![(1, 4), (2, 5)]);
    }

    #[test]
    fn python_whitespace_includes_ascii_separators() {
        assert!(python_isspace('\n') && python_isspace('\u{1f}') && python_isspace('\u{a0}'));
        assert!(!python_isspace('x') && !python_isspace('\u{200b}'));
    }
}
