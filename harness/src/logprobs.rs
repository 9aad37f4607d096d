//! `harness logprobs`: per-token log-probabilities, for inspecting a model against references.
//!
//! JSON shape (other tools rely on it):
//! `{"tokens":[t0,...], "positions":[{"token":t_i,"logprob":log p(t_i|t_<i) or null,"top":[[id,lp],...]}, ...]}`
//! where `top` is the distribution over the token that follows t_i.

use anyhow::{Context, bail};
use clap::Args;
use model::{StepInput, load_model_with};
use serde_json::json;

use crate::cli::ModelArgs;
use crate::scoring::{log_probs, top_k};

#[derive(Args)]
pub struct LogprobsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text to tokenize with the model's tokenizer (its default special tokens).
    #[arg(long, conflicts_with = "ids")]
    pub text: Option<String>,
    /// Token ids, comma-separated (needs no tokenizer).
    #[arg(long, value_delimiter = ',')]
    pub ids: Option<Vec<u32>>,
    /// How many alternatives to list per position.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Feed the input through the KV cache in chunks of this many tokens (chunked pre-fill).
    #[arg(long)]
    pub chunk: Option<usize>,
    /// Print JSON (the default output is a readable table).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &LogprobsArgs) -> anyhow::Result<()> {
    let device = args.model.backend.device()?;
    let options = args.model.load_options()?;
    let loaded = load_model_with(&args.model.model, &args.model.attention, &device, &options)?;
    eprintln!("{}: {}", args.model.model.display(), loaded.memory);
    let tokens = match (&args.text, &args.ids) {
        (Some(text), None) => {
            let tokenizer = loaded
                .tokenizer
                .as_ref()
                .with_context(|| format!("{}: no tokenizer (use --ids)", args.model.model.display()))?;
            tokenizer.encode(text, true)?
        }
        (None, Some(ids)) => ids.clone(),
        _ => bail!("give either --text or --ids"),
    };
    if tokens.is_empty() {
        bail!("the input has no tokens");
    }
    let decoder = &loaded.decoder;
    let vocab = decoder.config.vocab_size;
    let context = decoder.config.max_position_embeddings;
    // transformers computes past the context too (RoPE has no table to run out of); what a
    // model gives there is its own affair, so this warns rather than refuses.
    if tokens.len() > context {
        eprintln!(
            "warning: {} tokens, past the model's context of {context} (max_position_embeddings): computed anyway, as transformers does",
            tokens.len()
        );
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
        bail!("token id {bad} is outside the model's vocabulary of {vocab}");
    }
    let rows = match args.chunk {
        None => log_probs(decoder.forward(&StepInput::single(&tokens, 0), None)?)?,
        Some(0) => bail!("--chunk must be positive"),
        Some(chunk) => {
            let mut cache = decoder.new_cache(1);
            let mut rows = Vec::with_capacity(tokens.len() * vocab);
            for (i, part) in tokens.chunks(chunk).enumerate() {
                let step = StepInput::single(part, i * chunk);
                rows.extend(log_probs(decoder.forward(&step, Some(&mut cache))?)?);
            }
            rows
        }
    };
    let positions: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, &token)| {
            let logprob = (i > 0).then(|| rows[(i - 1) * vocab + token as usize]);
            let top = top_k(&rows[i * vocab..(i + 1) * vocab], args.top_k);
            (token, logprob, top)
        })
        .collect();
    if args.json {
        let positions: Vec<_> = positions
            .iter()
            .map(|(token, logprob, top)| json!({"token": token, "logprob": logprob, "top": top}))
            .collect();
        println!("{}", json!({"tokens": tokens, "positions": positions}));
    } else {
        println!("{:>5} {:>8} {:>10}  top-{} next", "pos", "token", "logprob", args.top_k);
        for (i, (token, logprob, top)) in positions.iter().enumerate() {
            let lp = logprob.map_or("-".to_string(), |v| format!("{v:.4}"));
            let top: Vec<String> = top.iter().map(|(id, lp)| format!("{id}:{lp:.3}")).collect();
            println!("{i:>5} {token:>8} {lp:>10}  {}", top.join(" "));
        }
    }
    Ok(())
}
