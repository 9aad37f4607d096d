//! Reports over run directories written by `harness eval`; pure Rust over files (no model code).
//!
//! - [`aggregate`]: every reported score: task means and stderrs, group aggregates;
//! - [`identity`]: what makes two runs the same run (`identity.json`);
//! - [`stats`]: paired tests (McNemar's exact test, the paired t-test) on per-item results;
//! - [`run_record`]: run.json, what a run was beyond its identity;
//! - [`run_dir`]: reading scores.csv, samples/, run.json and identity.json;
//! - [`regress`]: a candidate run against a baseline run: comparable?, regressed?, exit code;
//! - [`lm_eval`], [`python_json`]: lm-evaluation-harness's results and samples files;
//! - [`merge`]: `--shard i/n` semantics and merging shard run directories into one run;
//! - [`paper`]: a paper's published table beside our scores, in the paper's layout.

pub mod aggregate;
pub mod identity;
pub mod lm_eval;
pub mod merge;
pub mod paper;
pub mod python_json;
pub mod regress;
pub mod run_dir;
pub mod run_record;
pub mod stats;
