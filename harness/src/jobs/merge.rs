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
    /// Folders of task definitions the shards were run with (`eval --include-path`), for their
    /// groups.
    #[arg(long, alias = "include_path", value_delimiter = ',')]
    pub include_path: Vec<PathBuf>,
    /// The shard run folders, all n of them, in any order.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
}

pub fn run(args: &MergeArgs) -> anyhow::Result<()> {
    let registry = tasks::Registry::new(&args.include_path)?;
    let group = |name: &str| crate::plan::group(&registry, name);
    let summary = reports::merge::merge_runs(&args.shards, &args.out, &group)?;
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
