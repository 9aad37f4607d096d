//! The jobs users come for, on top of `eval` and the `reports` crate:
//!
//! - [`merge`]: `harness merge`, joining the run folders of `eval --shard i/n`;
//! - [`regress`]: `harness regress`, a run against a baseline with an exit code for CI;
//! - [`compare`]: `harness compare`, attention variants of one model side by side;
//! - [`table`]: `harness table`, a paper's suite with the paper's settings, in its layout.

pub mod compare;
pub mod compare_report;
pub mod compare_rows;
pub mod compare_svg;
pub mod merge;
pub mod regress;
pub mod table;
pub mod table_plan;
