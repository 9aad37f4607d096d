//! The jobs users come for, on top of `eval` and the `reports` crate:
//!
//! - [`merge`]: `harness merge`, joining the run folders of `eval --shard i/n`;
//! - [`regress`]: `harness regress`, a run against a baseline with an exit code for CI;

pub mod merge;
pub mod regress;
