//! Choosing the next token from logits: greedy, or temperature / top-k / top-p sampling with a
//! seeded generator per item, so a sample depends only on (run seed, task, item, sample index)
//! and never on batch order or size.
//!
//! Order of the warpers as transformers' `generate` applies them (`_get_logits_processor`):
//! temperature, then top-k, then top-p, then a multinomial draw from the softmax.

use serde::{Deserialize, Serialize};

/// How to pick tokens. `temperature == 0` means greedy (lm-eval's `do_sample: false`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p; 1.0 keeps all.
    pub top_p: f32,
}

impl Sampling {
    pub const GREEDY: Sampling = Sampling {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
    };

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            anyhow::bail!("temperature must be a finite number ≥ 0, got {}", self.temperature);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            anyhow::bail!("top_p must be in (0, 1], got {}", self.top_p);
        }
        Ok(())
    }
}

impl Default for Sampling {
    fn default() -> Self {
        Self::GREEDY
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and the same stream on every platform,
/// which is all a reproducible multinomial draw needs.
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The seed of one sample of one item: a hash of the run seed, the task, the item and the
/// sample index (FNV-1a, then mixed), independent of which batch the item lands in.
pub fn item_seed(run_seed: u64, task: &str, doc_id: usize, sample: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&run_seed.to_le_bytes());
    eat(task.as_bytes());
    eat(&[0xff]);
    eat(&(doc_id as u64).to_le_bytes());
    eat(&(sample as u64).to_le_bytes());
    SeededRng::new(h).next_u64()
}

/// The first index of the largest logit (torch.argmax's tie rule); NaN never wins.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

/// Picks the next token from one row of logits.
pub fn pick(logits: &[f32], sampling: &Sampling, rng: &mut SeededRng) -> u32 {
    if sampling.is_greedy() {
        return argmax(logits);
    }
    let t = sampling.temperature as f64;
    let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
    // Candidates, most likely first (ties: lower id first). Only top-k and top-p need an order;
    // a partial selection keeps top-k from sorting the whole vocabulary.
    let mut order: Vec<u32> = (0..logits.len() as u32)
        .filter(|&i| !logits[i as usize].is_nan())
        .collect();
    if sampling.top_k > 0 && sampling.top_k < order.len() {
        // transformers' TopKLogitsWarper keeps every token tied with the k-th as well.
        order.select_nth_unstable_by(sampling.top_k - 1, by_logit);
        let kth = logits[order[sampling.top_k - 1] as usize];
        order.retain(|&i| logits[i as usize] >= kth);
    }
    if sampling.top_k > 0 || sampling.top_p < 1.0 {
        order.sort_unstable_by(by_logit);
    }
    let max = order.iter().map(|&i| logits[i as usize]).fold(f32::MIN, f32::max) as f64 / t;
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| (logits[i as usize] as f64 / t - max).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut keep = weights.len();
    if sampling.top_p < 1.0 {
        // TopPLogitsWarper: drop the tokens whose cumulative probability (ascending) is ≤ 1 - p,
        // i.e. keep the most likely tokens until their mass reaches p (always at least one).
        let mut mass = 0.0;
        for (n, w) in weights.iter().enumerate() {
            mass += w / total;
            if mass >= sampling.top_p as f64 {
                keep = n + 1;
                break;
            }
        }
    }
    let kept_total: f64 = weights[..keep].iter().sum();
    let mut u = rng.next_f64() * kept_total;
    for (n, w) in weights[..keep].iter().enumerate() {
        if u < *w {
            return order[n];
        }
        u -= w;
    }
    order[keep - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampled(logits: &[f32], s: Sampling, draws: usize) -> Vec<usize> {
        let mut counts = vec![0; logits.len()];
        let mut rng = SeededRng::new(7);
        for _ in 0..draws {
            counts[pick(logits, &s, &mut rng) as usize] += 1;
        }
        counts
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 2.0, 2.0, -1.0]), 1);
        assert_eq!(pick(&[0.0, 3.0, 1.0], &Sampling::GREEDY, &mut SeededRng::new(1)), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_k_keeps_only_k() {
        let logits = [1.0, 3.0, 2.0, 0.5];
        let s = Sampling {
            temperature: 1.0,
            top_k: 1,
            top_p: 1.0,
        };
        assert_eq!(sampled(&logits, s, 200), vec![0, 200, 0, 0]);
        let s = Sampling { top_k: 2, ..s };
        let c = sampled(&logits, s, 2000);
        assert_eq!(c[0] + c[3], 0);
        // p(1) / p(2) = e ≈ 2.72 among the two kept tokens.
        let ratio = c[1] as f64 / c[2] as f64;
        assert!((2.2..3.3).contains(&ratio), "{c:?}");
    }

    #[test]
    fn top_p_keeps_the_smallest_set_reaching_p() {
        // Probabilities ≈ 0.64, 0.24, 0.09, 0.03: p = 0.8 keeps the first two.
        let logits = [3.0, 2.0, 1.0, 0.0];
        let s = Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.8,
        };
        let c = sampled(&logits, s, 3000);
        assert_eq!(c[2] + c[3], 0, "{c:?}");
        assert!(c[0] > 0 && c[1] > 0);
    }

    #[test]
    fn temperature_sharpens_and_draws_are_reproducible() {
        let logits = [1.0, 1.5];
        let hot = Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        };
        let cold = Sampling {
            temperature: 0.1,
            ..hot
        };
        let (h, c) = (sampled(&logits, hot, 2000), sampled(&logits, cold, 2000));
        assert!(c[1] > h[1], "{h:?} {c:?}");
        assert_eq!(sampled(&logits, hot, 500), sampled(&logits, hot, 500));
    }

    #[test]
    fn item_seeds_differ_by_every_part() {
        let base = item_seed(1, "gsm8k", 3, 0);
        assert_eq!(base, item_seed(1, "gsm8k", 3, 0));
        for other in [
            item_seed(2, "gsm8k", 3, 0),
            item_seed(1, "math", 3, 0),
            item_seed(1, "gsm8k", 4, 0),
            item_seed(1, "gsm8k", 3, 1),
        ] {
            assert_ne!(base, other);
        }
    }
}
