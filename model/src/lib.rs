//! Llama/Mistral-family decoders in burn, with a swappable attention part, and loaders for
//! HuggingFace folders and GGUF files.
//!
//! Token ids in, logits out: this crate knows nothing of tasks or prompts.

pub mod attention;
pub mod attention_spec;
pub mod backend;
pub mod bands;
pub mod cache;
pub mod config;
pub mod decoder;
pub mod error;
pub mod input;
pub mod linear;
pub mod load;
pub mod mlp;
pub mod norm;
pub mod param;
pub mod precision;
pub mod rope;
pub mod synthetic;

pub use attention_spec::{AttentionSpec, ResolvedAttention};
pub use cache::KvCache;
pub use config::ModelConfig;
pub use decoder::{Decoder, TokenQuery, TokenScore, ensure_finite};
pub use error::{ModelError, Result};
pub use input::StepInput;
pub use load::memory::{MemoryPlan, Residency, WeightsPolicy};
pub use load::{Checkpoint, LoadOptions, LoadedModel, load_model, load_model_with};
pub use precision::ComputeDtype;
