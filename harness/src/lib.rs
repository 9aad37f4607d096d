//! The evaluation engine and the `harness` command line.
//!
//! Requests (from `tasks`) → `engine` (tokenisation, packing, batching) → `model` (logits) →
//! `metrics` → `report` (CSV, JSONL samples, run.json).

pub mod chat;
pub mod cli;
pub mod engine;
pub mod eval;
pub mod gen_eval;
pub mod generate;
pub mod jobs;
pub mod journal;
pub mod logprobs;
pub mod metrics;
pub mod report;
pub mod run_config;
pub mod sampling;
pub mod scoring;
