//! Stop strings found as a generation grows, decoding only its newest tokens.
//!
//! The rule is lm-eval's: a row stops once its decoded text contains a stop string (which can
//! span tokens). Decoding the whole text at every step costs time that grows with the row; this
//! scan keeps the text decoded so far and decodes a window of the last few tokens per step, the
//! incremental detokenization of text-generation-inference and vLLM: the text of the tokens
//! since `read` is what `decode(ids[prefix..])` adds to `decode(ids[prefix..read])`, taken only
//! once it no longer ends in an incomplete character. A stop string not seen before must end in
//! the newly added text, so only the tail is searched. A match is confirmed on the whole decoded
//! text before the row stops, so the scan can never end a row that the full rule would not.

use model::load::tokenizer::TextTokenizer;

#[derive(Clone, Debug, Default)]
pub struct StopScan {
    /// The text of `ids[..read]`.
    text: String,
    /// Start of the window decoded with the new tokens (its text is already in `text`).
    prefix: usize,
    /// Tokens whose text is in `text`.
    read: usize,
}

impl StopScan {
    /// Whether the text of `ids` (the generation so far, one token longer than at the last
    /// call) contains one of `until`.
    pub fn push(&mut self, tokenizer: &TextTokenizer, ids: &[u32], until: &[String]) -> anyhow::Result<bool> {
        let longest = until.iter().map(String::len).max().unwrap_or(0);
        if longest == 0 {
            return Ok(false);
        }
        let known = tokenizer.decode(&ids[self.prefix..self.read], true)?;
        let window = tokenizer.decode(&ids[self.prefix..], true)?;
        if window.len() <= known.len() || window.ends_with('\u{FFFD}') {
            return Ok(false);
        }
        let Some(added) = window.strip_prefix(known.as_str()) else {
            // Decoding changed text already read (a clean-up rule across the window's start):
            // start over from the whole text.
            self.text = tokenizer.decode(ids, true)?;
            self.read = ids.len();
            self.prefix = ids.len() - 1;
            return full_match(tokenizer, ids, until);
        };
        let from = floor_char_boundary(&self.text, self.text.len().saturating_sub(longest - 1));
        self.text.push_str(added);
        self.prefix = self.read;
        self.read = ids.len();
        let tail = &self.text[from..];
        if until.iter().any(|s| !s.is_empty() && tail.contains(s.as_str())) {
            return full_match(tokenizer, ids, until);
        }
        Ok(false)
    }
}

/// lm-eval's rule on the whole decoded text.
fn full_match(tokenizer: &TextTokenizer, ids: &[u32], until: &[String]) -> anyhow::Result<bool> {
    let text = tokenizer.decode(ids, true)?;
    Ok(until.iter().any(|s| !s.is_empty() && text.contains(s.as_str())))
}

/// The largest char boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}
