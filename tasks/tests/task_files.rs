//! Bad task files and folders: each is an error naming the file and line (or the document), never
//! a panic, a silent skip or an ignored key.

mod common;

use std::path::{Path, PathBuf};

use common::{TempDir, temp_dir};
use tasks::{LoadOptions, Registry, TaskError};

/// A working multiple-choice task file over `data/test.jsonl`.
const GOOD: &str = "task: good
dataset_path: json
dataset_kwargs:
  data_files:
    test: data/test.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: \"Q: {{question}}\\nA:\"
doc_to_choice: \"{{choices}}\"
doc_to_target: label
";

const DATA: &str = "{\"question\": \"1+1?\", \"choices\": [\"1\", \"2\"], \"label\": 1}\n\
                    {\"question\": \"2+2?\", \"choices\": [\"4\", \"5\"], \"label\": 0}\n";

/// A folder with `files` (name, text) and the good task's data.
fn folder(tag: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = temp_dir(tag);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/test.jsonl"), DATA).unwrap();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn registry_err(dir: &Path) -> String {
    Registry::new(&[dir.to_path_buf()]).unwrap_err().to_string()
}

fn load_err(dir: &Path, task: &str) -> String {
    let reg = Registry::new(&[dir.to_path_buf()]).unwrap();
    reg.load(task, &LoadOptions::default()).unwrap_err().to_string()
}

fn starts(msg: &str, file: &Path, line: usize) {
    assert!(msg.starts_with(&format!("{}:{line}: ", file.display())), "{msg}");
}

#[test]
fn the_good_file_loads() {
    let dir = folder("good", &[("good.yaml", GOOD)]);
    let task = Registry::new(&[dir.to_path_buf()])
        .unwrap()
        .load("good", &LoadOptions::default())
        .unwrap();
    assert_eq!(task.items.len(), 2);
}

#[test]
fn data_in_a_local_dataset_folder_and_csv_files_load() {
    // `dataset_path` as a local folder: the data files are relative to it, the format from the name.
    let file = GOOD
        .replace("dataset_path: json", "dataset_path: ./data")
        .replace("data/test.jsonl", "test.jsonl");
    let dir = folder("local-folder", &[("t.yaml", &file)]);
    let reg = Registry::new(&[dir.to_path_buf()]).unwrap();
    assert_eq!(reg.load("good", &LoadOptions::default()).unwrap().items.len(), 2);

    // CSV with a header row; numbers are read as pandas reads them (the label is an index).
    let csv = "question,a,b,label\n\"1+1, said he?\",1,2,1\n2+2?,4,5,0\n";
    let file = GOOD
        .replace("dataset_path: json", "dataset_path: csv")
        .replace("data/test.jsonl", "data/test.csv")
        .replace("{{choices}}", "{{[a|string, b|string]}}");
    let dir = folder("csv", &[("t.yaml", &file), ("data/test.csv", csv)]);
    let task = Registry::new(&[dir.to_path_buf()])
        .unwrap()
        .load("good", &LoadOptions::default())
        .unwrap();
    assert_eq!(task.items[0].doc["question"], "1+1, said he?");
    assert_eq!(task.items[0].doc["a"], 1);
    let tasks::Request::Choice(mc) = &task.items[0].request else {
        panic!()
    };
    assert_eq!((mc.gold, mc.requests[1].continuation.as_str()), (1, " 2"));
}

#[test]
fn registries_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Registry>();
    shared::<tasks::Task>();
}

#[test]
fn unknown_keys_name_file_and_line() {
    let dir = folder("unknown", &[("t.yaml", &format!("{GOOD}doc_to_texts: oops\n"))]);
    let msg = registry_err(&dir);
    starts(&msg, &dir.join("t.yaml"), 11);
    assert!(msg.ends_with("unknown key `doc_to_texts`"), "{msg}");
    // Nested: a misspelt metric option.
    let file = format!("{GOOD}metric_list:\n  - metric: acc\n    ignore_cas: true\n");
    let dir = folder("unknown-nested", &[("t.yaml", &file)]);
    let msg = registry_err(&dir);
    starts(&msg, &dir.join("t.yaml"), 13);
    assert!(msg.contains("unknown key `ignore_cas`"), "{msg}");
}

#[test]
fn python_functions_and_remote_data_are_refused_with_the_line() {
    let file = GOOD.replace("doc_to_target: label", "doc_to_target: !function utils.target");
    let dir = folder("function", &[("t.yaml", &file)]);
    let msg = registry_err(&dir);
    starts(&msg, &dir.join("t.yaml"), 10);
    assert!(
        msg.contains("`!function utils.target`: Python functions cannot run here"),
        "{msg}"
    );

    let file = GOOD.replace("dataset_path: json", "dataset_path: allenai/ai2_arc");
    let dir = folder("remote", &[("t.yaml", &file)]);
    let msg = registry_err(&dir);
    starts(&msg, &dir.join("t.yaml"), 2);
    assert!(msg.contains("remote (Hugging Face Hub) data set"), "{msg}");
}

#[test]
fn templates_that_do_not_compile_or_render_name_the_line_and_the_document() {
    // Syntax: at registry creation.
    let file = GOOD.replace("Q: {{question}}", "Q: {{question");
    let dir = folder("syntax", &[("t.yaml", &file)]);
    let msg = registry_err(&dir);
    starts(&msg, &dir.join("t.yaml"), 8);
    assert!(msg.contains("doc_to_text: template syntax error"), "{msg}");

    // Rendering: at load, naming the data file's line and the template's line.
    let file = GOOD.replace("Q: {{question}}", "Q: {{question.upper() + 1}}");
    let dir = folder("render", &[("t.yaml", &file)]);
    let msg = load_err(&dir, "good");
    starts(&msg, &dir.join("data/test.jsonl"), 1);
    assert!(
        msg.contains(&format!("doc_to_text ({}:8)", dir.join("t.yaml").display())),
        "{msg}"
    );
}

#[test]
fn a_document_without_a_field_names_the_data_file_line_and_field() {
    let dir = folder("field", &[("t.yaml", GOOD)]);
    std::fs::write(
        dir.join("data/test.jsonl"),
        "{\"question\": \"1+1?\", \"choices\": [\"1\", \"2\"], \"label\": 1}\n{\"choices\": [\"4\", \"5\"], \"label\": 0}\n",
    )
    .unwrap();
    let msg = load_err(&dir, "good");
    starts(&msg, &dir.join("data/test.jsonl"), 2);
    assert!(msg.contains("missing field `question`"), "{msg}");

    // A target that is not among the choices.
    std::fs::write(
        dir.join("data/test.jsonl"),
        "{\"question\": \"q\", \"choices\": [\"1\", \"2\"], \"label\": 2}\n",
    )
    .unwrap();
    let msg = load_err(&dir, "good");
    starts(&msg, &dir.join("data/test.jsonl"), 1);
    assert!(msg.contains("label out of range"), "{msg}");
}

#[test]
fn missing_include_paths_data_files_and_included_files_are_errors() {
    let missing = PathBuf::from("/nonexistent/task/folder");
    let err = Registry::new(std::slice::from_ref(&missing)).unwrap_err();
    assert!(matches!(err, TaskError::IncludePath { .. }), "{err:?}");
    assert_eq!(err.to_string(), "include path /nonexistent/task/folder: no such folder");

    let file = GOOD.replace("data/test.jsonl", "data/nothere.jsonl");
    let dir = folder("nodata", &[("t.yaml", &file)]);
    let msg = load_err(&dir, "good");
    starts(&msg, &dir.join("t.yaml"), 5);
    assert!(msg.contains("data file `data/nothere.jsonl` not found"), "{msg}");

    let dir = folder("noinclude", &[("t.yaml", &format!("include: _base_yaml\n{GOOD}"))]);
    let msg = registry_err(&dir);
    starts(&msg, &dir.join("t.yaml"), 1);
    assert!(msg.contains("cannot read included file"), "{msg}");
}

#[test]
fn a_name_defined_twice_names_both_files() {
    let dir = folder("twice", &[("a.yaml", GOOD), ("sub/b.yaml", GOOD)]);
    let err = Registry::new(&[dir.to_path_buf()]).unwrap_err();
    assert!(matches!(err, TaskError::Duplicate { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&dir.join("a.yaml").display().to_string()), "{msg}");
    assert!(msg.contains(&dir.join("sub/b.yaml").display().to_string()), "{msg}");

    // Also against a built-in task.
    let dir = folder(
        "builtin-twice",
        &[("t.yaml", &GOOD.replace("task: good", "task: arc_easy"))],
    );
    let msg = registry_err(&dir);
    assert!(
        msg.starts_with("`arc_easy` is defined twice: in built-in (tasks/defs/arc/arc_easy.yaml) and in "),
        "{msg}"
    );
}

#[test]
fn groups_name_known_members() {
    let group = "group: mine\ntask:\n  - good\n  - nothing_like_it\n";
    let dir = folder("group", &[("t.yaml", GOOD), ("g.yaml", group)]);
    let msg = registry_err(&dir);
    starts(&msg, &dir.join("g.yaml"), 1);
    assert!(msg.contains("names `nothing_like_it`"), "{msg}");
}

#[test]
fn shots_beyond_the_pool_and_unknown_names_are_clear() {
    let dir = folder("shots", &[("t.yaml", GOOD)]);
    let reg = Registry::new(&[dir.to_path_buf()]).unwrap();
    let err = reg
        .load(
            "good",
            &LoadOptions {
                shots: Some(1),
                ..LoadOptions::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, TaskError::Fewshot { .. }), "{err}");
    let err = reg.expand(&["goood".into()]).unwrap_err().to_string();
    assert!(
        err.contains("unknown task or group `goood`") && err.contains("good"),
        "{err}"
    );
}

#[test]
fn generation_settings_out_of_range_and_empty_groups_are_refused_with_the_line() {
    let generative = GOOD
        .replace("output_type: multiple_choice", "output_type: generate_until")
        .replace("doc_to_choice: \"{{choices}}\"\n", "");
    let cases = [
        (
            "generation_kwargs:\n  do_sample: true\n  temperature: -3\n",
            12,
            "`temperature` must be ≥ 0, got -3",
        ),
        (
            "generation_kwargs:\n  max_gen_toks: 0\n",
            11,
            "`max_gen_toks` must be at least 1, got 0",
        ),
    ];
    for (kwargs, line, expected) in cases {
        let dir = folder("genkw", &[("t.yaml", &format!("{generative}{kwargs}"))]);
        let msg = registry_err(&dir);
        starts(&msg, &dir.join("t.yaml"), line);
        assert!(msg.contains(expected), "{msg}");
    }
    let dir = folder("emptygroup", &[("t.yaml", GOOD), ("g.yaml", "group: g\ntask: []\n")]);
    let msg = registry_err(&dir);
    starts(&msg, &dir.join("g.yaml"), 2);
    assert!(msg.contains("a group's `task` list is empty"), "{msg}");
}

#[test]
fn a_link_back_up_the_folder_is_not_followed() {
    let dir = folder("linkloop", &[("t.yaml", GOOD)]);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink(dir.to_path_buf(), dir.join("sub/up")).unwrap();
    let registry = Registry::new(&[dir.to_path_buf()]).unwrap();
    assert_eq!(registry.load("good", &LoadOptions::default()).unwrap().items.len(), 2);
}

#[test]
fn a_group_that_contains_itself_points_at_its_file() {
    let dir = folder(
        "groupcycle",
        &[
            ("t.yaml", GOOD),
            ("h.yaml", "group: h\ntask:\n  - good\n  - k\n"),
            ("k.yaml", "group: k\ntask: [h]\n"),
        ],
    );
    let msg = registry_err(&dir);
    starts(&msg, &dir.join("h.yaml"), 1);
    assert!(msg.contains("group `h` contains itself: h → k → h"), "{msg}");
}
