//! The evaluation engine and the `harness` command line.
//!
//! `RunOptions` (flags over a config file) → `RunPlan` (tasks, identity, run folder) → `Lm`
//! (tokenisation, packing, batching, the KV cache) → each task's items scored and journaled
//! (`run_task`) → the reports crate's files (scores.csv, run.json, lm-eval's files).

pub mod chat;
pub mod cli;
pub mod eval;
pub mod jobs;
pub mod journal;
pub mod lm;
pub mod logprobs;
pub mod options;
pub mod out_dir;
pub mod plan;
pub mod progress;
pub mod report;
pub mod run_task;
pub mod sampling;
pub mod scoring;
