//! The attention variant a checkpoint is run as, chosen at run time:
//! `native | mha | mqa | gqa:G | swa:W | full`, combinable with commas (`gqa:2,swa:1024`).

use std::fmt;
use std::str::FromStr;

use crate::config::ModelConfig;
use crate::error::ModelError;

/// How many key/value heads the attention uses, relative to the checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvHeads {
    /// As the checkpoint has them.
    #[default]
    Native,
    /// One K/V head per query head (GQA → MHA by repeating heads: exact).
    Mha,
    /// One shared K/V head (mean-pooled: an approximation).
    Mqa,
    /// G groups (mean-pooled from the checkpoint's heads, Ainslie et al. 2023).
    Groups(usize),
}

/// Which keys a query sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Window {
    /// The checkpoint's own rule (Mistral's `sliding_window`, full otherwise).
    #[default]
    Native,
    /// Full causal attention even where the checkpoint has a window.
    Full,
    /// Query i sees key j iff j <= i and i - j < W.
    Sliding(usize),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttentionSpec {
    pub kv_heads: KvHeads,
    pub window: Window,
}

/// An `AttentionSpec` applied to one config: the numbers the layers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedAttention {
    pub num_heads: usize,
    /// Checkpoint K/V heads.
    pub native_kv_heads: usize,
    /// K/V heads after conversion.
    pub kv_heads: usize,
    pub window: Option<usize>,
}

impl AttentionSpec {
    pub fn resolve(&self, config: &ModelConfig) -> Result<ResolvedAttention, ModelError> {
        let n = config.num_heads;
        let kv_heads = match self.kv_heads {
            KvHeads::Native => config.num_kv_heads,
            KvHeads::Mha => n,
            KvHeads::Mqa => 1,
            KvHeads::Groups(g) => g,
        };
        if kv_heads == 0 || n % kv_heads != 0 {
            return Err(ModelError::Invalid(format!(
                "attention `{self}`: {kv_heads} key/value heads do not divide the model's {n} query heads"
            )));
        }
        let window = match self.window {
            Window::Native => config.sliding_window,
            Window::Full => None,
            Window::Sliding(w) => Some(w),
        };
        Ok(ResolvedAttention {
            num_heads: n,
            native_kv_heads: config.num_kv_heads,
            kv_heads,
            window,
        })
    }
}

impl FromStr for AttentionSpec {
    type Err = ModelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            ModelError::Invalid(format!(
                "attention `{text}`: {why} (expected native, mha, mqa, gqa:G, swa:W or full, comma-separated)"
            ))
        };
        let mut spec = AttentionSpec::default();
        let (mut heads_set, mut window_set) = (false, false);
        for part in text.split(',').map(str::trim) {
            let (name, arg) = match part.split_once(':') {
                Some((n, a)) => (n, Some(a)),
                None => (part, None),
            };
            let number = |a: Option<&str>| -> Result<usize, ModelError> {
                let a = a.ok_or_else(|| bad(&format!("`{name}` needs a number")))?;
                // Windows and group counts beyond 2^31 are nonsense; say so rather than "not a number".
                const LARGEST: u128 = 1 << 31;
                match a.parse::<u128>() {
                    Ok(v) if v > LARGEST => Err(bad(&format!("`{a}` is too large (at most {LARGEST})"))),
                    Ok(v) if v > 0 => Ok(v as usize),
                    _ => Err(bad(&format!("`{a}` is not a positive integer"))),
                }
            };
            let is_heads = matches!(name, "mha" | "mqa" | "gqa");
            let is_window = matches!(name, "swa" | "full");
            if (is_heads && heads_set) || (is_window && window_set) {
                return Err(bad("a part is given twice"));
            }
            heads_set |= is_heads;
            window_set |= is_window;
            match (name, arg) {
                ("native", None) => {}
                ("mha", None) => spec.kv_heads = KvHeads::Mha,
                ("mqa", None) => spec.kv_heads = KvHeads::Mqa,
                ("gqa", a) => spec.kv_heads = KvHeads::Groups(number(a)?),
                ("swa", a) => spec.window = Window::Sliding(number(a)?),
                ("full", None) => spec.window = Window::Full,
                _ => return Err(bad(&format!("unknown part `{part}`"))),
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for AttentionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.kv_heads {
            KvHeads::Native => {}
            KvHeads::Mha => parts.push("mha".to_string()),
            KvHeads::Mqa => parts.push("mqa".to_string()),
            KvHeads::Groups(g) => parts.push(format!("gqa:{g}")),
        }
        match self.window {
            Window::Native => {}
            Window::Full => parts.push("full".to_string()),
            Window::Sliding(w) => parts.push(format!("swa:{w}")),
        }
        if parts.is_empty() {
            parts.push("native".to_string());
        }
        write!(f, "{}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_variants() {
        for text in [
            "native",
            "mha",
            "mqa",
            "gqa:2",
            "swa:1024",
            "gqa:2,swa:1024",
            "full",
            "mha,full",
        ] {
            let spec: AttentionSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
        }
        let spec: AttentionSpec = "swa:64,mqa".parse().unwrap();
        assert_eq!(spec.kv_heads, KvHeads::Mqa);
        assert_eq!(spec.window, Window::Sliding(64));
    }

    #[test]
    fn rejects_bad_variants() {
        for text in ["", "gqa", "gqa:0", "swa:x", "mha,mqa", "swa:4,swa:8", "flash"] {
            assert!(text.parse::<AttentionSpec>().is_err(), "{text} should be rejected");
        }
    }
}
