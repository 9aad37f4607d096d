//! `harness tasks`: every task, group and tag the run could name, with where it is defined, its
//! default shots and its item count; `--show NAME` prints a task's first prompts as the model
//! would see them, without loading a model.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use tasks::{EntryKind, LoadOptions, Registry};

#[derive(Args, Clone, Debug)]
pub struct TasksArgs {
    /// Folders of task definitions (lm-eval task YAML) to add to the built-in ones.
    #[arg(long, alias = "include_path", value_delimiter = ',')]
    pub include_path: Vec<PathBuf>,
    /// Where the bundled task data lives (default: the tasks crate's data/ folder, or
    /// $HARNESS_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print this task's first prompts (and, for multiple choice, its choices; `*` marks gold).
    #[arg(long)]
    pub show: Option<String>,
    /// With --show: how many items (at least 1).
    #[arg(long, default_value_t = 2, requires = "show", value_parser = clap::value_parser!(u64).range(1..))]
    pub n: u64,
    /// With --show: few-shot examples per prompt (default: the task's own).
    #[arg(long, alias = "num_fewshot", requires = "show")]
    pub shots: Option<usize>,
    /// With --show: the few-shot sampling seed.
    #[arg(long, default_value_t = tasks::DEFAULT_FEWSHOT_SEED, requires = "show")]
    pub seed: u64,
}

pub fn run(args: &TasksArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(tasks::default_data_dir);
    let registry = Registry::new(&args.include_path)?.with_data_dir(data_dir);
    match &args.show {
        Some(name) => {
            let options = LoadOptions {
                shots: args.shots,
                seed: args.seed,
                limit: None,
            };
            print!("{}", registry.show(name, args.n as usize, &options)?);
        }
        None => print!("{}", listing(&registry)),
    }
    Ok(())
}

/// One line per task, group and tag: name, kind, shots, items, source.
fn listing(registry: &Registry) -> String {
    let entries = registry.list();
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:<15}  {:>5}  {:>6}  source\n",
        "name", "kind", "shots", "items"
    );
    for entry in entries {
        let (kind, shots, items) = match &entry.kind {
            EntryKind::Task {
                output_type,
                num_fewshot,
            } => (
                output_type.as_str().to_string(),
                num_fewshot.unwrap_or(0).to_string(),
                match registry.item_count(&entry.name) {
                    Ok(n) => n.to_string(),
                    Err(_) => "no data".into(),
                },
            ),
            EntryKind::Group { members, aggregated } => (
                if *aggregated { "group" } else { "group (names)" }.to_string(),
                String::new(),
                format!(
                    "{} tasks",
                    registry.group_members(&entry.name).map_or(members.len(), |m| m.len())
                ),
            ),
            EntryKind::Tag { members } => ("tag".to_string(), String::new(), format!("{} tasks", members.len())),
        };
        let source = entry.source.map_or(String::new(), |s| s.to_string());
        let _ = writeln!(
            out,
            "{:<width$}  {kind:<15}  {shots:>5}  {items:>6}  {source}",
            entry.name
        );
    }
    out
}
