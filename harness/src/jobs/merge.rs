//! `harness merge --out DIR SHARD_DIR...`: the shard run folders of one `eval --shard i/n` run
//! back into one run folder, recomputed from the per-item results (reports::merge::merge_runs,
//! with the task groups of the tasks crate).

use std::path::PathBuf;

use clap::Args;

use crate::report::summary_table;

#[derive(Args, Clone, Debug)]
pub struct MergeArgs {
    /// The merged run folder (scores.csv, samples/, run.json, identity.json without `shard`).
    #[arg(long)]
    pub out: PathBuf,
    /// The shard run folders, all n of them, in any order.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
}

pub fn run(args: &MergeArgs) -> anyhow::Result<()> {
    let summary = reports::merge::merge_runs(&args.shards, &args.out, &crate::plan::group)?;
    print!("{}", summary_table(&summary.rows));
    let shards: Vec<String> = summary
        .shards
        .iter()
        .map(|(s, p)| format!("{s} {}", p.display()))
        .collect();
    println!("merged {} shards: {}", shards.len(), shards.join(", "));
    println!("wrote {}", args.out.join("scores.csv").display());
    Ok(())
}
