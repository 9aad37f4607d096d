//! The task registry: the built-in task files (`tasks/defs/`, compiled in) plus the `*.yaml`
//! files below each include path (lm-eval's `--include_path`), indexed by task, group and tag
//! name (lm_eval/tasks/_index.py). A name defined twice is an error naming both files (lm-eval
//! would let the later one win with a warning).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Definition, GroupDef, OutputType, TaskDef, definition};
use crate::dataset::read_split;
use crate::error::TaskError;
use crate::instance::{LoadOptions, Task, load};
use crate::yaml::{Loc, load_with_includes};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_defs.rs"));
}

/// Where built-in files are named from in messages.
const BUILTIN_ROOT: &str = "tasks/defs";

/// lm-eval's names for tasks and groups this crate names differently.
const ALIASES: [(&str, &str); 3] = [
    ("social_iqa", "siqa"),
    ("minerva_math", "math"),
    ("bbh_cot_fewshot", "bbh"),
];

/// lm-eval's name → this crate's (`social_iqa` → `siqa`); other names unchanged.
fn canonical_name(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, c)| c)
}

/// Where a definition was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A built-in file (path under the repository, e.g. `tasks/defs/arc/arc_easy.yaml`).
    BuiltIn(PathBuf),
    /// A user file under an include path.
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::BuiltIn(p) => write!(f, "built-in ({})", p.display()),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// What a name stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    Task {
        output_type: OutputType,
        num_fewshot: Option<usize>,
    },
    /// `aggregated`: the group reports a score (it has an `aggregate_metric_list`).
    Group { members: Vec<String>, aggregated: bool },
    /// A `tag`: a name for the tasks that carry it; never aggregated.
    Tag { members: Vec<String> },
}

/// One line of `harness tasks`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub name: String,
    pub kind: EntryKind,
    /// `None` for tags (defined by their tasks' files).
    pub source: Option<Source>,
}

struct Inner {
    tasks: Vec<(Arc<TaskDef>, Source)>,
    groups: Vec<(GroupDef, Source)>,
    /// Tag → its tasks, sorted (lm-eval expands tags in sorted order).
    tags: BTreeMap<String, Vec<String>>,
}

/// Task, group and tag definitions, and the data folder their relative data paths resolve
/// against. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
    data_dir: PathBuf,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("tasks", &self.inner.tasks.len())
            .field("groups", &self.inner.groups.len())
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl Registry {
    /// The built-in definitions plus every `*.yaml` file below each of `include_paths` (which
    /// must exist), with [`crate::default_data_dir`] as the data folder.
    pub fn new(include_paths: &[PathBuf]) -> Result<Registry, TaskError> {
        let mut defs: Vec<(Definition, Source)> = Vec::new();
        for (rel, _) in builtin::BUILTIN.iter().filter(|(p, _)| indexed(p)) {
            let path = Path::new(BUILTIN_ROOT).join(rel);
            defs.push((read_definition(&path, &read_builtin, None)?, Source::BuiltIn(path)));
        }
        for dir in include_paths {
            if !dir.is_dir() {
                return Err(TaskError::IncludePath {
                    path: dir.clone(),
                    message: if dir.exists() {
                        "not a folder".into()
                    } else {
                        "no such folder".into()
                    },
                });
            }
            for path in yaml_files(dir)? {
                let folder = path.parent().map(Path::to_path_buf);
                defs.push((read_definition(&path, &read_file, folder)?, Source::File(path)));
            }
        }
        let inner = index(defs)?;
        Ok(Registry {
            inner: Arc::new(inner),
            data_dir: crate::default_data_dir(),
        })
    }

    /// The same definitions with another data folder.
    pub fn with_data_dir(mut self, dir: PathBuf) -> Registry {
        self.data_dir = dir;
        self
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// lm-eval's name → this crate's (`social_iqa` → `siqa`); other names unchanged.
    pub fn canonical<'a>(&self, name: &'a str) -> &'a str {
        canonical_name(name)
    }

    /// Every task, group and tag, tasks first (in definition order), with where it was defined.
    pub fn list(&self) -> Vec<Listing> {
        let tasks = self.inner.tasks.iter().map(|(def, source)| Listing {
            name: def.name.clone(),
            kind: EntryKind::Task {
                output_type: def.output_type,
                num_fewshot: def.num_fewshot,
            },
            source: Some(source.clone()),
        });
        let groups = self.inner.groups.iter().map(|(g, source)| Listing {
            name: g.name.clone(),
            kind: EntryKind::Group {
                members: g.members.clone(),
                aggregated: !g.aggregate.is_empty(),
            },
            source: Some(source.clone()),
        });
        let tags = self.inner.tags.iter().map(|(name, members)| Listing {
            name: name.clone(),
            kind: EntryKind::Tag {
                members: members.clone(),
            },
            source: None,
        });
        tasks.chain(groups).chain(tags).collect()
    }

    /// The names of all tasks, in definition order.
    pub fn task_names(&self) -> Vec<String> {
        self.inner.tasks.iter().map(|(d, _)| d.name.clone()).collect()
    }

    /// A task's definition (aliases accepted).
    pub fn task_def(&self, name: &str) -> Result<&TaskDef, TaskError> {
        let name = self.canonical(name);
        self.inner
            .tasks
            .iter()
            .find(|(d, _)| d.name == name)
            .map(|(d, _)| d.as_ref())
            .ok_or_else(|| self.unknown(name))
    }

    /// Where a task was defined (aliases accepted).
    pub fn task_source(&self, name: &str) -> Option<&Source> {
        let name = self.canonical(name);
        self.inner.tasks.iter().find(|(d, _)| d.name == name).map(|(_, s)| s)
    }

    /// A group's definition (aliases accepted).
    pub fn group(&self, name: &str) -> Option<&GroupDef> {
        let name = self.canonical(name);
        self.inner.groups.iter().find(|(g, _)| g.name == name).map(|(g, _)| g)
    }

    /// A group's or tag's direct members, tags expanded (lm-eval's `group_subtasks` tree).
    pub fn children(&self, name: &str) -> Option<Vec<String>> {
        let name = self.canonical(name);
        if let Some(g) = self.group(name) {
            let mut out = Vec::new();
            for m in &g.members {
                match self.inner.tags.get(m.as_str()) {
                    Some(tasks) => out.extend(tasks.iter().cloned()),
                    None => out.push(self.canonical(m).to_string()),
                }
            }
            return Some(out);
        }
        self.inner.tags.get(name).cloned()
    }

    /// Tasks, groups, tags and aliases → task names, in order, without duplicates (the first
    /// occurrence wins); an unknown name is an error listing the known ones.
    pub fn expand(&self, names: &[String]) -> Result<Vec<String>, TaskError> {
        let mut out = Vec::new();
        for raw in names {
            let name = raw.trim();
            for t in self.leaves(self.canonical(name), 0).ok_or_else(|| self.unknown(raw))? {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    /// The tasks a group's score aggregates, for a group with an `aggregate_metric_list`;
    /// `None` for any other name (a task, a tag, a group that only selects tasks).
    pub fn group_members(&self, name: &str) -> Option<Vec<String>> {
        let g = self.group(name)?;
        if g.aggregate.is_empty() {
            return None;
        }
        self.leaves(&g.name, 0)
    }

    fn leaves(&self, name: &str, depth: usize) -> Option<Vec<String>> {
        if depth > 16 {
            return None;
        }
        if self.inner.tasks.iter().any(|(d, _)| d.name == name) {
            return Some(vec![name.to_string()]);
        }
        if let Some(tasks) = self.inner.tags.get(name) {
            return Some(tasks.clone());
        }
        let g = self.inner.groups.iter().find(|(g, _)| g.name == name)?;
        let mut out: Vec<String> = Vec::new();
        for m in &g.0.members {
            for t in self.leaves(self.canonical(m), depth + 1)? {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        Some(out)
    }

    /// Loads a task (not a group) and builds its requests.
    pub fn load(&self, name: &str, options: &LoadOptions) -> Result<Task, TaskError> {
        load(self.task_def(name)?, &self.data_dir, options)
    }

    /// The number of documents a task evaluates (its evaluation split, after `process_docs`).
    pub fn item_count(&self, name: &str) -> Result<usize, TaskError> {
        let def = self.task_def(name)?;
        let split = def.splits.test.as_ref().or(def.splits.validation.as_ref());
        match split.map(|s| read_split(def, s, &self.data_dir)).transpose()?.flatten() {
            Some(s) => Ok(s.docs.len()),
            None => Err(def.loc.error("no data file for the evaluated split")),
        }
    }

    /// The first `n` prompts of a task, rendered without a model (`harness tasks --show`).
    pub fn show(&self, name: &str, n: usize, options: &LoadOptions) -> Result<String, TaskError> {
        let task = self.load(
            name,
            &LoadOptions {
                limit: Some(n),
                ..options.clone()
            },
        )?;
        let mut out = format!("{} ({}, {} shots)\n", task.name, task.output_type.as_str(), task.shots);
        for item in &task.items {
            out.push_str(&format!("--- doc {}\n{}", item.doc_id, item.show()));
        }
        Ok(out)
    }

    /// The "unknown name" error, listing the known names (tasks that form an aggregated group
    /// with a common prefix are shown once, as `prefix<…> (suffixes)`).
    fn unknown(&self, name: &str) -> TaskError {
        let mut known: Vec<String> = self.inner.groups.iter().map(|(g, _)| g.name.clone()).collect();
        known.extend(self.inner.tags.keys().cloned());
        let mut covered: Vec<String> = Vec::new();
        let mut families: Vec<String> = Vec::new();
        let mut aggregated: Vec<Vec<String>> = self
            .inner
            .groups
            .iter()
            .filter(|(g, _)| !g.aggregate.is_empty())
            .filter_map(|(g, _)| self.leaves(&g.name, 0))
            .collect();
        aggregated.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for members in aggregated {
            let prefix = common_prefix(&members);
            if members.len() >= 5 && !prefix.is_empty() && members.iter().all(|m| !covered.contains(m)) {
                let suffixes: Vec<&str> = members.iter().map(|m| &m[prefix.len()..]).collect();
                families.push(format!("{prefix}<…> ({})", suffixes.join(" ")));
                covered.extend(members);
            }
        }
        known.extend(self.task_names().into_iter().filter(|t| !covered.contains(t)));
        known.extend(families);
        TaskError::UnknownTask {
            name: name.to_string(),
            known: known.join(", "),
        }
    }
}

/// The longest common prefix ending in `_`.
fn common_prefix(names: &[String]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let mut len = first.len();
    for n in names {
        len = len.min(first.bytes().zip(n.bytes()).take_while(|(a, b)| a == b).count());
    }
    first[..len]
        .rfind('_')
        .map_or(String::new(), |at| first[..=at].to_string())
}

/// lm-eval indexes `*.yaml` files; other files (`_template_yaml`) are only included.
fn indexed(path: &str) -> bool {
    path.ends_with(".yaml")
}

fn read_builtin(path: &Path) -> Result<String, TaskError> {
    let rel = path
        .strip_prefix(BUILTIN_ROOT)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    // Normalise `a/../b` in include paths.
    let mut parts: Vec<&str> = Vec::new();
    for part in rel.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let rel = parts.join("/");
    builtin::BUILTIN
        .iter()
        .find(|(p, _)| *p == rel)
        .map(|(_, text)| text.to_string())
        .ok_or_else(|| TaskError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such built-in task file"),
        })
}

fn read_file(path: &Path) -> Result<String, TaskError> {
    std::fs::read_to_string(path).map_err(|source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_definition(
    path: &Path,
    read: &dyn Fn(&Path) -> Result<String, TaskError>,
    folder: Option<PathBuf>,
) -> Result<Definition, TaskError> {
    let mut files = Vec::new();
    let entries = load_with_includes(path, read, &mut Vec::new(), &mut files)?;
    let file_loc = Loc {
        file: Arc::from(path),
        line: 1,
    };
    definition(entries, files, file_loc, folder)
}

/// `*.yaml` files below `dir`, sorted by path (lm-eval's `_iter_yaml_files`).
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, TaskError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| TaskError::Io {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| TaskError::Io {
                path: d.clone(),
                source,
            })?;
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_dir() {
                // As os.walk (followlinks=False): a link to a folder is not entered, so a link
                // back up the tree cannot loop.
                let linked = entry.file_type().is_ok_and(|t| t.is_symlink());
                if !linked && name != "__pycache__" && name != ".ipynb_checkpoints" {
                    stack.push(path);
                }
            } else if indexed(name) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn index(defs: Vec<(Definition, Source)>) -> Result<Inner, TaskError> {
    let mut inner = Inner {
        tasks: Vec::new(),
        groups: Vec::new(),
        tags: BTreeMap::new(),
    };
    let mut defined: BTreeMap<String, Source> = BTreeMap::new();
    let mut claim = |name: &str, source: &Source| -> Result<(), TaskError> {
        match defined.get(name) {
            Some(first) => Err(TaskError::Duplicate {
                name: name.to_string(),
                first: first.to_string(),
                second: source.to_string(),
            }),
            None => {
                defined.insert(name.to_string(), source.clone());
                Ok(())
            }
        }
    };
    for (def, source) in defs {
        match def {
            Definition::Task(t) => {
                claim(&t.name, &source)?;
                for tag in &t.tags {
                    inner.tags.entry(tag.clone()).or_default().push(t.name.clone());
                }
                inner.tasks.push((Arc::from(t), source));
            }
            Definition::Group(g) => {
                claim(&g.name, &source)?;
                inner.groups.push((g, source));
            }
        }
    }
    for (tag, members) in inner.tags.iter_mut() {
        if let Some(first) = defined.get(tag) {
            return Err(TaskError::Duplicate {
                name: tag.clone(),
                first: first.to_string(),
                second: format!("the tag of {}", members.join(", ")),
            });
        }
        members.sort();
    }
    check_members(&inner)?;
    Ok(inner)
}

/// Every group member names a task, group or tag (or an alias of one).
fn check_members(inner: &Inner) -> Result<(), TaskError> {
    let known = |name: &str| {
        let name = canonical_name(name);
        inner.tasks.iter().any(|(d, _)| d.name == name)
            || inner.groups.iter().any(|(g, _)| g.name == name)
            || inner.tags.contains_key(name)
    };
    for (g, _) in &inner.groups {
        if let Some(m) = g.members.iter().find(|m| !known(m)) {
            return Err(g.loc.error(format!(
                "group `{}` names `{m}`, which is no task, group or tag",
                g.name
            )));
        }
    }
    // A group that contains itself would have no tasks at all.
    for (g, _) in &inner.groups {
        if let Some(path) = cycle_through(inner, g, &mut vec![g.name.as_str()]) {
            return Err(g
                .loc
                .error(format!("group `{}` contains itself: {}", g.name, path.join(" → "))));
        }
    }
    Ok(())
}

/// A path of member groups from `group` (the last of `path`) back to `path`'s first, if any.
fn cycle_through<'i>(inner: &'i Inner, group: &'i GroupDef, path: &mut Vec<&'i str>) -> Option<Vec<String>> {
    for member in group.members.iter().map(|m| canonical_name(m)) {
        if member == path[0] {
            return Some(path.iter().map(|p| p.to_string()).chain([member.to_string()]).collect());
        }
        let Some((next, _)) = inner.groups.iter().find(|(g, _)| g.name == member) else {
            continue;
        };
        if path.contains(&next.name.as_str()) {
            continue; // a cycle that does not pass through path[0]; found from its own start
        }
        path.push(&next.name);
        if let Some(cycle) = cycle_through(inner, next, path) {
            return Some(cycle);
        }
        path.pop();
    }
    None
}
