//! The evaluation engine and the `harness` command line.
//!
//! Requests (from `tasks`) → `engine` (tokenisation, packing, batching) → `model` (logits) →
//! `metrics` → `report` (CSV, JSONL samples, run.json).

pub mod cli;
pub mod engine;
pub mod logprobs;
pub mod scoring;
