//! The attention variant a checkpoint is run as, chosen at run time:
//! `native | mha | mqa | gqa:G | swa:W[@LAYERS] | full`, combinable with commas
//! (`gqa:2,swa:1024`). `@LAYERS` limits the window to some layers, the others attending fully:
//! `@even`, `@odd` (0-based layer indices: interleaved local/global attention as in Gemma 2) or
//! `@A-B` (layers A to B inclusive).

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
    /// Query i sees key j iff j <= i and i - j < W, in the layers selected (full elsewhere).
    Sliding(usize, Layers),
}

/// The layers a sliding window applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layers {
    #[default]
    All,
    Even,
    Odd,
    /// Layers first..=last.
    Range(usize, usize),
}

impl Layers {
    pub fn contains(self, layer: usize) -> bool {
        match self {
            Layers::All => true,
            Layers::Even => layer.is_multiple_of(2),
            Layers::Odd => layer % 2 == 1,
            Layers::Range(first, last) => (first..=last).contains(&layer),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttentionSpec {
    pub kv_heads: KvHeads,
    pub window: Window,
}

/// An `AttentionSpec` applied to one config: the numbers the layers use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedAttention {
    pub num_heads: usize,
    /// Checkpoint K/V heads.
    pub native_kv_heads: usize,
    /// K/V heads after conversion.
    pub kv_heads: usize,
    /// Per layer: its sliding window, None for full attention.
    pub windows: Vec<Option<usize>>,
}

impl ResolvedAttention {
    /// The window every layer shares, or None when layers differ or have none.
    pub fn uniform_window(&self) -> Option<usize> {
        let first = *self.windows.first()?;
        self.windows.iter().all(|w| *w == first).then_some(first).flatten()
    }

    /// The smallest window of any layer (None: every layer attends fully).
    pub fn smallest_window(&self) -> Option<usize> {
        self.windows.iter().flatten().copied().min()
    }

    /// Bytes one row of the cache holds after `tokens` tokens: every layer's keys and values at
    /// the converted head count, at most its window of slots (what `KvCache::bytes` reports
    /// per row once the slots are in use).
    pub fn kv_bytes_per_row(&self, head_dim: usize, tokens: usize, bytes_per_value: usize) -> usize {
        self.windows
            .iter()
            .map(|&window| crate::cache::layer_kv_bytes(self.kv_heads, head_dim, 1, tokens, window, bytes_per_value))
            .sum()
    }
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
        if kv_heads == 0 || !n.is_multiple_of(kv_heads) {
            return Err(ModelError::Invalid(format!(
                "attention `{self}`: {kv_heads} key/value heads do not divide the model's {n} query heads"
            )));
        }
        let layers = config.num_layers;
        if let Window::Sliding(_, Layers::Range(first, last)) = self.window
            && (first > last || last >= layers)
        {
            return Err(ModelError::Invalid(format!(
                "attention `{self}`: layers {first}-{last} are not within the model's {layers} layers (0-{})",
                layers - 1
            )));
        }
        let windows = (0..layers)
            .map(|layer| match self.window {
                Window::Native => config.sliding_window,
                Window::Full => None,
                Window::Sliding(w, selected) => selected.contains(layer).then_some(w),
            })
            .collect();
        Ok(ResolvedAttention {
            num_heads: n,
            native_kv_heads: config.num_kv_heads,
            kv_heads,
            windows,
        })
    }
}

impl FromStr for AttentionSpec {
    type Err = ModelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            ModelError::Invalid(format!(
                "attention `{text}`: {why} (expected native, mha, mqa, gqa:G, swa:W[@even|@odd|@A-B] or full, comma-separated)"
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
                ("swa", a) => {
                    let (w, layers) = match a.and_then(|a| a.split_once('@')) {
                        Some((w, layers)) => (
                            Some(w),
                            parse_layers(layers)
                                .ok_or_else(|| bad(&format!("`@{layers}`: expected @even, @odd or @A-B")))?,
                        ),
                        None => (a, Layers::All),
                    };
                    spec.window = Window::Sliding(number(w)?, layers);
                }
                ("full", None) => spec.window = Window::Full,
                _ => return Err(bad(&format!("unknown part `{part}`"))),
            }
        }
        Ok(spec)
    }
}

/// `even`, `odd` or `A-B`.
fn parse_layers(text: &str) -> Option<Layers> {
    match text {
        "even" => Some(Layers::Even),
        "odd" => Some(Layers::Odd),
        range => {
            let (a, b) = range.split_once('-')?;
            Some(Layers::Range(a.parse().ok()?, b.parse().ok()?))
        }
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
            Window::Sliding(w, Layers::All) => parts.push(format!("swa:{w}")),
            Window::Sliding(w, Layers::Even) => parts.push(format!("swa:{w}@even")),
            Window::Sliding(w, Layers::Odd) => parts.push(format!("swa:{w}@odd")),
            Window::Sliding(w, Layers::Range(a, b)) => parts.push(format!("swa:{w}@{a}-{b}")),
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
            "swa:4096@even",
            "gqa:2,swa:64@odd",
            "swa:8@0-3",
        ] {
            let spec: AttentionSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
        }
        let spec: AttentionSpec = "swa:64,mqa".parse().unwrap();
        assert_eq!(spec.kv_heads, KvHeads::Mqa);
        assert_eq!(spec.window, Window::Sliding(64, Layers::All));
    }

    #[test]
    fn layer_selections_give_each_layer_its_window() {
        let config = ModelConfig {
            model_type: "llama".into(),
            vocab_size: 32,
            hidden_size: 16,
            intermediate_size: 32,
            num_layers: 5,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 4,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            rope_scaling: crate::rope::RopeScaling::None,
            max_position_embeddings: 64,
            tie_word_embeddings: false,
            sliding_window: None,
            bos_token_id: None,
            eos_token_ids: vec![],
        };
        let windows = |text: &str| text.parse::<AttentionSpec>().unwrap().resolve(&config).unwrap().windows;
        assert_eq!(windows("swa:8@even"), [Some(8), None, Some(8), None, Some(8)]);
        assert_eq!(windows("swa:8@odd"), [None, Some(8), None, Some(8), None]);
        assert_eq!(windows("swa:8@1-2"), [None, Some(8), Some(8), None, None]);
        assert_eq!(windows("swa:8"), [Some(8); 5]);
        let mixed = "swa:8@even".parse::<AttentionSpec>().unwrap().resolve(&config).unwrap();
        assert_eq!((mixed.uniform_window(), mixed.smallest_window()), (None, Some(8)));
        let err = "swa:8@3-9"
            .parse::<AttentionSpec>()
            .unwrap()
            .resolve(&config)
            .unwrap_err();
        assert!(err.to_string().contains("not within the model's 5 layers"), "{err}");
    }

    #[test]
    fn rejects_bad_variants() {
        for text in [
            "",
            "gqa",
            "gqa:0",
            "swa:x",
            "mha,mqa",
            "swa:4,swa:8",
            "flash",
            "swa:8@all",
            "swa:8@2",
        ] {
            assert!(text.parse::<AttentionSpec>().is_err(), "{text} should be rejected");
        }
    }
}
