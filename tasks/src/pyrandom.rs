//! CPython's `random.Random`, as far as lm-eval's few-shot sampler uses it.
//!
//! lm-eval (`lm_eval/api/samplers.py`, `ContextSampler`) holds a `random.Random(seed)` and calls
//! `rnd.sample(docs, n)` once per evaluated document. This module reproduces, draw for draw:
//!
//! - the MT19937 generator (`Modules/_randommodule.c`: `init_genrand`, `init_by_array`,
//!   `genrand_uint32`),
//! - `random.seed(int)` (version 2 for ints: `init_by_array` on the 32-bit words of `abs(seed)`,
//!   least significant first; seed 0 uses the one-word key `[0]`),
//! - `getrandbits(k)` (k ≤ 32: the top k bits of one output; larger k: 32-bit words filled least
//!   significant first, the last word shifted right),
//! - `_randbelow(n)` (`_randbelow_with_getrandbits`: `k = n.bit_length()`, rejection sampling on
//!   `getrandbits(k)`),
//! - `sample(population, k)` (`Lib/random.py`): the pool-based branch when
//!   `n <= setsize` (setsize = 21, plus `4 ** ceil(log(3k, 4))` when k > 5), else the set-based
//!   branch (draw `randbelow(n)` until unseen).
//!
//! Checked against CPython 3.11 output in `tests/pyrandom.rs`.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A Python `random.Random` instance (only the parts lm-eval's sampler needs).
#[derive(Clone)]
pub struct PyRandom {
    state: [u32; N],
    index: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// `random.sample` was asked for more items than the population has (Python: `ValueError:
/// Sample larger than population or is negative`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleTooLarge {
    pub population: usize,
    pub k: usize,
}

impl PyRandom {
    /// `random.Random(seed)` for a non-negative integer seed.
    pub fn new(seed: u64) -> Self {
        // abs(seed) as 32-bit words, least significant first; 0 → [0].
        let mut key = vec![seed as u32];
        if seed >> 32 != 0 {
            key.push((seed >> 32) as u32);
        }
        Self::from_key(&key)
    }

    /// `init_by_array(key)`.
    pub fn from_key(key: &[u32]) -> Self {
        let mut r = PyRandom {
            state: [0; N],
            index: N,
        };
        r.init_genrand(19_650_218);
        let mt = &mut r.state;
        let mut i = 1usize;
        let mut j = 0usize;
        let key_len = key.len().max(1);
        let mut k = N.max(key_len);
        while k > 0 {
            let kj = key.get(j).copied().unwrap_or(0);
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(kj)
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key_len {
                j = 0;
            }
            k -= 1;
        }
        k = N - 1;
        while k > 0 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            k -= 1;
        }
        mt[0] = 0x8000_0000;
        r.index = N;
        r
    }

    fn init_genrand(&mut self, s: u32) {
        let mt = &mut self.state;
        mt[0] = s;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    /// `genrand_uint32()`: the next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            let mt = &mut self.state;
            let mag01 = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
            let mut kk = 0;
            while kk < N - M {
                let y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
                mt[kk] = mt[kk + M] ^ (y >> 1) ^ mag01(y);
                kk += 1;
            }
            while kk < N - 1 {
                let y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
                mt[kk] = mt[kk + M - N] ^ (y >> 1) ^ mag01(y);
                kk += 1;
            }
            let y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
            mt[N - 1] = mt[M - 1] ^ (y >> 1) ^ mag01(y);
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `getrandbits(k)` for 0 ≤ k ≤ 64.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(k <= 64, "getrandbits: k > 64 not supported");
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        // Words least significant first; the last one keeps only its top bits.
        let low = u64::from(self.next_u32());
        let rest = k - 32;
        let high = u64::from(self.next_u32() >> (32 - rest));
        low | (high << 32)
    }

    /// `_randbelow(n)`: uniform in [0, n) by rejection on `getrandbits(n.bit_length())`.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        let mut r = self.getrandbits(k);
        while r >= n {
            r = self.getrandbits(k);
        }
        r
    }

    /// `random.sample(range(n), k)`: the indices `random.sample(population, k)` picks from a
    /// population of length `n`, in the order Python returns them.
    pub fn sample(&mut self, n: usize, k: usize) -> Result<Vec<usize>, SampleTooLarge> {
        if k > n {
            return Err(SampleTooLarge { population: n, k });
        }
        let mut result = Vec::with_capacity(k);
        if n <= sample_setsize(k) {
            // Pool branch: a list shrinking from the back.
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow((n - i) as u64) as usize;
                result.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = std::collections::HashSet::with_capacity(k);
            for _ in 0..k {
                let mut j = self.randbelow(n as u64) as usize;
                while selected.contains(&j) {
                    j = self.randbelow(n as u64) as usize;
                }
                selected.insert(j);
                result.push(j);
            }
        }
        Ok(result)
    }
}

/// `setsize` in `random.sample`: 21, plus `4 ** ceil(log(k * 3, 4))` when k > 5.
fn sample_setsize(k: usize) -> usize {
    let mut setsize = 21usize;
    if k > 5 {
        // math.log(x, 4) is log(x) / log(4) in C doubles.
        let e = ((k as f64 * 3.0).ln() / 4f64.ln()).ceil() as u32;
        setsize = setsize.saturating_add(4usize.saturating_pow(e));
    }
    setsize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setsize_matches_python() {
        // python3: [21 + (4 ** math.ceil(math.log(k*3, 4)) if k > 5 else 0) for k in ...]
        assert_eq!(sample_setsize(1), 21);
        assert_eq!(sample_setsize(5), 21);
        assert_eq!(sample_setsize(6), 85);
        assert_eq!(sample_setsize(21), 85);
        assert_eq!(sample_setsize(22), 277);
    }
}
