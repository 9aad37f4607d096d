//! Reports over run directories written by `harness eval`; pure Rust over files (no model code).
//!
//! - [`stats`]: paired tests (McNemar's exact test, the paired t-test) on per-item results;
//! - [`run_dir`]: reading scores.csv, samples/, run.json and identity.json;
//! - [`regress`]: a candidate run against a baseline run: comparable?, regressed?, exit code;
//! - [`merge`]: `--shard i/n` semantics and merging shard run directories into one run;
//! - [`paper`]: a paper's published table beside our scores, in the paper's layout.

pub mod merge;
pub mod paper;
pub mod regress;
pub mod run_dir;
pub mod stats;
