//! Bad data gives an error naming the file and line; never a panic.

use std::path::Path;

mod common;

use common::{temp_dir, write_gz};

use common::legacy::{TaskOptions, load_task};
use tasks::TaskError;

fn load_err(name: &str, dir: &Path) -> TaskError {
    load_task(name, dir, &TaskOptions::default()).unwrap_err()
}

const WG_OK: &str = r#"{"qID": "a", "sentence": "A _ b.", "option1": "x", "option2": "y", "answer": "1"}"#;

#[test]
fn bad_json_names_file_and_line() {
    let dir = temp_dir("badjson");
    let file = dir.join("winogrande/dev.jsonl.gz");
    write_gz(&file, &format!("{WG_OK}\n{WG_OK}\n{{\"sentence\": \"A _ b.\", oops\n"));
    let err = load_err("winogrande", &dir);
    match &err {
        TaskError::Malformed { path, line, .. } => {
            assert_eq!(path, &file);
            assert_eq!(*line, 3);
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{}:3: ", file.display())), "{msg}");
}

#[test]
fn missing_field_names_file_line_and_field() {
    let dir = temp_dir("missing");
    let file = dir.join("arc_easy/ARC-Easy-Test.jsonl.gz");
    write_gz(
        &file,
        "{\"id\":\"x\",\"question\":{\"stem\":\"Q?\",\"choices\":[{\"text\":\"a\",\"label\":\"A\"}]},\"answerKey\":\"A\"}\n\
         {\"id\":\"y\",\"question\":{\"stem\":\"Q?\",\"choices\":[{\"text\":\"a\",\"label\":\"A\"}]}}\n",
    );
    let msg = load_err("arc_easy", &dir).to_string();
    assert!(msg.contains(&format!("{}:2:", file.display())), "{msg}");
    assert!(msg.contains("answerKey"), "{msg}");
}

#[test]
fn label_out_of_range_names_file_and_line() {
    // winogrande answer "3": its doc_to_text template maps only "1" and "2"
    let dir = temp_dir("range-wg");
    let file = dir.join("winogrande/dev.jsonl.gz");
    write_gz(&file, &format!("{WG_OK}\n{}\n", WG_OK.replace("\"1\"", "\"3\"")));
    let msg = load_err("winogrande", &dir).to_string();
    assert!(
        msg.starts_with(&format!(
            "{}:2: doc_to_text (tasks/defs/winogrande/winogrande.yaml:",
            file.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("undefined"), "{msg}");

    // arc answerKey not among the labels
    let dir = temp_dir("range-arc");
    let file = dir.join("arc_challenge/ARC-Challenge-Test.jsonl.gz");
    write_gz(
        &file,
        "{\"id\":\"x\",\"question\":{\"stem\":\"Q?\",\"choices\":[{\"text\":\"a\",\"label\":\"A\"}]},\"answerKey\":\"E\"}\n",
    );
    let msg = load_err("arc_challenge", &dir).to_string();
    assert!(
        msg.starts_with(&format!("{}:1: doc_to_target", file.display())),
        "{msg}"
    );
    assert!(msg.contains("'E' is not in list"), "{msg}");

    // siqa label 4 (of 3 answers) in the label file
    let dir = temp_dir("range-siqa");
    let rec = r#"{"context": "c", "question": "q", "answerA": "a", "answerB": "b", "answerC": "c"}"#;
    write_gz(&dir.join("siqa/dev.jsonl.gz"), &format!("{rec}\n{rec}\n"));
    let labels = dir.join("siqa/dev-labels.lst.gz");
    write_gz(&labels, "1\n4\n");
    let msg = load_err("siqa", &dir).to_string();
    let data = dir.join("siqa/dev.jsonl.gz");
    assert!(
        msg.starts_with(&format!(
            "{}:2: doc_to_target (tasks/defs/siqa/siqa.yaml:",
            data.display()
        )),
        "{msg}"
    );
    assert!(
        msg.contains("label out of range: target 3 is not one of the 3 choices"),
        "{msg}"
    );

    // mmlu answer letter "F"
    let dir = temp_dir("range-mmlu");
    let file = dir.join("mmlu/test/anatomy_test.csv.gz");
    write_gz(&file, "q1,a,b,c,d,A\n\"multi\nline\",a,b,c,d,F\n");
    let msg = load_err("mmlu_anatomy", &dir).to_string();
    assert!(
        msg.starts_with(&format!("{}:2: doc_to_target", file.display())),
        "{msg}"
    );
    assert!(msg.contains("label out of range"), "{msg}");

    // hellaswag label 7 of 4 endings
    let dir = temp_dir("range-hs");
    let file = dir.join("hellaswag/hellaswag_val.jsonl.gz");
    write_gz(
        &file,
        "{\"activity_label\":\"A\",\"ctx_a\":\"x.\",\"ctx_b\":\"y\",\"endings\":[\"1\",\"2\",\"3\",\"4\"],\"label\":\"7\"}\n",
    );
    let msg = load_err("hellaswag", &dir).to_string();
    assert!(
        msg.starts_with(&format!("{}:1: doc_to_target", file.display())),
        "{msg}"
    );
    assert!(msg.contains("label out of range"), "{msg}");
}

#[test]
fn label_file_of_the_wrong_length_is_an_error() {
    let dir = temp_dir("labels");
    let rec = r#"{"goal": "g", "sol1": "a", "sol2": "b"}"#;
    write_gz(&dir.join("piqa/valid.jsonl.gz"), &format!("{rec}\n{rec}\n{rec}\n"));
    let labels = dir.join("piqa/valid-labels.lst.gz");
    write_gz(&labels, "0\n1\n");
    let msg = load_err("piqa", &dir).to_string();
    assert!(
        msg.starts_with(&format!("{}:3: 2 labels for 3 records", labels.display())),
        "{msg}"
    );

    write_gz(&labels, "0\nx\n1\n");
    let msg = load_err("piqa", &dir).to_string();
    assert!(msg.starts_with(&format!("{}:2: bad label", labels.display())), "{msg}");
}

#[test]
fn missing_file_names_the_file() {
    let dir = temp_dir("nofile");
    let err = load_err("boolq", &dir);
    assert!(matches!(err, TaskError::Io { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&dir.join("boolq/val.jsonl.gz").display().to_string()),
        "{msg}"
    );
}

#[test]
fn corrupt_gzip_and_bad_csv_are_errors() {
    let dir = temp_dir("corrupt");
    let file = dir.join("boolq/val.jsonl.gz");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"not gzip at all").unwrap();
    let msg = load_err("boolq", &dir).to_string();
    assert!(msg.contains("boolq/val.jsonl.gz"), "{msg}");

    let file = dir.join("mmlu/test/virology_test.csv.gz");
    write_gz(&file, "q1,a,b,c,d,A\nq2,a,b,c,B\n");
    let msg = load_err("mmlu_virology", &dir).to_string();
    assert!(
        msg.starts_with(&format!("{}:2: expected 6 CSV fields", file.display())),
        "{msg}"
    );
}

#[test]
fn winogrande_without_blank_is_an_error() {
    let dir = temp_dir("blank");
    let file = dir.join("winogrande/dev.jsonl.gz");
    write_gz(&file, &WG_OK.replace("A _ b.", "A b."));
    let msg = load_err("winogrande", &dir).to_string();
    assert!(msg.starts_with(&format!("{}:1: doc_to_", file.display())), "{msg}");
    assert!(msg.contains("ValueError: substring not found"), "{msg}");
}
